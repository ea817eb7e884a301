"""Development-only user creation, used by the frontend's end-to-end tests.

function_app registers this blueprint only when ``ENVIRONMENT=development``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import azure.functions as func

from shared.http import ApiRequest, HTTPError, route
from shared.lazy import lazy_import

if TYPE_CHECKING:
    from shared import crud, schemas
else:
    crud = lazy_import("shared.crud")
    schemas = lazy_import("shared.schemas")

bp = func.Blueprint()


@route(
    bp,
    "api/v1/private/users/",
    "POST",
    operation_id="private-create_user",
    summary="Create User",
    tags=["private"],
    body="PrivateUserCreate",
    response="UserPublic",
    errors=(400,),
)
def create_private_user(req: ApiRequest) -> schemas.UserPublic:
    """Create a new user."""
    body = req.json(schemas.PrivateUserCreate)
    try:
        user = crud.create_user(
            req.db, email=body.email, password=body.password, full_name=body.full_name
        )
    except crud.DuplicateEmail:
        raise HTTPError(400, "The user with this email already exists in the system") from None
    return schemas.UserPublic.model_validate(user)
