"""Request authentication for the route wrapper: the bearer token of a request, its user.

Below the route wrapper and above the data layer: it reads the user's cached record (``reads``)
and validates tokens (``security``, ``entra``), and answers in the contract's errors. It knows
no Azure Functions type; a request is anything with ``header()``, ``db`` and ``settings``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

from shared import crud, entra, reads, security
from shared.config import Settings
from shared.errors import HTTPError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

logger = logging.getLogger(__name__)

INVALID_CREDENTIALS = "Could not validate credentials"
NOT_ENOUGH_PRIVILEGES = "The user doesn't have enough privileges"


class Credentials(Protocol):
    settings: Settings

    def header(self, name: str) -> str | None: ...

    @property
    def db(self) -> Session: ...


def not_authenticated() -> HTTPError:
    return HTTPError(401, "Not authenticated", {"WWW-Authenticate": "Bearer"})


def bearer_token(request: Credentials) -> str:
    token = _bearer(request)
    if token is None:
        raise not_authenticated()
    return token


def _bearer(request: Credentials) -> str | None:
    scheme, _, token = (request.header("authorization") or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def authenticate(request: Credentials) -> reads.AuthUser:
    """The user a bearer token names, or the contract's 401/403/404/400."""
    token = bearer_token(request)
    settings = request.settings
    user: reads.AuthUser | None
    try:
        try:
            claims = security.verify_access_token(token, settings)
        except security.ForeignToken:
            if not settings.entra_enabled:
                raise
            # Entra ID's validator pins its own algorithm and key set.
            identity = entra.validator(settings).validate(token)
            user, revoked = reads.entra_user(request.db, identity), False
        else:
            user = reads.user(lambda: request.db, claims.user_id)
            revoked = user is not None and user.token_version != claims.token_version
    except (security.InvalidToken, entra.InvalidToken, crud.EntraTenantMismatch) as exc:
        logger.info("Rejected token: %s", exc or type(exc).__name__)
        raise HTTPError(403, INVALID_CREDENTIALS) from None
    except entra.InvalidIdentity as exc:
        logger.info("Rejected Entra ID identity: %s", exc)
        raise HTTPError(403, str(exc)) from None
    except entra.KeysUnavailable as exc:
        raise HTTPError(
            503, "Service temporarily unavailable", {"Retry-After": str(exc.retry_after)}
        ) from None
    if user is None:
        raise HTTPError(404, "User not found")
    if not user.is_active:
        raise HTTPError(400, "Inactive user")
    if revoked:  # issued before a password change, a reset or a deactivation
        logger.info("Rejected token: issued before the user's tokens were revoked")
        raise HTTPError(403, INVALID_CREDENTIALS)
    return user


async def cached_user(request: Credentials, *, superuser: bool) -> reads.AuthUser | None:
    """The caller, on the event loop, when everything needed is at hand without blocking and
    every check passes: a local token (verified already, or now: no I/O), the user's record in
    Redis, active, issued at the record's token version, a superuser where one is required.

    None for anything else, failures included: the caller then runs ``authorize`` on a thread,
    which answers (and logs) each case as it always has, so an error never has two versions.
    """
    token = _bearer(request)
    if token is None:
        return None
    try:
        claims = security.verify_access_token(token, request.settings)
    except security.InvalidToken:  # an Entra ID token too: its keys may need fetching
        return None
    user = await reads.cached_user(claims.user_id)
    if (
        user is None
        or not user.is_active
        or user.token_version != claims.token_version
        or (superuser and not user.is_superuser)
    ):
        return None
    return user


def authorize(request: Credentials, *, superuser: bool) -> reads.AuthUser:
    user = authenticate(request)
    if superuser and not user.is_superuser:
        raise HTTPError(403, NOT_ENOUGH_PRIVILEGES)
    return user
