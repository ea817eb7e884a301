"""The host's side of the messages: an HTTP request or a timer firing into an
``InvocationRequest``, and an ``InvocationResponse`` back into status, headers and body.

Each conversion follows the Functions host (azure-functions-host's ``ToRpcHttp``,
``ScriptInvocationContextExtensions``, ``RawScriptResult`` and ASP.NET Core's
``SetCookieHeaderValue``) for a worker that declares the capabilities the Python runtime
declares (``RawHttpBodyBytes``, ``RpcHttpBodyOnly``, ``RpcHttpTriggerMetadataRemoved``), so a
function sees locally what it sees on Azure, quirks included.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable, Mapping
from datetime import datetime
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl, quote

Headers = list[tuple[bytes, bytes]]

_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_FRAMING = frozenset({"content-length", "transfer-encoding"})
# RpcHttpCookie.SameSite: None(0) is "unspecified" and omitted; ExplicitNone is "none".
_SAME_SITE = {1: "lax", 2: "strict", 3: "none"}


def request_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """Lower-cased names; a repeated header's values joined with "," (ASP.NET StringValues)."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in raw:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers


def query_params(query: bytes) -> dict[str, str]:
    """ASP.NET's query collection as the host forwards it: keys compare case-insensitively
    (the first spelling is kept), repeated keys join with ",", empty values are left out."""
    values: dict[str, tuple[str, list[str]]] = {}
    for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        values.setdefault(key.lower(), (key, []))[1].append(value)
    params: dict[str, str] = {}
    for key, parts in values.values():
        joined = ",".join(parts)
        if joined:
            params[key] = joined
    return params


def new_trace_parent() -> str:
    """A new root: what the host's activity is when nothing upstream started a trace."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00"


def trace_context(protos: Any, headers: Mapping[str, str]) -> Any:
    """The host's own activity for the invocation: a child span of the caller's ``traceparent``
    (same trace, flags and ``tracestate``), or a new trace when the caller sent none."""
    found = _TRACEPARENT.fullmatch(headers.get("traceparent", "").strip())
    if found and found.group(1) != "0" * 32 and found.group(2) != "0" * 16:
        trace_id, _, flags = found.groups()
        return protos.RpcTraceContext(
            trace_parent=f"00-{trace_id}-{secrets.token_hex(8)}-{flags}",
            trace_state=headers.get("tracestate", ""),
        )
    return protos.RpcTraceContext(trace_parent=new_trace_parent())


def http_data(
    protos: Any,
    method: str,
    url: str,
    headers: Mapping[str, str],
    query: bytes,
    route_params: Mapping[str, str],
    body: bytes,
) -> Any:
    """The trigger's ``TypedData``: an ``RpcHttp`` with the body as bytes (the runtime asks for
    raw bytes), sent only when ``Content-Length`` is positive, as ``ToRpcHttp`` does."""
    http = protos.RpcHttp(
        method=method,
        url=url,
        headers=headers,
        query=query_params(query),
        params=route_params,
    )
    length = headers.get("content-length", "")
    if length.isdigit() and int(length) > 0:
        http.body.bytes = body
    return protos.TypedData(http=http)


def timer_data(protos: Any, past_due: bool, status: Mapping[str, str] | None) -> Any:
    """The ``TimerInfo`` the host serialises to JSON for a timer trigger."""
    info = {"Schedule": {"AdjustForDST": True}, "ScheduleStatus": status, "IsPastDue": past_due}
    return protos.TypedData(json=json.dumps(info, separators=(",", ":")))


def schedule_status(last: datetime | None, following: datetime | None) -> dict[str, str]:
    """``ScheduleStatus`` of a monitored timer: .NET's ``DateTime.MinValue`` stands for never."""
    never = "0001-01-01T00:00:00"
    now = datetime.now().isoformat()
    return {
        "Last": last.isoformat() if last else never,
        "Next": following.isoformat() if following else never,
        "LastUpdated": now,
    }


def invocation(
    protos: Any, function_id: str, invocation_id: str, parameter: str, data: Any, trace: Any
) -> Any:
    return protos.InvocationRequest(
        invocation_id=invocation_id,
        function_id=function_id,
        input_data=[protos.ParameterBinding(name=parameter, data=data)],
        trace_context=trace,
    )


def _cookie(cookie: Any) -> str:
    # ASP.NET's ResponseCookies.Append: the value percent-encoded (Uri.EscapeDataString), then
    # SetCookieHeaderValue's attribute order. An empty domain or path the worker sent is still
    # "present", so a Python cookie without them comes out with "domain=; path=" as on Azure.
    parts = [f"{cookie.name}={quote(cookie.value, safe='')}"]
    if cookie.HasField("expires"):
        parts.append(f"expires={formatdate(cookie.expires.value.seconds, usegmt=True)}")
    if cookie.HasField("max_age"):
        parts.append(f"max-age={int(cookie.max_age.value)}")
    if cookie.HasField("domain"):
        parts.append(f"domain={cookie.domain.value}")
    if cookie.HasField("path"):
        parts.append(f"path={cookie.path.value}")
    if cookie.HasField("secure") and cookie.secure.value:
        parts.append("secure")
    if cookie.same_site in _SAME_SITE:
        parts.append(f"samesite={_SAME_SITE[cookie.same_site]}")
    if cookie.HasField("http_only") and cookie.http_only.value:
        parts.append("httponly")
    return "; ".join(parts)


def _body(data: Any) -> bytes:
    kind = data.WhichOneof("data")
    if kind in {"bytes", "stream"}:
        return bytes(getattr(data, kind))
    if kind in {"string", "json"}:
        return str(getattr(data, kind)).encode()
    if kind is None:
        return b""
    raise TypeError(f"the function's HTTP body is TypedData '{kind}'; expected bytes or text")


def http_response(return_value: Any) -> tuple[int, Headers, bytes]:
    """Status, headers and body of an HTTP function's ``$return``, as ``RawScriptResult`` writes
    it (a plain string return is a ``text/plain`` 200, as the host's string formatter sends it)."""
    kind = return_value.WhichOneof("data")
    if kind == "string":
        return 200, [(b"Content-Type", b"text/plain; charset=utf-8")], return_value.string.encode()
    if kind != "http":
        raise TypeError(f"the function returned TypedData '{kind}'; expected an HTTP response")
    http = return_value.http
    headers: Headers = [
        (name.encode("latin-1"), value.encode("latin-1"))
        for name, value in http.headers.items()
        if name.lower() not in _FRAMING  # framing is the server's job; the body is complete
    ]
    headers += [(b"Set-Cookie", _cookie(cookie).encode("latin-1")) for cookie in http.cookies]
    status = int(http.status_code) if http.status_code else 200
    return status, headers, _body(http.body)
