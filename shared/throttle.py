"""Limits on password guessing and recovery mail, per account and per client address.

Password checks (sign-in, password change, linking an identity): each account and each client
address may fail a few times freely (``LOGIN_THROTTLE_ACCOUNT_FAILURES``, ``..._ADDRESS_...``);
past that, the next attempt must wait a delay that doubles with every further failure (1 s,
2 s, 4 s, ... up to ``LOGIN_THROTTLE_MAX_DELAY_SECONDS``), answered 429 with ``Retry-After``
and without spending a password hash. An attempt is counted when it starts, so concurrent
guesses cannot slip past the limit together, and given back when the password was right (the
account's failures are forgotten; the address's count drops by one, so the users of a shared
office address do not throttle each other by signing in) or when it could not run. Unknown
accounts are counted like known ones: the answers never tell them apart. Another account is
never affected: its counter is its own.

Recovery mail: at most ``PASSWORD_RECOVERY_PER_ADDRESS`` per address and
``PASSWORD_RECOVERY_PER_CLIENT`` per client address in an hour; past that the route answers as
always and sends nothing.

Counters live in Redis beside the cache namespace (a cache clear does not reset them), keyed by a
digest of the account (its id, or the address for one that does not exist), never the address
itself, and read and written by one Lua script per step, atomically, on Redis's clock. Without
Redis (not configured, or down) they live in this process, bounded (existing accounts' counts
apart from the rest, which a flood can fill), so each instance throttles on its own meanwhile.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from cachetools import TTLCache

from shared.cache import get_cache
from shared.config import Settings
from shared.errors import HTTPError
from shared.security import HashingBusy, hash_slots

if TYPE_CHECKING:
    from redis import Redis

TOO_MANY_ATTEMPTS = "Too many failed attempts: try again later"
BASE_DELAY_MS = 1000
RECOVERY_WINDOW_MS = 3600 * 1000
MIN_MEMORY_MS = 3600 * 1000  # a streak of failures is forgotten after an hour without one
LOCAL_MAXSIZE = 10_000

_ATTEMPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local base, cap, memory = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local wait = 0
for i, key in ipairs(KEYS) do
    local free = tonumber(ARGV[3 + i])
    local state = redis.call('HMGET', key, 'n', 't')
    local n = tonumber(state[1]) or 0
    if n >= free then
        local left = tonumber(state[2]) + math.min(cap, base * 2 ^ (n - free)) - now
        if left > wait then wait = left end
    end
end
if wait > 0 then return math.ceil(wait) end
for _, key in ipairs(KEYS) do
    redis.call('HINCRBY', key, 'n', 1)
    redis.call('HSET', key, 't', now)
    redis.call('PEXPIRE', key, memory)
end
return 0
"""

# KEYS: account, client address; ARGV[1]: 1 to forget the account's failures, 0 to give one back.
_GIVE_BACK = """
if ARGV[1] == '1' then
    redis.call('DEL', KEYS[1])
elseif redis.call('HINCRBY', KEYS[1], 'n', -1) <= 0 then
    redis.call('DEL', KEYS[1])
end
if redis.call('HINCRBY', KEYS[2], 'n', -1) <= 0 then redis.call('DEL', KEYS[2]) end
return 0
"""

_COUNT_IN_WINDOW = """
local allowed = 1
for i, key in ipairs(KEYS) do
    local n = redis.call('INCR', key)
    if n == 1 then redis.call('PEXPIRE', key, ARGV[1]) end
    if n > tonumber(ARGV[1 + i]) then allowed = 0 end
end
return allowed
"""


class TooManyAttempts(HTTPError):
    def __init__(self, wait_ms: int) -> None:
        seconds = max(1, math.ceil(wait_ms / 1000))
        super().__init__(429, TOO_MANY_ATTEMPTS, {"Retry-After": str(seconds)})


class Subject(NamedTuple):
    """Whom a password check or a recovery mail counts against (``account()``)."""

    kind: str  # "account" (one that exists) or "address" (one that does not)
    value: str


def account(user_id: uuid.UUID | None, address: str) -> Subject:
    """The account the address found, so that every spelling the database matches to it (any
    case; an 'İ' that PostgreSQL lowers to 'i' where Python does not) shares one count; else
    the address itself."""
    if user_id is not None:
        return Subject("account", str(user_id))
    return Subject("address", address.lower())


def refuse_when_hashing_is_full() -> None:
    """HashingBusy (503) when every hashing slot and queue place is taken: checked before any
    other work (the account's look-up, the counting), so a refusal under a flood costs next to
    nothing."""
    if hash_slots().full:
        raise HashingBusy


def guarded_password_check[T](
    settings: Settings, account: Subject, client: str, check: Callable[[], T]
) -> T:
    """Run ``check`` (a password verification; truthy when right) under the limits;
    ``account`` comes from ``account()``."""
    refuse_when_hashing_is_full()
    keys = _key(account.kind, account.value), _key("client", client)
    frees = settings.login_throttle_account_failures, settings.login_throttle_address_failures
    wait = _counters.attempt(keys, frees, settings.login_throttle_max_delay_seconds * 1000)
    if wait:
        raise TooManyAttempts(wait)
    try:
        result = check()
    except HashingBusy:
        _counters.give_back(keys, forget=False)
        raise
    if result:
        _counters.give_back(keys, forget=True)
    return result


