"""Request parsing, JSON and error responses, CORS, and the route wrapper.

This is the only shared module that knows Azure Functions types. ``route`` registers a handler
``def handler(req: ApiRequest) -> result`` as a Functions HTTP trigger whose Python signature is
exactly the binding signature the worker checks: ``(req: func.HttpRequest, context:
func.Context) -> func.HttpResponse``. It deliberately does not chain ``__wrapped__`` (the worker's
``inspect.signature`` would follow it to the handler and reject the function). An ``async def``
handler gets an ``async def`` function with the same signature: the worker runs it on its event
loop, not in the thread pool that sync invocations share, so requests blocked on a dependency
cannot starve it (the probes). Such a handler must not block: it is public, and does its
blocking work, if any, on a thread of its own.

A sync handler may come with ``cached``, an ``async def`` answer from Redis: its function is then
``async def`` too, and tries the cache on the event loop first (the caller's record and the
answer through ``redis.asyncio``), so a cached read never hops to a thread and back; whatever
the cache cannot answer as a 200 goes to the handler on a thread, as before.

Every invocation runs under a database deadline (``DB_DEADLINE_SECONDS``, ``shared.deadline``);
a database that cannot answer, whichever way, is a 503 with ``Retry-After``, its cause logged
once (``shared.cause_log``), not once per request.

Heavy modules (pydantic, SQLAlchemy, security) are imported on first use, not at import, so
indexing stays fast.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import ipaddress
import json
import logging
import math
import os
import re
import sys
import threading
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal, TypedDict, TypeVar, Unpack

import azure.functions as func

from shared import telemetry
from shared.cause_log import CauseLog
from shared.config import Settings, get_settings
from shared.deadline import database_deadline
from shared.errors import HTTPError

if TYPE_CHECKING:
    from pydantic import BaseModel, TypeAdapter
    from sqlalchemy.orm import Session

    from shared.reads import AuthUser

logger = logging.getLogger(__name__)
unavailable_log = CauseLog(logger)

MAX_BODY_BYTES = 1 << 20
# A 422 echoes at most this much of what it refuses: enough to recognise it, never the body back.
MAX_ERRORS = 16
MAX_INPUT_CHARS = 64
MAX_INPUT_ITEMS = 8
UNKNOWN_ADDRESS = "unknown"
RETRY_AFTER_SECONDS = "5"
HASHING_RETRY_AFTER_SECONDS = "1"
CORS_MAX_AGE_SECONDS = "600"
CORS_ALLOWED_HEADERS = "Authorization, Content-Type, Accept, X-Requested-With"
UNAVAILABLE = "Service temporarily unavailable"

Auth = Literal["public", "user", "superuser"]
PathParam = Literal["uuid", "string"]
_PATH_PARAM = re.compile(r"\{(\w+)\}")
ModelT = TypeVar("ModelT", bound="BaseModel")
Handler = Callable[["ApiRequest"], Any]
AsyncHandler = Callable[["ApiRequest"], Awaitable[Any]]
# A route's answer from the cache on the event loop: its result, or None for "ask the handler".
CachedAnswer = Callable[["ApiRequest"], Awaitable[Any]]


def validation_error(errors: Iterable[Mapping[str, Any]], prefix: str) -> HTTPError:
    """A 422 in FastAPI's shape, each ``loc`` starting with ``prefix`` (body, query, path).

    Unlike FastAPI, ``input`` is cut short (a megabyte body is not echoed back) and never holds
    a number JSON cannot carry (NaN, Infinity).
    """
    detail = []
    for error in list(errors)[:MAX_ERRORS]:
        item: dict[str, Any] = {
            "type": error["type"],
            "loc": [prefix, *error.get("loc", ())],
            "msg": error["msg"],
            "input": _short(error.get("input")),
        }
        if error.get("ctx"):
            item["ctx"] = {k: _short(v) for k, v in error["ctx"].items()}
        detail.append(item)
    return HTTPError(422, detail)


def _short(value: Any, depth: int = 0) -> Any:
    """``value`` as strict JSON, strings cut to MAX_INPUT_CHARS, containers to MAX_INPUT_ITEMS."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**63 else "a number too large to echo"
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, bytes):
        value = value[: MAX_INPUT_CHARS * 4].decode("utf-8", "replace")
    if isinstance(value, (list, tuple, dict)):
        if depth:
            return "…"
        if isinstance(value, dict):
            return {
                _cut(str(k)): _short(v, depth + 1) for k, v in list(value.items())[:MAX_INPUT_ITEMS]
            }
        return [_short(v, depth + 1) for v in value[:MAX_INPUT_ITEMS]]
    return _cut(value if isinstance(value, str) else str(value))


