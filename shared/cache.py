"""The cache: Redis while it answers, an in-process LRU/TTL store while it does not.

A cache call never raises because of Redis and never waits on a dead one. The first Redis error
opens a circuit breaker: from then on every call uses the local store without touching the
network, while a background probe (and ``reconnect()``) waits for ``PING`` to answer. Before the
breaker closes, every key written or deleted during the outage, and every pattern invalidated, is
deleted from Redis, and the local store is emptied: an outage never brings back a value that was
deleted or replaced. In ``redis`` mode nothing is cached in-process, so an invalidation made by
any process is seen by every other process's next read.

Other instances may change what this one would keep in-process, so a caller says how stale a
value may be there: ``local_ttl`` (the auth record's ``CACHE_AUTH_LOCAL_SECONDS``; 0 for data
that must never be served stale, which is then read from its source while Redis is away). For
the same reason ``evict`` (a write's invalidation) still tries Redis once, failing fast, while
the breaker is open: another instance may already be back on Redis, serving the value the write
replaced (both found by the scale-out drill, drills/scale_drill.py).

Code on the worker's event loop reads through ``*_async`` methods (``redis.asyncio``, one client
per loop: shared.loop_redis), Redis only and hits only: the same breaker decides, and an error
there opens it too.

Values are JSON (plus datetime, date and UUID), never pickle: whoever can write to Redis must not
be able to run code here, and anything that does not decode is a miss.
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

from shared.config import CACHE_TIERS, Settings, get_settings
from shared.delayed_deletes import DelayedDeletes
from shared.glob import compile_pattern, validate_pattern
from shared.loop_redis import LoopRedis

if TYPE_CHECKING:
    from cachetools import TLRUCache
    from redis import Redis
    from redis.asyncio import Redis as AsyncRedis

__all__ = [
    "Cache",
    "Lookups",
    "get_cache",
    "redis_options",
    "reset_cache",
    "tentative_lookups",
    "validate_pattern",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

_MISSING: Final = object()
_COUNTERS = ("hits", "misses", "errors", "invalid", "fallback_activations", "reconnects")
_MAX_PENDING_PATTERNS = 64
_SCAN_COUNT = 1000
_UNLINK_BATCH = 500


def redis_options(settings: Settings, *, asyncio: bool = False) -> dict[str, Any]:
    """Client options for ``Redis(...)`` and ``Redis.from_url(...)`` alike (``asyncio``: for
    ``redis.asyncio``'s).

    redis-py 8.1's defaults differ by path: ``Redis(...)`` retries 10 times with backoff (seconds
    per call against a refused port), ``from_url`` builds a pool whose connections do not retry,
    and both wait 5 s on a socket. A cache must fail fast instead, so everything is explicit.

    The asyncio client retries a connection error once, at once, never a timeout: its pool does
    not notice that the server closed a pooled connection (a Redis restart or failover) until a
    command fails on it, where the sync pool reconnects when it hands the connection out; without
    the retry, the first read on the loop after every restart would open the breaker.
    """
    from redis.backoff import NoBackoff

    retry: object
    if asyncio:
        from redis.asyncio.retry import Retry
        from redis.exceptions import ConnectionError

        retry = Retry(NoBackoff(), 1, supported_errors=(ConnectionError,))
    else:
        from redis.retry import Retry as SyncRetry

        retry = SyncRetry(NoBackoff(), 0)
    return {
        "socket_timeout": settings.cache_socket_timeout_ms / 1000,
        "socket_connect_timeout": settings.cache_connect_timeout_ms / 1000,
        "retry": retry,
        "retry_on_error": [],
        "health_check_interval": 0,
        "decode_responses": False,
    }


class Cache:
    """One per process (see ``get_cache``); thread-safe; no network I/O until the first call."""

    def __init__(self, settings: Settings, client: Redis | None = None) -> None:
        """Use ``client`` (built with ``redis_options``) if given, else ``settings.redis_url``."""
        from cachetools import TLRUCache

        self._settings = settings
        self._prefix = settings.cache_prefix + ":"
        # Outside the namespace ('|' cannot appear in a prefix), so clear() leaves it alone.
        self._stats_key = self.outside_namespace("stats")
        # Guards the breaker state, the local store and the deletions owed to Redis together,
        # so that a change recorded for replay cannot slip in after recovery took the list.
        self._lock = threading.Lock()
        self._local: TLRUCache[str, tuple[bytes, float]] = TLRUCache(
            settings.cache_local_maxsize, ttu=_expiry
        )
        self._pending = _Pending()
        self._open = False
        # Bumped on every recovery, so an error from a call that started before it cannot
        # reopen the breaker.
        self._generation = 0
        self._recovery_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._flush_lock = threading.Lock()  # the prober and stats() must not send one delta twice
        self._counts = dict.fromkeys(_COUNTERS, 0)
        self._flushed = dict.fromkeys(_COUNTERS, 0)
        self._last_fallback: datetime | None = None
        self._last_reconnect: datetime | None = None
        self._flights: dict[str, _Flight] = {}
        self._flights_lock = threading.Lock()
        self._stop = threading.Event()
        self._later: DelayedDeletes | None = None
        if settings.cache_second_eviction_ms:
            self._later = DelayedDeletes(self.delete, settings.cache_second_eviction_ms / 1000)
        self._redis = client if client is not None else _connect(settings)
        # Reads on the event loop (``*_async``) go to settings.redis_url; with a client given
        # (tests) there is none, and those reads report Redis unavailable.
        self._loop_redis: LoopRedis | None = None
        if client is None and self._redis is not None:
            self._loop_redis = LoopRedis(lambda: _connect_async(settings), _LOOP_CONNECTIONS)
        self._errors: tuple[type[Exception], ...] = ()
        self._prober: threading.Thread | None = None
        if self._redis is not None:
            from redis.auth.err import InvalidTokenSchemaErr, RequestTokenErr, TokenRenewalErr
            from redis.exceptions import RedisError

            # The token errors come from Entra ID authentication (REDIS_ENTRA_AUTH).
            self._errors = (
                RedisError,
                OSError,
                RequestTokenErr,
                TokenRenewalErr,
                InvalidTokenSchemaErr,
            )
            self._prober = threading.Thread(
                target=self._watch, name="stratus-cache-probe", daemon=True
            )
            self._prober.start()

    @property
    def redis_configured(self) -> bool:
        return self._redis is not None

    @property
    def mode(self) -> str:
        """``redis``, or ``memory`` when no Redis is configured or the breaker is open."""
        return "memory" if self._redis is None or self._open else "redis"

    def get(self, key: str, default: Any = None) -> Any:
        value = self._lookup(key)
        if value is _MISSING:
            return default
        return value

    def set(
        self, key: str, value: Any, tier: str = "default", local_ttl: float | None = None
    ) -> None:
        """Store ``value`` for ``tier``'s TTL; in-process (memory mode) for at most
        ``local_ttl`` seconds (0: not at all), for what another instance may change without
        reaching Redis."""
        self._store(key, _encode(value), tier, local_ttl)

    def get_versioned(self, version_key: str, key: str) -> tuple[str | None, bytes | None]:
        """The version stored at ``version_key`` and, if ``key`` was stored for that very
        version (``set_versioned``), its payload as stored: both in one round trip (MGET; under
        Redis Cluster both keys must share a hash tag, ``{...}``, to share a slot).

        The payload is never decoded: it is returned as the bytes it was stored as. A payload
        stored for another version is a miss; so is a value that is not what these methods
        write (counted as invalid too).
        """
        names = [self._prefix + version_key, self._prefix + key]
        raws: list[bytes | None] = self._call(
            lambda client: cast(list[bytes | None], client.mget(names)),
            lambda: [self._local_get(version_key), self._local_get(key)],
        )
        return self._versioned(*raws, loop=False)

    async def get_versioned_async(
        self, version_key: str, key: str
    ) -> tuple[str | None, bytes | None]:
        """``get_versioned`` for code on the event loop, from Redis only: ``(None, None)``
        while Redis is not in use (none configured, the breaker open, this call failing)."""
        names = [self._prefix + version_key, self._prefix + key]
        raws = await self._loop_call(lambda client: client.mget(names))
        if raws is _MISSING:
            return None, None
        return self._versioned(*cast(list[bytes | None], raws), loop=True)

    def _versioned(
        self, raw_version: bytes | None, raw_payload: bytes | None, *, loop: bool
    ) -> tuple[str | None, bytes | None]:
        version: str | None = None
        invalid = 0
        if raw_version is not None:
            try:
                decoded = _decode(raw_version)
            except (ValueError, TypeError, RecursionError):
                decoded = None
            if isinstance(decoded, str):
                version = decoded
            else:
                invalid += 1
        payload = None
        if raw_payload is not None:
            stored = _unwrap(raw_payload)
            if stored is None:
                invalid += 1
            elif version is not None and stored[0] == version.encode():
                payload = stored[1]
        hits = (version is not None) + (payload is not None)
        self._tally(hits, 2 - hits, invalid, loop=loop)
        return version, payload

    def slot_of(self, key: str) -> str:
        """A hash tag (``{...}``) that puts a key whose name contains it in ``key``'s Redis
        Cluster slot, for ``get_versioned``: a key without braces is hashed by its whole
        namespaced name, so the tag is that name."""
        return "{" + self._prefix + key + "}"

    def set_versioned(
        self,
        key: str,
        version: str,
        payload: bytes,
        tier: str = "default",
        local_ttl: float | None = None,
    ) -> None:
        """Store ``payload`` (JSON, as encoded by the caller) for ``version``: what
        ``get_versioned`` returns while ``version`` is the current one."""
        if not _VERSION.fullmatch(version):
            raise ValueError("a version is letters, digits, '-' and '_' only")
        self._store(key, _envelope(version, payload), tier, local_ttl)

    def _store(self, key: str, payload: bytes, tier: str, local_ttl: float | None) -> None:
        ttl = self._ttl(tier)
        name = self._prefix + key
        kept = ttl if local_ttl is None else min(ttl, local_ttl)
        self._call(
            lambda client: client.set(name, payload, px=max(1, round(ttl * 1000))),
            lambda: self._local_set(key, payload, kept),
        )

    def delete(self, *keys: str) -> int:
        """Delete ``keys``; return how many existed."""
        if not keys:
            return 0
        names = [self._prefix + key for key in keys]
        return self._call(lambda client: client.unlink(*names), lambda: self._local_delete(keys))

    def evict(self, *keys: str) -> int:
        """``delete`` for a write's invalidation: in memory mode, one attempt on Redis as well,
        failing fast (within ``CACHE_CONNECT_TIMEOUT_MS``), for the instances already back on
        it; the keys stay owed to the replay, which costs nothing once they are gone."""
        deleted = self.delete(*keys)
        client = self._redis
        if keys and client is not None and self._open:
            try:
                client.unlink(*(self._prefix + key for key in keys))
            except self._errors as exc:
                logger.debug("Redis still away for an eviction (%s)", type(exc).__name__)
        return deleted

    def delete_later(self, *keys: str) -> None:
        """Delete ``keys`` once more after ``CACHE_SECOND_EVICTION_MS`` (not at all when 0):
        what a reader that raced a write stored after its eviction goes too."""
        if self._later is not None:
            self._later.schedule(keys)

    def get_decoded(self, key: str, decode: Callable[[bytes], T], default: Any = None) -> Any:
        """The value at ``key`` as ``decode`` reads its stored bytes, else ``default``.

        ``decode`` gets the bytes exactly as ``set`` stored them, so a caller may remember
        what it made of them (an immutable record, say) and skip decoding the same bytes again;
        a ValueError or TypeError from it makes the value a miss (counted as invalid).
        """
        value = self._lookup(key, decode=decode)
        return default if value is _MISSING else value

    async def get_decoded_async(
        self, key: str, decode: Callable[[bytes], T], default: Any = None
    ) -> Any:
        """``get_decoded`` for code on the event loop, from Redis only: ``default`` while Redis
        is not in use (none configured, the breaker open, this call failing), as for a miss.

        Only hits are answered on the loop: a caller that gets ``default`` reads again through
        ``get_decoded`` on a thread, which has the local store, the recovery and the database.
        """
        raw = await self._loop_call(lambda client: client.get(self._prefix + key))
        if raw is _MISSING:
            return default
        value = self._decoded(cast(bytes | None, raw), decode, count=True, loop=True)
        return default if value is _MISSING else value

    def get_or_set(
        self,
        key: str,
        loader: Callable[[], T],
        tier: str = "default",
        local_ttl: float | None = None,
    ) -> T:
        """The cached value, or ``loader()`` stored under ``tier`` (see ``set``): one loader
        call at a time per key in this process; concurrent callers wait for it and share its
        result or error.
        """
        value = self._lookup(key)
        if value is not _MISSING:
            return cast(T, value)

        def load_and_store() -> T:
            # A flight that landed between our miss and our takeoff has stored the value already.
            found = self._lookup(key, count=False)
            if found is not _MISSING:
                return cast(T, found)
            loaded = loader()
            self.set(key, loaded, tier, local_ttl)
            return loaded

        return self.load_once(key, load_and_store)

    def load_once(self, key: str, loader: Callable[[], T]) -> T:
        """``loader()``, called by one caller at a time per ``key`` in this process: concurrent
        callers wait for it and share its result or error (a miss loads once, not once per
        request waiting on it)."""
        with self._flights_lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return cast(T, flight.value)
        try:
            value = loader()
            flight.value = value
            return value
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._flights_lock:
                del self._flights[key]
            flight.done.set()

    def clear(self) -> int:
        """Delete every key in this cache's namespace (nothing else); return how many."""
        return self._call(lambda client: self._unlink_matching(client, "*"), self._local_clear)

    def invalidate(self, pattern: str) -> int:
        """Delete the keys matching a Redis glob ``pattern``; return how many.

        Raises ValueError for a pattern ``validate_pattern`` rejects. In memory mode the keys
        are matched on a snapshot, outside the lock, so matching never holds up other calls.
        """
        matcher = compile_pattern(pattern)
        while True:
            client, generation = self._redis, self._generation
            if client is not None and not self._open:
                try:
                    return self._unlink_matching(client, pattern)
                except self._errors as exc:
                    self._count("errors")
                    self._trip(generation, exc)
            with self._lock:
                keys = list(self._local.keys())
            matched = [key for key in keys if matcher.matches(key.encode())]
            with self._lock:
                if client is None or self._open:
                    deleted = sum(self._local_discard(key) for key in matched)
                    if client is not None:
                        self._pending.add_pattern(pattern)
                    return deleted
            # Recovered while matching: the pattern must reach Redis, or it is never replayed.

    def run(self, remote: Callable[[Redis], T], local: Callable[[], T]) -> T:
        """``remote(client)`` while Redis answers, else ``local()``: for state kept beside the
        cache (sign-in counters) that is shared through Redis when it can be."""
        return self._call(remote, local)

    def outside_namespace(self, name: str) -> str:
        """A Redis key beside the namespace, which ``clear`` and patterns never reach."""
        return f"{self._settings.cache_prefix}|{name}"

    def reconnect(self) -> bool:
        """Check Redis now: close the breaker if it answers, open it if not.

        Returns whether the cache is in ``redis`` mode afterwards (False without Redis).
        """
        client = self._redis
        if client is None:
            return False
        if self._open:
            return self._recover()
        generation = self._generation
        try:
            client.ping()
        except self._errors as exc:
            self._count("errors")
            self._trip(generation, exc)
            return False
        return True

    def ping(self) -> bool:
        """For readiness: False only while a configured Redis is unreachable (a ``warn``).

        A failed ping is also a recovery attempt, so a readiness probe doubles as a prober.
        """
        return self._redis is None or self.reconnect()

    def process_counts(self) -> dict[str, int]:
        """This process's counters since start (no network I/O): what telemetry exports."""
        with self._stats_lock:
            return dict(self._counts)

    def stats(self) -> dict[str, Any]:
        """JSON-ready figures, each a ``{"process": ..., "cluster": ...}`` map of its scopes.

        ``process`` is this process since start; ``cluster`` is every process sharing this Redis
        namespace (null while this process cannot reach Redis). Only numbers and states: no key,
        value, URL or error text.
        """
        client = self._redis
        cluster: dict[str, int] | None = None
        keys: int | None = None
        if client is not None and not self._open:
            self._flush_counts()
            generation = self._generation
            try:
                stored = client.hgetall(self._stats_key)
                keys = sum(1 for _ in client.scan_iter(match=self._prefix + "*", count=_SCAN_COUNT))
            except self._errors as exc:
                self._count("errors")
                self._trip(generation, exc)
            else:
                values = {_text(name): int(count) for name, count in stored.items()}
                cluster = {name: values.get(name, 0) for name in _COUNTERS}
        process = self.process_counts()
        with self._lock:
            self._local.expire()
            local_size = len(self._local)
            last_fallback, last_reconnect = self._last_fallback, self._last_reconnect
        figures: dict[str, Any] = {
            name: {"process": process[name], "cluster": None if cluster is None else cluster[name]}
            for name in _COUNTERS
        }
        return {
            "mode": self.mode,
            "redis_configured": client is not None,
            **figures,
            "hit_rate": {
                "process": _hit_rate(process),
                "cluster": None if cluster is None else _hit_rate(cluster),
            },
            "keys": {"cluster": keys},
            "local_size": {"process": local_size},
            "last_fallback_at": {"process": _iso(last_fallback)},
            "last_reconnect_at": {"process": _iso(last_reconnect)},
        }

    def close(self) -> None:
        """Send the delayed deletes, stop the prober and drop the connections."""
        if self._later is not None:
            self._later.close()
        self._stop.set()
        if self._prober is not None:
            self._prober.join()
        if self._redis is not None:
            self._redis.close()

    # The breaker

    def _call(self, remote: Callable[[Redis], T], local: Callable[[], T]) -> T:
        """``remote(client)`` while the breaker is closed, else ``local()`` under the lock."""
        while True:
            client, generation = self._redis, self._generation
            if client is not None and not self._open:
                try:
                    return remote(client)
                except self._errors as exc:
                    self._count("errors")
                    self._trip(generation, exc)
            with self._lock:
                if client is None or self._open:
                    return local()
            # Recovered since this call failed: go to Redis again, or a delete recorded now
            # would never be replayed.

    async def _loop_call(self, remote: Callable[[AsyncRedis], Awaitable[Any]]) -> Any:
        """``await remote(client)`` on this loop's client while the breaker is closed and one
        of its connections is free, else ``_MISSING``; a failure opens the breaker, as on a
        thread."""
        generation = self._generation
        if self._loop_redis is None or self._open:
            return _MISSING
        client, free = self._loop_redis.client()
        if free.locked():  # every connection awaits Redis already: a thread reads instead
            return _MISSING
        async with free:
            try:
                return await remote(client)
            except self._errors as exc:
                self._count("errors")
                self._trip(generation, exc)
                return _MISSING

    def _trip(self, generation: int, exc: Exception) -> None:
        # Every Redis error opens the breaker, not just connection errors and timeouts: a Redis
        # that answers OOM, READONLY or NOAUTH is as unusable, and in memory mode a failed
        # delete is at least recorded for replay instead of lost.
        with self._lock:
            if self._open or generation != self._generation:
                return
            self._open = True
            self._last_fallback = datetime.now(UTC)
        self._count("fallback_activations")
        logger.warning(
            "Redis failed (%s): cache in memory mode until it answers", type(exc).__name__
        )

    def _watch(self) -> None:
        interval = self._settings.cache_probe_interval_seconds
        while not self._stop.wait(interval):
            try:
                if self._open:
                    self._recover()
                else:
                    self._flush_counts()
            except Exception:  # the prober must outlive any surprise, or recovery stops
                logger.exception("Cache prober failed")

    def _recover(self) -> bool:
        """Half-open: if Redis answers, replay the outage's deletions, then close the breaker."""
        client = self._redis
        assert client is not None
        with self._recovery_lock:
            if not self._open:
                return True
            try:
                client.ping()
                replayed = 0
                while True:
                    with self._lock:
                        owed, self._pending = self._pending, _Pending()
                        if not owed:
                            self._open = False
                            self._generation += 1
                            self._local.clear()
                            self._last_reconnect = datetime.now(UTC)
                            break
                    try:
                        replayed += self._replay(client, owed)
                    except BaseException:
                        with self._lock:
                            self._pending.merge(owed)
                        raise
            except self._errors as exc:
                logger.debug("Redis still unavailable (%s)", type(exc).__name__)
                return False
        self._count("reconnects")
        logger.info("Redis answers again: cache in redis mode (%d outage deletions)", replayed)
        return True

    def _replay(self, client: Redis, owed: _Pending) -> int:
        if owed.everything:
            return self._unlink_matching(client, "*")
        deleted = 0
        keys = [self._prefix + key for key in owed.keys]
        for start in range(0, len(keys), _UNLINK_BATCH):
            deleted += client.unlink(*keys[start : start + _UNLINK_BATCH])
        for pattern in owed.patterns:
            deleted += self._unlink_matching(client, pattern)
        return deleted

    # Redis and the local store

    def _lookup(
        self, key: str, *, count: bool = True, decode: Callable[[bytes], Any] | None = None
    ) -> Any:
        raw = self._call(
            lambda client: client.get(self._prefix + key), lambda: self._local_get(key)
        )
        return self._decoded(raw, decode, count=count, loop=False)

    def _decoded(
        self,
        raw: bytes | str | None,
        decode: Callable[[bytes], Any] | None,
        *,
        count: bool,
        loop: bool,
    ) -> Any:
        if raw is None:
            if count:
                self._tally(0, 1, 0, loop=loop)
            return _MISSING
        try:
            value = _decode(raw) if decode is None else decode(_bytes(raw))
        except (ValueError, TypeError, RecursionError):
            if count:
                self._tally(0, 1, 1, loop=loop)
            return _MISSING
        if count:
            self._tally(1, 0, 0, loop=loop)
        return value

    def _unlink_matching(self, client: Redis, pattern: str) -> int:
        # SCAN + UNLINK: KEYS and FLUSHDB block the server and may be renamed away; the literal
        # prefix (no glob characters, by config) keeps the match inside the namespace.
        deleted = 0
        batch: list[bytes] = []
        for name in client.scan_iter(match=self._prefix + pattern, count=_SCAN_COUNT):
            batch.append(name)
            if len(batch) == _UNLINK_BATCH:
                deleted += client.unlink(*batch)
                batch = []
        if batch:
            deleted += client.unlink(*batch)
        return deleted

    def _local_get(self, key: str) -> bytes | None:
        try:
            return self._local[key][0]  # one lookup, so an entry cannot expire half-way
        except KeyError:
            return None

    def _local_set(self, key: str, payload: bytes, ttl: float) -> None:
        if ttl <= 0:
            self._local_discard(key)
            return
        self._local[key] = (payload, ttl)
        if self._redis is not None:
            # Redis still holds the old value: it must go when Redis returns.
            self._pending.add_keys((key,), self._settings.cache_local_maxsize)

    def _local_delete(self, keys: tuple[str, ...]) -> int:
        deleted = sum(self._local_discard(key) for key in keys)
        if self._redis is not None:
            self._pending.add_keys(keys, self._settings.cache_local_maxsize)
        return deleted

    def _local_clear(self) -> int:
        self._local.expire()
        deleted = len(self._local)
        self._local.clear()
        if self._redis is not None:
            self._pending.add_everything()
        return deleted

    def _local_discard(self, key: str) -> bool:
        try:
            del self._local[key]  # raises KeyError for an expired entry, after removing it
        except KeyError:
            return False
        return True

    def _ttl(self, tier: str) -> float:
        if tier not in CACHE_TIERS:
            raise ValueError(
                f"unknown cache tier {tier!r}; expected one of {', '.join(CACHE_TIERS)}"
            )
        # Shave off up to `jitter` so entries written together do not expire together; never add,
        # so an entry never outlives the TTL the operator configured.
        jitter = random.uniform(0, self._settings.cache_ttl_jitter)
        return self._settings.cache_ttl.for_tier(tier) * (1 - jitter)

    # Statistics

    def _tally(self, hits: int, misses: int, invalid: int, *, loop: bool) -> None:
        """Count lookups; the event loop's inside ``tentative_lookups`` are only noted there."""
        noted = _tentative.get() if loop else None
        if noted is None:
            self._count_lookups(hits, misses, invalid)
        else:
            noted.hits, noted.misses = noted.hits + hits, noted.misses + misses
            noted.invalid += invalid

    def count_lookups(self, lookups: Lookups) -> None:
        """Count what ``tentative_lookups`` noted: the reads that answered their request."""
        self._count_lookups(lookups.hits, lookups.misses, lookups.invalid)

    def _count_lookups(self, hits: int, misses: int, invalid: int) -> None:
        with self._stats_lock:
            first_invalid = invalid and not self._counts["invalid"]
            self._counts["hits"] += hits
            self._counts["misses"] += misses
            self._counts["invalid"] += invalid
        if first_invalid:
            logger.warning("A cached value is not valid JSON; such values are misses")

    def _count(self, *names: str) -> int:
        """Add one to each counter; return the first one's new value."""
        with self._stats_lock:
            for name in names:
                self._counts[name] += 1
            return self._counts[names[0]]

    def _flush_counts(self) -> None:
        """Add this process's new counts to the cluster's, in Redis."""
        client = self._redis
        with self._flush_lock:
            with self._stats_lock:
                delta = {n: self._counts[n] - self._flushed[n] for n in _COUNTERS}
            delta = {name: n for name, n in delta.items() if n}
            if client is None or self._open or not delta:
                return
            try:
                pipe = client.pipeline(transaction=False)
                for name, n in delta.items():
                    pipe.hincrby(self._stats_key, name, n)
                pipe.execute()
            except self._errors as exc:
                # Left for the next flush; not counted, so the counters only describe calls.
                logger.debug("Could not flush cache counters (%s)", type(exc).__name__)
                return
            with self._stats_lock:
                for name, n in delta.items():
                    self._flushed[name] += n


