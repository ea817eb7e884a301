"""/api/v1/users: every route's success and errors, for anonymous, normal and superusers."""

import uuid

import pytest

NOT_AUTHENTICATED = {"detail": "Not authenticated"}
NO_PRIVILEGES = {"detail": "The user doesn't have enough privileges"}


def test_read_me(api):
    user = api.new_user(full_name="Ada")
    response = api.request("GET", "/api/v1/users/me", headers=user.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["email"] == user.email
    assert body["full_name"] == "Ada"
    assert body["is_active"] is True and body["is_superuser"] is False
    assert set(body) == {"email", "is_active", "is_superuser", "full_name", "id", "created_at"}
    assert body["created_at"].endswith(("Z", "+00:00"))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/users/"),
        ("POST", "/api/v1/users/"),
        ("GET", "/api/v1/users/me"),
        ("PATCH", "/api/v1/users/me"),
        ("DELETE", "/api/v1/users/me"),
        ("PATCH", "/api/v1/users/me/password"),
        ("GET", f"/api/v1/users/{uuid.uuid4()}"),
        ("PATCH", f"/api/v1/users/{uuid.uuid4()}"),
        ("DELETE", f"/api/v1/users/{uuid.uuid4()}"),
    ],
)
def test_anonymous_callers_get_401_with_the_bearer_challenge(api, method, path):
    response = api.request(method, path, json={})
    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Token abc", "BearerX abc"])
def test_a_non_bearer_authorization_header_is_not_authenticated(api, header):
    response = api.request("GET", "/api/v1/users/me", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED


@pytest.mark.parametrize(
    ("method", "path_template"),
    [
        ("GET", "/api/v1/users/"),
        ("POST", "/api/v1/users/"),
        ("PATCH", "/api/v1/users/{other}"),
        ("DELETE", "/api/v1/users/{other}"),
        ("POST", "/api/v1/password-recovery-html-content/{email}"),
        ("POST", "/api/v1/utils/test-email/?email_to=x@example.com"),
    ],
)
def test_superuser_routes_refuse_normal_users(api, method, path_template):
    user = api.new_user()
    other = api.new_user()
    path = path_template.format(other=other.id, email=other.email)
    response = api.request(method, path, json={"title": "x"}, headers=user.headers)
    assert response.status_code == 403
    assert response.json() == NO_PRIVILEGES


def test_superuser_lists_users_newest_first_with_total_count(api):
    first = api.new_user()
    second = api.new_user()
    response = api.request("GET", "/api/v1/users/?limit=2", headers=api.admin.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] >= 3
    assert [u["email"] for u in body["data"]] == [second.email, first.email]
    assert all("hashed_password" not in u and "password" not in u for u in body["data"])


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "skip=-1", "limit=-5", "skip=abc"])
def test_paging_out_of_bounds_is_422(api, query):
    response = api.request("GET", f"/api/v1/users/?{query}", headers=api.admin.headers)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "query"


def test_superuser_creates_a_user_and_duplicates_are_400(api):
    email = f"Created-{uuid.uuid4().hex[:6]}@EXAMPLE.com"
    body = {"email": email, "password": "password123", "full_name": "C", "is_superuser": True}
    created = api.request("POST", "/api/v1/users/", json=body, headers=api.admin.headers)
    assert created.status_code == 200
    assert created.json()["email"] == email.split("@")[0] + "@example.com"
    assert created.json()["is_superuser"] is True
    again = api.request("POST", "/api/v1/users/", json=body, headers=api.admin.headers)
    assert again.status_code == 400
    assert again.json() == {"detail": "The user with this email already exists in the system."}


def test_signup_creates_a_normal_user_even_if_it_asks_for_more(api):
    email = f"signup-{uuid.uuid4().hex[:6]}@example.com"
    body = {"email": email, "password": "password123", "is_superuser": True, "x": 1}
    response = api.request("POST", "/api/v1/users/signup", json=body)
    assert response.status_code == 200
    assert response.json()["is_superuser"] is False
    duplicate = api.request("POST", "/api/v1/users/signup", json=body)
    assert duplicate.status_code == 400
    assert duplicate.json() == {"detail": "The user with this email already exists in the system"}
    assert api.login(email, "password123")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email", "password": "password123"}, "email"),
        ({"email": "a@example.com", "password": "short"}, "password"),
        ({"email": "a@example.com", "password": "x" * 129}, "password"),
        (
            {"email": "a@example.com", "password": "password123", "full_name": "x" * 256},
            "full_name",
        ),
        ({"email": "a@example.com", "password": "pass\u0000word123"}, "password"),
        ({"password": "password123"}, "email"),
    ],
)
def test_signup_validation_errors_have_fastapi_shape(api, body, field):
    response = api.request("POST", "/api/v1/users/signup", json=body)
    assert response.status_code == 422
    error = response.json()["detail"][0]
    assert error["loc"] == ["body", field]
    assert {"type", "loc", "msg", "input"} <= set(error)


def test_update_me_changes_only_what_is_sent(api):
    user = api.new_user(full_name="Before")
    response = api.request(
        "PATCH", "/api/v1/users/me", json={"full_name": "After"}, headers=user.headers
    )
    assert response.status_code == 200
    assert response.json()["full_name"] == "After"
    assert response.json()["email"] == user.email
    # Read back: the cached /users/me reflects the write at once.
    me = api.request("GET", "/api/v1/users/me", headers=user.headers).json()
    assert me["full_name"] == "After"


