"""Passwords, local JWTs, Entra ID token validation, and the current user of a request.

Two signing keys: ``JWT_SECRET_KEY`` signs access tokens, ``SECRET_KEY`` signs password-reset
tokens; each token also carries its ``type``, so neither can stand in for the other even where
the keys are equal (development). Local tokens are HS256 only, Entra ID tokens RS256 only, and
the algorithm is chosen by which validator runs, never by the token's own header.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from shared.config import Settings
from shared.http import HTTPError

if TYPE_CHECKING:
    from shared.http import ApiRequest
    from shared.schemas import UserPublic

logger = logging.getLogger(__name__)

LOCAL_ALGORITHM = "HS256"
ENTRA_ALGORITHM = "RS256"
ENTRA_LEEWAY_SECONDS = 60
APPLICATION_EMAIL_DOMAIN = "entra-application.example"  # RFC 2606: never a real mailbox
ACCESS = "access"
PASSWORD_RESET = "password_reset"  # noqa: S105 (a token type, not a secret)

NOT_AUTHENTICATED = HTTPError(401, "Not authenticated", {"WWW-Authenticate": "Bearer"})
INVALID_CREDENTIALS = "Could not validate credentials"
NOT_ENOUGH_PRIVILEGES = "The user doesn't have enough privileges"

# argon2id with argon2-cffi's defaults (t=3, m=64 MiB, p=4): the template's cost.
_hasher = PasswordHasher()
# At most one hash per CPU at a time: more only queue inside argon2 while each holds its 64 MiB
# (measured: 2 at a time on 2 CPUs is also the fastest; bench/RESULTS.md).
_hashing = threading.BoundedSemaphore(os.cpu_count() or 1)


class InvalidToken(Exception):
    """Signature, expiry, type or claims failed; the caller answers 403."""


def hash_password(password: str) -> str:
    with _hashing:
        return _hasher.hash(password)


@functools.cache
def _dummy_hash() -> str:
    return hash_password("stratus-timing-equaliser")


def verify_password(password: str, hashed: str | None) -> bool:
    """Constant-time check; an account without a password costs the same as a wrong one."""
    stored = hashed or _dummy_hash()
    try:
        with _hashing:
            return _hasher.verify(stored, password) and hashed is not None
    except (VerificationError, InvalidHashError):
        return False


def burn_password_check(password: str) -> None:
    """Spend one verification, so an unknown email answers as slowly as a wrong password."""
    verify_password(password, None)


def password_fingerprint(hashed: str | None) -> str:
    """Changes whenever the password does: makes a reset token single-use."""
    return hashlib.sha256((hashed or "").encode()).hexdigest()[:16]


# --- local tokens ----------------------------------------------------------------------------


def create_access_token(user_id: uuid.UUID, settings: Settings) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "type": ACCESS,
        "iat": now,
        "exp": now + timedelta(minutes=settings.jwt_access_token_expire_minutes),
    }
    return jwt.encode(claims, settings.jwt_secret_key, algorithm=LOCAL_ALGORITHM)


def decode_access_token(token: str, settings: Settings) -> uuid.UUID:
    claims = _decode_local(token, settings.jwt_secret_key, ACCESS)
    try:
        return uuid.UUID(str(claims["sub"]))
    except ValueError:
        raise InvalidToken("sub is not a UUID") from None


def create_password_reset_token(email: str, hashed_password: str | None, settings: Settings) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": email,
        "type": PASSWORD_RESET,
        "pwd": password_fingerprint(hashed_password),
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(hours=settings.email_reset_token_expire_hours),
    }
    return jwt.encode(claims, settings.secret_key, algorithm=LOCAL_ALGORITHM)


@dataclass(frozen=True)
class ResetClaims:
    email: str
    fingerprint: str


def decode_password_reset_token(token: str, settings: Settings) -> ResetClaims:
    claims = _decode_local(token, settings.secret_key, PASSWORD_RESET)
    if not isinstance(claims.get("pwd"), str):
        raise InvalidToken("missing password fingerprint")
    return ResetClaims(email=str(claims["sub"]), fingerprint=claims["pwd"])


def _decode_local(token: str, key: str, token_type: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[LOCAL_ALGORITHM],
            options={"require": ["exp", "iat", "sub", "type"]},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(type(exc).__name__) from None
    if claims.get("type") != token_type:
        raise InvalidToken("wrong token type")
    return claims


# --- Entra ID tokens -------------------------------------------------------------------------


@dataclass(frozen=True)
class EntraIdentity:
    oid: uuid.UUID
    email: str
    name: str | None
    is_admin: bool


class EntraTokenValidator:
    """Validates Entra ID (Azure AD) access tokens for this API against the tenant's JWKS."""

    def __init__(self, settings: Settings) -> None:
        assert settings.azure_tenant_id and settings.azure_client_id
        tenant = settings.azure_tenant_id
        authority = settings.azure_authority_host
        # PyJWKClient caches the key set and refetches it when it meets an unknown kid, at most
        # once per cooldown, so a flood of made-up kids cannot turn into a flood of fetches.
        self._jwks = jwt.PyJWKClient(
            f"{authority}/{tenant}/discovery/v2.0/keys",
            cache_keys=True,
            lifespan=3600,
            timeout=5,
            cooldown_duration=settings.azure_jwks_cooldown_seconds,
        )
        self._audiences = [settings.azure_client_id, f"api://{settings.azure_client_id}"]
        self._issuers = [f"{authority}/{tenant}/v2.0", f"https://sts.windows.net/{tenant}/"]
        self._admin_role = settings.azure_admin_role

    def validate(self, token: str) -> EntraIdentity:
        try:
            signing_key = self._jwks.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError:
            logger.error("Entra ID key set unreachable")
            raise HTTPError(503, "Service temporarily unavailable", {"Retry-After": "5"}) from None
        except jwt.PyJWTError as exc:
            raise InvalidToken(type(exc).__name__) from None
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                signing_key.key,
                algorithms=[ENTRA_ALGORITHM],
                audience=self._audiences,
                issuer=self._issuers,
                leeway=ENTRA_LEEWAY_SECONDS,
                options={"require": ["exp", "nbf", "iat", "iss", "aud", "oid"]},
            )
            oid = uuid.UUID(str(claims["oid"]))
        except (jwt.PyJWTError, ValueError) as exc:
            raise InvalidToken(type(exc).__name__) from None
        roles = claims.get("roles")
        email = claims.get("preferred_username") or claims.get("email") or claims.get("upn")
        if not email:
            # An application signing in with client credentials (a daemon, the release's smoke
            # test) has no mailbox: it gets an address under a reserved, undeliverable domain.
            email = f"{oid}@{APPLICATION_EMAIL_DOMAIN}"
        return EntraIdentity(
            oid=oid,
            email=str(email),
            name=str(claims["name"]) if claims.get("name") else None,
            is_admin=isinstance(roles, list) and self._admin_role in roles,
        )