@dataclass
class _Pending:
    """Deletions owed to Redis for what changed in the local store while Redis was away.

    Bounded: past the limits it degrades to clearing the namespace, which is always safe.
    """

    keys: set[str] = field(default_factory=set)
    patterns: set[str] = field(default_factory=set)
    everything: bool = False

    def __bool__(self) -> bool:
        return self.everything or bool(self.keys or self.patterns)

    def add_keys(self, keys: tuple[str, ...], limit: int) -> None:
        if not self.everything:
            self.keys.update(keys)
            if len(self.keys) > limit:
                self.add_everything()

    def add_pattern(self, pattern: str) -> None:
        if not self.everything:
            self.patterns.add(pattern)
            if len(self.patterns) > _MAX_PENDING_PATTERNS:
                self.add_everything()

    def add_everything(self) -> None:
        self.everything = True
        self.keys.clear()
        self.patterns.clear()

    def merge(self, other: _Pending) -> None:
        if other.everything:
            self.add_everything()
        elif not self.everything:
            self.keys |= other.keys
            self.patterns |= other.patterns


@dataclass
class Lookups:
    """Hits, misses and invalid values of some reads, not yet counted."""

    hits: int = 0
    misses: int = 0
    invalid: int = 0


_tentative: ContextVar[Lookups | None] = ContextVar("tentative_cache_lookups", default=None)


