"""/api/v1/items: ownership, ordering, paging, partial updates, and reads that are never stale."""

import uuid

import pytest


def _create(api, account, title="item", description=None):
    response = api.request(
        "POST",
        "/api/v1/items/",
        json={"title": title, "description": description},
        headers=account.headers,
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_create_and_read_an_item(api):
    user = api.new_user()
    item = _create(api, user, "Title", "Description")
    assert item["owner_id"] == user.id
    assert set(item) == {"title", "description", "id", "owner_id", "created_at"}
    read = api.request("GET", f"/api/v1/items/{item['id']}", headers=user.headers)
    assert read.status_code == 200 and read.json() == item


def test_a_list_read_right_after_a_create_sees_it(api):
    user = api.new_user()
    assert api.request("GET", "/api/v1/items/", headers=user.headers).json() == {
        "data": [],
        "count": 0,
    }
    for n in range(3):
        _create(api, user, f"t{n}")
        listed = api.request("GET", "/api/v1/items/", headers=user.headers).json()
        assert listed["count"] == n + 1
        assert listed["data"][0]["title"] == f"t{n}"  # newest first


def test_normal_users_see_their_own_items_and_superusers_all(api):
    alice, bob = api.new_user(), api.new_user()
    a = _create(api, alice, "alice's")
    b = _create(api, bob, "bob's")
    alice_list = api.request("GET", "/api/v1/items/", headers=alice.headers).json()
    assert [i["id"] for i in alice_list["data"]] == [a["id"]]
    assert alice_list["count"] == 1
    everyone = api.request("GET", "/api/v1/items/?limit=1000", headers=api.admin.headers).json()
    ids = {i["id"] for i in everyone["data"]}
    assert {a["id"], b["id"]} <= ids
    assert everyone["count"] >= 2


def test_paging(api):
    user = api.new_user()
    titles = [f"p{n}" for n in range(5)]
    for title in titles:
        _create(api, user, title)
    page = api.request("GET", "/api/v1/items/?skip=1&limit=2", headers=user.headers).json()
    assert [i["title"] for i in page["data"]] == ["p3", "p2"]
    assert page["count"] == 5


def test_not_found_comes_before_not_enough_permissions(api):
    owner, stranger = api.new_user(), api.new_user()
    item = _create(api, owner)
    missing = f"/api/v1/items/{uuid.uuid4()}"
    for method in ("GET", "PUT", "DELETE"):
        response = api.request(method, missing, json={"title": "x"}, headers=stranger.headers)
        assert response.status_code == 404, method
        assert response.json() == {"detail": "Item not found"}
        foreign = api.request(
            method, f"/api/v1/items/{item['id']}", json={"title": "x"}, headers=stranger.headers
        )
        assert foreign.status_code == 403, method
        assert foreign.json() == {"detail": "Not enough permissions"}


def test_put_is_partial_and_visible_at_once(api):
    user = api.new_user()
    item = _create(api, user, "old title", "keep me")
    url = f"/api/v1/items/{item['id']}"
    assert api.request("GET", url, headers=user.headers).json()["title"] == "old title"
    updated = api.request("PUT", url, json={"title": "new title"}, headers=user.headers)
    assert updated.status_code == 200
    assert updated.json()["description"] == "keep me"
    assert api.request("GET", url, headers=user.headers).json()["title"] == "new title"
    listed = api.request("GET", "/api/v1/items/", headers=user.headers).json()
    assert listed["data"][0]["title"] == "new title"
    cleared = api.request("PUT", url, json={"description": None}, headers=user.headers)
    assert cleared.json()["description"] is None
    null_title = api.request("PUT", url, json={"title": None}, headers=user.headers)
    assert null_title.status_code == 422
    assert null_title.json()["detail"][0]["loc"] == ["body", "title"]


def test_superuser_can_change_anyones_item(api):
    user = api.new_user()
    item = _create(api, user)
    url = f"/api/v1/items/{item['id']}"
    changed = api.request("PUT", url, json={"title": "by admin"}, headers=api.admin.headers)
    assert changed.status_code == 200 and changed.json()["owner_id"] == user.id
    deleted = api.request("DELETE", url, headers=api.admin.headers)
    assert deleted.json() == {"message": "Item deleted successfully"}
    assert api.request("GET", url, headers=user.headers).status_code == 404
    assert api.request("GET", "/api/v1/items/", headers=user.headers).json()["count"] == 0


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({}, ["body", "title"]),
        ({"title": ""}, ["body", "title"]),
        ({"title": "x" * 256}, ["body", "title"]),
        ({"title": "ok", "description": "x" * 256}, ["body", "description"]),
        ({"title": "nul\u0000"}, ["body", "title"]),
        ({"title": 5}, ["body", "title"]),
    ],
)
def test_item_validation(api, body, loc):
    user = api.new_user()
    response = api.request("POST", "/api/v1/items/", json=body, headers=user.headers)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == loc


def test_unknown_fields_are_ignored(api):
    user = api.new_user()
    response = api.request(
        "POST",
        "/api/v1/items/",
        json={"title": "t", "owner_id": str(uuid.uuid4()), "confirm": "x"},
        headers=user.headers,
    )
    assert response.status_code == 200
    assert response.json()["owner_id"] == user.id
