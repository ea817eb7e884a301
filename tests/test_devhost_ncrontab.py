"""NCRONTAB and TimeSpan schedules: parsing and next occurrences, as the timer trigger reads."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from devhost.ncrontab import CronSchedule, IntervalSchedule, parse_schedule


def occurrences(expression: str, start: datetime, count: int) -> list[datetime]:
    schedule = parse_schedule(expression)
    found: list[datetime] = []
    moment = start
    for _ in range(count):
        following = schedule.next_after(moment)
        assert following is not None
        found.append(following)
        moment = following
    return found


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_every_second_fires_on_each_following_second():
    assert occurrences("* * * * * *", at("2024-01-01T00:00:00.400"), 3) == [
        at("2024-01-01T00:00:01"),
        at("2024-01-01T00:00:02"),
        at("2024-01-01T00:00:03"),
    ]


def test_seconds_field_comes_first():
    assert occurrences("30 * * * * *", at("2024-01-01T00:00:00"), 2) == [
        at("2024-01-01T00:00:30"),
        at("2024-01-01T00:01:30"),
    ]


def test_the_next_occurrence_is_strictly_after_the_given_moment():
    assert occurrences("0 0 * * * *", at("2024-01-01T05:00:00"), 1) == [at("2024-01-01T06:00:00")]


def test_step_over_the_whole_range():
    assert occurrences("*/15 * * * * *", at("2024-01-01T00:00:01"), 4) == [
        at("2024-01-01T00:00:15"),
        at("2024-01-01T00:00:30"),
        at("2024-01-01T00:00:45"),
        at("2024-01-01T00:01:00"),
    ]


def test_range_with_step_and_lists():
    schedule = parse_schedule("0 10-40/15,59 9,17 * * *")
    assert isinstance(schedule, CronSchedule)
    assert schedule.minutes == {10, 25, 40, 59}
    assert schedule.hours == {9, 17}
    assert occurrences("0 10-40/15,59 9,17 * * *", at("2024-01-01T09:41:00"), 3) == [
        at("2024-01-01T09:59:00"),
        at("2024-01-01T17:10:00"),
        at("2024-01-01T17:25:00"),
    ]


def test_value_with_step_runs_to_the_end_of_the_range():
    schedule = parse_schedule("5/20 * * * * *")
    assert isinstance(schedule, CronSchedule)
    assert schedule.seconds == {5, 25, 45}


def test_weekdays_by_number_and_name_agree():
    # 2024-01-06 is a Saturday: the next weekday 09:30 is Monday the 8th.
    expected = [at("2024-01-08T09:30:00"), at("2024-01-09T09:30:00")]
    assert occurrences("0 30 9 * * 1-5", at("2024-01-06T10:00:00"), 2) == expected
    assert occurrences("0 30 9 * * Mon-Fri", at("2024-01-06T10:00:00"), 2) == expected


def test_sunday_is_zero():
    # 2024-01-07 is a Sunday.
    assert occurrences("0 0 12 * * 0", at("2024-01-01T00:00:00"), 1) == [at("2024-01-07T12:00:00")]
    assert occurrences("0 0 12 * * sunday", at("2024-01-01T00:00:00"), 1) == [
        at("2024-01-07T12:00:00")
    ]


def test_day_of_month_and_day_of_week_must_both_match():
    # NCrontab (unlike Vixie cron) ANDs them: the 13th that is a Friday. 2024-09-13 is one.
    assert occurrences("0 0 0 13 * 5", at("2024-01-01T00:00:00"), 1) == [at("2024-09-13T00:00:00")]


def test_month_names_and_month_boundaries():
    assert occurrences("0 0 0 1 jan,JUL *", at("2024-03-15T00:00:00"), 2) == [
        at("2024-07-01T00:00:00"),
        at("2025-01-01T00:00:00"),
    ]


def test_day_31_skips_shorter_months():
    assert occurrences("0 0 0 31 * *", at("2024-01-31T00:00:00"), 2) == [
        at("2024-03-31T00:00:00"),
        at("2024-05-31T00:00:00"),
    ]


def test_last_second_of_the_year_rolls_into_the_next_year():
    assert occurrences("0 0 0 * * *", at("2024-12-31T23:59:59"), 1) == [at("2025-01-01T00:00:00")]


def test_february_29_waits_for_a_leap_year():
    assert occurrences("0 0 0 29 2 *", at("2024-03-01T00:00:00"), 1) == [at("2028-02-29T00:00:00")]


def test_a_date_that_never_exists_has_no_occurrence():
    assert parse_schedule("0 0 0 30 2 *").next_after(at("2024-01-01T00:00:00")) is None


@pytest.mark.parametrize(
    ("expression", "interval"),
    [
        ("00:00:05", timedelta(seconds=5)),
        ("01:30", timedelta(hours=1, minutes=30)),
        ("1.02:00:00", timedelta(days=1, hours=2)),
    ],
)
def test_timespan_schedules_fire_at_a_fixed_interval(expression, interval):
    schedule = parse_schedule(expression)
    assert schedule == IntervalSchedule(interval)
    assert schedule.next_after(at("2024-01-01T00:00:00")) == at("2024-01-01T00:00:00") + interval


@pytest.mark.parametrize(
    "expression",
    [
        "* * * * *",  # five fields: NCRONTAB needs seconds
        "60 * * * * *",
        "* * 24 * * *",
        "* * * 0 * *",
        "* * * * 13 *",
        "* * * * * 7",
        "*/0 * * * * *",
        "10-5 * * * * *",
        "* * * * foo *",
        "a * * * * *",
        "00:00:00",
        "25:00:00",
        "",
    ],
)
def test_invalid_schedules_are_reported_like_the_host(expression):
    with pytest.raises(ValueError, match="was not recognized as a valid cron expression"):
        parse_schedule(expression)