def _cut(text: str) -> str:
    return text if len(text) <= MAX_INPUT_CHARS else text[:MAX_INPUT_CHARS] + "…"


def _non_finite_number(body: bytes) -> bool:
    """Whether a JSON body holds NaN, Infinity, or a number too large for a float (Python's
    and pydantic's parsers read those; strict JSON has none)."""
    from pydantic_core import from_json

    try:
        stack = [from_json(body)]
    except ValueError:
        return False  # not JSON at all: pydantic reports that itself
    while stack:
        value = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            return True
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dump_json(value: Any) -> bytes:
    """Strict JSON: a NaN or Infinity that slipped through is an error, never in a response."""
    return json.dumps(value, separators=(",", ":"), default=_json_default, allow_nan=False).encode()


@dataclass
class Reply:
    """A response other than a plain 200 JSON document."""

    content: Any = None
    status_code: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    media_type: str = "application/json"


@dataclass(frozen=True)
class EncodedJson:
    """A 200 JSON document already encoded (a cached response body): sent as these bytes."""

    body: bytes


@dataclass(frozen=True)
class RouteSpec:
    """What the OpenAPI document and CORS need to know about one registered route."""

    path: str  # the contract's canonical form, e.g. "api/v1/users/"
    template: str  # the Functions route template: no trailing slash, which routing ignores
    method: str
    name: str
    operation_id: str
    summary: str
    description: str
    tags: tuple[str, ...]
    auth: Auth
    redact: tuple[str, ...]  # path parameters that carry an address or a token
    body: str | None
    body_media: str
    query: str | None
    path_params: Mapping[str, PathParam]
    response: str | None
    response_media: str
    status_code: int
    errors: tuple[int, ...]
    requires_config: bool
    in_schema: bool


ROUTES: list[RouteSpec] = []
_TEMPLATES_WITH_OPTIONS: set[str] = set()


