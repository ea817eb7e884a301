"""devhost answers every contract route exactly as the worker runtime answers the same request.

The app runs under devhost (``api`` fixture); a second process runs it on
``azure_functions_runtime`` directly (tests/support/direct_runtime.py), with messages built from
the request as the host builds them. For one request per contract operation, deterministic and
free of side effects, the status, headers and body bytes must be identical.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.api import Api

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = ROOT / "contracts" / "api-v1.openapi.json"
# Added by the HTTP server itself, not by the function.
SERVER_HEADERS = {"date", "server", "content-length", "connection", "transfer-encoding"}
NOWHERE = str(uuid.UUID(int=0))


class DirectRuntime:
    def __init__(self, env: dict[str, str]) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.direct_runtime"],
            cwd=ROOT,
            env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert "ready" in self._read()

    def _read(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        assert line, "the direct runtime exited"
        answer: dict[str, Any] = json.loads(line)
        return answer

    def call(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(request) + "\n")
        self._process.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)


@pytest.fixture(scope="module")
def direct(api: Api) -> Iterator[DirectRuntime]:
    runtime = DirectRuntime(api.env)
    try:
        yield runtime
    finally:
        runtime.close()


def contract_operations() -> set[tuple[str, str]]:
    paths = json.loads(CONTRACT.read_text())["paths"]
    return {(path, method.upper()) for path, operations in paths.items() for method in operations}


def cases(api: Api, item_id: str) -> list[dict[str, Any]]:
    """One request per contract operation: (operation, function, route params, request)."""
    admin = api.admin.headers
    me = api.admin.id

    def case(
        path: str,
        method: str,
        function: str,
        url: str | None = None,
        params: dict[str, str] | None = None,
        **request: Any,
    ) -> dict[str, Any]:
        return {
            "operation": (path, method),
            "function": function,
            "params": params or {},
            "request": httpx.Request(method, api.url + (url or path), **request),
        }

    return [
        case("/api/v1/login/access-token", "POST", "login_access_token", data={"username": "x"}),
        case("/api/v1/login/test-token", "POST", "test_token", headers=admin),
        case(
            "/api/v1/password-recovery/{email}",
            "POST",
            "recover_password",
            url="/api/v1/password-recovery/nobody@example.com",
            params={"email": "nobody@example.com"},
        ),
        case("/api/v1/reset-password/", "POST", "reset_password", json={"token": "x"}),
        case(
            "/api/v1/password-recovery-html-content/{email}",
            "POST",
            "recover_password_html_content",
            url="/api/v1/password-recovery-html-content/nobody@example.com",
            params={"email": "nobody@example.com"},
            headers=admin,
        ),
        case("/api/v1/users/", "GET", "read_users", headers=admin),
        case("/api/v1/users/", "POST", "create_user", headers=admin, json={"email": "x"}),
        case("/api/v1/users/me", "GET", "read_user_me", headers=admin),
        case("/api/v1/users/me", "DELETE", "delete_user_me", headers=admin),
        case("/api/v1/users/me", "PATCH", "update_user_me", headers=admin, json={"email": 1}),
        case("/api/v1/users/me/password", "PATCH", "update_password_me", headers=admin, json={}),
        case("/api/v1/users/signup", "POST", "register_user", json={"email": "not-an-email"}),
        case(
            "/api/v1/users/{user_id}",
            "GET",
            "read_user_by_id",
            url=f"/api/v1/users/{me}",
            params={"user_id": me},
            headers=admin,
        ),
        case(
            "/api/v1/users/{user_id}",
            "PATCH",
            "update_user",
            url=f"/api/v1/users/{NOWHERE}",
            params={"user_id": NOWHERE},
            headers=admin,
            json={"full_name": "n"},
        ),
        case(
            "/api/v1/users/{user_id}",
            "DELETE",
            "delete_user",
            url=f"/api/v1/users/{NOWHERE}",
            params={"user_id": NOWHERE},
            headers=admin,
        ),
        case("/api/v1/utils/test-email/", "POST", "send_test_email", headers=admin),
        case("/api/v1/utils/health-check/", "GET", "health_check"),
        case(
            "/api/v1/items/",
            "GET",
            "read_items",
            url="/api/v1/items/?skip=0&limit=5&limit=7",
            headers={**admin, "Origin": "http://localhost:5173", "X-Repeat": "a"},
        ),
        case("/api/v1/items/", "POST", "create_item", headers=admin, json={"title": ""}),
        case(
            "/api/v1/items/{id}",
            "GET",
            "read_item",
            url=f"/api/v1/items/{item_id}",
            params={"id": item_id},
            headers={
                **admin,
                "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            },
        ),
        case(
            "/api/v1/items/{id}",
            "PUT",
            "update_item",
            url=f"/api/v1/items/{NOWHERE}",
            params={"id": NOWHERE},
            headers=admin,
            json={"title": "t"},
        ),
        case(
            "/api/v1/items/{id}",
            "DELETE",
            "delete_item",
            url=f"/api/v1/items/{NOWHERE}",
            params={"id": NOWHERE},
            headers=admin,
        ),
        case("/api/v1/private/users/", "POST", "create_private_user", json={"password": "x"}),
    ]


def as_host_sends(request: httpx.Request, function: str, params: dict[str, str]) -> dict[str, Any]:
    """The request as the host hands it over: lower-cased headers, repeated ones joined."""
    headers: dict[str, str] = {}
    for name, value in request.headers.multi_items():
        key = name.lower()
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    query: dict[str, list[str]] = {}
    for key, value in httpx.QueryParams(request.url.query).multi_items():
        query.setdefault(key, []).append(value)
    body = request.read()
    return {
        "function": function,
        "method": request.method,
        "url": str(request.url),
        "headers": headers,
        "query": {key: ",".join(values) for key, values in query.items() if any(values)},
        "params": params,
        "body_b64": base64.b64encode(body).decode(),
    }


def function_headers(response: httpx.Response) -> dict[str, str]:
    return {
        name.lower(): value
        for name, value in response.headers.multi_items()
        if name.lower() not in SERVER_HEADERS
    }


def test_the_cases_cover_every_contract_operation(api: Api):
    covered = {case["operation"] for case in cases(api, NOWHERE)}
    assert covered == contract_operations()


def test_devhost_answers_every_contract_route_as_the_runtime_does(api: Api, direct):
    created = api.request(
        "POST", "/api/v1/items/", json={"title": "fidelity"}, headers=api.admin.headers
    )
    assert created.status_code == 200, created.text
    compared = 0
    for case in cases(api, created.json()["id"]):
        request: httpx.Request = case["request"]
        assert urlsplit(str(request.url)).netloc == urlsplit(api.url).netloc
        through_devhost = api.http.send(request)
        reference = direct.call(as_host_sends(request, case["function"], case["params"]))
        operation = case["operation"]
        assert "failure" not in reference, (operation, reference)
        assert through_devhost.status_code == reference["status"], operation
        assert through_devhost.content == base64.b64decode(reference["body_b64"]), operation
        expected = {name.lower(): value for name, value in reference["headers"].items()}
        assert function_headers(through_devhost) == expected, operation
        assert reference["cookies"] == [], operation
        compared += 1
    assert compared == len(contract_operations())
