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
from tests.support.worker_context import app_functions, call, invocation_context

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
        response: func.HttpResponse = call(self.functions[name], request, invocation_context(name))
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


class HandlerCalls:
    """Counts the invocations the route's handler answered on a thread (``http._answer``);
    each still runs for real."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from shared import http

        self.count = 0
        answer = http._answer

        def counted(*args: Any) -> Any:
            self.count += 1
            return answer(*args)

        monkeypatch.setattr(http, "_answer", counted)


@pytest.mark.parametrize("route", [ME, ITEMS], ids=lambda route: route[0])
@pytest.mark.parametrize("app", ["redis"], indirect=True)
def test_a_read_the_cache_answers_is_answered_on_the_event_loop_not_by_the_handler(
    app: InProcess, route, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = HandlerCalls(monkeypatch)
    missed = _sent(app.get(*route))  # a miss: the handler reads and stores
    assert handler.count == 1
    hits = [_sent(app.get(*route)) for _ in range(3)]
    assert handler.count == 1
    assert hits == [missed] * 3


@pytest.mark.parametrize("app", ["memory"], indirect=True)
def test_without_redis_every_read_is_the_handlers(
    app: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = HandlerCalls(monkeypatch)
    for _ in range(3):
        app.get(*ME)
        app.get(*ITEMS)
    assert handler.count == 6


def _call(
    app: InProcess, route: tuple[str, str], headers: dict[str, str], **params: str
) -> func.HttpResponse:
    name, path = route
    request = func.HttpRequest(
        "GET", "http://localhost" + path, headers=headers, body=b"", params=params
    )
    response: func.HttpResponse = call(app.functions[name], request, invocation_context(name))
    return response


@pytest.mark.parametrize("app", ["redis"], indirect=True)
def test_what_the_cache_cannot_answer_the_handler_answers_with_the_contracts_error(
    app: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every case the loop hands over: the handler answers it, exactly as before."""
    from shared import crud, reads

    user_id = uuid.UUID(json.loads(app.get(*ME).get_body())["id"])
    app.get(*ITEMS)  # both cached now
    handler = HandlerCalls(monkeypatch)

    def answer(route: tuple[str, str], headers: dict[str, str], **params: str) -> tuple[int, Any]:
        before = handler.count
        response = _call(app, route, headers, **params)
        assert handler.count == before + 1, "answered on the loop"
        return response.status_code, json.loads(response.get_body())

    assert answer(ME, {}) == (401, {"detail": "Not authenticated"})
    assert answer(ME, {"authorization": "Bearer not-a-token"}) == (
        403,
        {"detail": "Could not validate credentials"},
    )
    status, body = answer(ITEMS, app.headers, limit="-1")
    assert (status, body["detail"][0]["loc"]) == (422, ["query", "limit"])

    with db.session_scope() as session:  # a password change revokes the token in hand
        user = crud.get_user(session, user_id)
        assert user is not None
        crud.set_password(session, user, "a-new-read-path-password")
    reads.user_changed(user_id)
    assert answer(ME, app.headers) == (403, {"detail": "Could not validate credentials"})
    assert answer(ITEMS, app.headers) == (403, {"detail": "Could not validate credentials"})

    with db.session_scope() as session:
        user = crud.get_user(session, user_id)
        assert user is not None
        crud.update_user(session, user, {"is_active": False})
    reads.user_changed(user_id)
    assert answer(ME, app.headers) == (400, {"detail": "Inactive user"})


def test_a_redis_failure_on_the_loop_opens_the_breaker_and_the_handler_answers(
    monkeypatch: pytest.MonkeyPatch, pg_url: str
) -> None:
    from tests.support.redis_server import RedisServer

    with RedisServer() as server:
        for name, value in app_env(pg_url, server.url).items():
            monkeypatch.setenv(name, value)
        config.get_settings.cache_clear()
        cache.reset_cache()
        db.dispose_engine()
        try:
            app = InProcess()
            first = _sent(app.get(*ME))
            assert _sent(app.get(*ME)) == first  # from Redis, on the loop
            handler = HandlerCalls(monkeypatch)
            server.kill()
            assert _sent(app.get(*ME)) == first  # the loop's read failed; the handler read
            assert handler.count == 1
            figures = cache.get_cache().stats()
            assert figures["mode"] == "memory"
            assert figures["errors"]["process"] >= 1
            assert figures["fallback_activations"]["process"] == 1
        finally:
            cache.reset_cache()
            config.get_settings.cache_clear()
            db.dispose_engine()


@pytest.mark.parametrize("app", ["memory"], indirect=True)
def test_the_handler_on_a_request_thread_logs_under_its_invocation(app: InProcess) -> None:
    """The worker correlates a sync function's log records with its invocation through
    ``context.thread_local_storage`` (run_sync_func sets it on the thread that runs the
    function): the handler of a cached route runs on a thread of its own, which must carry it
    too, or the host files its records under no invocation."""
    import logging
    import threading

    seen: list[tuple[str, str | None]] = []
    context = invocation_context(ME[0])

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            local = context.thread_local_storage
            seen.append((threading.current_thread().name, getattr(local, "invocation_id", None)))

    capture = Capture(logging.INFO)
    logger = logging.getLogger("shared.auth")
    logger.addHandler(capture)
    previous = logger.level
    logger.setLevel(logging.INFO)
    try:
        request = func.HttpRequest(
            "GET",
            "http://localhost" + ME[1],
            headers={"authorization": "Bearer not-a-token"},
            body=b"",
        )
        response = call(app.functions[ME[0]], request, context)
    finally:
        logger.removeHandler(capture)
        logger.setLevel(previous)
    assert response.status_code == 403
    assert seen and seen[0][0].startswith("stratus-request"), seen
    assert seen == [(seen[0][0], context.invocation_id)]
    assert getattr(context.thread_local_storage, "invocation_id", None) is None  # not left set
