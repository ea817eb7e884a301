"""Timer schedules as the Functions timer trigger reads them: NCRONTAB or a TimeSpan.

NCRONTAB has six fields, seconds first: ``{second} {minute} {hour} {day} {month}
{day-of-week}``. Each field takes ``*``, a value, ``a-b``, a step (``*/n``, ``a-b/n``, ``a/n``
meaning ``a``..max) and comma lists; months and days of the week also take names (the first
three letters decide). Unlike Vixie cron, NCrontab requires the day of the month AND the day of
the week to match when both are restricted. A TimeSpan (``[d.]hh:mm[:ss]``) fires at that
interval. Times are wall-clock times in the host's time zone.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

_MONTHS = tuple(name.lower() for name in calendar.month_abbr[1:])
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# (name, lowest, highest, names for lowest..highest)
_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("second", 0, 59, ()),
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 0, 6, _DAYS),
)
_TIMESPAN = re.compile(r"(?:(\d+)\.)?(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,7}))?)?")
# Far enough for the rarest valid schedule (Feb 29 on a given weekday recurs within 28 years).
_HORIZON_YEARS = 30


class Schedule(Protocol):
    def next_after(self, moment: datetime) -> datetime | None:
        """The first occurrence strictly after ``moment``; None when there is none."""
        ...


@dataclass(frozen=True)
class CronSchedule:
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]

    def next_after(self, moment: datetime) -> datetime | None:
        # Advance the coarsest field that does not match, resetting the finer ones; each step
        # lands on the first instant of the next month, day, hour, minute or second.
        candidate = moment.replace(microsecond=0) + timedelta(seconds=1)
        horizon = candidate.year + _HORIZON_YEARS
        while candidate.year <= horizon:
            if candidate.month not in self.months:
                candidate = _next_month(candidate)
            elif (
                candidate.day not in self.days
                or candidate.isoweekday() % 7 not in self.days_of_week
            ):
                candidate = candidate.replace(hour=0, minute=0, second=0) + timedelta(days=1)
            elif candidate.hour not in self.hours:
                candidate = candidate.replace(minute=0, second=0) + timedelta(hours=1)
            elif candidate.minute not in self.minutes:
                candidate = candidate.replace(second=0) + timedelta(minutes=1)
            elif candidate.second not in self.seconds:
                candidate += timedelta(seconds=1)
            else:
                return candidate
        return None


@dataclass(frozen=True)
class IntervalSchedule:
    interval: timedelta

    def next_after(self, moment: datetime) -> datetime | None:
        return moment + self.interval


def _next_month(moment: datetime) -> datetime:
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return moment.replace(year=year, month=month, day=1, hour=0, minute=0, second=0)


def _value(text: str, field: str, low: int, high: int, names: tuple[str, ...]) -> int:
    if names and text[:1].isalpha():
        prefix = text[:3].lower()
        if len(text) >= 3 and prefix in names:
            return low + names.index(prefix)
        raise ValueError(f"'{text}' is not a {field} name")
    if not text.isdigit():
        raise ValueError(f"'{text}' is not a valid {field}")
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"{field} {value} is outside {low}-{high}")
    return value


def _field(text: str, field: str, low: int, high: int, names: tuple[str, ...]) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"'{part}' has an invalid step")
            step = int(step_text)
        if base == "*":
            first, last = low, high
        elif "-" in base:
            start, _, end = base.partition("-")
            first = _value(start, field, low, high, names)
            last = _value(end, field, low, high, names)
            if first > last:
                raise ValueError(f"the {field} range '{base}' is reversed")
        else:
            first = _value(base, field, low, high, names)
            last = high if slash else first
        values.update(range(first, last + 1, step))
    return frozenset(values)


def _timespan(text: str) -> IntervalSchedule | None:
    found = _TIMESPAN.fullmatch(text)
    if found is None:
        return None
    days, hours, minutes, seconds, fraction = found.groups()
    if int(hours) > 23 or int(minutes) > 59 or int(seconds or 0) > 59:
        return None
    interval = timedelta(
        days=int(days or 0),
        hours=int(hours),
        minutes=int(minutes),
        seconds=int(seconds or 0),
        microseconds=int((fraction or "0").ljust(7, "0")) // 10,
    )
    return IntervalSchedule(interval) if interval > timedelta(0) else None


def parse_schedule(expression: str) -> CronSchedule | IntervalSchedule:
    """The schedule for a timer trigger's (already %resolved%) ``schedule`` property."""
    text = expression.strip()
    fields = text.split()
    problem = "expected six fields: second minute hour day month day-of-week"
    if len(fields) == len(_FIELDS):
        try:
            return CronSchedule(
                *(_field(part, *spec) for part, spec in zip(fields, _FIELDS, strict=True))
            )
        except ValueError as exc:
            problem = str(exc)
    elif ":" in text:
        interval = _timespan(text)
        if interval is not None:
            return interval
        problem = "expected a positive TimeSpan [d.]hh:mm[:ss]"
    raise ValueError(
        f"The schedule expression '{expression}' was not recognized as a valid cron expression "
        f"or timespan string ({problem})."
    )