class ApiRequest:
    """One invocation's request, with typed accessors that raise 4xx on bad input."""

    def __init__(self, raw: func.HttpRequest, invocation_id: str, settings: Settings) -> None:
        self.raw = raw
        self.invocation_id = invocation_id
        self.settings = settings
        self._user: AuthUser | None = None
        self._session: Session | None = None

    @property
    def method(self) -> str:
        return str(self.raw.method)

    def header(self, name: str) -> str | None:
        value: str | None = self.raw.headers.get(name)
        return value

    @property
    def user(self) -> AuthUser:
        if self._user is None:
            raise RuntimeError("route declared auth='public' but reads req.user")
        return self._user

    @user.setter
    def user(self, user: AuthUser) -> None:
        self._user = user

    @property
    def client_address(self) -> str:
        """The caller's address as the platform's front end reports it (``X-Forwarded-For``).

        Only the last ``TRUSTED_PROXY_HOPS`` entries are the platform's own (Azure's front end
        appends the address it accepted the connection from); anything before them came from
        the client and could be anything. IPv6 addresses count by their /64 network, which one
        subscriber usually holds whole.
        """
        return client_address(self.header("x-forwarded-for"), self.settings.trusted_proxy_hops)

    @property
    def db(self) -> Session:
        """The invocation's database session, opened on first use and closed by the wrapper."""
        if self._session is None:
            from shared.db import new_session

            self._session = new_session()
        return self._session

    def close(self) -> None:
        """End the session; raises when its rollback cannot reach the server, after dropping
        its connection (what the handler committed stays committed)."""
        session, self._session = self._session, None
        if session is None:
            return
        try:
            session.close()
        except Exception:
            session.invalidate()
            raise

    def path_param(self, name: str) -> str:
        value: str | None = self.raw.route_params.get(name)
        if value is None:
            raise validation_error(
                [{"type": "missing", "loc": (name,), "msg": "Field required", "input": None}],
                "path",
            )
        _reject_nul(value, "path", name)
        return value

    def path_uuid(self, name: str) -> uuid.UUID:
        value = self.path_param(name)
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
        from pydantic import ValidationError

        try:  # pydantic's message, exactly as FastAPI reports a malformed UUID
            return _uuid_adapter().validate_python(value)
        except ValidationError as exc:
            raise validation_error(
                [{**error, "loc": (name,)} for error in exc.errors(include_url=False)], "path"
            ) from None

    def query(self, model: type[ModelT]) -> ModelT:
        return _validate(model, dict(self.raw.params), "query")

    def json(self, model: type[ModelT]) -> ModelT:
        body = self.raw.get_body()
        content_type = (self.header("content-type") or "").split(";")[0].strip().lower()
        if content_type and not (
            content_type == "application/json" or content_type.endswith("+json")
        ):
            raise HTTPError(415, f"Unsupported media type {content_type!r}: send application/json")
        if not body.strip():
            raise validation_error(
                [{"type": "missing", "loc": (), "msg": "Field required", "input": None}], "body"
            )
        if _non_finite_number(body):
            raise validation_error(
                [
                    {
                        "type": "json_invalid",
                        "loc": (),
                        "msg": "Invalid JSON: NaN, Infinity and numbers beyond a float's range "
                        "are not JSON",
                        "input": None,
                    }
                ],
                "body",
            )
        from pydantic import ValidationError

        try:
            return model.model_validate_json(body)
        except ValidationError as exc:
            raise validation_error(exc.errors(include_url=False), "body") from None

    def form(self, model: type[ModelT]) -> ModelT:
        content_type = (self.header("content-type") or "").split(";")[0].strip().lower()
        if content_type == "application/x-www-form-urlencoded":
            try:
                text = self.raw.get_body().decode("utf-8")
            except UnicodeDecodeError:
                raise HTTPError(400, "Form body is not valid UTF-8") from None
            data: dict[str, str] = dict(urllib.parse.parse_qsl(text, keep_blank_values=True))
        elif content_type == "multipart/form-data":
            data = {key: self.raw.form[key] for key in self.raw.form}
        else:
            raise HTTPError(
                415,
                "Unsupported media type: send application/x-www-form-urlencoded "
                "or multipart/form-data",
            )
        return _validate(model, data, "body")


def client_address(forwarded_for: str | None, trusted_hops: int) -> str:
    """The entry ``trusted_hops`` from the right of ``X-Forwarded-For``, as an address (or an
    IPv6 /64 network); ``unknown`` when the platform's entry is missing or unreadable."""
    entries = [entry.strip() for entry in (forwarded_for or "").split(",") if entry.strip()]
    if trusted_hops < 1 or len(entries) < trusted_hops:
        return UNKNOWN_ADDRESS
    entry = entries[-trusted_hops]
    if entry.startswith("["):  # [v6]:port
        entry = entry[1:].partition("]")[0]
    elif entry.count(":") == 1:  # v4:port
        entry = entry.partition(":")[0]
    try:
        address = ipaddress.ip_address(entry)
    except ValueError:
        return UNKNOWN_ADDRESS
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


@functools.cache
def _uuid_adapter() -> TypeAdapter[uuid.UUID]:
    from pydantic import TypeAdapter

    return TypeAdapter(uuid.UUID)


