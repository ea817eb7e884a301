"""Inline route constraints (``{id:int}``, ``{name:minlength(3)}``) as ASP.NET Core checks them.

The Functions host parses values with .NET's invariant culture, so the numeric checks accept what
``int.TryParse``/``double.TryParse`` accept (surrounding white space, a leading sign, thousands
separators for floating point), not what Python's ``int()``/``float()`` accept.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

Constraint = Callable[[str], bool]

_INTEGER = re.compile(r"\s*[+-]?[0-9]+\s*")
_FLOATING = re.compile(r"\s*[+-]?(?:[0-9][0-9,]*\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*")
_FLOAT_SYMBOLS = frozenset({"nan", "infinity", "+infinity", "-infinity"})
_GUID = re.compile(
    r"[0-9a-f]{32}"
    r"|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|\{[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}"
    r"|\([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\)",
    re.IGNORECASE,
)
_ALPHA = re.compile(r"[a-z]*", re.IGNORECASE)
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)


def _integer_in(bounds: tuple[int, int]) -> Constraint:
    low, high = bounds

    def check(value: str) -> bool:
        return _INTEGER.fullmatch(value) is not None and low <= int(value) <= high

    return check


def _floating(value: str) -> bool:
    return _FLOATING.fullmatch(value) is not None or value.strip().lower() in _FLOAT_SYMBOLS


def _decimal(value: str) -> bool:
    return _FLOATING.fullmatch(value) is not None


def _boolean(value: str) -> bool:
    return value.strip().lower() in {"true", "false"}


def _datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value.strip())
    except ValueError:
        return False
    return True


def _long_between(low: int, high: int) -> Constraint:
    is_long = _integer_in(_INT64)
    return lambda value: is_long(value) and low <= int(value) <= high


def _length_between(low: int, high: int) -> Constraint:
    return lambda value: low <= len(value) <= high


def _regex(pattern: str) -> Constraint:
    # ASP.NET's regex constraint is case-insensitive and unanchored (templates anchor with ^ $).
    compiled = re.compile(pattern, re.IGNORECASE)
    return lambda value: compiled.search(value) is not None


def _integers(args: str, count: int, name: str) -> list[int]:
    parts = [part.strip() for part in args.split(",")] if args else []
    if len(parts) != count or not all(_INTEGER.fullmatch(part) for part in parts):
        raise ValueError(f"constraint '{name}' takes {count} integer argument(s), got '{args}'")
    return [int(part) for part in parts]


_SIMPLE: dict[str, Constraint] = {
    "int": _integer_in(_INT32),
    "long": _integer_in(_INT64),
    "bool": _boolean,
    "guid": lambda value: _GUID.fullmatch(value) is not None,
    "alpha": lambda value: _ALPHA.fullmatch(value) is not None,
    "double": _floating,
    "float": _floating,
    "decimal": _decimal,
    "datetime": _datetime,
    "required": lambda value: value != "",
}


def parse_constraint(text: str) -> Constraint:
    """The check for one constraint reference such as ``int``, ``range(1,9)`` or ``regex(^a)``."""
    name, paren, rest = text.partition("(")
    key = name.strip().lower()
    if not paren:
        if key in _SIMPLE:
            return _SIMPLE[key]
        raise ValueError(f"the constraint reference '{text}' could not be resolved")
    if not rest.endswith(")"):
        raise ValueError(f"the constraint '{text}' is missing its closing parenthesis")
    args = rest[:-1]
    if key == "regex":
        try:
            return _regex(args)
        except re.error as exc:
            raise ValueError(f"the regex constraint '{args}' is invalid: {exc}") from None
    if key == "min":
        return _long_between(_integers(args, 1, key)[0], _INT64[1])
    if key == "max":
        return _long_between(_INT64[0], _integers(args, 1, key)[0])
    if key == "range":
        low, high = _integers(args, 2, key)
        return _long_between(low, high)
    if key == "minlength":
        return _length_between(_integers(args, 1, key)[0], _INT64[1])
    if key == "maxlength":
        return _length_between(0, _integers(args, 1, key)[0])
    if key == "length":
        bounds = _integers(args, 2 if "," in args else 1, key)
        return _length_between(bounds[0], bounds[-1])
    raise ValueError(f"the constraint reference '{text}' could not be resolved")
