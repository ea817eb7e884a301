"""Cached reads of the API, and the invalidation each write owes them.

What is cached, under which key and tier:
- ``user:<id>``: the user's record for authentication (AUTH, a few seconds): the public fields
  and the token version; read on every authenticated request. Outside Redis (no REDIS_URL, or
  Redis down) it is kept in-process for at most ``CACHE_AUTH_LOCAL_SECONDS``. Both bounds are
  short so that a change to a user's rights holds on every instance within 5 s even when the
  instance that made it could not evict the record from Redis.
- ``item:<id>``: one item (SHORT).
- ``items:{<prefix>:items:<owner id|all>:gen}:<skip>:<limit>``: a page of items as its
  response body, stored with the generation it was read under (SHORT).
- ``items:<owner id|all>:gen``: the generation of that owner's pages (DAILY), named as every
  earlier build named it, so that during a release each build's writes reach the other's pages.

A page is served only while the generation it was stored with is its scope's current one: a
write deletes the generation key, which makes every page of that scope stale at once (no SCAN
on the write path), and a reader that loaded a page before the write committed stores it with
the old, already abandoned generation, so it can never be served after the write. Writes evict
after they commit. A page read fetches the generation and the page in one round trip
(``Cache.get_versioned``); the page's ``{...}`` hash tag, the generation key's whole name,
keeps both keys of a scope in one Redis Cluster slot, as a multi-key read requires.

Records read back are trusted: they were validated when stored, so they are rebuilt without
running validators again (a dataclass, a plain dict, the stored page bytes); a value that does
not decode is a miss.

With Redis configured, items, pages and generations live in Redis only: while Redis is away
they are read from the database each time, since an in-process copy could be one another
instance already changed.

``user:<id>`` and ``item:<id>`` are evicted twice: at once, and again after
``CACHE_SECOND_EVICTION_MS`` (a second). A reader that loaded the row just before the write
committed may store it just after the first eviction; if it stores within that delay, the
second eviction removes it, instead of the stale record living for its whole TTL.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final, cast

from sqlalchemy.orm import Session

from shared import crud
from shared.cache import decode, get_cache
from shared.config import get_settings
from shared.entra import EntraIdentity
from shared.models import Item, User
from shared.schemas import (
    PUBLIC_USER_FIELDS,
    ItemPublic,
    ItemsPublic,
    Page,
    UserPublic,
    user_public,
)

_AUTH_TIER = "auth"


def _shared() -> float | None:
    """``local_ttl`` of items, pages and generations: with Redis configured, several instances
    share the data and any of them may change it, so while Redis is away they are not kept
    in-process at all (a read must never return older data than an acknowledged write). Without
    Redis (one development process) the local store keeps them for their tier's TTL."""
    return 0.0 if get_cache().redis_configured else None


@dataclasses.dataclass(frozen=True)
class AuthUser:
    """A user as authentication sees it: the public fields and the token version.

    Responses show only ``public()``; the version stays inside.
    """

    email: str
    is_active: bool
    is_superuser: bool
    full_name: str | None
    id: uuid.UUID
    created_at: datetime | None
    token_version: int

    @classmethod
    def of(cls, user: User) -> AuthUser:
        public = {name: getattr(user, name) for name in PUBLIC_USER_FIELDS}
        return cls(**public, token_version=user.token_version or 0)

    def public(self) -> UserPublic:
        return user_public(self)

    @functools.cached_property
    def public_json(self) -> bytes:
        """``public()`` as its JSON response body: encoded once per record."""
        return self.public().model_dump_json().encode()


_AUTH_FIELDS = frozenset(field.name for field in dataclasses.fields(AuthUser))


def _user_key(user_id: uuid.UUID) -> str:
    return f"user:{user_id}"


def _item_key(item_id: uuid.UUID) -> str:
    return f"item:{item_id}"


def _generation_key(scope: str) -> str:
    # The name every build has used: during a release the previous build's writes delete it
    # and so reach this build's pages, and this build's writes reach the previous build's.
    return f"items:{scope}:gen"


def _page_key(scope: str, page: Page) -> str:
    # In the generation key's slot, so that one MGET reads both on a clustered Redis too.
    slot = get_cache().slot_of(_generation_key(scope))
    return f"items:{slot}:{page.skip}:{page.limit}"