_entra_validators: dict[tuple[str | None, str | None, str], EntraTokenValidator] = {}


def entra_validator(settings: Settings) -> EntraTokenValidator:
    key = (settings.azure_tenant_id, settings.azure_client_id, settings.azure_authority_host)
    validator = _entra_validators.get(key)
    if validator is None:
        validator = _entra_validators[key] = EntraTokenValidator(settings)
    return validator


# --- the current user ------------------------------------------------------------------------


def bearer_token(req: ApiRequest) -> str:
    header = req.header("authorization") or ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NOT_AUTHENTICATED
    return token.strip()


def authenticate(req: ApiRequest) -> UserPublic:
    """The user a bearer token names, or the contract's 401/403/404/400."""
    from shared import reads

    token = bearer_token(req)
    try:
        algorithm = jwt.get_unverified_header(token).get("alg")
        if algorithm == LOCAL_ALGORITHM:
            user = reads.user(req.db, decode_access_token(token, req.settings))
        elif algorithm == ENTRA_ALGORITHM and req.settings.entra_enabled:
            identity = entra_validator(req.settings).validate(token)
            user = reads.entra_user(req.db, identity)
        else:
            raise InvalidToken(f"algorithm {algorithm!r} not accepted")
    except (InvalidToken, jwt.PyJWTError) as exc:
        logger.info("Rejected token: %s", exc)
        raise HTTPError(403, INVALID_CREDENTIALS) from None
    if user is None:
        raise HTTPError(404, "User not found")
    if not user.is_active:
        raise HTTPError(400, "Inactive user")
    return user


def authorize(req: ApiRequest, *, superuser: bool) -> None:
    user = authenticate(req)
    if superuser and not user.is_superuser:
        raise HTTPError(403, NOT_ENOUGH_PRIVILEGES)
    req.user = user
