"""CORS from CORS_ORIGINS on every route: preflights answered, other origins get nothing."""

import pytest

ALLOWED = "https://app.example.com"


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/api/v1/items/", "POST"),
        ("/api/v1/items/00000000-0000-4000-8000-000000000000", "PUT"),
        ("/api/v1/login/access-token", "POST"),
        ("/api/v1/users/me", "PATCH"),
        ("/healthz", "GET"),
        # A literal route answers the preflight; DELETE there reaches cache/{pattern?}.
        ("/api/v1/cache/stats", "DELETE"),
        ("/api/v1/cache/stats", "GET"),
        ("/api/v1/cache/", "DELETE"),
    ],
)
def test_preflight_from_an_allowed_origin(api, path, method):
    response = api.request(
        "OPTIONS",
        path,
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert method in response.headers["access-control-allow-methods"]
    allowed_headers = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed_headers and "content-type" in allowed_headers
    assert int(response.headers["access-control-max-age"]) > 0
    assert "Origin" in response.headers["vary"]
    assert "access-control-allow-credentials" not in response.headers


@pytest.mark.parametrize(
    ("path", "method"),
    [("/api/v1/cache/stats", "PUT"), ("/api/v1/utils/health-check/", "DELETE")],
)
def test_preflight_for_a_method_no_route_answers_there_is_refused(api, path, method):
    response = api.request(
        "OPTIONS", path, headers={"Origin": ALLOWED, "Access-Control-Request-Method": method}
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "Disallowed CORS method"}


def test_preflight_from_another_origin_gets_no_cors_headers(api):
    response = api.request(
        "OPTIONS",
        "/api/v1/items/",
        headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 400
    assert not any(h.startswith("access-control-") for h in response.headers)


def test_actual_requests_carry_the_origin_for_allowed_origins_only(api):
    user = api.new_user()
    allowed = api.request("GET", "/api/v1/users/me", headers={**user.headers, "Origin": ALLOWED})
    assert allowed.headers["access-control-allow-origin"] == ALLOWED
    assert "Origin" in allowed.headers["vary"]
    other = api.request(
        "GET", "/api/v1/users/me", headers={**user.headers, "Origin": "https://evil.example.com"}
    )
    assert other.status_code == 200
    assert "access-control-allow-origin" not in other.headers


def test_errors_carry_cors_headers_so_the_browser_can_read_them(api):
    response = api.request("GET", "/api/v1/users/me", headers={"Origin": ALLOWED})
    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == ALLOWED