def _json(value: Any) -> bytes:
    """A response body exactly as the route wrapper would encode ``value`` (``dump_json``)."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()


def _scope(owner_id: uuid.UUID | None) -> str:
    return "all" if owner_id is None else str(owner_id)


def user(db: Callable[[], Session], user_id: uuid.UUID) -> AuthUser | None:
    """The user's record, cached; ``db`` opens the session only when the cache misses."""
    cache = get_cache()
    key = _user_key(user_id)
    found = cache.get_decoded(key, _auth_record, default=_UNREAD)
    if found is not _UNREAD and found is not _STALE:
        return cast(AuthUser | None, found)
    local_ttl = get_settings().cache_auth_local_seconds

    def load_and_store() -> dict[str, Any] | None:
        # A miss, or a record a build without the token version wrote (during a release).
        record = crud.get_user(db(), user_id)
        data = dataclasses.asdict(AuthUser.of(record)) if record else None
        cache.set(key, data, tier=_AUTH_TIER, local_ttl=local_ttl)
        return data

    data = cache.load_once(key, load_and_store)
    return AuthUser(**data) if data is not None else None


async def cached_user(user_id: uuid.UUID) -> AuthUser | None:
    """The user's record as Redis holds it, read on the event loop; None when it is not there
    to read (a miss, no such user, a record of an earlier build, Redis not in use): the caller
    then reads through ``user`` on a thread."""
    found = await get_cache().get_decoded_async(_user_key(user_id), _auth_record)
    return found if isinstance(found, AuthUser) else None


_UNREAD: Final = object()  # not in the cache
_STALE: Final = object()  # in the cache, written by a build without the token version


@functools.lru_cache(maxsize=4096)
def _auth_record(raw: bytes) -> AuthUser | object | None:
    """A stored user record, decoded once per process for the same bytes: the record is
    immutable, so every request whose cache read returns these bytes shares it (a change to
    the user stores other bytes). None: no such user."""
    data = decode(raw)
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ValueError("not a user record")
    if data.keys() != _AUTH_FIELDS:
        return _STALE
    return AuthUser(**data)


def entra_user(session: Session, identity: EntraIdentity) -> AuthUser:
    record = AuthUser.of(crud.entra_user(session, identity))
    get_cache().set(
        _user_key(record.id),
        dataclasses.asdict(record),
        tier=_AUTH_TIER,
        local_ttl=get_settings().cache_auth_local_seconds,
    )
    return record


def item(db: Callable[[], Session], item_id: uuid.UUID) -> dict[str, Any] | None:
    """One item, cached; ``db`` opens the session only when the cache misses."""

    def load() -> dict[str, Any] | None:
        found = crud.get_item(db(), item_id)
        return ItemPublic.model_validate(found).model_dump(mode="json") if found else None

    data: dict[str, Any] | None = get_cache().get_or_set(
        _item_key(item_id), load, tier="short", local_ttl=_shared()
    )
    return data


def item_page(db: Callable[[], Session], owner_id: uuid.UUID | None, page: Page) -> bytes:
    """A page of items as its JSON response body: from the cache as stored, or read through
    ``db`` (opened only then) and stored for the scope's current generation."""
    cache = get_cache()
    scope = _scope(owner_id)
    key = _page_key(scope, page)
    generation, body = cache.get_versioned(_generation_key(scope), key)
    if body is not None:
        return body
    if generation is None:
        # Two readers may both start a generation; the page of the one overwritten is a miss.
        generation = uuid.uuid4().hex
        cache.set(_generation_key(scope), generation, tier="daily", local_ttl=_shared())

    def load() -> bytes:
        items, count = crud.list_items(db(), owner_id, page.skip, page.limit)
        data = [ItemPublic.model_validate(i) for i in items]
        loaded = _json(ItemsPublic(data=data, count=count).model_dump(mode="json"))
        cache.set_versioned(key, generation, loaded, tier="short", local_ttl=_shared())
        return loaded

    return cache.load_once(f"{key}:{generation}", load)


async def cached_item_page(owner_id: uuid.UUID | None, page: Page) -> bytes | None:
    """The page's response body as Redis holds it for the scope's current generation, read on
    the event loop; None when it is not there to read (the caller then uses ``item_page``)."""
    scope = _scope(owner_id)
    cache = get_cache()
    _, body = await cache.get_versioned_async(_generation_key(scope), _page_key(scope, page))
    return body


def _evict(*records: str, pages: tuple[str, ...] = ()) -> None:
    cache = get_cache()
    cache.evict(*records, *pages)
    cache.delete_later(*records)


def items_changed(owner_id: uuid.UUID, item_ids: list[uuid.UUID] | None = None) -> None:
    """After a committed item write: the owner's pages, everyone's pages, and those items."""
    pages = (_generation_key(_scope(owner_id)), _generation_key(_scope(None)))
    _evict(*(_item_key(item_id) for item_id in item_ids or ()), pages=pages)


def item_changed(changed: Item) -> None:
    items_changed(changed.owner_id, [changed.id])


def user_changed(user_id: uuid.UUID) -> None:
    _evict(_user_key(user_id))


def user_deleted(user_id: uuid.UUID, item_ids: list[uuid.UUID]) -> None:
    user_changed(user_id)
    items_changed(user_id, item_ids)