def _reject_nul(value: str, prefix: str, name: str) -> None:
    if "\x00" in value:
        raise validation_error(
            [
                {
                    "type": "string_nul",
                    "loc": (name,),
                    "msg": "String should not contain NUL characters",
                    "input": value,
                }
            ],
            prefix,
        )


def _validate[ModelT: "BaseModel"](
    model: type[ModelT], data: Mapping[str, Any], prefix: str
) -> ModelT:
    from pydantic import ValidationError

    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc.errors(include_url=False), prefix) from None


def _render(result: Any, status_code: int) -> func.HttpResponse:
    reply = result if isinstance(result, Reply) else Reply(result, status_code)
    content = reply.content
    if isinstance(content, EncodedJson):
        body = content.body
    elif reply.media_type != "application/json":
        body = content.encode() if isinstance(content, str) else bytes(content or b"")
    elif hasattr(content, "model_dump_json"):
        body = content.model_dump_json().encode()
    else:
        body = dump_json(content)
    return func.HttpResponse(
        body=body,
        status_code=reply.status_code,
        headers=reply.headers,
        mimetype=reply.media_type,
        charset="utf-8",
    )


def error_response(
    status_code: int, detail: Any, headers: Mapping[str, str] | None = None
) -> func.HttpResponse:
    return func.HttpResponse(
        body=dump_json({"detail": detail}),
        status_code=status_code,
        headers=dict(headers or {}),
        mimetype="application/json",
        charset="utf-8",
    )


def _allowed_origin(origin: str | None, settings: Settings) -> str | None:
    if not origin:
        return None
    if origin in settings.cors_origins:
        return origin
    if "*" in settings.cors_origins:
        return "*"
    return None


def _apply_cors(response: func.HttpResponse, origin: str | None, settings: Settings) -> None:
    allowed = _allowed_origin(origin, settings)
    vary = response.headers.get("Vary")  # a response may vary on more (Accept-Encoding)
    response.headers["Vary"] = f"{vary}, Origin" if vary else "Origin"
    if allowed is None:
        return
    response.headers["Access-Control-Allow-Origin"] = allowed
    if settings.cors_allow_credentials:
        response.headers["Access-Control-Allow-Credentials"] = "true"


def _matches(template: str, segments: list[str]) -> bool:
    """Whether a route template (``{name}`` parameters, a last ``{name?}``) matches a path."""
    parts = template.split("/")
    if parts[-1].endswith("?}") and len(segments) == len(parts) - 1:
        parts = parts[:-1]
    return len(parts) == len(segments) and all(
        (part.startswith("{") and segment != "") or part.lower() == segment.lower()
        for part, segment in zip(parts, segments, strict=True)
    )


def _methods_for(template: str, url: str) -> list[str]:
    """The methods of ``template``'s routes, and of every other route that answers at ``url``:
    the host picks a route by path and method, so a literal route (``cache/stats``) and a
    parameter route (``cache/{pattern?}``) share a path."""
    segments = urllib.parse.urlsplit(url).path.strip("/").split("/")
    methods = {
        spec.method
        for spec in ROUTES
        if spec.template == template or _matches(spec.template, segments)
    }
    return [*sorted(methods), "OPTIONS"]


def _preflight(raw: func.HttpRequest, template: str, settings: Settings) -> func.HttpResponse:
    origin = raw.headers.get("origin")
    requested = raw.headers.get("access-control-request-method")
    methods = _methods_for(template, raw.url)
    if not origin or not requested:
        return func.HttpResponse(status_code=204, headers={"Allow": ", ".join(methods)})
    if _allowed_origin(origin, settings) is None:
        return error_response(400, "Disallowed CORS origin")
    if requested.upper() not in methods:
        return error_response(400, "Disallowed CORS method")
    return func.HttpResponse(
        status_code=204,
        headers={
            "Access-Control-Allow-Methods": ", ".join(methods),
            "Access-Control-Allow-Headers": CORS_ALLOWED_HEADERS,
            "Access-Control-Max-Age": CORS_MAX_AGE_SECONDS,
        },
    )


