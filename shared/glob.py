"""Redis glob patterns, matched in-process exactly as Redis's ``SCAN MATCH`` matches them.

The in-memory fallback must invalidate the same keys Redis would, and Python's ``fnmatch``
disagrees with Redis (``[^a]`` is not negation there, ``\\`` is not an escape, ``[]`` differs).
The parser below follows Redis's ``stringmatchlen`` step by step. Redis compares bytes, so keys
are matched as UTF-8: ``?`` is one byte, not one character.

Matching takes linear time per segment, never backtracking: every atom but ``*`` is one byte
wide, so the pattern is a run of fixed-width segments separated by stars, and placing each
segment at its leftmost possible position is the whole search (a later star absorbs whatever a
later placement would have skipped). A compiled regex with ``.*`` per star would backtrack
exponentially on ``*a*a*a...b`` (CVE-2022-36021 was the same flaw in Redis itself).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

MAX_PATTERN_LENGTH = 256
MAX_STARS = 16
MAX_WILDCARDS = 64

_STAR, _QUESTION, _OPEN, _CLOSE, _CARET, _DASH, _BACKSLASH = b"*?[]^-\\"


@dataclass(frozen=True)
class _Segment:
    regex: re.Pattern[bytes]
    width: int


@dataclass(frozen=True)
class Matcher:
    """A parsed pattern: ``head`` (no star before it), stars between ``middle`` segments, and
    ``tail`` after the last star; ``stars`` is False for a pattern without any star."""

    head: _Segment
    middle: tuple[_Segment, ...]
    tail: _Segment
    stars: bool

    def matches(self, key: bytes) -> bool:
        head, tail = self.head, self.tail
        if not self.stars:
            return len(key) == head.width and head.regex.fullmatch(key) is not None
        end = len(key) - tail.width
        if end < head.width or head.regex.match(key) is None:
            return False
        if tail.regex.fullmatch(key, end) is None:
            return False
        position = head.width
        for segment in self.middle:
            found = segment.regex.search(key, position, end)
            if found is None:
                return False
            position = found.end()
        return True


def validate_pattern(pattern: str) -> None:
    """Raise ValueError, with a message fit for a 400 response, unless ``pattern`` is usable."""
    compile_pattern(pattern)


@functools.lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> Matcher:
    """A matcher that agrees with Redis's glob match on a key's UTF-8 bytes."""
    if not pattern:
        raise ValueError("pattern must not be empty")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ValueError(f"pattern must be at most {MAX_PATTERN_LENGTH} characters")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in pattern):
        raise ValueError("pattern must not contain control characters")
    data = pattern.encode()
    segments: list[list[bytes]] = [[]]  # one-byte-wide atoms, split at each star
    stars = wildcards = 0
    i = 0
    while i < len(data):
        byte = data[i]
        if byte == _STAR:
            stars += 1
            wildcards += 1
            if segments[-1] or len(segments) == 1:  # a run of stars is one star
                segments.append([])
            i += 1
            continue
        if byte == _QUESTION:
            wildcards += 1
            atom = b"."
            i += 1
        elif byte == _OPEN:
            wildcards += 1
            atom, i = _char_class(data, i + 1)
        elif byte == _BACKSLASH:
            # Redis would read a trailing backslash as a literal; almost surely a typo here.
            if i + 1 == len(data):
                raise ValueError("pattern must not end with a backslash (escape it as \\\\)")
            atom = _byte(data[i + 1])
            i += 2
        else:
            atom = _byte(byte)
            i += 1
        segments[-1].append(atom)
    if stars > MAX_STARS:
        raise ValueError(f"pattern must have at most {MAX_STARS} '*' wildcards")
    if wildcards > MAX_WILDCARDS:
        raise ValueError(f"pattern must have at most {MAX_WILDCARDS} wildcards (*, ?, [...])")
    compiled = [_Segment(re.compile(b"".join(atoms), re.DOTALL), len(atoms)) for atoms in segments]
    if len(compiled) == 1:
        return Matcher(compiled[0], (), compiled[0], stars=False)
    middle = tuple(segment for segment in compiled[1:-1] if segment.width)
    return Matcher(compiled[0], middle, compiled[-1], stars=True)


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
        return (b"." if negate else b"[^\\x00-\\xff]"), i  # "[^]" matches any byte, "[]" none
    return b"[" + (b"^" if negate else b"") + b"".join(members) + b"]", i


def _byte(value: int) -> bytes:
    return b"\\x%02x" % value
