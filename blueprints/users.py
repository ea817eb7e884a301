"""Users: self-service (me, signup) and superuser administration."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import azure.functions as func

from shared.errors import HTTPError
from shared.http import ApiRequest, EncodedJson, Router
from shared.lazy import lazy_import

if TYPE_CHECKING:
    from shared import auth, crud, email, entra, models, reads, schemas, security, throttle
else:
    auth = lazy_import("shared.auth")
    crud = lazy_import("shared.crud")
    email = lazy_import("shared.email")
    entra = lazy_import("shared.entra")
    reads = lazy_import("shared.reads")
    schemas = lazy_import("shared.schemas")
    security = lazy_import("shared.security")
    throttle = lazy_import("shared.throttle")

bp = func.Blueprint()
router = Router(bp, tag="users")

EMAIL_TAKEN_CONFLICT = "User with this email already exists"
ENTRA_IDENTITY_TAKEN = "This Entra ID identity already signs in to another account"
ENTRA_LINKED = "This account is already linked to another Entra ID identity"
NO_SELF_DELETE = "Super users are not allowed to delete themselves"
USER_DELETED = "User deleted successfully"


@router.get("api/v1/users/", auth="superuser", query="Page", response="UsersPublic")
def read_users(req: ApiRequest) -> schemas.UsersPublic:
    """Retrieve users."""
    page = req.query(schemas.Page)
    users, count = crud.list_users(req.db, page.skip, page.limit)
    return schemas.UsersPublic.model_construct(
        data=[schemas.user_public(u) for u in users], count=count
    )


@router.post(
    "api/v1/users/", auth="superuser", body="UserCreate", response="UserPublic", errors=(400,)
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
    return schemas.user_public(user)


async def _me_from_cache(req: ApiRequest) -> EncodedJson:
    return EncodedJson(req.user.public_json)  # req.user came from the cache


@router.get("api/v1/users/me", auth="user", response="UserPublic", cached=_me_from_cache)
def read_user_me(req: ApiRequest) -> EncodedJson:
    """Get current user."""
    return EncodedJson(req.user.public_json)


@router.delete("api/v1/users/me", auth="user", response="Message")
def delete_user_me(req: ApiRequest) -> schemas.Message:
    """Delete own user."""
    if req.user.is_superuser:
        raise HTTPError(403, NO_SELF_DELETE)
    user = crud.get_user(req.db, req.user.id)
    if user is not None:
        item_ids = crud.delete_user(req.db, user)
        reads.user_deleted(req.user.id, item_ids)
    return schemas.Message(message=USER_DELETED)


@router.patch(
    "api/v1/users/me", auth="user", body="UserUpdateMe", response="UserPublic", errors=(409,)
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
    return schemas.user_public(user)


@router.patch(
    "api/v1/users/me/password",
    auth="user",
    body="UpdatePassword",
    response="Message",
    errors=(400, 429),
)
def update_password_me(req: ApiRequest) -> schemas.Message:
    """Update own password."""
    body = req.json(schemas.UpdatePassword)
    user = _existing(req, req.user.id, "User not found")
    _check_current_password(req, user, body.current_password)
    if body.current_password == body.new_password:
        raise HTTPError(400, "New password cannot be the same as the current one")
    crud.set_password(req.db, user, body.new_password)
    reads.user_changed(user.id)  # the new token version: every earlier access token is refused
    return schemas.Message(message="Password updated successfully")


def _check_current_password(req: ApiRequest, user: models.User, password: str) -> None:
    """400 unless ``password`` is the user's, under the same limits as sign-in."""
    right = throttle.guarded_password_check(
        req.settings,
        throttle.account(user.id, user.email),
        req.client_address,
        lambda: security.verify_password(password, user.hashed_password),
    )
    if not right:
        raise HTTPError(400, "Incorrect password")


@router.post("api/v1/users/signup", body="UserRegister", response="UserPublic", errors=(400,))
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
    return schemas.user_public(user)