def _database_unavailable(exc: BaseException) -> str | None:
    if "sqlalchemy" not in sys.modules:
        return None
    from shared.db import unavailable_reason

    return unavailable_reason(exc)


def _failure(spec: RouteSpec, exc: Exception, invocation_id: str) -> func.HttpResponse:
    """The response to an exception a handler raised: its own error, 503 when a dependency or
    this instance cannot answer now, else 500. Nothing of the exception reaches the response."""
    if isinstance(exc, HTTPError):
        return error_response(exc.status_code, exc.detail, exc.headers)
    unavailable = _unavailable(exc)
    if unavailable is None:
        logger.exception("Unhandled error in %s (invocation %s)", spec.name, invocation_id)
        return error_response(500, "Internal Server Error")
    reason, retry_after = unavailable
    unavailable_log.report(
        reason, f"{type(exc).__name__} ({spec.name}, invocation {invocation_id})"
    )
    return error_response(503, UNAVAILABLE, {"Retry-After": retry_after})


def _admit(spec: RouteSpec, req: ApiRequest) -> None:
    if spec.requires_config and req.settings.errors:
        raise HTTPError(503, UNAVAILABLE, {"Retry-After": RETRY_AFTER_SECONDS})
    if len(req.raw.get_body()) > MAX_BODY_BYTES:
        raise HTTPError(413, f"Request body too large: the limit is {MAX_BODY_BYTES} bytes")


def _close(spec: RouteSpec, req: ApiRequest) -> None:
    """Close the request's session. A rollback that cannot reach the server undoes nothing the
    handler committed, so the response stands; the failure is logged with its cause."""
    try:
        req.close()
    except Exception as exc:
        reason = _database_unavailable(exc) or "database session close failed"
        unavailable_log.report(
            reason, f"{type(exc).__name__} closing ({spec.name}, invocation {req.invocation_id})"
        )


@contextmanager
def _span(
    spec: RouteSpec, raw: func.HttpRequest, context: func.Context, settings: Settings
) -> Iterator[Callable[[int], None]]:
    if not telemetry.ensure_configured(settings):
        yield lambda _status: None
        return
    with telemetry.request_span(
        spec.method,
        "/" + spec.path,
        _telemetry_url(spec, raw.url),
        context.invocation_id,
        context.trace_context.trace_parent,
        context.trace_context.trace_state,
    ) as record:
        yield record


def _preflight_response(
    raw: func.HttpRequest, spec: RouteSpec, settings: Settings
) -> func.HttpResponse:
    response = _preflight(raw, spec.template, settings)
    _apply_cors(response, raw.headers.get("origin"), settings)
    return response


def _invoke(
    spec: RouteSpec, handler: Handler, raw: func.HttpRequest, context: func.Context
) -> func.HttpResponse:
    settings = get_settings()
    if raw.method == "OPTIONS":
        return _preflight_response(raw, spec, settings)
    with telemetry.invocation(context.invocation_id), _span(spec, raw, context, settings) as record:
        response = _answer(spec, handler, ApiRequest(raw, context.invocation_id, settings))
        _apply_cors(response, raw.headers.get("origin"), settings)
        record(response.status_code)
        return response


def _answer(spec: RouteSpec, handler: Handler, req: ApiRequest) -> func.HttpResponse:
    """The handler's response, or its error's, under the database deadline; the session closed
    after. Blocks: on a thread, never on the event loop."""
    with database_deadline(req.settings.db_deadline_seconds):
        try:
            _admit(spec, req)
            if spec.auth != "public":
                from shared.auth import authorize

                req.user = authorize(req, superuser=spec.auth == "superuser")
            response = _render(handler(req), spec.status_code)
        except Exception as exc:
            response = _failure(spec, exc, req.invocation_id)
        _close(spec, req)
    return response


