"""Redis glob patterns, matched in-process exactly as Redis's ``SCAN MATCH`` matches them.

The in-memory fallback must invalidate the same keys Redis would, and Python's ``fnmatch``
disagrees with Redis (``[^a]`` is not negation there, ``\\`` is not an escape, ``[]`` differs).
The parser below follows Redis's ``stringmatchlen`` step by step and compiles to a byte regex.
Redis compares bytes, so keys are matched as UTF-8: ``?`` is one byte, not one character.
"""

from __future__ import annotations

import functools
import re

MAX_PATTERN_LENGTH = 256

_STAR, _QUESTION, _OPEN, _CLOSE, _CARET, _DASH, _BACKSLASH = b"*?[]^-\\"


def validate_pattern(pattern: str) -> None:
    """Raise ValueError, with a message fit for a 400 response, unless ``pattern`` is usable."""
    compile_pattern(pattern)


@functools.lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> re.Pattern[bytes]:
    """A regex whose ``fullmatch`` on a key's UTF-8 bytes agrees with Redis's glob match."""
    if not pattern:
        raise ValueError("pattern must not be empty")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ValueError(f"pattern must be at most {MAX_PATTERN_LENGTH} characters")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in pattern):
        raise ValueError("pattern must not contain control characters")
    data = pattern.encode()
    parts: list[bytes] = []
    i = 0
    while i < len(data):
        byte = data[i]
        if byte == _STAR:
            if not parts or parts[-1] != b".*":  # runs of * would only slow the regex down
                parts.append(b".*")
            i += 1
        elif byte == _QUESTION:
            parts.append(b".")
            i += 1
        elif byte == _OPEN:
            part, i = _char_class(data, i + 1)
            parts.append(part)
        elif byte == _BACKSLASH:
            # Redis would read a trailing backslash as a literal; almost surely a typo here.
            if i + 1 == len(data):
                raise ValueError("pattern must not end with a backslash (escape it as \\\\)")
            parts.append(_byte(data[i + 1]))
            i += 2
        else:
            parts.append(_byte(byte))
            i += 1
    return re.compile(b"".join(parts), re.DOTALL)


def _char_class(data: bytes, i: int) -> tuple[bytes, int]:
    """Parse a ``[...]`` body starting at ``data[i]``; return its regex and the index after it."""
    negate = i < len(data) and data[i] == _CARET
    if negate:
        i += 1
    members: list[bytes] = []
    while True:
        if i >= len(data):
            raise ValueError("pattern has an unclosed '['")
        byte = data[i]
        # The order of these tests is Redis's: escape, then ']', then a range, then a literal.
        # So ']' first in the class closes it (Redis has no POSIX "[]a]"), and "[a-]" is a range
        # from 'a' to ']' that leaves the class unclosed.
        if byte == _BACKSLASH and i + 1 < len(data):
            members.append(_byte(data[i + 1]))
            i += 2
        elif byte == _CLOSE:
            i += 1
            break
        elif i + 2 < len(data) and data[i + 1] == _DASH:
            low, high = sorted((byte, data[i + 2]))  # Redis swaps reversed ranges
            if high > 0x7F:
                # Redis compares range ends as C chars, signed on some platforms: not portable.
                raise ValueError("ranges in '[...]' must use ASCII characters")
            members.append(_byte(low) + b"-" + _byte(high))
            i += 3
        else:
            members.append(_byte(byte))
            i += 1
    if not members:
        return (b"." if negate else b"(?!)"), i  # "[^]" matches any byte, "[]" none
    return b"[" + (b"^" if negate else b"") + b"".join(members) + b"]", i


def _byte(value: int) -> bytes:
    return b"\\x%02x" % value
