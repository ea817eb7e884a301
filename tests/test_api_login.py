"""Sign-in: the OAuth2 password form, the contract's errors, and the token it returns."""

import jwt
import pytest

from tests.conftest import TEST_SECRETS


def test_login_returns_a_bearer_token_for_the_user(api):
    user = api.new_user()
    response = api.request(
        "POST",
        "/api/v1/login/access-token",
        data={"username": user.email, "password": user.password},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    claims = jwt.decode(body["access_token"], TEST_SECRETS["JWT_SECRET_KEY"], algorithms=["HS256"])
    assert claims["sub"] == user.id
    assert claims["exp"] > claims["iat"]


def test_login_accepts_multipart_forms_too(api):
    user = api.new_user()
    response = api.request(
        "POST",
        "/api/v1/login/access-token",
        files={"username": (None, user.email), "password": (None, user.password)},
    )
    assert response.status_code == 200


def test_the_email_domain_is_case_insensitive(api):
    user = api.new_user()
    local, domain = user.email.split("@")
    token = api.login(f"{local}@{domain.upper()}", user.password)
    assert token


@pytest.mark.parametrize("which", ["unknown email", "wrong password"])
def test_bad_credentials_are_one_message(api, which):
    user = api.new_user()
    data = {"username": user.email, "password": "wrong-password"}
    if which == "unknown email":
        data = {"username": "nobody@example.com", "password": user.password}
    response = api.request("POST", "/api/v1/login/access-token", data=data)
    assert response.status_code == 400
    assert response.json() == {"detail": "Incorrect email or password"}


def test_missing_form_fields_are_422(api):
    response = api.request("POST", "/api/v1/login/access-token", data={"username": "a@b.co"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "password"]


def test_login_wants_a_form_not_json(api):
    response = api.request(
        "POST", "/api/v1/login/access-token", json={"username": "a@b.co", "password": "x"}
    )
    assert response.status_code == 415


def test_test_token_returns_the_caller(api):
    user = api.new_user()
    response = api.request("POST", "/api/v1/login/test-token", headers=user.headers)
    assert response.status_code == 200
    assert response.json()["email"] == user.email
    assert api.request("POST", "/api/v1/login/test-token").status_code == 401
