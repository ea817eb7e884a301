"""Local tokens fully validated: every forgery and misuse is a 403, never a 500."""

import base64
import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import TEST_SECRETS

INVALID = {"detail": "Could not validate credentials"}
JWT_KEY = TEST_SECRETS["JWT_SECRET_KEY"]


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(user_id: str, **overrides):
    now = int(time.time())
    claims = {"sub": user_id, "type": "access", "iat": now, "exp": now + 600}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _get_me(api, token: str):
    return api.request("GET", "/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})


def test_a_well_formed_token_works(api):
    user = api.new_user()
    assert _get_me(api, jwt.encode(_claims(user.id), JWT_KEY, algorithm="HS256")).status_code == 200


def _public_key_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _forgeries(user_id: str) -> dict[str, str]:
    good = jwt.encode(_claims(user_id), JWT_KEY, algorithm="HS256")
    header, _payload, signature = good.split(".")
    tampered_payload = _b64({**_claims(user_id), "sub": str(uuid.uuid4())})
    import hashlib
    import hmac

    # alg confusion: HS256 keyed with an RSA public key, as if the server used it as a secret.
    pem = _public_key_pem()
    confused_header = _b64({"alg": "HS256", "typ": "JWT"})
    confused_body = _b64(_claims(user_id))
    confused_sig = hmac.new(pem, f"{confused_header}.{confused_body}".encode(), hashlib.sha256)
    confused = (
        f"{confused_header}.{confused_body}."
        + base64.urlsafe_b64encode(confused_sig.digest()).rstrip(b"=").decode()
    )
    return {
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(user_id))}.",
        "alg None signed": jwt.encode(_claims(user_id), "", algorithm="none"),
        "HS256 with the RSA public key": confused,
        "expired": jwt.encode(
            _claims(user_id, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600),
            JWT_KEY,
            algorithm="HS256",
        ),
        "tampered payload": f"{header}.{tampered_payload}.{signature}",
        "wrong key": jwt.encode(_claims(user_id), "another-key-" + "x" * 32, algorithm="HS256"),
        "missing sub": jwt.encode(_claims(user_id, sub=None), JWT_KEY, algorithm="HS256"),
        "sub not a uuid": jwt.encode(_claims(user_id, sub="admin"), JWT_KEY, algorithm="HS256"),
        "missing exp": jwt.encode(_claims(user_id, exp=None), JWT_KEY, algorithm="HS256"),
        "reset token as access token": jwt.encode(
            _claims(user_id, type="password_reset"), TEST_SECRETS["SECRET_KEY"], algorithm="HS256"
        ),
        "reset type under the access key": jwt.encode(
            _claims(user_id, type="password_reset"), JWT_KEY, algorithm="HS256"
        ),
        "HS512": jwt.encode(_claims(user_id), JWT_KEY, algorithm="HS512"),
        "RS256 while Entra ID is off": jwt.encode(
            _claims(user_id),
            rsa.generate_private_key(public_exponent=65537, key_size=2048),
            algorithm="RS256",
        ),
        "garbage": "not.a.token",
        "not even dots": "abcdef",
    }


@pytest.mark.parametrize(
    "attack",
    [
        "alg none",
        "alg None signed",
        "HS256 with the RSA public key",
        "expired",
        "tampered payload",
        "wrong key",
        "missing sub",
        "sub not a uuid",
        "missing exp",
        "reset token as access token",
        "reset type under the access key",
        "HS512",
        "RS256 while Entra ID is off",
        "garbage",
        "not even dots",
    ],
)
def test_forged_or_misused_tokens_are_403(api, attack):
    user = api.new_user()
    response = _get_me(api, _forgeries(user.id)[attack])
    assert response.status_code == 403, attack
    assert response.json() == INVALID


def test_an_access_token_is_not_a_reset_token(api):
    user = api.new_user()
    response = api.request(
        "POST", "/api/v1/reset-password/", json={"token": user.token, "new_password": "password-9"}
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "Invalid token"}