@contextmanager
def tentative_lookups() -> Iterator[Lookups]:
    """The ``*_async`` reads inside note their hits and misses here instead of counting them:
    a read on the event loop that cannot answer its request hands it to a thread, which reads
    again, and a request's lookups should count once. The caller counts them
    (``Cache.count_lookups``) when the loop answered."""
    lookups = Lookups()
    token = _tentative.set(lookups)
    try:
        yield lookups
    finally:
        _tentative.reset(token)


class _Flight:
    """One loader call in progress, shared by every ``get_or_set`` of its key."""

    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


def _connect(settings: Settings) -> Redis | None:
    if settings.redis_url is None:
        return None
    from redis import Redis

    try:
        return Redis.from_url(settings.redis_url, **_client_options(settings, asyncio=False))
    except ValueError as exc:  # e.g. a bad port: config only checks the scheme
        logger.error(
            "REDIS_URL is not usable (%s); the cache runs in memory only", type(exc).__name__
        )
        return None


# Each cached read awaiting Redis on the event loop holds a connection, and nothing else bounds
# how many await at once (a thread pool bounds the sync client): past this, a read does not
# wait for a connection but goes to a thread (shared.loop_redis).
_LOOP_CONNECTIONS = 16


def _connect_async(settings: Settings) -> AsyncRedis:
    """The event loop's client, to the server ``_connect`` reached (so the URL is usable)."""
    from redis.asyncio import BlockingConnectionPool, Redis

    assert settings.redis_url is not None
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=_LOOP_CONNECTIONS,
        timeout=settings.cache_socket_timeout_ms / 1000,
        **_client_options(settings, asyncio=True),
    )
    return Redis(connection_pool=pool)


