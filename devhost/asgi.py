"""The raw ASGI app that turns HTTP requests into Functions invocations.

Deliberately framework-free: per request it does one route lookup, builds the
``InvocationRequest`` the host would send, hands it to the runtime and writes the
``InvocationResponse`` back, so a benchmark through devhost measures the runtime and the
function app, not the host.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from devhost import messages
from devhost.executions import HTTP_REASON, log_executed, log_executing, log_http_request
from devhost.functions import IndexedFunction
from devhost.routing import MethodNotAllowed, Router
from devhost.runtime import FunctionsRuntime
from devhost.timeouts import FunctionTimeouts, InvocationFailed
from devhost.timers import TimerScheduler

logger = logging.getLogger("devhost")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = messages.Headers

# Azure Functions rejects request bodies over 100 MB.
MAX_BODY_BYTES = 100 * 1024 * 1024

_JSON = (b"content-type", b"application/json")
_NOT_FOUND = b'{"detail": "Not Found"}'
_NOT_ALLOWED = b'{"detail": "Method Not Allowed"}'
_TOO_LARGE = f'{{"detail": "Request body too large: the limit is {MAX_BODY_BYTES} bytes"}}'.encode()


class _Disconnected(Exception):
    """The client went away before sending its whole body."""


def _append_forwarded_for(headers: dict[str, str], client: tuple[str, int] | None) -> None:
    """Append the peer's address to X-Forwarded-For, as Azure's front end does: the app trusts
    only the entries the platform added (TRUSTED_PROXY_HOPS), never what the client sent."""
    if client:
        forwarded = headers.get("x-forwarded-for")
        headers["x-forwarded-for"] = f"{forwarded}, {client[0]}" if forwarded else client[0]


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


async def _respond(send: Send, status: int, headers: Headers, body: bytes) -> None:
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class FunctionsApp:
    def __init__(
        self,
        router: Router[IndexedFunction],
        runtime: FunctionsRuntime,
        scheduler: TimerScheduler,
        timeouts: FunctionTimeouts,
        grace_seconds: float,
    ) -> None:
        self._router = router
        self._runtime = runtime
        self._protos = runtime.protos
        self._scheduler = scheduler
        self._timeouts = timeouts
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
                self._runtime.stop()
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
        headers = messages.request_headers(scope["headers"])
        _append_forwarded_for(headers, scope.get("client"))
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
        if query:
            url = f"{url}?{query.decode('latin-1')}"
        function = resolved.target
        protos = self._protos
        data = messages.http_data(protos, method, url, headers, query, resolved.params, body)
        invocation_id = str(uuid.uuid4())
        request = messages.invocation(
            protos,
            function.function_id,
            invocation_id,
            function.trigger_parameter,
            data,
            messages.trace_context(protos, headers),
        )
        log_executing(function.name, invocation_id, HTTP_REASON)
        started = time.perf_counter()
        try:
            response = await self._timeouts.run(
                function.name, invocation_id, self._runtime.invoke(request)
            )
        except InvocationFailed as exc:
            failure: str | None = str(exc)
        else:
            failure = self._runtime.failure(response)
        if failure is None:
            try:
                status, response_headers, response_body = messages.http_response(
                    response.return_value
                )
            except (TypeError, ValueError) as exc:
                failure = f"Exception: {type(exc).__name__}: {exc}"
        log_executed(function.name, invocation_id, started, failure)
        if failure is not None:
            # The host answers a failed invocation with an empty 500; the details are logged.
            status, response_headers, response_body = 500, [], b""
        log_http_request(function.name, method, resolved.template, status)
        await _respond(send, status, response_headers, response_body)
