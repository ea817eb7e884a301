"""Items: each user's own; superusers see and change all."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import azure.functions as func

from shared.errors import HTTPError
from shared.http import ApiRequest, EncodedJson, Router
from shared.lazy import lazy_import

if TYPE_CHECKING:
    from shared import crud, models, reads, schemas
else:
    crud = lazy_import("shared.crud")
    reads = lazy_import("shared.reads")
    schemas = lazy_import("shared.schemas")

bp = func.Blueprint()
router = Router(bp, tag="items")

ITEM_NOT_FOUND = "Item not found"
NOT_ENOUGH_PERMISSIONS = "Not enough permissions"


async def _items_from_cache(req: ApiRequest) -> EncodedJson | None:
    body = await reads.cached_item_page(_items_owner(req), req.query(schemas.Page))
    return None if body is None else EncodedJson(body)


@router.get(
    "api/v1/items/", auth="user", query="Page", response="ItemsPublic", cached=_items_from_cache
)
def read_items(req: ApiRequest) -> EncodedJson:
    """Retrieve items."""
    page = req.query(schemas.Page)
    return EncodedJson(reads.item_page(lambda: req.db, _items_owner(req), page))


def _items_owner(req: ApiRequest) -> uuid.UUID | None:
    """Whose items a caller lists: a superuser everyone's (None), anyone else their own."""
    return None if req.user.is_superuser else req.user.id


@router.post("api/v1/items/", auth="user", body="ItemCreate", response="ItemPublic")
def create_item(req: ApiRequest) -> schemas.ItemPublic:
    """Create new item."""
    body = req.json(schemas.ItemCreate)
    item = crud.create_item(req.db, req.user.id, body.title, body.description)
    reads.item_changed(item)
    return schemas.ItemPublic.model_validate(item)


@router.get(
    "api/v1/items/{id}",
    auth="user",
    path_params={"id": "uuid"},
    response="ItemPublic",
    errors=(404,),
)
def read_item(req: ApiRequest) -> dict[str, Any]:
    """Get item by ID."""
    item = reads.item(lambda: req.db, req.path_uuid("id"))
    if item is None:
        raise HTTPError(404, ITEM_NOT_FOUND)
    _check_owner(req, uuid.UUID(item["owner_id"]))
    return item


@router.put(
    "api/v1/items/{id}",
    auth="user",
    path_params={"id": "uuid"},
    body="ItemUpdate",
    response="ItemPublic",
    errors=(404,),
)
def update_item(req: ApiRequest) -> schemas.ItemPublic:
    """Update an item."""
    item_id = req.path_uuid("id")
    body = req.json(schemas.ItemUpdate)
    item = _owned_item(req, item_id)
    crud.update_item(req.db, item, body.changes())
    reads.item_changed(item)
    return schemas.ItemPublic.model_validate(item)


@router.delete(
    "api/v1/items/{id}", auth="user", path_params={"id": "uuid"}, response="Message", errors=(404,)
)
def delete_item(req: ApiRequest) -> schemas.Message:
    """Delete an item."""
    item = _owned_item(req, req.path_uuid("id"))
    crud.delete_item(req.db, item)
    reads.item_changed(item)
    return schemas.Message(message="Item deleted successfully")


def _check_owner(req: ApiRequest, owner_id: uuid.UUID) -> None:
    if not req.user.is_superuser and owner_id != req.user.id:
        raise HTTPError(403, NOT_ENOUGH_PERMISSIONS)


def _owned_item(req: ApiRequest, item_id: uuid.UUID) -> models.Item:
    """The item to change: 404 when it does not exist, then 403 when it is not the caller's."""
    item = crud.get_item(req.db, item_id)
    if item is None:
        raise HTTPError(404, ITEM_NOT_FOUND)
    _check_owner(req, item.owner_id)
    return item
