"""Tokens this process has already verified in full, remembered until they expire.

A signature check and a claims decode cost more than the rest of a cached read; a client sends
the same token on every request until it expires. So a token verified once is kept here (a
small LRU per process, keyed by the whole token string, so a token that differs in any byte is
never a hit) with what its claims said and when it expires; every hit checks the expiry again.
Revocation is not decided here: the caller compares the claims with the user's record on every
request, as it does after a full check.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable


class VerifiedTokens[T]:
    """At most ``maxsize`` entries, least recently used dropped first; thread-safe."""

    def __init__(self, maxsize: int) -> None:
        self._maxsize = maxsize
        self._entries: OrderedDict[Hashable, tuple[T, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, now: float) -> T | None:
        """What was verified under ``key``, unless it has expired by ``now`` (then dropped)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            value, expires_at = entry
            if now >= expires_at:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return value

    def put(self, key: Hashable, value: T, expires_at: float) -> None:
        with self._lock:
            self._entries[key] = (value, expires_at)
            self._entries.move_to_end(key)
            while len(self._entries) > self._maxsize:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries
