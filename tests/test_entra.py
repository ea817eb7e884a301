"""Entra ID tokens against a loopback JWKS: accepted when right, 403 for every wrong claim."""

import time
import uuid

import pytest

from tests.conftest import SUPERUSER, SUPERUSER_PASSWORD, app_env, create_superuser
from tests.support.api import Api
from tests.support.entra import Tenant

ADMIN_ROLE = "Stratus.Admin"
INVALID = {"detail": "Could not validate credentials"}
COOLDOWN = 1.0


@pytest.fixture(scope="module")
def tenant():
    with Tenant() as t:
        yield t


@pytest.fixture(scope="module")
def entra_api(pg_url, redis_url, tenant):
    from tests.support.devhost_process import DevhostProcess

    env = app_env(
        pg_url,
        redis_url,
        AZURE_TENANT_ID=tenant.tenant_id,
        AZURE_CLIENT_ID=tenant.client_id,
        AZURE_ADMIN_ROLE=ADMIN_ROLE,
        AZURE_AUTHORITY_HOST=tenant.authority,
        AZURE_JWKS_COOLDOWN_SECONDS=str(COOLDOWN),
    )
    create_superuser(env)
    with (
        DevhostProcess(env=env) as server,
        Api(server.url, SUPERUSER, SUPERUSER_PASSWORD, env) as client,
    ):
        yield client


def _me(api, token):
    return api.request("GET", "/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})


def test_a_valid_token_signs_in_and_provisions_the_user_once(entra_api, tenant):
    oid = str(uuid.uuid4())
    email = f"ada-{oid[:6]}@contoso.example.com"
    first = _me(entra_api, tenant.token(oid=oid, preferred_username=email, name="Ada"))
    assert first.status_code == 200, first.text
    assert first.json()["email"] == email
    assert first.json()["full_name"] == "Ada"
    assert first.json()["is_superuser"] is False
    again = _me(entra_api, tenant.token(oid=oid, preferred_username=email))
    assert again.json()["id"] == first.json()["id"]


@pytest.mark.parametrize("issuer", ["v1", "v2"])
@pytest.mark.parametrize("audience", ["client id", "api uri"])
def test_both_issuers_and_both_audience_forms_are_accepted(entra_api, tenant, issuer, audience):
    token = tenant.token(
        iss=tenant.v1_issuer if issuer == "v1" else tenant.v2_issuer,
        aud=tenant.client_id if audience == "client id" else f"api://{tenant.client_id}",
    )
    assert _me(entra_api, token).status_code == 200


def test_the_admin_role_makes_a_superuser_and_losing_it_demotes(entra_api, tenant):
    oid = str(uuid.uuid4())
    admin = tenant.token(oid=oid, roles=[ADMIN_ROLE])
    users = entra_api.request("GET", "/api/v1/users/", headers={"Authorization": f"Bearer {admin}"})
    assert users.status_code == 200
    assert _me(entra_api, admin).json()["is_superuser"] is True
    plain = tenant.token(oid=oid, roles=["Reader"])
    assert _me(entra_api, plain).json()["is_superuser"] is False
    refused = entra_api.request(
        "GET", "/api/v1/users/", headers={"Authorization": f"Bearer {plain}"}
    )
    assert refused.status_code == 403


def test_a_rotated_key_is_fetched_and_unknown_kids_cannot_force_fetches(entra_api, tenant):
    assert _me(entra_api, tenant.token()).status_code == 200
    time.sleep(COOLDOWN + 0.1)
    kid = tenant.add_key(publish=False)
    fetches = tenant.fetches
    for _ in range(5):  # a burst of unknown kids: one refresh per cooldown, not one per token
        unknown = _me(entra_api, tenant.token(kid=kid))
        assert unknown.status_code == 403 and unknown.json() == INVALID
    assert tenant.fetches == fetches + 1
    tenant.publish(kid)
    time.sleep(COOLDOWN + 0.1)
    assert _me(entra_api, tenant.token(kid=kid)).status_code == 200
    assert tenant.fetches == fetches + 2


@pytest.mark.parametrize(
    "attack",
    [
        "wrong audience",
        "wrong issuer",
        "other tenant's v2 issuer",
        "expired",
        "not yet valid",
        "missing oid",
        "oid not a uuid",
        "unknown kid",
        "HS256 signed with the public key",
    ],
)
def test_wrong_entra_tokens_are_403(entra_api, tenant, attack):
    now = int(time.time())
    tokens = {
        "wrong audience": lambda: tenant.token(aud=str(uuid.uuid4())),
        "wrong issuer": lambda: tenant.token(iss="https://evil.example.com/v2.0"),
        "other tenant's v2 issuer": lambda: tenant.token(
            iss=f"{tenant.authority}/{uuid.uuid4()}/v2.0"
        ),
        "expired": lambda: tenant.token(iat=now - 7200, nbf=now - 7200, exp=now - 3600),
        "not yet valid": lambda: tenant.token(nbf=now + 3600, exp=now + 7200),
        "missing oid": lambda: tenant.token(oid=None),
        "oid not a uuid": lambda: tenant.token(oid="admin"),
        "unknown kid": lambda: tenant.token(kid=tenant.add_key(publish=False)),
        "HS256 signed with the public key": lambda: _hs256_with_public_jwk(tenant),
    }
    response = _me(entra_api, tokens[attack]())
    assert response.status_code == 403, attack
    assert response.json() == INVALID


def _hs256_with_public_jwk(tenant):
    import jwt

    public_n = tenant.jwks()["keys"][0]["n"]
    return jwt.encode(
        {
            "sub": str(uuid.uuid4()),
            "type": "access",
            "iat": int(time.time()),
            "exp": int(time.time()) + 60,
        },
        public_n,
        algorithm="HS256",
        headers={"kid": tenant.published[0]},
    )


def test_local_tokens_still_work_beside_entra(entra_api):
    user = entra_api.new_user()
    assert entra_api.request("GET", "/api/v1/users/me", headers=user.headers).status_code == 200


def test_an_application_token_without_a_mailbox_gets_a_reserved_address(entra_api, tenant):
    oid = str(uuid.uuid4())
    token = tenant.token(oid=oid, preferred_username=None, name=None, roles=[ADMIN_ROLE])
    me = _me(entra_api, token)
    assert me.status_code == 200
    assert me.json()["email"] == f"{oid}@entra-application.example"
    assert me.json()["is_superuser"] is True
