"""The cached read path, in process as the worker calls the functions: a read answered from the
cache touches no connection pool, and a cached response is byte for byte the response a miss
sends (the body the route wrapper encodes from the document, the same headers)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import azure.functions as func
import pytest
from sqlalchemy import event

from shared import cache, config, db, security
from shared.http import dump_json
from shared.schemas import UserPublic
from tests.conftest import app_env
from tests.support.worker_context import app_functions, invocation_context

ME = ("read_user_me", "/api/v1/users/me")
ITEMS = ("read_items", "/api/v1/items/")
ITEM = ("read_item", "/api/v1/items/{id}")


class InProcess:
    def __init__(self) -> None:
        self.functions = app_functions()
        self.checkouts = self.sessions = 0
        event.listen(db.get_engine(), "checkout", self._checked_out)
        with db.session_scope() as session:
            from shared import crud

            user = crud.create_user(
                session,
                email=f"reader-{uuid.uuid4().hex[:8]}@example.com",
                password="read-path-password",
                full_name="Zoë Reader",
                is_active=True,
                is_superuser=False,
            )
            for number in range(20):
                crud.create_item(session, user.id, f"item {number} — ü", "read path")
            self.item_id = crud.list_items(session, user.id, 0, 1)[0][0].id
            token = security.create_access_token(user.id, 0, config.get_settings())
        self.headers = {"authorization": f"Bearer {token}", "origin": "https://app.example.com"}

    def _checked_out(self, *_: Any) -> None:
        self.checkouts += 1

    def count_sessions(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Count the sessions requests open (the real ones: only counted on the way)."""
        opened = db.new_session

        def new_session() -> Any:
            self.sessions += 1
            return opened()

        monkeypatch.setattr(db, "new_session", new_session)

    def get(self, name: str, path: str, **route_params: str) -> func.HttpResponse:
        url = "http://localhost" + path.format(**route_params)
        request = func.HttpRequest(
            "GET", url, headers=self.headers, body=b"", route_params=route_params
        )
        response: func.HttpResponse = self.functions[name](request, invocation_context(name))
        assert response.status_code == 200, response.get_body()
        return response


@pytest.fixture(params=["redis", "memory"])
def app(
    request: pytest.FixtureRequest, monkeypatch, pg_url: str, redis_url: str
) -> Iterator[InProcess]:
    redis = redis_url if request.param == "redis" else None
    for name, value in app_env(pg_url, redis).items():
        monkeypatch.setenv(name, value)
    config.get_settings.cache_clear()
    cache.reset_cache()
    db.dispose_engine()
    try:
        yield InProcess()
    finally:
        cache.get_cache().clear()
        cache.reset_cache()
        config.get_settings.cache_clear()
        db.dispose_engine()


def _sent(response: func.HttpResponse) -> tuple[int, dict[str, str], str, str, bytes]:
    headers = dict(response.headers)
    return response.status_code, headers, response.mimetype, response.charset, response.get_body()


@pytest.mark.parametrize("route", [ME, ITEMS, ITEM], ids=lambda route: route[0])
def test_a_read_answered_from_the_cache_opens_no_session_and_touches_no_pool(
    app: InProcess, route, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, path = route
    params = {"id": str(app.item_id)} if "{id}" in path else {}
    app.count_sessions(monkeypatch)
    app.get(name, path, **params)  # a miss: loads through the pool
    before = (app.sessions, app.checkouts)
    assert before >= (1, 1)
    for _ in range(3):
        app.get(name, path, **params)
    assert (app.sessions, app.checkouts) == before


@pytest.mark.parametrize("route", [ME, ITEMS, ITEM], ids=lambda route: route[0])
def test_a_cached_response_is_byte_for_byte_the_response_of_a_miss(app: InProcess, route) -> None:
    name, path = route
    params = {"id": str(app.item_id)} if "{id}" in path else {}
    missed = _sent(app.get(name, path, **params))
    hit = _sent(app.get(name, path, **params))
    assert hit == missed
    _status, headers, mimetype, charset, body = hit
    assert (mimetype, charset) == ("application/json", "utf-8")
    assert headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    if name == "read_user_me":  # a model: pydantic's JSON, UTF-8 as is
        assert body == UserPublic.model_validate_json(body).model_dump_json().encode()
        assert "Zoë".encode() in body
        return
    # A document: what the route wrapper encodes, compact, ASCII-escaped, in field order.
    assert body == dump_json(json.loads(body))
    assert b"\\u00fc" in body
    if name == "read_items":
        assert json.loads(body)["count"] == 20


def test_a_changed_user_is_read_fresh_once_evicted_never_from_a_remembered_record(
    app: InProcess,
) -> None:
    from shared import crud, reads

    first = json.loads(app.get(*ME).get_body())
    app.get(*ME)  # a hit: the record is remembered by its stored bytes
    user_id = uuid.UUID(first["id"])
    with db.session_scope() as session:
        user = crud.get_user(session, user_id)
        assert user is not None
        crud.update_user(session, user, {"full_name": "Renamed Reader"})
    reads.user_changed(user_id)
    assert json.loads(app.get(*ME).get_body()) == {**first, "full_name": "Renamed Reader"}
    assert json.loads(app.get(*ME).get_body())["full_name"] == "Renamed Reader"


def test_a_page_and_its_generation_share_a_redis_cluster_slot(app: InProcess) -> None:
    from redis.crc import key_slot

    from shared import reads
    from shared.schemas import Page

    prefix = config.get_settings().cache_prefix + ":"
    for scope in ("all", str(uuid.uuid4())):
        generation = prefix + reads._generation_key(scope)
        page = prefix + reads._page_key(scope, Page(skip=0, limit=100))
        assert key_slot(page.encode()) == key_slot(generation.encode()), (page, generation)


def test_a_write_through_the_previous_build_reaches_this_builds_pages(app: InProcess) -> None:
    """During a release both builds serve: the previous one's write deletes the generation key
    by the name it has always had (``items:<owner>:gen``), and this build's pages go with it."""
    from shared import crud

    before = json.loads(app.get(*ITEMS).get_body())
    assert json.loads(app.get(*ITEMS).get_body()) == before  # cached
    owner = before["data"][0]["owner_id"]
    with db.session_scope() as session:
        crud.create_item(session, uuid.UUID(owner), "written by the previous build", None)
    cache.get_cache().delete(f"items:{owner}:gen", "items:all:gen")  # its invalidation
    after = json.loads(app.get(*ITEMS).get_body())
    assert after["count"] == before["count"] + 1