def _client_options(settings: Settings, *, asyncio: bool) -> dict[str, Any]:
    options = redis_options(settings, asyncio=asyncio)
    if settings.redis_entra_auth:
        from shared.azure_auth import redis_credential_provider

        options["credential_provider"] = redis_credential_provider(settings)
    return options


def _expiry(_key: str, entry: tuple[bytes, float], now: float) -> float:
    return now + entry[1]


# JSON with tags for the types JSON lacks. A tag is a one-key object whose key starts with NUL,
# which ordinary data never has; the decoder only looks for tags when the marker is present,
# which keeps plain values on the fast path of json.loads.
_TAG_MARKER = b'"\\u0000'
_UNTAG: dict[str, Callable[[str], Any]] = {
    "\0datetime": datetime.fromisoformat,
    "\0date": date.fromisoformat,
    "\0uuid": uuid.UUID,
}


# What set_versioned stores: ["<version>",<length>,<payload>]. The version is a plain token, so
# its JSON string needs no escapes; the length catches a value cut short without decoding it.
_VERSION = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ENVELOPE = re.compile(rb'\["([A-Za-z0-9_-]{1,64})",([0-9]{1,10}),')


def _envelope(version: str, payload: bytes) -> bytes:
    return b'["%s",%d,%s]' % (version.encode(), len(payload), payload)


