"""Entra ID (Azure AD) access tokens for this API: the tenant's key set and the claims.

Tokens are RS256 only, with the audience ``AZURE_CLIENT_ID`` (or ``api://`` it) and the v1 or
v2 issuer of ``AZURE_TENANT_ID``. The identity is ``oid`` within ``tid``, which cannot change;
the address and name claims are mutable and unverified, so they only seed a new account, and
they are checked before anything is stored (a bad claim is a 403 naming it).

The key set is fetched on demand: an unknown key id refetches it at most once per cooldown, at
most one fetch is in flight, and a failed fetch starts a short window in which no other fetch
is tried. While a fetch runs or after one failed, a token with a key id that is not known yet
fails at once (503 with ``Retry-After``), so a hung key endpoint costs one request its timeout.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from shared.config import Settings

logger = logging.getLogger(__name__)

ALGORITHM = "RS256"
LEEWAY_SECONDS = 60
FETCH_TIMEOUT_SECONDS = 5.0
KEYS_LIFESPAN_SECONDS = 3600.0
MAX_FAILURE_WINDOW_SECONDS = 5.0
MAX_KEY_SET_BYTES = 1 << 20
MAX_NAME_LENGTH = 255
ADDRESS_CLAIMS = ("preferred_username", "email", "upn")


class InvalidToken(Exception):
    """Signature, expiry, audience, issuer or a required claim failed; the caller answers 403."""


class InvalidIdentity(Exception):
    """A genuine token whose claims cannot seed an account; the message names the claim."""


class KeysUnavailable(Exception):
    """The key set cannot be had now; the caller answers 503 with ``Retry-After``."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"Entra ID key set unavailable; retry in {retry_after:.1f} s")
        self.retry_after = max(1, math.ceil(retry_after))


@dataclass(frozen=True)
class EntraIdentity:
    oid: uuid.UUID
    tid: uuid.UUID
    email: str | None  # None for an application (client credentials): it has no mailbox
    name: str | None
    is_admin: bool


class KeySet:
    """The signing keys published at ``url``, by key id."""

    def __init__(self, url: str, cooldown: float) -> None:
        self._url = url
        self._cooldown = cooldown
        self._failure_window = max(1.0, min(MAX_FAILURE_WINDOW_SECONDS, cooldown))
        self._keys: dict[str, Any] = {}
        self._fetched_at = -math.inf
        self._failed_until = -math.inf
        self._fetching = threading.Lock()

    def key(self, kid: str) -> Any:
        """The public key for ``kid``; InvalidToken if the tenant does not publish it."""
        known = self._keys.get(kid)
        now = time.monotonic()
        if known is not None and now - self._fetched_at < KEYS_LIFESPAN_SECONDS:
            return known
        if known is None and now - self._fetched_at < self._cooldown:
            raise InvalidToken("unknown key id")
        if now < self._failed_until or not self._fetching.acquire(blocking=False):
            if known is not None:
                return known  # expired, but a refresh is failing or running: keep it meanwhile
            raise KeysUnavailable(max(1.0, self._failed_until - now))
        try:
            fetched = time.monotonic() - self._fetched_at < self._cooldown or self._refresh()
        finally:
            self._fetching.release()
        key = self._keys.get(kid)
        if key is not None:
            return key
        if not fetched:
            raise KeysUnavailable(self._failure_window)
        raise InvalidToken("unknown key id")

    def _refresh(self) -> bool:
        """Fetch the key set; False (and the failure window starts) when that fails."""
        try:
            with urllib.request.urlopen(self._url, timeout=FETCH_TIMEOUT_SECONDS) as response:  # noqa: S310 (https by the production rules)
                body = response.read(MAX_KEY_SET_BYTES + 1)
            if len(body) > MAX_KEY_SET_BYTES:
                raise ValueError("key set too large")
            document = json.loads(body)
            if not isinstance(document, dict):
                raise ValueError("key set is not a JSON object")
            key_set = jwt.PyJWKSet.from_dict(document)
        except (OSError, ValueError, jwt.PyJWTError) as exc:
            self._failed_until = time.monotonic() + self._failure_window
            logger.error("Entra ID key set unreachable (%s)", type(exc).__name__)
            return False
        self._keys = {key.key_id: key.key for key in key_set.keys if key.key_id}
        self._fetched_at = time.monotonic()
        return True


class EntraTokenValidator:
    def __init__(self, settings: Settings) -> None:
        assert settings.azure_tenant_id and settings.azure_client_id
        tenant = settings.azure_tenant_id
        authority = settings.azure_authority_host
        self._keys = KeySet(
            f"{authority}/{tenant}/discovery/v2.0/keys", settings.azure_jwks_cooldown_seconds
        )
        self._audiences = [settings.azure_client_id, f"api://{settings.azure_client_id}"]
        self._issuers = [f"{authority}/{tenant}/v2.0", f"https://sts.windows.net/{tenant}/"]
        # The signing keys are Entra ID's, shared by every tenant: the issuer names the tenant,
        # and the tenant id the identity is keyed by must be that same tenant.
        self._tenant_id = _uuid_or_none(tenant)
        self._admin_role = settings.azure_admin_role

    def validate(self, token: str) -> EntraIdentity:
        """The identity of a valid token; InvalidToken, InvalidIdentity or KeysUnavailable."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as exc:
            raise InvalidToken(type(exc).__name__) from None
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("no key id")
        key = self._keys.key(kid)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self._audiences,
                issuer=self._issuers,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "nbf", "iat", "iss", "aud", "oid", "tid"]},
            )
            oid = uuid.UUID(str(claims["oid"]))
            tid = uuid.UUID(str(claims["tid"]))
        except (jwt.PyJWTError, ValueError) as exc:
            raise InvalidToken(type(exc).__name__) from None
        if self._tenant_id is not None and tid != self._tenant_id:
            raise InvalidToken("tid is not the configured tenant")
        roles = claims.get("roles")
        return EntraIdentity(
            oid=oid,
            tid=tid,
            email=_address(claims),
            name=_name(claims),
            is_admin=isinstance(roles, list) and self._admin_role in roles,
        )


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None  # a domain name: the issuer check alone names the tenant


def _address(claims: dict[str, Any]) -> str | None:
    """The first address claim present, validated as the API validates an email; None if none."""
    from pydantic import ValidationError

    from shared.schemas import email_adapter

    for claim in ADDRESS_CLAIMS:
        value = claims.get(claim)
        if value is None or value == "":
            continue
        problem = InvalidIdentity(
            f"The {claim} claim of the Entra ID token is not an email address of at most 255 "
            "characters"
        )
        if not isinstance(value, str) or "\x00" in value:
            raise problem
        try:
            return email_adapter().validate_python(value.strip())
        except ValidationError:
            raise problem from None
    return None


def _name(claims: dict[str, Any]) -> str | None:
    value = claims.get("name")
    if value is None or value == "":
        return None
    if not isinstance(value, str) or "\x00" in value or len(value) > MAX_NAME_LENGTH:
        raise InvalidIdentity(
            f"The name claim of the Entra ID token must be text of at most {MAX_NAME_LENGTH} "
            "characters without NUL"
        )
    return value


@functools.cache
def validator(settings: Settings) -> EntraTokenValidator:
    """One validator (and key set) per process and configuration."""
    return EntraTokenValidator(settings)
