"""The raw ASGI app that turns HTTP requests into Functions invocations.

Deliberately framework-free: per request it does one route lookup, builds the
``func.HttpRequest`` the worker would build, calls the function and writes its
``func.HttpResponse`` back, so a benchmark through devhost measures the function app, not the
host.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

import azure.functions as func

from devhost.context import W3CTraceContext
from devhost.indexing import IndexedFunction
from devhost.invoker import Invoker
from devhost.routing import MethodNotAllowed, Router
from devhost.timers import TimerScheduler

logger = logging.getLogger("devhost")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

# Azure Functions rejects request bodies over 100 MB.
MAX_BODY_BYTES = 100 * 1024 * 1024

_JSON = (b"content-type", b"application/json")
_NOT_FOUND = b'{"detail": "Not Found"}'
_NOT_ALLOWED = b'{"detail": "Method Not Allowed"}'
_TOO_LARGE = f'{{"detail": "Request body too large: the limit is {MAX_BODY_BYTES} bytes"}}'.encode()
_SERVER_ERROR = b'{"detail": "Internal Server Error"}'


class _Disconnected(Exception):
    """The client went away before sending its whole body."""


def _request_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in raw:
        name = raw_name.decode("latin-1")
        value = raw_value.decode("latin-1")
        # Repeated headers arrive joined with ",", as ASP.NET's StringValues renders them.
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers


def _query_params(query: bytes) -> dict[str, str]:
    params: dict[str, str] = {}
    for key, value in parse_qsl(query.decode("utf-8", "replace"), keep_blank_values=True):
        params[key] = f"{params[key]},{value}" if key in params else value
    return params


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body, or None once it exceeds the limit (the rest is left unread)."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        more = message.get("more_body", False)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _response_parts(result: Any) -> tuple[int, Headers, bytes]:
    """Status, headers and body of what a function returned, as the worker encodes them."""
    if isinstance(result, str | bytes):
        body = result.encode() if isinstance(result, str) else result
        return 200, [(b"content-type", b"text/plain; charset=utf-8")], body
    if not isinstance(result, func.HttpResponse):
        raise TypeError(
            f"the function returned {type(result).__name__}; expected func.HttpResponse"
        )
    headers: Headers = []
    has_type = False
    for name, value in result.headers.items():
        lowered = name.lower()
        if lowered in {"content-length", "transfer-encoding"}:
            continue  # framing is the server's job; the body below is complete
        has_type = has_type or lowered == "content-type"
        headers.append((lowered.encode("latin-1"), str(value).encode("latin-1")))
    if not has_type:
        mimetype = str(result.mimetype)
        content_type = (
            f"{mimetype}; charset={result.charset}" if mimetype.startswith("text/") else mimetype
        )
        headers.append((b"content-type", content_type.encode("latin-1")))
    return int(result.status_code), headers, result.get_body()


async def _respond(send: Send, status: int, headers: Headers, body: bytes) -> None:
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class FunctionsApp:
    def __init__(
        self,
        router: Router[IndexedFunction],
        invoker: Invoker,
        scheduler: TimerScheduler,
        grace_seconds: float,
    ) -> None:
        self._router = router
        self._invoker = invoker
        self._scheduler = scheduler
        self._grace_seconds = grace_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._scheduler.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._scheduler.stop(self._grace_seconds)
                self._invoker.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_path: str = scope["raw_path"].decode("latin-1")
        method: str = scope["method"]
        resolved = self._router.resolve(method, raw_path)
        if resolved is None:
            await _respond(send, 404, [_JSON], _NOT_FOUND)
            return
        if isinstance(resolved, MethodNotAllowed):
            allow = (b"allow", ", ".join(resolved.allow).encode())
            await _respond(send, 405, [_JSON, allow], _NOT_ALLOWED)
            return
        headers = _request_headers(scope["headers"])
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
            body = None  # refused before reading a byte of it
        else:
            try:
                body = await _read_body(receive)
            except _Disconnected:
                return
        if body is None:
            await _respond(send, 413, [_JSON, (b"connection", b"close")], _TOO_LARGE)
            return
        query: bytes = scope["query_string"]
        host = headers.get("host") or "{}:{}".format(*scope["server"])
        url = f"{scope['scheme']}://{host}{raw_path}"
        request = func.HttpRequest(
            method,
            f"{url}?{query.decode('latin-1')}" if query else url,
            headers=headers,
            params=_query_params(query) if query else None,
            route_params=resolved.params,
            body=body,
        )
        function = resolved.target
        trace = None
        if function.wants_context:
            trace = W3CTraceContext(headers.get("traceparent"), headers.get("tracestate"))
        invocation_id = str(uuid.uuid4())
        try:
            result = await self._invoker.invoke(function, request, invocation_id, trace)
            status, response_headers, response_body = _response_parts(result)
        except Exception:
            logger.exception(
                "Executed 'Functions.%s' (Failed, Id=%s)", function.name, invocation_id
            )
            status, response_headers, response_body = 500, [_JSON], _SERVER_ERROR
        await _respond(send, status, response_headers, response_body)
