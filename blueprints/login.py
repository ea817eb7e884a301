"""Sign-in with a password, token check, and password recovery by mail."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import azure.functions as func

from shared.cause_log import CauseLog
from shared.errors import HTTPError
from shared.http import ApiRequest, Reply, Router
from shared.lazy import lazy_import

if TYPE_CHECKING:
    from shared import crud, email, reads, schemas, security, throttle
else:
    crud = lazy_import("shared.crud")
    email = lazy_import("shared.email")
    reads = lazy_import("shared.reads")
    schemas = lazy_import("shared.schemas")
    security = lazy_import("shared.security")
    throttle = lazy_import("shared.throttle")

logger = logging.getLogger(__name__)
# A flood of refused requests writes a line a minute, not one each.
limit_log = CauseLog(logger, level=logging.WARNING)

bp = func.Blueprint()
router = Router(bp, tag="login")

RECOVERY_SENT = "If that email is registered, we sent a password recovery link"
INVALID_TOKEN = "Invalid token"  # noqa: S105 (a message, not a secret)


@router.post(
    "api/v1/login/access-token",
    body="LoginForm",
    body_media="application/x-www-form-urlencoded",
    response="Token",
    errors=(400, 429),
)
def login_access_token(req: ApiRequest) -> schemas.Token:
    """OAuth2 compatible token login, get an access token for future requests"""
    form = req.form(schemas.LoginForm)
    address = schemas.normalize_email(form.username)
    throttle.refuse_when_hashing_is_full()
    user = crud.get_user_by_email(req.db, address)
    right = throttle.guarded_password_check(
        req.settings,
        throttle.account(user.id if user else None, address),
        req.client_address,
        lambda: crud.password_matches(user, form.password),
    )
    if not right or user is None:
        raise HTTPError(400, "Incorrect email or password")
    if not user.is_active:
        raise HTTPError(400, "Inactive user")
    token = security.create_access_token(user.id, user.token_version or 0, req.settings)
    return schemas.Token(access_token=token)


@router.post("api/v1/login/test-token", auth="user", response="UserPublic")
def test_token(req: ApiRequest) -> schemas.UserPublic:
    """Test access token"""
    return req.user.public()


@router.post("api/v1/password-recovery/{email}", redact=("email",), response="Message")
def recover_password(req: ApiRequest) -> schemas.Message:
    """Password Recovery"""
    address = schemas.normalize_email(req.path_param("email"))
    user = crud.get_user_by_email(req.db, address)
    recipient = throttle.account(user.id if user else None, address)
    if not throttle.recovery_mail_allowed(req.settings, recipient, req.client_address):
        limit_log.report("Password recovery limit reached", "no mail sent")
        return schemas.Message(message=RECOVERY_SENT)
    # An account without a password signs in through Entra ID: its address came from a claim
    # nobody verified, so a reset link must not turn that mailbox into a way into it.
    if user is not None and user.hashed_password is not None:
        token = security.create_password_reset_token(user.email, user.hashed_password, req.settings)
        message = email.reset_password_email(req.settings, user.email, token)
        email.send_in_background(req.settings, user.email, message)
    return schemas.Message(message=RECOVERY_SENT)


@router.post("api/v1/reset-password/", body="NewPassword", response="Message", errors=(400,))
def reset_password(req: ApiRequest) -> schemas.Message:
    """Reset password"""
    body = req.json(schemas.NewPassword)
    try:
        claims = security.decode_password_reset_token(body.token, req.settings)
    except security.InvalidToken:
        raise HTTPError(400, INVALID_TOKEN) from None
    user = crud.get_user_by_email(req.db, claims.email)
    # The fingerprint changes with the password, so a token works once.
    if user is None or security.password_fingerprint(user.hashed_password) != claims.fingerprint:
        raise HTTPError(400, INVALID_TOKEN)
    if not user.is_active:
        raise HTTPError(400, "Inactive user")
    crud.set_password(req.db, user, body.new_password)
    reads.user_changed(user.id)  # the new token version: every earlier access token is refused
    return schemas.Message(message="Password updated successfully")


@router.post(
    "api/v1/password-recovery-html-content/{email}",
    auth="superuser",
    redact=("email",),
    response_media="text/html",
    errors=(404,),
)
def recover_password_html_content(req: ApiRequest) -> Reply:
    """HTML Content for Password Recovery"""
    user = crud.get_user_by_email(req.db, schemas.normalize_email(req.path_param("email")))
    if user is None:
        raise HTTPError(404, "The user with this username does not exist in the system.")
    token = security.create_password_reset_token(user.email, user.hashed_password, req.settings)
    message = email.reset_password_email(req.settings, user.email, token)
    return Reply(message.html, media_type="text/html", headers={"subject": message.subject})
