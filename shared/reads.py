"""Cached reads of the API, and the invalidation each write owes them.

What is cached, under which key and tier:
- ``user:<id>``: the user's public record (SESSION); read on every authenticated request.
- ``item:<id>``: one item (SHORT).
- ``items:<owner id|all>:<generation>:<skip>:<limit>``: a page of items (SHORT).
- ``items:<owner id|all>:gen``: the generation of that owner's pages (DAILY).

Pages are keyed by a generation token instead of being deleted one by one: a write deletes the
generation key, which makes every page of that scope unreachable at once (no SCAN on the write
path), and a reader that loaded a page before the write committed stores it under the old,
already abandoned generation, so it can never be served after the write. Writes evict after
they commit.

``user:<id>`` and ``item:<id>`` are evicted twice: at once, and again after
``CACHE_SECOND_EVICTION_MS`` (a second). A reader that loaded the row just before the write
committed may store it just after the first eviction; if it stores within that delay, the
second eviction removes it, instead of the stale record living for its whole TTL.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from shared import crud
from shared.cache import get_cache
from shared.models import Item
from shared.schemas import ItemPublic, ItemsPublic, Page, UserPublic
from shared.security import EntraIdentity


def _user_key(user_id: uuid.UUID) -> str:
    return f"user:{user_id}"


def _item_key(item_id: uuid.UUID) -> str:
    return f"item:{item_id}"


def _generation_key(scope: str) -> str:
    return f"items:{scope}:gen"


def _scope(owner_id: uuid.UUID | None) -> str:
    return "all" if owner_id is None else str(owner_id)


def user(session: Session, user_id: uuid.UUID) -> UserPublic | None:
    def load() -> dict[str, Any] | None:
        found = crud.get_user(session, user_id)
        return UserPublic.model_validate(found).model_dump(mode="json") if found else None

    data = get_cache().get_or_set(_user_key(user_id), load, tier="session")
    return UserPublic.model_validate(data) if data is not None else None


def entra_user(session: Session, identity: EntraIdentity) -> UserPublic | None:
    found = crud.sync_entra_user(
        session, identity.oid, identity.email, identity.name, identity.is_admin
    )
    if found is None:
        return None
    public = UserPublic.model_validate(found)
    get_cache().set(_user_key(found.id), public.model_dump(mode="json"), tier="session")
    return public


def item(session: Session, item_id: uuid.UUID) -> dict[str, Any] | None:
    def load() -> dict[str, Any] | None:
        found = crud.get_item(session, item_id)
        return ItemPublic.model_validate(found).model_dump(mode="json") if found else None

    data: dict[str, Any] | None = get_cache().get_or_set(_item_key(item_id), load, tier="short")
    return data


def item_page(session: Session, owner_id: uuid.UUID | None, page: Page) -> dict[str, Any]:
    cache = get_cache()
    scope = _scope(owner_id)
    generation = cache.get_or_set(_generation_key(scope), lambda: uuid.uuid4().hex, tier="daily")

    def load() -> dict[str, Any]:
        items, count = crud.list_items(session, owner_id, page.skip, page.limit)
        data = [ItemPublic.model_validate(i) for i in items]
        return ItemsPublic(data=data, count=count).model_dump(mode="json")

    key = f"items:{scope}:{generation}:{page.skip}:{page.limit}"
    data: dict[str, Any] = cache.get_or_set(key, load, tier="short")
    return data


def _evict(*records: str, pages: tuple[str, ...] = ()) -> None:
    cache = get_cache()
    cache.delete(*records, *pages)
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