async def _invoke_cached(
    spec: RouteSpec,
    cached: CachedAnswer,
    handler: Handler,
    raw: func.HttpRequest,
    context: func.Context,
) -> func.HttpResponse:
    """As ``_invoke``, answered on the event loop when ``cached`` can (a 200 read from Redis:
    no thread, no session); anything else is ``_answer`` on a thread of ``_request_threads``."""
    settings = get_settings()
    if raw.method == "OPTIONS":
        return _preflight_response(raw, spec, settings)
    with telemetry.invocation(context.invocation_id), _span(spec, raw, context, settings) as record:
        req = ApiRequest(raw, context.invocation_id, settings)
        response = await _from_cache(spec, cached, req)
        if response is None:
            # The context goes along: the invocation id of the log records, the span, the deadline.
            answer = functools.partial(
                contextvars.copy_context().run, _answer_on_thread, spec, handler, req, context
            )
            response = await asyncio.get_running_loop().run_in_executor(_request_threads(), answer)
        _apply_cors(response, raw.headers.get("origin"), settings)
        record(response.status_code)
        return response


def _answer_on_thread(
    spec: RouteSpec, handler: Handler, req: ApiRequest, context: func.Context
) -> func.HttpResponse:
    """``_answer`` with the invocation id in ``context.thread_local_storage`` meanwhile, as the
    worker's run_sync_func sets it on its threads: the worker files the log records of a thread
    by it."""
    local: Any = context.thread_local_storage  # typed as the class; the worker passes one
    local.invocation_id = context.invocation_id
    try:
        return _answer(spec, handler, req)
    finally:
        local.invocation_id = None


async def _from_cache(
    spec: RouteSpec, cached: CachedAnswer, req: ApiRequest
) -> func.HttpResponse | None:
    """The 200 ``cached`` gives for a caller signed in from the cache (``auth.cached_user``);
    None for anything else, errors included: the handler answers those on a thread, as it
    always has, so every response but this one success has a single source. The cache's
    statistics count this request's lookups only if they answered it (the handler's count
    otherwise)."""
    from shared.cache import get_cache, tentative_lookups

    with tentative_lookups() as lookups:
        try:
            _admit(spec, req)
            if spec.auth != "public":
                from shared.auth import cached_user

                user = await cached_user(req, superuser=spec.auth == "superuser")
                if user is None:
                    return None
                req.user = user
            result = await cached(req)
        except HTTPError:
            return None
        except Exception:
            logger.exception(
                "Answering %s from the cache failed (invocation %s); the handler answers it",
                spec.name,
                req.invocation_id,
            )
            return None
    if result is None:
        return None
    get_cache().count_lookups(lookups)
    return _render(result, spec.status_code)


_request_pool: ThreadPoolExecutor | None = None
_request_pool_lock = threading.Lock()


def _request_threads() -> ThreadPoolExecutor:
    """The threads on which ``cached`` routes run their handlers: as many as the worker's own
    pool for sync functions has (``PYTHON_THREADPOOL_THREAD_COUNT``, else Python's default)."""
    global _request_pool
    with _request_pool_lock:
        if _request_pool is None:
            count = os.environ.get("PYTHON_THREADPOOL_THREAD_COUNT", "")
            _request_pool = ThreadPoolExecutor(
                max_workers=int(count) if count.isdigit() and int(count) > 0 else None,
                thread_name_prefix="stratus-request",
            )
        return _request_pool


async def _invoke_async(
    spec: RouteSpec, handler: AsyncHandler, raw: func.HttpRequest, context: func.Context
) -> func.HttpResponse:
    """As ``_invoke``, on the event loop: no sign-in and no session (both would block it)."""
    settings = get_settings()
    if raw.method == "OPTIONS":
        return _preflight_response(raw, spec, settings)
    with telemetry.invocation(context.invocation_id), _span(spec, raw, context, settings) as record:
        req = ApiRequest(raw, context.invocation_id, settings)
        try:
            _admit(spec, req)
            response = _render(await handler(req), spec.status_code)
        except Exception as exc:
            response = _failure(spec, exc, req.invocation_id)
        _apply_cors(response, raw.headers.get("origin"), settings)
        record(response.status_code)
        return response


