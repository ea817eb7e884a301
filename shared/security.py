"""Passwords and local tokens: plain functions over strings and settings, no web types.

Two signing keys: ``JWT_SECRET_KEY`` signs access tokens, ``SECRET_KEY`` signs password-reset
tokens; each token also carries its ``type``, so neither can stand in for the other even where
the keys are equal (development). Local tokens are HS256 only, and the algorithm is chosen by
which validator runs, never by the token's own header (Entra ID tokens: ``shared.entra``).

An access token carries its user's token version (``ver``): a password change, a reset or a
deactivation bumps the version, and every token issued before it stops matching the user's
record, which authentication reads on every request anyway (no extra query). A verified access
token is remembered until it expires (``shared.verified_tokens``), so its signature is checked
once per process, not once per request; the version check stays on every request.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from shared.config import Settings, get_settings
from shared.verified_tokens import VerifiedTokens

LOCAL_ALGORITHM = "HS256"
ACCESS = "access"
PASSWORD_RESET = "password_reset"  # noqa: S105 (a token type, not a secret)
# A queued hash gives up after this long rather than hold a worker thread indefinitely.
HASH_QUEUE_WAIT_SECONDS = 5.0
# Access tokens remembered per process once verified: a few hundred bytes each.
VERIFIED_TOKENS_MAXSIZE = 4096

# argon2id with argon2-cffi's defaults (t=3, m=64 MiB, p=4): the template's cost.
_hasher = PasswordHasher()


class InvalidToken(Exception):
    """Signature, expiry, type or claims failed; the caller answers 403."""


class ForeignToken(InvalidToken):
    """Not signed with the local algorithm: another validator's token (Entra ID), or none's."""


class HashingBusy(Exception):
    """Every hashing slot and queue place of this instance is taken; the caller answers 503."""


class HashSlots:
    """At most ``concurrency`` argon2 hashes at a time, and at most ``queue`` more waiting.

    More hashes at once only queue inside argon2 while each holds its 64 MiB (one per CPU is
    also the fastest: bench/RESULTS.md). Without a bound on the waiting ones, a burst of sign-ins
    would hold every worker thread of the instance, and every other route would wait behind it;
    past the queue a hash fails at once instead.
    """

    def __init__(self, concurrency: int, queue: int) -> None:
        self._concurrency = concurrency
        self._admissible = concurrency + queue
        self._changed = threading.Condition()
        self._running = self._admitted = 0

    @property
    def full(self) -> bool:
        """Whether a hash asked for now would be refused (a hint: no place is held for it)."""
        return self._admitted >= self._admissible

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        with self._changed:
            if self._admitted >= self._admissible:
                raise HashingBusy
            self._admitted += 1
            if not self._changed.wait_for(
                lambda: self._running < self._concurrency, HASH_QUEUE_WAIT_SECONDS
            ):
                self._admitted -= 1
                raise HashingBusy
            self._running += 1
        try:
            yield
        finally:
            with self._changed:
                self._running -= 1
                self._admitted -= 1
                self._changed.notify()


@functools.cache
def hash_slots() -> HashSlots:
    settings = get_settings()
    return HashSlots(settings.password_hash_concurrency, settings.password_hash_queue)


def hash_password(password: str) -> str:
    with hash_slots().held():
        return _hasher.hash(password)


@functools.cache
def _dummy_hash() -> str:
    return hash_password("stratus-timing-equaliser")


def verify_password(password: str, hashed: str | None) -> bool:
    """Constant-time check; an account without a password costs the same as a wrong one."""
    stored = hashed or _dummy_hash()
    try:
        with hash_slots().held():
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


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    token_version: int
    expires_at: float  # the POSIX time of its exp claim


_verified: VerifiedTokens[AccessClaims] = VerifiedTokens(VERIFIED_TOKENS_MAXSIZE)


def create_access_token(user_id: uuid.UUID, token_version: int, settings: Settings) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "type": ACCESS,
        "ver": token_version,
        "iat": now,
        "exp": now + timedelta(minutes=settings.jwt_access_token_expire_minutes),
    }
    return jwt.encode(claims, settings.jwt_secret_key, algorithm=LOCAL_ALGORITHM)


def verify_access_token(token: str, settings: Settings) -> AccessClaims:
    """The claims of a valid access token: verified in full on first sight, then remembered
    until it expires (keyed by the signing key too, so a changed key verifies again)."""
    key = (settings.jwt_secret_key, token)
    claims = _verified.get(key, time.time())
    if claims is None:
        claims = decode_access_token(token, settings)
        _verified.put(key, claims, claims.expires_at)
    return claims


def decode_access_token(token: str, settings: Settings) -> AccessClaims:
    """The full check: signature (HS256 only), expiry, type and claims; ForeignToken for a
    token signed with any other algorithm."""
    claims = _decode_local(token, settings.jwt_secret_key, ACCESS)
    try:
        user_id = uuid.UUID(str(claims["sub"]))
    except ValueError:
        raise InvalidToken("sub is not a UUID") from None
    # Tokens issued before versions existed carry none: they are version 0, as are their users.
    version = claims.get("ver", 0)
    if type(version) is not int or version < 0:
        raise InvalidToken("ver is not a version")
    # jwt.decode checked exp as int(exp) does; the cache checks it the same way.
    return AccessClaims(user_id, version, float(int(claims["exp"])))


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
    except jwt.InvalidAlgorithmError:
        raise ForeignToken("not HS256") from None
    except jwt.PyJWTError as exc:
        raise InvalidToken(type(exc).__name__) from None
    if claims.get("type") != token_type:
        raise InvalidToken("wrong token type")
    return claims