def _unwrap(raw: bytes) -> tuple[bytes, bytes] | None:
    """The version and payload of a ``set_versioned`` value; None if ``raw`` is not one."""
    head = _ENVELOPE.match(raw)
    if head is None or not raw.endswith(b"]"):
        return None
    payload = raw[head.end() : -1]
    if len(payload) != int(head[2]):
        return None
    return head[1], payload


def _encode(value: Any) -> bytes:
    return json.dumps(value, default=_tag, ensure_ascii=False, separators=(",", ":")).encode()


def _tag(value: object) -> dict[str, str]:
    if isinstance(value, datetime):
        return {"\0datetime": value.isoformat()}
    if isinstance(value, date):
        return {"\0date": value.isoformat()}
    if isinstance(value, uuid.UUID):
        return {"\0uuid": str(value)}
    raise TypeError(f"a {type(value).__name__} cannot be cached: use JSON, datetime, date or UUID")


def _untag(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        ((key, text),) = obj.items()
        parse = _UNTAG.get(key)
        if parse is not None:
            return parse(text)
    return obj


def decode(raw: bytes) -> Any:
    """A value as ``set`` encodes it (for ``get_decoded``'s callers)."""
    return _decode(raw)


def _decode(raw: bytes | str) -> Any:
    data = raw if isinstance(raw, bytes) else raw.encode()
    if _TAG_MARKER in data:
        return json.loads(data, object_hook=_untag)
    return json.loads(data)


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _hit_rate(counts: dict[str, int]) -> float | None:
    lookups = counts["hits"] + counts["misses"]
    return round(counts["hits"] / lookups, 4) if lookups else None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="milliseconds") if moment else None


_instance: Cache | None = None
_instance_lock = threading.Lock()


def get_cache() -> Cache:
    """The process's cache, built from ``get_settings()`` on first use."""
    global _instance
    if _instance is None:
        with _instance_lock:
            if _instance is None:
                _instance = Cache(get_settings())
    return _instance


def reset_cache() -> None:
    """Close and forget the process's cache; the next ``get_cache()`` builds a new one."""
    global _instance
    with _instance_lock:
        cache, _instance = _instance, None
    if cache is not None:
        cache.close()