def _telemetry_url(spec: RouteSpec, url: str) -> str:
    """The URL without its query, or, where a path parameter carries an address or a token,
    with the route's template for a path (``/api/v1/password-recovery/{email}``)."""
    parts = urllib.parse.urlsplit(url)
    path = "/" + spec.path if spec.redact else parts.path
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _unavailable(exc: BaseException) -> tuple[str, str] | None:
    """Why a dependency or this instance cannot answer now (a 503), and when to retry."""
    if "shared.security" in sys.modules:
        from shared.security import HashingBusy

        if isinstance(exc, HashingBusy):  # a hash slot frees within a fraction of a second
            return "password hashing at capacity", HASHING_RETRY_AFTER_SECONDS
    reason = _database_unavailable(exc)
    return None if reason is None else (reason, RETRY_AFTER_SECONDS)


class RouteOptions(TypedDict, total=False):
    """What a route may state beyond its path and method; everything has a default."""

    operation_id: str
    summary: str
    description: str
    auth: Auth
    redact: Iterable[str]
    body: str
    body_media: str
    query: str
    path_params: Mapping[str, PathParam]
    response: str
    response_media: str
    status_code: int
    errors: Iterable[int]
    requires_config: bool
    functions_route: str
    include_in_schema: bool
    cached: CachedAnswer


class Router:
    """A blueprint's routes under one OpenAPI tag: ``router.get(path, ...)`` is ``route(bp, path,
    "GET", tags=[tag], ...)``, so that a declaration states only what differs from the defaults,
    as with FastAPI's ``APIRouter(tags=[...])``."""

    def __init__(self, bp: func.Blueprint, tag: str) -> None:
        self.bp = bp
        self.tag = tag

    def _route(self, path: str, method: str, options: RouteOptions) -> Callable[[Handler], Handler]:
        return route(self.bp, path, method, tags=(self.tag,), **options)

    def get(self, path: str, **options: Unpack[RouteOptions]) -> Callable[[Handler], Handler]:
        return self._route(path, "GET", options)

    def post(self, path: str, **options: Unpack[RouteOptions]) -> Callable[[Handler], Handler]:
        return self._route(path, "POST", options)

    def put(self, path: str, **options: Unpack[RouteOptions]) -> Callable[[Handler], Handler]:
        return self._route(path, "PUT", options)

    def patch(self, path: str, **options: Unpack[RouteOptions]) -> Callable[[Handler], Handler]:
        return self._route(path, "PATCH", options)

    def delete(self, path: str, **options: Unpack[RouteOptions]) -> Callable[[Handler], Handler]:
        return self._route(path, "DELETE", options)


def _path_params(
    path: str, handler: str, declared: Mapping[str, PathParam] | None
) -> dict[str, PathParam]:
    """Every ``{name}`` of ``path``, in order: a string unless ``declared`` says otherwise."""
    names = _PATH_PARAM.findall(path)
    unknown = set(declared or {}) - set(names)
    if unknown:
        raise TypeError(f"{handler}: path_params {sorted(unknown)} are not in {path!r}")
    return {name: (declared or {}).get(name, "string") for name in names}


