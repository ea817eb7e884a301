"""Development-only user creation, used by the frontend's end-to-end tests.

function_app registers this blueprint only when ``ENVIRONMENT=development`` (or the template's
``local``, its alias).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import azure.functions as func

from blueprints.users import register
from shared.http import ApiRequest, Router
from shared.lazy import lazy_import

if TYPE_CHECKING:
    from shared import schemas
else:
    schemas = lazy_import("shared.schemas")

bp = func.Blueprint()
router = Router(bp, tag="private")


@router.post(
    "api/v1/private/users/",
    operation_id="private-create_user",
    summary="Create User",
    body="PrivateUserCreate",
    response="UserPublic",
    errors=(400,),
)
def create_private_user(req: ApiRequest) -> schemas.UserPublic:
    """Create a new user."""
    return register(req, req.json(schemas.PrivateUserCreate))
