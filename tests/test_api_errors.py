"""Bad input gets a clear 4xx JSON error naming the problem: never a 500, never a trace."""

import uuid

import pytest


def _assert_clean_error(response, status):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    text = response.text
    for leak in ("Traceback", "sqlalchemy", "psycopg", "postgresql://", 'File "'):
        assert leak not in text


def test_malformed_json_is_422_json_invalid(api):
    user = api.new_user()
    response = api.request(
        "POST",
        "/api/v1/items/",
        content=b'{"title": ',
        headers={**user.headers, "Content-Type": "application/json"},
    )
    _assert_clean_error(response, 422)
    error = response.json()["detail"][0]
    assert error["type"] == "json_invalid"
    assert error["loc"][0] == "body"


def test_a_json_array_instead_of_an_object_is_422(api):
    user = api.new_user()
    response = api.request("POST", "/api/v1/items/", json=[1, 2], headers=user.headers)
    _assert_clean_error(response, 422)


def test_an_empty_body_is_422_missing(api):
    user = api.new_user()
    response = api.request(
        "POST", "/api/v1/items/", headers={**user.headers, "Content-Type": "application/json"}
    )
    _assert_clean_error(response, 422)
    assert response.json()["detail"][0]["type"] == "missing"


def test_a_wrong_content_type_is_415(api):
    user = api.new_user()
    response = api.request(
        "POST",
        "/api/v1/items/",
        content=b"title=x",
        headers={**user.headers, "Content-Type": "text/plain"},
    )
    _assert_clean_error(response, 415)
    assert "application/json" in response.json()["detail"]


def test_an_oversized_body_is_413(api):
    user = api.new_user()
    big = b'{"title": "' + b"x" * (1024 * 1024) + b'"}'
    response = api.request(
        "POST",
        "/api/v1/items/",
        content=big,
        headers={**user.headers, "Content-Type": "application/json"},
    )
    _assert_clean_error(response, 413)


def test_invalid_utf8_is_422_not_500(api):
    user = api.new_user()
    response = api.request(
        "POST",
        "/api/v1/items/",
        content=b'{"title": "\xff\xfe"}',
        headers={**user.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422


@pytest.mark.parametrize("bad", ["123", "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz", "%00", "a" * 300])
def test_bad_uuids_in_the_path_are_422(api, bad):
    user = api.new_user()
    response = api.request("GET", f"/api/v1/items/{bad}", headers=user.headers)
    _assert_clean_error(response, 422)
    assert response.json()["detail"][0]["loc"] == ["path", "id"]


def test_nul_in_the_login_form_is_422(api):
    response = api.request(
        "POST", "/api/v1/login/access-token", data={"username": "a\x00@b.co", "password": "x"}
    )
    _assert_clean_error(response, 422)


def test_nul_in_a_path_email_is_422(api):
    response = api.request("POST", "/api/v1/password-recovery/a%00b@example.com")
    _assert_clean_error(response, 422)


@pytest.mark.parametrize(
    "path",
    ["/api/v1/items", "/api/v1/items/", "/api/v1/users/me", "/api/v1/users/me/", "/API/V1/ITEMS"],
)
def test_a_trailing_slash_and_case_reach_the_same_function(api, path):
    user = api.new_user()
    assert api.request("GET", path, headers=user.headers).status_code == 200


def test_unknown_routes_are_404_json(api):
    response = api.request("GET", f"/api/v1/nothing-here/{uuid.uuid4()}")
    _assert_clean_error(response, 404)


def test_a_wrong_method_is_405_with_allow(api):
    response = api.request("PUT", "/api/v1/users/signup", json={})
    _assert_clean_error(response, 405)
    assert "POST" in response.headers["allow"]


def test_health_check_utility(api):
    response = api.request("GET", "/api/v1/utils/health-check/")
    assert response.status_code == 200
    assert response.json() is True


@pytest.mark.parametrize(
    ("path", "body", "field", "message"),
    [
        (
            "/api/v1/users/signup",
            {"email": "short@example.com", "password": "short"},
            "password",
            "String should have at least 8 characters",
        ),
        ("/api/v1/items/", {"title": ""}, "title", "String should have at least 1 character"),
        (
            "/api/v1/items/",
            {"title": "x" * 256},
            "title",
            "String should have at most 255 characters",
        ),
    ],
)
def test_length_errors_read_as_fastapi_writes_them(api, path, body, field, message):
    user = api.new_user()
    response = api.request("POST", path, json=body, headers=user.headers)
    _assert_clean_error(response, 422)
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", field]
    assert error["msg"] == message