def route(
    bp: func.Blueprint,
    path: str,
    method: str,
    *,
    operation_id: str | None = None,
    summary: str | None = None,
    description: str = "",
    tags: Iterable[str] = (),
    auth: Auth = "public",
    redact: Iterable[str] = (),
    body: str | None = None,
    body_media: str = "application/json",
    query: str | None = None,
    path_params: Mapping[str, PathParam] | None = None,
    response: str | None = None,
    response_media: str = "application/json",
    status_code: int = 200,
    errors: Iterable[int] = (),
    requires_config: bool = True,
    functions_route: str | None = None,
    include_in_schema: bool = True,
    cached: CachedAnswer | None = None,
) -> Callable[[Handler], Handler]:
    """Register ``handler`` as an anonymous HTTP trigger on ``bp`` at ``path`` for ``method``.

    Blueprints declare routes through a ``Router``, which adds their tag. What is not given is
    derived the way FastAPI derives it: ``operation_id`` is ``<first tag>-<function name>``
    (the name alone without a tag), ``summary`` the function name in title case
    (``read_items`` -> ``Read Items``), ``description`` its docstring, and every path parameter
    is a string unless ``path_params`` names another kind (``{"id": "uuid"}``).

    ``path`` is written as the contract writes it (``api/v1/users/``); the Functions route is
    registered without the trailing slash, and both forms reach the handler, as Azure routes them.

    ``body``, ``query`` and ``response`` name models in ``shared.schemas`` (names, so that
    indexing does not import pydantic); the OpenAPI document resolves them.

    ``functions_route`` overrides the Functions route template where it must differ from the
    OpenAPI path, e.g. an optional ``{name?}`` segment, which OpenAPI cannot express.

    ``redact`` names path parameters that carry an address or a token: telemetry records the
    route's template instead of the URL.

    ``include_in_schema=False`` leaves the route out of the OpenAPI document (the docs pages).

    ``cached`` (sync handlers): ``async def cached(req) -> result | None``, the answer from
    Redis, tried on the event loop first, with ``req.user`` signed in from the cache as well;
    None (or any error) leaves the request to the handler, on a thread. A read answered this
    way crosses no thread, which is most of what a cached read costs (bench/RESULTS.md).
    """

    def decorate(handler: Handler) -> Handler:
        asynchronous = inspect.iscoroutinefunction(handler)
        if asynchronous and cached is not None:
            raise TypeError(f"{handler.__name__}: cached= is for sync handlers")
        if asynchronous and auth != "public":
            raise TypeError(
                f"{handler.__name__}: an async route runs on the event loop, where signing "
                "in (database, Redis) would block every other async invocation; make it sync"
            )
        name = handler.__name__
        tag_list = tuple(tags)
        template = (functions_route or path).strip("/")
        spec = RouteSpec(
            path=path,
            template=template,
            method=method.upper(),
            name=name,
            operation_id=operation_id or (f"{tag_list[0]}-{name}" if tag_list else name),
            summary=summary or name.replace("_", " ").title(),
            description=description or (handler.__doc__ or "").strip(),
            tags=tag_list,
            auth=auth,
            redact=tuple(redact),
            body=body,
            body_media=body_media,
            query=query,
            path_params=_path_params(path, name, path_params),
            response=response,
            response_media=response_media,
            status_code=status_code,
            errors=tuple(errors),
            requires_config=requires_config,
            in_schema=include_in_schema,
        )
        ROUTES.append(spec)
        methods = [spec.method]
        # One function per route template answers OPTIONS, so preflights are never ambiguous.
        if template not in _TEMPLATES_WITH_OPTIONS:
            _TEMPLATES_WITH_OPTIONS.add(template)
            methods.append("OPTIONS")

        function: Callable[..., Any]
        if cached is not None:
            answer_from_cache = cached

            async def function(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
                return await _invoke_cached(spec, answer_from_cache, handler, req, context)

        elif asynchronous:

            async def function(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
                return await _invoke_async(spec, handler, req, context)

        else:

            def function(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
                return _invoke(spec, handler, req, context)

        function.__name__ = handler.__name__
        function.__qualname__ = handler.__qualname__
        function.__doc__ = handler.__doc__
        bp.route(route=template, methods=methods, auth_level=func.AuthLevel.ANONYMOUS)(function)
        return handler

    return decorate
