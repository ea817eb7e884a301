"""The verified-token cache: a token is checked in full once, and a hit is never looser than
the full check (expiry again on every use, the whole token string as the key, bounded)."""

import time
import uuid

import jwt
import pytest

from shared import security
from shared.config import load_settings
from shared.verified_tokens import VerifiedTokens
from tests.conftest import TEST_SECRETS


@pytest.fixture
def settings():
    security._verified.clear()
    yield load_settings({"ENVIRONMENT": "development", **TEST_SECRETS})
    security._verified.clear()


def _token(key: str, *, seconds: int = 600, **overrides: object) -> str:
    now = int(time.time())
    claims = {
        "sub": str(uuid.uuid4()),
        "type": "access",
        "ver": 2,
        "iat": now,
        "exp": now + seconds,
    }
    return jwt.encode({**claims, **overrides}, key, algorithm="HS256")


def test_a_verified_token_is_remembered_with_its_claims(settings):
    token = _token(settings.jwt_secret_key)
    first = security.verify_access_token(token, settings)
    assert (settings.jwt_secret_key, token) in security._verified
    assert security.verify_access_token(token, settings) is first
    assert first.token_version == 2


def test_a_cached_token_is_refused_once_it_expires(settings):
    token = _token(settings.jwt_secret_key, seconds=2)
    claims = security.verify_access_token(token, settings)
    assert (settings.jwt_secret_key, token) in security._verified
    time.sleep(max(0.0, claims.expires_at - time.time()) + 0.05)
    with pytest.raises(security.InvalidToken):
        security.verify_access_token(token, settings)
    assert (settings.jwt_secret_key, token) not in security._verified


def test_a_token_differing_in_one_byte_from_a_cached_one_is_checked_in_full(settings):
    token = _token(settings.jwt_secret_key)
    security.verify_access_token(token, settings)
    header, payload, signature = token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    for tampered in (f"{header}.{payload}.{flipped}", token + "x", f"{header}.{payload}."):
        with pytest.raises(security.InvalidToken):
            security.verify_access_token(tampered, settings)


def test_a_changed_signing_key_verifies_cached_tokens_again(settings):
    token = _token(settings.jwt_secret_key)
    security.verify_access_token(token, settings)
    rotated = load_settings(
        {"ENVIRONMENT": "development", **TEST_SECRETS, "JWT_SECRET_KEY": "another-key-" * 6}
    )
    with pytest.raises(security.InvalidToken):
        security.verify_access_token(token, rotated)


def test_refused_tokens_are_not_remembered(settings):
    for token in (
        _token("some-other-key-" * 4),
        _token(settings.jwt_secret_key, seconds=-5),
        _token(settings.jwt_secret_key, type="password_reset"),
    ):
        with pytest.raises(security.InvalidToken):
            security.verify_access_token(token, settings)
    assert len(security._verified) == 0


def test_a_token_of_another_algorithm_is_foreign_and_not_remembered(settings):
    token = jwt.encode({"sub": "x"}, "k" * 64, algorithm="HS512")
    with pytest.raises(security.ForeignToken):
        security.verify_access_token(token, settings)
    assert len(security._verified) == 0


def test_the_cache_keeps_the_most_recently_used_entries_within_its_bound():
    cache: VerifiedTokens[int] = VerifiedTokens(3)
    far = time.time() + 600
    for number in range(3):
        cache.put(f"t{number}", number, far)
    assert cache.get("t0", time.time()) == 0  # t1 is now the least recently used
    cache.put("t3", 3, far)
    assert len(cache) == 3
    assert "t1" not in cache
    assert [cache.get(f"t{n}", time.time()) for n in (0, 2, 3)] == [0, 2, 3]
