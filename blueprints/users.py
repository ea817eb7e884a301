"""Users: self-service (me, signup) and superuser administration."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import azure.functions as func

from shared.http import ApiRequest, HTTPError, route
from shared.lazy import lazy_import

if TYPE_CHECKING:
    from shared import crud, email, models, reads, schemas, security
else:
    crud = lazy_import("shared.crud")
    email = lazy_import("shared.email")
    reads = lazy_import("shared.reads")
    schemas = lazy_import("shared.schemas")
    security = lazy_import("shared.security")

bp = func.Blueprint()

EMAIL_TAKEN_CONFLICT = "User with this email already exists"
NO_SELF_DELETE = "Super users are not allowed to delete themselves"
USER_DELETED = "User deleted successfully"


@route(
    bp,
    "api/v1/users/",
    "GET",
    operation_id="users-read_users",
    summary="Read Users",
    tags=["users"],
    auth="superuser",
    query="Page",
    response="UsersPublic",
)
def read_users(req: ApiRequest) -> schemas.UsersPublic:
    """Retrieve users."""
    page = req.query(schemas.Page)
    users, count = crud.list_users(req.db, page.skip, page.limit)
    return schemas.UsersPublic(
        data=[schemas.UserPublic.model_validate(u) for u in users], count=count
    )


@route(
    bp,
    "api/v1/users/",
    "POST",
    operation_id="users-create_user",
    summary="Create User",
    tags=["users"],
    auth="superuser",
    body="UserCreate",
    response="UserPublic",
    errors=(400,),
)
def create_user(req: ApiRequest) -> schemas.UserPublic:
    """Create new user."""
    body = req.json(schemas.UserCreate)
    try:
        user = crud.create_user(
            req.db,
            email=body.email,
            password=body.password,
            full_name=body.full_name,
            is_active=body.is_active,
            is_superuser=body.is_superuser,
        )
    except crud.DuplicateEmail:
        raise HTTPError(400, "The user with this email already exists in the system.") from None
    if req.settings.emails_enabled:
        message = email.new_account_email(req.settings, user.email)
        email.send_in_background(req.settings, user.email, message)
    return schemas.UserPublic.model_validate(user)


@route(
    bp,
    "api/v1/users/me",
    "GET",
    operation_id="users-read_user_me",
    summary="Read User Me",
    tags=["users"],
    auth="user",
    response="UserPublic",
)
def read_user_me(req: ApiRequest) -> schemas.UserPublic:
    """Get current user."""
    return req.user


@route(
    bp,
    "api/v1/users/me",
    "DELETE",
    operation_id="users-delete_user_me",
    summary="Delete User Me",
    tags=["users"],
    auth="user",
    response="Message",
)
def delete_user_me(req: ApiRequest) -> schemas.Message:
    """Delete own user."""
    if req.user.is_superuser:
        raise HTTPError(403, NO_SELF_DELETE)
    user = crud.get_user(req.db, req.user.id)
    if user is not None:
        item_ids = crud.delete_user(req.db, user)
        reads.user_deleted(req.user.id, item_ids)
    return schemas.Message(message=USER_DELETED)


@route(
    bp,
    "api/v1/users/me",
    "PATCH",
    operation_id="users-update_user_me",
    summary="Update User Me",
    tags=["users"],
    auth="user",
    body="UserUpdateMe",
    response="UserPublic",
    errors=(409,),
)
def update_user_me(req: ApiRequest) -> schemas.UserPublic:
    """Update own user."""
    body = req.json(schemas.UserUpdateMe)
    user = _existing(req, req.user.id, "User not found")
    try:
        crud.update_user(req.db, user, body.changes())
    except crud.DuplicateEmail:
        raise HTTPError(409, EMAIL_TAKEN_CONFLICT) from None
    reads.user_changed(user.id)
    return schemas.UserPublic.model_validate(user)


@route(
    bp,
    "api/v1/users/me/password",
    "PATCH",
    operation_id="users-update_password_me",
    summary="Update Password Me",
    tags=["users"],
    auth="user",
    body="UpdatePassword",
    response="Message",
    errors=(400,),
)
def update_password_me(req: ApiRequest) -> schemas.Message:
    """Update own password."""
    body = req.json(schemas.UpdatePassword)
    user = _existing(req, req.user.id, "User not found")
    if not security.verify_password(body.current_password, user.hashed_password):
        raise HTTPError(400, "Incorrect password")
    if body.current_password == body.new_password:
        raise HTTPError(400, "New password cannot be the same as the current one")
    crud.set_password(req.db, user, body.new_password)
    return schemas.Message(message="Password updated successfully")


@route(
    bp,
    "api/v1/users/signup",
    "POST",
    operation_id="users-register_user",
    summary="Register User",
    tags=["users"],
    body="UserRegister",
    response="UserPublic",
    errors=(400,),
)
def register_user(req: ApiRequest) -> schemas.UserPublic:
    """Create new user without the need to be logged in."""
    return register(req, req.json(schemas.UserRegister))


def register(
    req: ApiRequest, body: schemas.UserRegister | schemas.PrivateUserCreate
) -> schemas.UserPublic:
    """A new, active, normal account: sign-up, and the development-only private route."""
    try:
        user = crud.create_user(
            req.db, email=body.email, password=body.password, full_name=body.full_name
        )
    except crud.DuplicateEmail:
        raise HTTPError(400, "The user with this email already exists in the system") from None
    return schemas.UserPublic.model_validate(user)


@route(
    bp,
    "api/v1/users/{user_id}",
    "GET",
    operation_id="users-read_user_by_id",
    summary="Read User By Id",
    tags=["users"],
    auth="user",
    path_params={"user_id": "uuid"},
    response="UserPublic",
    errors=(404,),
)
def read_user_by_id(req: ApiRequest) -> schemas.UserPublic:
    """Get a specific user by id."""
    user_id = req.path_uuid("user_id")
    if user_id == req.user.id:
        return req.user
    # Before the look-up: a normal user learns nothing about other ids.
    if not req.user.is_superuser:
        raise HTTPError(403, security.NOT_ENOUGH_PRIVILEGES)
    user = reads.user(req.db, user_id)
    if user is None:
        raise HTTPError(404, "User not found")
    return user


@route(
    bp,
    "api/v1/users/{user_id}",
    "PATCH",
    operation_id="users-update_user",
    summary="Update User",
    tags=["users"],
    auth="superuser",
    path_params={"user_id": "uuid"},
    body="UserUpdate",
    response="UserPublic",
    errors=(404, 409),
)
def update_user(req: ApiRequest) -> schemas.UserPublic:
    """Update a user."""
    user_id = req.path_uuid("user_id")
    body = req.json(schemas.UserUpdate)
    user = _existing(req, user_id, "The user with this id does not exist in the system")
    try:
        crud.update_user(req.db, user, body.changes())
    except crud.DuplicateEmail:
        raise HTTPError(409, EMAIL_TAKEN_CONFLICT) from None
    reads.user_changed(user.id)
    return schemas.UserPublic.model_validate(user)


@route(
    bp,
    "api/v1/users/{user_id}",
    "DELETE",
    operation_id="users-delete_user",
    summary="Delete User",
    tags=["users"],
    auth="superuser",
    path_params={"user_id": "uuid"},
    response="Message",
    errors=(404,),
)
def delete_user(req: ApiRequest) -> schemas.Message:
    """Delete a user."""
    user_id = req.path_uuid("user_id")
    user = _existing(req, user_id, "User not found")
    if user.id == req.user.id:
        raise HTTPError(403, NO_SELF_DELETE)
    item_ids = crud.delete_user(req.db, user)
    reads.user_deleted(user_id, item_ids)
    return schemas.Message(message=USER_DELETED)


def _existing(req: ApiRequest, user_id: uuid.UUID, missing: str) -> models.User:
    user = crud.get_user(req.db, user_id)
    if user is None:
        raise HTTPError(404, missing)
    return user
