"""POST /api/v1/cache/reconnect: the operator's on-demand reconnect(), superuser only."""

import httpx
import pytest

from tests.conftest import SUPERUSER, SUPERUSER_PASSWORD, app_env, create_superuser
from tests.support.api import Api
from tests.support.redis_server import RedisServer


@pytest.fixture
def redis_server():
    with RedisServer() as server:
        yield server


def test_reconnect_follows_redis_down_and_back(pg_url, redis_server):
    from tests.support.devhost_process import DevhostProcess

    # A probe interval long enough that only the route can bring the cache back in this test.
    env = app_env(pg_url, redis_server.url, CACHE_PROBE_INTERVAL_SECONDS="3600")
    create_superuser(env)
    with (
        DevhostProcess(env=env) as server,
        Api(server.url, SUPERUSER, SUPERUSER_PASSWORD, env) as api,
    ):
        headers = api.admin.headers
        user = api.new_user()
        assert api.request("POST", "/api/v1/cache/reconnect").status_code == 401
        refused = api.request("POST", "/api/v1/cache/reconnect", headers=user.headers)
        assert refused.status_code == 403

        up = api.request("POST", "/api/v1/cache/reconnect", headers=headers)
        assert up.json() == {"mode": "redis", "redis_configured": True, "connected": True}

        redis_server.kill()
        down = api.request("POST", "/api/v1/cache/reconnect", headers=headers)
        assert down.status_code == 200
        assert down.json() == {"mode": "memory", "redis_configured": True, "connected": False}
        # Requests keep being served from the in-process cache meanwhile.
        assert api.request("GET", "/api/v1/users/me", headers=user.headers).status_code == 200

        redis_server.start()
        back = api.request("POST", "/api/v1/cache/reconnect", headers=headers)
        assert back.json() == {"mode": "redis", "redis_configured": True, "connected": True}
        assert "cache reconnect by admin@example.com" in server.output()


def test_reconnect_without_redis_reports_memory_only(tmp_path):
    from tests.conftest import migrate
    from tests.support.devhost_process import DevhostProcess

    url = f"sqlite:///{tmp_path / 'reconnect.db'}"
    migrate(url)
    env = app_env(url, None)
    create_superuser(env)
    with DevhostProcess(env=env) as server:
        token = httpx.post(
            f"{server.url}/api/v1/login/access-token",
            data={"username": SUPERUSER, "password": SUPERUSER_PASSWORD},
        ).json()["access_token"]
        response = httpx.post(
            f"{server.url}/api/v1/cache/reconnect", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.json() == {"mode": "memory", "redis_configured": False, "connected": False}
