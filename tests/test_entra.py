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

    env = app_env(pg_url, redis_url, **tenant.app_settings(ADMIN_ROLE, COOLDOWN))
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


def test_a_deactivated_entra_superuser_stays_out_whatever_its_token_says(entra_api, tenant):
    """The runbook's way to cut off a superuser at once: its token's role cannot undo it."""
    admin = tenant.token(roles=[ADMIN_ROLE])
    account = _me(entra_api, admin).json()
    assert account["is_superuser"] is True
    deactivated = entra_api.request(
        "PATCH",
        f"/api/v1/users/{account['id']}",
        json={"is_active": False},
        headers=entra_api.admin.headers,
    )
    assert deactivated.status_code == 200, deactivated.text
    for _ in range(2):  # and a second request cannot have re-activated it either
        refused = _me(entra_api, admin)
        assert (refused.status_code, refused.json()) == (400, {"detail": "Inactive user"})


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
        "another tenant's tid",
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
        "another tenant's tid": lambda: tenant.token(tid=str(uuid.uuid4())),
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


# --- linking: explicit, proven by both sides, never by a matching address ---------------------

LINK_ME = "/api/v1/users/me/entra-identity"


def _link_me(api, user, token, password=None):
    body = {"entra_token": token, "current_password": password or user.password}
    return api.request("POST", LINK_ME, json=body, headers=user.headers)


def test_an_account_links_an_entra_identity_with_its_token_and_its_password(entra_api, tenant):
    user = entra_api.new_user()
    oid = str(uuid.uuid4())
    linked = _link_me(entra_api, user, tenant.token(oid=oid))
    assert linked.status_code == 200, linked.text
    assert linked.json()["id"] == user.id and linked.json()["email"] == user.email
    # From now on that identity signs in to this account, whatever address it claims.
    me = _me(entra_api, tenant.token(oid=oid, preferred_username="other@contoso.example.com"))
    assert me.json()["id"] == user.id
    again = _link_me(entra_api, user, tenant.token(oid=oid))
    assert again.status_code == 200  # linking the same identity twice changes nothing


def test_linking_needs_the_right_password_and_a_valid_entra_token(entra_api, tenant):
    user = entra_api.new_user()
    oid = str(uuid.uuid4())
    wrong = _link_me(entra_api, user, tenant.token(oid=oid), password="not-the-password")
    assert wrong.status_code == 400 and wrong.json() == {"detail": "Incorrect password"}
    forged = _link_me(entra_api, user, tenant.token(oid=oid, aud=str(uuid.uuid4())))
    assert forged.status_code == 400 and forged.json() == {"detail": "Invalid Entra ID token"}
    # Nothing was linked: the identity's first sign-in gets an account of its own.
    assert _me(entra_api, tenant.token(oid=oid)).json()["id"] != user.id


def test_an_identity_with_its_own_account_or_an_account_already_linked_is_409(entra_api, tenant):
    user = entra_api.new_user()
    taken = str(uuid.uuid4())
    assert _me(entra_api, tenant.token(oid=taken)).status_code == 200  # provisioned
    conflict = _link_me(entra_api, user, tenant.token(oid=taken))
    assert conflict.status_code == 409
    assert conflict.json() == {
        "detail": "This Entra ID identity already signs in to another account"
    }
    assert _link_me(entra_api, user, tenant.token(oid=str(uuid.uuid4()))).status_code == 200
    other = _link_me(entra_api, user, tenant.token(oid=str(uuid.uuid4())))
    assert other.status_code == 409
    assert other.json() == {"detail": "This account is already linked to another Entra ID identity"}


def test_a_superuser_links_and_unlinks_an_identity_by_object_id(entra_api, tenant):
    user = entra_api.new_user()
    oid = str(uuid.uuid4())
    path = f"/api/v1/users/{user.id}/entra-identity"
    body = {"oid": oid, "tid": tenant.tenant_id}
    assert entra_api.request("PUT", path, json=body, headers=user.headers).status_code == 403
    linked = entra_api.request("PUT", path, json=body, headers=entra_api.admin.headers)
    assert linked.status_code == 200, linked.text
    assert _me(entra_api, tenant.token(oid=oid)).json()["id"] == user.id
    unlinked = entra_api.request("DELETE", path, headers=entra_api.admin.headers)
    assert unlinked.status_code == 200
    assert _me(entra_api, tenant.token(oid=oid)).json()["id"] != user.id
    missing = f"/api/v1/users/{uuid.uuid4()}/entra-identity"
    assert entra_api.request("PUT", missing, json=body, headers=entra_api.admin.headers).json() == {
        "detail": "The user with this id does not exist in the system"
    }


def test_an_identity_of_another_tenant_never_signs_in_to_a_linked_account(entra_api, tenant):
    user = entra_api.new_user()
    oid = str(uuid.uuid4())
    path = f"/api/v1/users/{user.id}/entra-identity"
    body = {"oid": oid, "tid": str(uuid.uuid4())}  # the same object id, in another tenant
    assert (
        entra_api.request("PUT", path, json=body, headers=entra_api.admin.headers).status_code
        == 200
    )
    response = _me(entra_api, tenant.token(oid=oid))
    assert response.status_code == 403 and response.json() == INVALID


def test_linking_is_refused_when_entra_id_is_off(api):
    user = api.new_user()
    response = _link_me(api, user, "a.b.c")
    assert response.status_code == 400
    assert response.json() == {"detail": "Entra ID sign-in is not enabled"}
