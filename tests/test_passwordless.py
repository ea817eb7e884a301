"""Entra ID tokens instead of passwords, for PostgreSQL and Redis, up to the token call and past it.

azure-identity's DefaultAzureCredential gets its tokens from an App Service managed identity
endpoint on loopback; PgBouncer (SCRAM) and redis-server (ACL) accept only those tokens, so a
passing test shows the token really was the credential.
"""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import app_env
from tests.support.managed_identity import ManagedIdentityEndpoint, access_token
from tests.support.pgbouncer import PgBouncer
from tests.support.redis_server import RedisServer
from tests.support.services import temporary_database

ROOT = Path(__file__).resolve().parent.parent
POSTGRES = "https://ossrdbms-aad.database.windows.net"
REDIS = "https://redis.azure.com"
IDENTITY = "stratus-func-identity"
OBJECT_ID = str(uuid.uuid4())
DB_TOKEN = access_token(POSTGRES, OBJECT_ID)
REDIS_TOKEN = access_token(REDIS, OBJECT_ID)
API_CLIENT_ID = str(uuid.uuid4())


@pytest.fixture(scope="module")
def bouncer():
    with PgBouncer({IDENTITY: DB_TOKEN}) as pgbouncer:
        yield pgbouncer


@pytest.fixture(scope="module")
def database_name():
    with temporary_database() as url:
        yield url.rsplit("/", 1)[1]


def _env(bouncer, database_name, identity, **overrides):
    env = app_env(
        bouncer.url(IDENTITY, database_name),
        None,
        DB_ENTRA_AUTH="true",
        DB_PGBOUNCER="true",
        # This API's app registration: DefaultAzureCredential must not mistake it for the
        # managed identity to sign in with.
        AZURE_CLIENT_ID=API_CLIENT_ID,
        AZURE_TENANT_ID=str(uuid.uuid4()),
        **identity.env,
        **overrides,
    )
    env["PGPASSWORD"] = ""
    return env


def _ready(url: str, attempts: int = 20) -> httpx.Response:
    for _ in range(attempts):
        response = httpx.get(f"{url}/readyz", timeout=10)
        if response.status_code == 200:
            break
        time.sleep(0.25)
    return response


def _migrate(env):
    return subprocess.run(
        [sys.executable, "manage.py", "--settings", "/nonexistent", "migrate"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_postgresql_with_the_managed_identity_token_as_password(bouncer, database_name):
    from tests.support.devhost_process import DevhostProcess

    with ManagedIdentityEndpoint({POSTGRES: DB_TOKEN}) as identity:
        env = _env(bouncer, database_name, identity)
        migrated = _migrate(env)  # as the release runner does, with its own identity
        assert migrated.returncode == 0, migrated.stderr
        with DevhostProcess(env=env) as server:
            # The first round also pays for imports and the first token: it may time out.
            ready = _ready(server.url)
            assert ready.json()["checks"] == {
                "database": "pass",
                "migrations": "pass",
                "config": "pass",
            }
            signup = {"email": f"mi-{uuid.uuid4().hex[:6]}@example.com", "password": "password123"}
            assert httpx.post(f"{server.url}/api/v1/users/signup", json=signup).status_code == 200
        asked = {request.get("resource") for request in identity.requests}
        assert asked == {POSTGRES}
        # The system-assigned identity: no client id, although AZURE_CLIENT_ID is set.
        assert all("client_id" not in request for request in identity.requests)


def test_a_rejected_token_is_503_not_500(bouncer, database_name):
    from tests.support.devhost_process import DevhostProcess

    wrong = access_token(POSTGRES, str(uuid.uuid4()))
    with ManagedIdentityEndpoint({POSTGRES: wrong}) as identity:
        env = _env(bouncer, database_name, identity, READINESS_CACHE_MS="0")
        with DevhostProcess(env=env) as server:
            ready = httpx.get(f"{server.url}/readyz", timeout=10)
            assert ready.status_code == 503
            assert ready.json()["checks"]["database"] == "fail"
            signup = {"email": "x@example.com", "password": "password123"}
            api = httpx.post(f"{server.url}/api/v1/users/signup", json=signup, timeout=10)
            assert api.status_code == 503
            assert DB_TOKEN not in server.output() and wrong not in server.output()


def test_no_token_at_all_is_503_too(bouncer, database_name):
    from tests.support.devhost_process import DevhostProcess

    with ManagedIdentityEndpoint({}) as identity:  # the endpoint refuses every request
        env = _env(bouncer, database_name, identity, READINESS_CACHE_MS="0")
        with DevhostProcess(env=env) as server:
            signup = {"email": "y@example.com", "password": "password123"}
            api = httpx.post(f"{server.url}/api/v1/users/signup", json=signup, timeout=30)
            assert api.status_code == 503
            assert "database token unavailable" in server.output()


@pytest.fixture
def entra_redis():
    acl = f"user {OBJECT_ID} on >{REDIS_TOKEN} ~* &* +@all"
    with RedisServer(extra_config=[acl], password="operator-password") as server:
        yield server


def test_redis_with_the_managed_identity_token(entra_redis, pg_url):
    from tests.support.api import Api
    from tests.support.devhost_process import DevhostProcess

    with ManagedIdentityEndpoint({REDIS: REDIS_TOKEN}) as identity:
        env = app_env(
            pg_url,
            f"redis://127.0.0.1:{entra_redis.port}/0",
            REDIS_ENTRA_AUTH="true",
            AZURE_CLIENT_ID=API_CLIENT_ID,
            AZURE_TENANT_ID=str(uuid.uuid4()),
            **identity.env,
        )
        from tests.conftest import SUPERUSER, SUPERUSER_PASSWORD, create_superuser

        create_superuser(env)
        with (
            DevhostProcess(env=env) as server,
            Api(server.url, SUPERUSER, SUPERUSER_PASSWORD, env) as api,
        ):
            for _ in range(3):
                assert (
                    api.request("GET", "/api/v1/users/me", headers=api.admin.headers).status_code
                    == 200
                )
            stats = api.request("GET", "/api/v1/cache/stats", headers=api.admin.headers).json()
            assert stats["mode"] == "redis"
            assert stats["hits"]["process"] >= 2
            users = {client.get("user") for client in entra_redis.client().client_list()}
            assert OBJECT_ID in users
            assert REDIS_TOKEN not in server.output()
        assert {request.get("resource") for request in identity.requests} == {REDIS}


def test_redis_falls_back_when_no_token_can_be_had(entra_redis, pg_url):
    from tests.support.devhost_process import DevhostProcess

    with ManagedIdentityEndpoint({}) as identity:
        env = app_env(
            pg_url,
            f"redis://127.0.0.1:{entra_redis.port}/0",
            REDIS_ENTRA_AUTH="true",
            **identity.env,
        )
        with DevhostProcess(env=env) as server:
            signup = {"email": f"fb-{uuid.uuid4().hex[:6]}@example.com", "password": "password123"}
            assert httpx.post(f"{server.url}/api/v1/users/signup", json=signup).status_code == 200
            login = httpx.post(
                f"{server.url}/api/v1/login/access-token",
                data={"username": signup["email"], "password": "password123"},
            )
            token = login.json()["access_token"]
            me = httpx.get(
                f"{server.url}/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}
            )
            assert me.status_code == 200
            ready = httpx.get(f"{server.url}/readyz").json()
            assert ready["status"] == "degraded"
            assert ready["checks"]["cache"] == "warn"