def recovery_mail_allowed(settings: Settings, account: Subject, client: str) -> bool:
    """Count one recovery request (``account`` from ``account()``); whether its mail may go."""
    keys = _key(f"recovery-{account.kind}", account.value), _key("recovery-client", client)
    limits = settings.password_recovery_per_address, settings.password_recovery_per_client
    return _counters.count_in_window(keys, limits, RECOVERY_WINDOW_MS)


_ACCOUNT_KEY = re.compile(r":(recovery-)?account:")


def release(account: Subject) -> bool:
    """Forget an account's failed password checks on every instance, ending its delay (an
    operator's answer to a targeted lockout); False when Redis is not configured or not
    reachable, since each instance then counts in its own process."""
    cache = get_cache()
    if not cache.reconnect():
        return False
    key = _key(account.kind, account.value)

    def remote(client: Redis) -> bool:
        client.delete(key)
        return True

    return bool(cache.run(remote, lambda: False))


def _key(kind: str, value: str) -> str:
    digest = hashlib.sha256(value.encode()).hexdigest()[:32]
    return get_cache().outside_namespace(f"throttle:{kind}:{digest}")


class _Store:
    """The counters kept in this process: the existing accounts' apart from the rest, so that a
    flood of made-up addresses or client addresses, each a new entry, cannot push a real
    account's count out of the bounded store (and with it, its delay)."""

    def __init__(self, maxsize: int) -> None:
        ttl = MIN_MEMORY_MS / 1000
        self._accounts: TTLCache[str, list[int]] = TTLCache(maxsize, ttl=ttl)
        self._others: TTLCache[str, list[int]] = TTLCache(maxsize, ttl=ttl)

    def _of(self, key: str) -> TTLCache[str, list[int]]:
        return self._accounts if _ACCOUNT_KEY.search(key) else self._others

    def get(self, key: str, default: tuple[int, int]) -> Sequence[int]:
        return self._of(key).get(key, default)

    def __setitem__(self, key: str, value: list[int]) -> None:
        self._of(key)[key] = value

    def pop(self, key: str) -> None:
        self._of(key).pop(key, None)


class _Counters:
    """The scripts above, run in Redis through ``run`` (the cache's breaker), or here."""

    def __init__(self, run: Callable[..., Any] | None = None, maxsize: int = LOCAL_MAXSIZE) -> None:
        self._run = run or (lambda remote, local: get_cache().run(remote, local))
        self._lock = threading.Lock()
        self._local = _Store(maxsize)

    def attempt(self, keys: tuple[str, ...], frees: tuple[int, ...], cap_ms: int) -> int:
        memory = max(MIN_MEMORY_MS, 2 * cap_ms)

        def remote(client: Redis) -> int:
            script = client.register_script(_ATTEMPT)
            return int(script(keys=keys, args=[BASE_DELAY_MS, cap_ms, memory, *frees]))

        def local() -> int:
            now = _now_ms()
            with self._lock:
                wait = 0.0
                for key, free in zip(keys, frees, strict=True):
                    n, last = self._local.get(key, (0, 0))
                    if n >= free:
                        delay = min(cap_ms, BASE_DELAY_MS * 2.0 ** min(n - free, 64))
                        wait = max(wait, last + delay - now)
                if wait > 0:
                    return math.ceil(wait)
                for key in keys:
                    n, _ = self._local.get(key, (0, 0))
                    self._local[key] = [n + 1, now]
                return 0

        return int(self._run(remote, local))

    def give_back(self, keys: tuple[str, ...], *, forget: bool) -> None:
        def remote(client: Redis) -> None:
            client.register_script(_GIVE_BACK)(keys=keys, args=[1 if forget else 0])

        def local() -> None:
            with self._lock:
                for index, key in enumerate(keys):
                    n, last = self._local.get(key, (0, 0))
                    if (index == 0 and forget) or n <= 1:
                        self._local.pop(key)
                    else:
                        self._local[key] = [n - 1, last]

        self._run(remote, local)

    def count_in_window(self, keys: tuple[str, ...], limits: tuple[int, ...], window: int) -> bool:
        def remote(client: Redis) -> bool:
            script = client.register_script(_COUNT_IN_WINDOW)
            return bool(script(keys=keys, args=[window, *limits]))

        def local() -> bool:
            now = _now_ms()
            allowed = True
            with self._lock:
                for key, limit in zip(keys, limits, strict=True):
                    n, start = self._local.get(key, (0, now))
                    if now - start >= window:
                        n, start = 0, now
                    self._local[key] = [n + 1, start]
                    allowed = allowed and n + 1 <= limit
            return allowed

        return bool(self._run(remote, local))


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


_counters = _Counters()