def test_update_me_to_a_taken_email_is_409_and_null_email_is_422(api):
    user = api.new_user()
    other = api.new_user()
    taken = api.request(
        "PATCH", "/api/v1/users/me", json={"email": other.email}, headers=user.headers
    )
    assert taken.status_code == 409
    assert taken.json() == {"detail": "User with this email already exists"}
    null = api.request("PATCH", "/api/v1/users/me", json={"email": None}, headers=user.headers)
    assert null.status_code == 422
    assert null.json()["detail"][0]["loc"] == ["body", "email"]


def test_update_password(api):
    user = api.new_user()
    wrong = api.request(
        "PATCH",
        "/api/v1/users/me/password",
        json={"current_password": "wrong-password", "new_password": "new-password-1"},
        headers=user.headers,
    )
    assert wrong.status_code == 400
    assert wrong.json() == {"detail": "Incorrect password"}
    same = api.request(
        "PATCH",
        "/api/v1/users/me/password",
        json={"current_password": user.password, "new_password": user.password},
        headers=user.headers,
    )
    assert same.status_code == 400
    assert same.json() == {"detail": "New password cannot be the same as the current one"}
    ok = api.request(
        "PATCH",
        "/api/v1/users/me/password",
        json={"current_password": user.password, "new_password": "new-password-1"},
        headers=user.headers,
    )
    assert ok.status_code == 200
    assert ok.json() == {"message": "Password updated successfully"}
    assert api.login(user.email, "new-password-1")


def test_read_user_by_id_rules(api):
    user = api.new_user()
    other = api.new_user()
    own = api.request("GET", f"/api/v1/users/{user.id}", headers=user.headers)
    assert own.status_code == 200 and own.json()["id"] == user.id
    foreign = api.request("GET", f"/api/v1/users/{other.id}", headers=user.headers)
    assert foreign.status_code == 403 and foreign.json() == NO_PRIVILEGES
    # Even for an id that does not exist: a normal user learns nothing.
    missing = api.request("GET", f"/api/v1/users/{uuid.uuid4()}", headers=user.headers)
    assert missing.status_code == 403
    as_admin = api.request("GET", f"/api/v1/users/{other.id}", headers=api.admin.headers)
    assert as_admin.status_code == 200 and as_admin.json()["email"] == other.email
    gone = api.request("GET", f"/api/v1/users/{uuid.uuid4()}", headers=api.admin.headers)
    assert gone.status_code == 404 and gone.json() == {"detail": "User not found"}
    bad = api.request("GET", "/api/v1/users/not-a-uuid", headers=api.admin.headers)
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["type"] == "uuid_parsing"
    assert bad.json()["detail"][0]["loc"] == ["path", "user_id"]


def test_superuser_updates_a_user(api):
    user = api.new_user()
    other = api.new_user()
    url = f"/api/v1/users/{user.id}"
    updated = api.request(
        "PATCH",
        url,
        json={"full_name": "Renamed", "password": "changed-pass-1"},
        headers=api.admin.headers,
    )
    assert updated.status_code == 200
    assert updated.json()["full_name"] == "Renamed"
    assert api.login(user.email, "changed-pass-1")
    conflict = api.request("PATCH", url, json={"email": other.email}, headers=api.admin.headers)
    assert conflict.status_code == 409
    missing = api.request(
        "PATCH", f"/api/v1/users/{uuid.uuid4()}", json={"full_name": "x"}, headers=api.admin.headers
    )
    assert missing.status_code == 404
    assert missing.json() == {"detail": "The user with this id does not exist in the system"}
    for field in ("is_active", "is_superuser", "email", "password"):
        null = api.request("PATCH", url, json={field: None}, headers=api.admin.headers)
        assert null.status_code == 422, field


def test_deactivated_user_is_refused_at_once(api):
    user = api.new_user()
    assert api.request("GET", "/api/v1/users/me", headers=user.headers).status_code == 200
    api.request(
        "PATCH", f"/api/v1/users/{user.id}", json={"is_active": False}, headers=api.admin.headers
    )
    response = api.request("GET", "/api/v1/users/me", headers=user.headers)
    assert response.status_code == 400
    assert response.json() == {"detail": "Inactive user"}
    login = api.request(
        "POST",
        "/api/v1/login/access-token",
        data={"username": user.email, "password": user.password},
    )
    assert login.status_code == 400 and login.json() == {"detail": "Inactive user"}


def test_delete_me_and_the_token_of_a_deleted_user(api):
    user = api.new_user()
    api.request("POST", "/api/v1/items/", json={"title": "mine"}, headers=user.headers)
    deleted = api.request("DELETE", "/api/v1/users/me", headers=user.headers)
    assert deleted.status_code == 200
    assert deleted.json() == {"message": "User deleted successfully"}
    after = api.request("GET", "/api/v1/users/me", headers=user.headers)
    assert after.status_code == 404 and after.json() == {"detail": "User not found"}


def test_superusers_cannot_delete_themselves(api):
    me = api.request("DELETE", "/api/v1/users/me", headers=api.admin.headers)
    assert me.status_code == 403
    assert me.json() == {"detail": "Super users are not allowed to delete themselves"}
    by_id = api.request("DELETE", f"/api/v1/users/{api.admin.id}", headers=api.admin.headers)
    assert by_id.status_code == 403


def test_superuser_deletes_a_user_and_their_items(api):
    user = api.new_user()
    item = api.request("POST", "/api/v1/items/", json={"title": "t"}, headers=user.headers).json()
    deleted = api.request("DELETE", f"/api/v1/users/{user.id}", headers=api.admin.headers)
    assert deleted.status_code == 200
    gone = api.request("GET", f"/api/v1/items/{item['id']}", headers=api.admin.headers)
    assert gone.status_code == 404
    again = api.request("DELETE", f"/api/v1/users/{user.id}", headers=api.admin.headers)
    assert again.status_code == 404 and again.json() == {"detail": "User not found"}