@router.get(
    "api/v1/users/{user_id}",
    auth="user",
    path_params={"user_id": "uuid"},
    response="UserPublic",
    errors=(404,),
)
def read_user_by_id(req: ApiRequest) -> schemas.UserPublic:
    """Get a specific user by id."""
    user_id = req.path_uuid("user_id")
    if user_id == req.user.id:
        return req.user.public()
    # Before the look-up: a normal user learns nothing about other ids.
    if not req.user.is_superuser:
        raise HTTPError(403, auth.NOT_ENOUGH_PRIVILEGES)
    user = reads.user(lambda: req.db, user_id)
    if user is None:
        raise HTTPError(404, "User not found")
    return user.public()


@router.patch(
    "api/v1/users/{user_id}",
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
    return schemas.user_public(user)


@router.delete(
    "api/v1/users/{user_id}",
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


# --- linking an Entra ID identity (explicit, never by matching addresses) ----------------------


@router.post(
    "api/v1/users/me/entra-identity",
    summary="Link Entra ID Identity Me",
    auth="user",
    body="EntraLinkMe",
    response="UserPublic",
    errors=(400, 409, 429),
)
def link_entra_identity_me(req: ApiRequest) -> schemas.UserPublic:
    """Let the caller's account sign in with an Entra ID identity too: proven by a valid Entra
    ID token of that identity and by the account's current password."""
    body = req.json(schemas.EntraLinkMe)
    if not req.settings.entra_enabled:
        raise HTTPError(400, "Entra ID sign-in is not enabled")
    user = _existing(req, req.user.id, "User not found")
    _check_current_password(req, user, body.current_password)
    try:
        identity = entra.validator(req.settings).validate(body.entra_token)
    except (entra.InvalidToken, entra.InvalidIdentity):
        raise HTTPError(400, "Invalid Entra ID token") from None
    except entra.KeysUnavailable as exc:
        raise HTTPError(
            503, "Service temporarily unavailable", {"Retry-After": str(exc.retry_after)}
        ) from None
    return _link(req, user, identity.oid, identity.tid)


@router.put(
    "api/v1/users/{user_id}/entra-identity",
    summary="Link Entra ID Identity",
    auth="superuser",
    path_params={"user_id": "uuid"},
    body="EntraLink",
    response="UserPublic",
    errors=(404, 409),
)
def link_entra_identity(req: ApiRequest) -> schemas.UserPublic:
    """Let a user's account sign in with the Entra ID identity ``oid`` of tenant ``tid``."""
    user_id = req.path_uuid("user_id")
    body = req.json(schemas.EntraLink)
    user = _existing(req, user_id, "The user with this id does not exist in the system")
    return _link(req, user, body.oid, body.tid)


@router.delete(
    "api/v1/users/{user_id}/entra-identity",
    summary="Unlink Entra ID Identity",
    auth="superuser",
    path_params={"user_id": "uuid"},
    response="UserPublic",
    errors=(404,),
)
def unlink_entra_identity(req: ApiRequest) -> schemas.UserPublic:
    """Stop a user's account signing in with its Entra ID identity (its next Entra ID sign-in
    gets an account of its own)."""
    user = _existing(req, req.path_uuid("user_id"), "User not found")
    crud.unlink_entra(req.db, user)
    reads.user_changed(user.id)
    return schemas.user_public(user)


def _link(req: ApiRequest, user: models.User, oid: uuid.UUID, tid: uuid.UUID) -> schemas.UserPublic:
    if user.entra_oid is not None and user.entra_oid != oid:
        raise HTTPError(409, ENTRA_LINKED)
    try:
        crud.link_entra(req.db, user, oid, tid)
    except crud.EntraIdentityTaken:
        raise HTTPError(409, ENTRA_IDENTITY_TAKEN) from None
    reads.user_changed(user.id)
    return schemas.user_public(user)


def _existing(req: ApiRequest, user_id: uuid.UUID, missing: str) -> models.User:
    user = crud.get_user(req.db, user_id)
    if user is None:
        raise HTTPError(404, missing)
    return user
