"""Smoke-test a Stratus deployment: probes, CORS and the critical /api/v1 endpoints.

    python scripts/smoke_test.py BASE_URL [--expect-version SHA] [--origin ORIGIN]
    python manage.py smoke BASE_URL [--expect-version SHA] [--origin ORIGIN]

It runs on a bare CI runner with only the app's requirements installed: HTTP goes through
urllib.request, and msal is imported only for an Entra ID sign-in. Credentials come from the
environment, never from arguments (which end up in process lists and CI logs), and no password,
secret or token is ever printed:

  SMOKE_USERNAME, SMOKE_PASSWORD   a local account; FIRST_SUPERUSER, FIRST_SUPERUSER_PASSWORD
                                   when neither these nor the Entra ID variables are set
  SMOKE_TENANT_ID, SMOKE_CLIENT_ID, SMOKE_CLIENT_SECRET, SMOKE_SCOPE
                                   Entra ID client credentials, SMOKE_SCOPE being the API's
                                   ".default" scope (api://<app client id>/.default)
  SMOKE_AUTHORITY_HOST             default https://login.microsoftonline.com
  SMOKE_ORIGIN                     the browser origin for the CORS checks; else the first of
                                   CORS_ORIGINS; without either the CORS checks are skipped

/healthz and /readyz get bounded warm-up retries (--attempts, with a pause of --wait seconds
doubling up to 8 s: about a minute with the defaults); every other check runs once, retried at
most twice when the app answers 503 (a gateway's 502/504 too, for requests safe to repeat). The
item the test creates is deleted even when a later check fails or the run is interrupted.

Exit codes: 0 every check passed, 1 a check failed (the failed checks are named on stderr),
2 bad usage.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import socket
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import Message
from typing import Any, TextIO

DEFAULT_ATTEMPTS = 10
DEFAULT_WAIT_SECONDS = 2.0
MAX_WAIT_SECONDS = 8.0
DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

CHECKS = (
    "healthz",
    "readyz",
    "cors-preflight",
    "login",
    "users-me",
    "cors-request",
    "item-create",
    "item-read",
    "item-list",
    "item-delete",
    "cache-stats",
)
AFTER_LOGIN = CHECKS[CHECKS.index("login") + 1 :]

# Answers a host gives while it starts (no functions indexed yet, worker restarting, gateway
# without a healthy instance); the probes are retried on these, and on no answer at all.
WARM_UP_STATUSES = frozenset({404, 408, 429, 500, 502, 503, 504})
# Retried for a request that is safe to repeat; a create is retried only on the app's own 503,
# which it sends before doing anything (a gateway's 502/504 may come after the commit).
TRANSIENT = frozenset({502, 503, 504})
APP_UNAVAILABLE = frozenset({503})
CHECK_ATTEMPTS = 3
MAX_RETRY_AFTER_SECONDS = 5.0
EXCERPT_CHARS = 200
MIN_SECRET_CHARS = 4
USER_AGENT = "stratus-smoke-test"
_JWT = re.compile(r"eyJ[\w-]*\.[\w-]*\.[\w-]*")
_ENTRA_VARIABLES = ("SMOKE_TENANT_ID", "SMOKE_CLIENT_ID", "SMOKE_CLIENT_SECRET", "SMOKE_SCOPE")


class UsageError(Exception):
    """The command line or the environment does not describe a runnable smoke test."""


class Unreachable(Exception):
    """No HTTP answer at all: refused, unresolvable, TLS failure or timeout."""


class CheckFailed(Exception):
    """A check's verdict; the message is its report line's detail."""


# --- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalAccount:
    username: str
    password: str = field(repr=False)

    def describe(self) -> str:
        return f"local account {self.username}"

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.password,)


@dataclass(frozen=True)
class EntraClient:
    tenant_id: str
    client_id: str
    client_secret: str = field(repr=False)
    scope: str
    authority_host: str

    def describe(self) -> str:
        return f"Entra ID client {self.client_id} (scope {self.scope})"

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.client_secret,)


Credentials = LocalAccount | EntraClient


def credentials_from(environ: Mapping[str, str]) -> Credentials:
    """The explicit SMOKE_ account, else Entra ID client credentials, else FIRST_SUPERUSER."""

    def value(name: str) -> str:
        return environ.get(name, "").strip()

    if value("SMOKE_USERNAME") or value("SMOKE_PASSWORD"):
        return _local_account(value, "SMOKE_USERNAME", "SMOKE_PASSWORD")
    if any(value(name) for name in _ENTRA_VARIABLES):
        missing = [name for name in _ENTRA_VARIABLES if not value(name)]
        if missing:
            raise UsageError(f"Entra ID sign-in needs {', '.join(missing)} as well")
        authority = value("SMOKE_AUTHORITY_HOST") or DEFAULT_AUTHORITY_HOST
        if urllib.parse.urlsplit(authority).scheme != "https":
            raise UsageError("SMOKE_AUTHORITY_HOST must be an https:// URL")
        return EntraClient(
            tenant_id=value("SMOKE_TENANT_ID"),
            client_id=value("SMOKE_CLIENT_ID"),
            client_secret=value("SMOKE_CLIENT_SECRET"),
            scope=value("SMOKE_SCOPE"),
            authority_host=authority.rstrip("/"),
        )
    if value("FIRST_SUPERUSER") or value("FIRST_SUPERUSER_PASSWORD"):
        return _local_account(value, "FIRST_SUPERUSER", "FIRST_SUPERUSER_PASSWORD")
    raise UsageError(
        "no credentials: set SMOKE_USERNAME and SMOKE_PASSWORD, or SMOKE_TENANT_ID, "
        "SMOKE_CLIENT_ID, SMOKE_CLIENT_SECRET and SMOKE_SCOPE, or FIRST_SUPERUSER and "
        "FIRST_SUPERUSER_PASSWORD"
    )


def _local_account(value: Callable[[str], str], user_var: str, password_var: str) -> LocalAccount:
    missing = [name for name in (user_var, password_var) if not value(name)]
    if missing:
        raise UsageError(f"{' and '.join(missing)} must be set as well")
    return LocalAccount(value(user_var), value(password_var))


def base_url_of(text: str) -> str:
    parts = urllib.parse.urlsplit(text.strip())
    if "@" in parts.netloc:  # said without echoing the URL: it would print the credentials
        raise UsageError("BASE_URL must not hold credentials; set them in SMOKE_* variables")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"BASE_URL must be an http:// or https:// URL, not {text!r}")
    if parts.query or parts.fragment:
        raise UsageError("BASE_URL must not have a query or fragment")
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def origin_of(text: str, source: str) -> str:
    parts = urllib.parse.urlsplit(text.strip())
    if (
        parts.scheme not in ("http", "https")
        or not parts.netloc
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise UsageError(f"{source} must be an origin such as https://app.example.com: {text!r}")
    return f"{parts.scheme}://{parts.netloc}"


def default_origin(environ: Mapping[str, str]) -> str | None:
    """The first concrete origin of SMOKE_ORIGIN, then of CORS_ORIGINS (``*`` is none)."""
    for name in ("SMOKE_ORIGIN", "CORS_ORIGINS"):
        for candidate in environ.get(name, "").split(","):
            if candidate.strip() and candidate.strip() != "*":
                return origin_of(candidate, name)
    return None


# --- HTTP ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    def excerpt(self) -> str:
        text = " ".join(self.body.decode("utf-8", "replace").split())
        return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "..."

    def problem(self) -> str:
        return f"HTTP {self.status} {self.excerpt()}".rstrip()

    def json_object(self, expected_status: int = 200) -> dict[str, Any]:
        """The JSON object of an answer with ``expected_status``; anything else fails the check."""
        if self.status != expected_status:
            raise CheckFailed(self.problem())
        try:
            data = json.loads(self.body)
        except ValueError:
            raise CheckFailed(f"HTTP {self.status} but not JSON: {self.excerpt()}") from None
        if not isinstance(data, dict):
            raise CheckFailed(f"HTTP {self.status} but not a JSON object: {self.excerpt()}")
        return data

    def retry_after(self) -> float:
        try:
            seconds = float(self.header("retry-after"))
        except ValueError:
            seconds = 1.0
        return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def _headers(message: Message) -> dict[str, str]:
    merged: dict[str, str] = {}
    for name, value in message.items():
        key = name.lower()
        merged[key] = f"{merged[key]}, {value}" if key in merged else value
    return merged


def _transport_problem(exc: BaseException, timeout: float) -> str:
    reason: object = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, ConnectionResetError):
        return "connection reset"
    if isinstance(reason, socket.gaierror):
        return "cannot resolve the host name"
    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"TLS certificate rejected ({reason.verify_message})"
    if isinstance(reason, ssl.SSLError):
        return f"TLS error ({reason.reason})"
    if isinstance(reason, BaseException):
        return f"{type(reason).__name__}: {reason}"
    return str(reason)


class Client:
    """A tiny JSON-over-HTTP client on urllib, answering every status as a ``Response``."""

    def __init__(self, base_url: str, timeout: float) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self._opener = urllib.request.build_opener()

    def send(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        retry_on: frozenset[int] = frozenset(),
    ) -> Response:
        """One request; repeated (``CHECK_ATTEMPTS`` in all) on ``retry_on`` statuses, and on
        no answer when ``retry_on`` is not empty."""
        attempts = CHECK_ATTEMPTS if retry_on else 1
        for attempt in range(1, attempts + 1):
            last = attempt == attempts
            try:
                response = self.send_once(method, path, headers=headers, body=body)
            except Unreachable:
                if last:
                    raise
                time.sleep(1.0)
                continue
            if response.status not in retry_on or last:
                return response
            time.sleep(response.retry_after())
        raise AssertionError("unreachable: the loop returns or raises on its last attempt")

    def send_once(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> Response:
        request = urllib.request.Request(  # noqa: S310 (base_url_of allows http and https only)
            self.base_url + path,
            data=body,
            method=method,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})},
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as reply:
                return Response(reply.status, _headers(reply.headers), reply.read())
        except urllib.error.HTTPError as exc:
            with exc:
                try:
                    content = exc.read()
                except (OSError, http.client.HTTPException):
                    content = b""
                return Response(exc.code, _headers(exc.headers), content)
        except (OSError, http.client.HTTPException) as exc:  # URLError is an OSError
            raise Unreachable(_transport_problem(exc, self.timeout)) from None


# --- the checks ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    name: str
    verdict: str  # PASS, FAIL or SKIP
    detail: str
    elapsed_ms: float | None = None

    def line(self) -> str:
        timing = f" ({self.elapsed_ms:.0f} ms)" if self.elapsed_ms is not None else ""
        separator = " " if self.verdict == "PASS" else ": "
        return f"{self.verdict} {self.name}{separator}{self.detail}{timing}"


class Scrubber:
    """Removes every known secret (and anything shaped like a JWT) from text before printing."""

    def __init__(self, secrets: Sequence[str]) -> None:
        self._secrets: list[str] = []
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str) -> None:
        if len(secret) >= MIN_SECRET_CHARS and secret not in self._secrets:
            self._secrets.append(secret)
            self._secrets.sort(key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return _JWT.sub("[token]", text)


class SmokeTest:
    def __init__(
        self,
        client: Client,
        credentials: Credentials,
        *,
        expect_version: str | None,
        origin: str | None,
        attempts: int,
        wait: float,
        out: TextIO,
    ) -> None:
        self.client = client
        self.credentials = credentials
        self.expect_version = expect_version
        self.origin = origin
        self.attempts = attempts
        self.wait = wait
        self.out = out
        self.scrub = Scrubber(credentials.secrets)
        self.outcomes: list[Outcome] = []
        self.token: str | None = None
        self.item_id: str | None = None
        self.item_title = f"smoke-test-{uuid.uuid4().hex[:12]}"
        self._reachable = True

    # --- running and reporting --------------------------------------------------------------

    def run(self) -> list[Outcome]:
        self.check("healthz", self.healthz)
        if not self._reachable:
            for name in CHECKS[1:]:
                self.skip(name, "the base URL did not answer")
            return self.outcomes
        self.check("readyz", self.readyz)
        self.check_cors("cors-preflight", self.cors_preflight)
        if not self.check("login", self.login):
            for name in AFTER_LOGIN:
                self.skip(name, "needs login")
            return self.outcomes
        self.check("users-me", self.users_me)
        self.check_cors("cors-request", self.cors_request)
        try:
            self.check("item-create", self.item_create)
            if self.item_id is not None:
                self.check("item-read", self.item_read)
            else:
                self.skip("item-read", "needs item-create")
            self.check("item-list", self.item_list)
        finally:  # the test's own item never outlives the run, whatever failed after creating it
            if self.item_id is not None:
                self.check("item-delete", self.item_delete)
            else:
                self.skip("item-delete", "needs item-create")
        self.check("cache-stats", self.cache_stats)
        return self.outcomes

    def check(self, name: str, action: Callable[[], str]) -> bool:
        started = time.monotonic()
        try:
            detail = action()
        except CheckFailed as exc:
            verdict, detail = "FAIL", str(exc)
        except Unreachable as exc:
            verdict, detail = "FAIL", f"no answer: {exc}"
        except Exception as exc:  # a check must report, never abort the run (and its cleanup)
            verdict, detail = "FAIL", f"{type(exc).__name__}: {exc}"
        else:
            verdict = "PASS"
        self.record(Outcome(name, verdict, detail, (time.monotonic() - started) * 1000))
        return verdict == "PASS"

    def check_cors(self, name: str, action: Callable[[], str]) -> None:
        if self.origin is None:
            self.skip(name, "no origin (set --origin, SMOKE_ORIGIN or CORS_ORIGINS)")
        else:
            self.check(name, action)

    def skip(self, name: str, reason: str) -> None:
        self.record(Outcome(name, "SKIP", reason))

    def record(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        self.emit(outcome.line())

    def emit(self, text: str) -> None:
        print(self.scrub(text), file=self.out, flush=True)

    # --- helpers ----------------------------------------------------------------------------

    def auth(self, **extra: str) -> dict[str, str]:
        assert self.token is not None
        return {"Authorization": f"Bearer {self.token}", **extra}

    def warm_up(self, path: str) -> tuple[Response, int]:
        """GET ``path`` until it answers with something other than a warm-up status."""
        problem = ""
        response: Response | None = None
        for attempt in range(1, self.attempts + 1):
            try:
                response = self.client.send_once("GET", path)
            except Unreachable as exc:
                problem, response = str(exc), None
            else:
                if response.status not in WARM_UP_STATUSES:
                    return response, attempt
            if attempt < self.attempts:
                time.sleep(min(self.wait * 2 ** (attempt - 1), MAX_WAIT_SECONDS))
        if response is None:
            raise Unreachable(f"{problem}{_after(self.attempts)}")
        return response, self.attempts

    # --- probes -----------------------------------------------------------------------------

    def healthz(self) -> str:
        try:
            response, attempts = self.warm_up("/healthz")
        except Unreachable:
            self._reachable = False
            raise
        try:
            body = response.json_object()
        except CheckFailed as exc:
            raise CheckFailed(f"{exc}{_after(attempts)}") from None
        version = body.get("version")
        if body.get("status") != "healthy":
            raise CheckFailed(f"status is {body.get('status')!r}, not 'healthy'")
        if self.expect_version is not None and version != self.expect_version:
            raise CheckFailed(
                f"version mismatch: serving {version!r}, expected {self.expect_version!r}"
            )
        return f"version={version}{_after(attempts)}"

    def readyz(self) -> str:
        """200 when nothing fails. The N-1 rule (shared/readiness.py): ``migrations=warn`` is a
        schema a newer build expanded, which this build serves; ``fail`` is one behind it."""
        response, attempts = self.warm_up("/readyz")
        statuses = _statuses(response)
        if response.status != 200:
            failed = [name for name, status in statuses.items() if status == "fail"]
            why = f"{', '.join(failed)} failed" if failed else response.problem()
            if "migrations" in failed:
                why += " (the schema is behind this build, or unreadable: run the migrations)"
            raise CheckFailed(f"HTTP {response.status} not ready: {why}{_after(attempts)}")
        body = response.json_object()
        shown = "".join(f" {name}={status}" for name, status in statuses.items())
        if statuses.get("migrations") == "warn":
            shown += " (schema newer than this build: expanded by a later release, allowed)"
        return f"status={body.get('status')}{shown}{_after(attempts)}"

    # --- CORS -------------------------------------------------------------------------------

    def cors_preflight(self) -> str:
        """What a browser asks before the frontend's authenticated JSON POST."""
        assert self.origin is not None
        response = self.client.send(
            "OPTIONS",
            "/api/v1/items/",
            headers={
                "Origin": self.origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
            retry_on=TRANSIENT,
        )
        if response.status not in (200, 204):
            raise CheckFailed(response.problem())
        self.require_allowed_origin(response)
        methods = _tokens(response.header("access-control-allow-methods"))
        if not methods & {"POST", "*"}:
            raise CheckFailed(
                f"Access-Control-Allow-Methods {response.header('access-control-allow-methods')!r}"
                " lacks POST"
            )
        headers = _tokens(response.header("access-control-allow-headers"))
        missing = [name for name in ("AUTHORIZATION", "CONTENT-TYPE") if name not in headers]
        if missing and "*" not in headers:
            raise CheckFailed(
                f"Access-Control-Allow-Headers {response.header('access-control-allow-headers')!r}"
                f" lacks {', '.join(missing).title()}"
            )
        max_age = response.header("access-control-max-age") or "unset"
        return f"origin={self.origin} HTTP {response.status} max-age={max_age}"

    def cors_request(self) -> str:
        """The frontend's first authenticated call, made from the browser origin."""
        assert self.origin is not None
        response = self.client.send(
            "GET", "/api/v1/users/me", headers=self.auth(Origin=self.origin), retry_on=TRANSIENT
        )
        if response.status != 200:
            raise CheckFailed(response.problem())
        allowed = self.require_allowed_origin(response)
        if allowed != "*" and "ORIGIN" not in _tokens(response.header("vary")):
            raise CheckFailed("the answer echoes the origin without Vary: Origin")
        return f"origin={self.origin} allowed={allowed}"

    def require_allowed_origin(self, response: Response) -> str:
        allowed = response.header("access-control-allow-origin")
        if allowed not in (self.origin, "*"):
            shown = repr(allowed) if allowed else "missing"
            raise CheckFailed(
                f"Access-Control-Allow-Origin {shown} for origin {self.origin} "
                f"(HTTP {response.status}; is it in CORS_ORIGINS?)"
            )
        return allowed

    # --- sign-in and the critical endpoints -------------------------------------------------

    def login(self) -> str:
        credentials = self.credentials
        if isinstance(credentials, EntraClient):
            self.token = self.entra_token(credentials)
        else:
            self.token = self.local_token(credentials)
        return credentials.describe()

    def local_token(self, credentials: LocalAccount) -> str:
        form = {"username": credentials.username, "password": credentials.password}
        response = self.client.send(
            "POST",
            "/api/v1/login/access-token",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            body=urllib.parse.urlencode(form).encode(),
            retry_on=TRANSIENT,
        )
        body = response.json_object()
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise CheckFailed("HTTP 200 without an access_token")
        self.scrub.add(token)
        if str(body.get("token_type", "")).lower() != "bearer":
            raise CheckFailed(f"token_type is {body.get('token_type')!r}, not 'bearer'")
        return token

    def entra_token(self, credentials: EntraClient) -> str:
        try:
            import msal  # only here: the local sign-in must work without it
        except ImportError:
            raise CheckFailed("msal is not installed (pip install -r requirements.txt)") from None
        application = msal.ConfidentialClientApplication(
            credentials.client_id,
            client_credential=credentials.client_secret,
            authority=f"{credentials.authority_host}/{credentials.tenant_id}",
            # The authority is the operator's setting, not user input: no lookup at
            # login.microsoftonline.com for hosts it does not know (sovereign or test clouds).
            instance_discovery=False,
            timeout=self.client.timeout,
        )
        result: dict[str, Any] = application.acquire_token_for_client(scopes=[credentials.scope])
        token = result.get("access_token")
        if isinstance(token, str) and token:
            self.scrub.add(token)
            return token
        description = str(result.get("error_description") or "").strip().splitlines()
        raise CheckFailed(
            f"Entra ID gave no token: {result.get('error', 'unknown error')}"
            + (f" ({description[0]})" if description else "")
        )

    def users_me(self) -> str:
        response = self.client.send(
            "GET", "/api/v1/users/me", headers=self.auth(), retry_on=TRANSIENT
        )
        if response.status == 404 and isinstance(self.credentials, EntraClient):
            raise CheckFailed(
                f"{response.problem()}: the Entra ID application is not mapped to a user"
            )
        body = response.json_object()
        if not body.get("id") or not body.get("email"):
            raise CheckFailed(f"no id or email in {response.excerpt()}")
        superuser = "true" if body.get("is_superuser") is True else "false"
        return f"email={body['email']} superuser={superuser}"

    def item_create(self) -> str:
        description = "Created by scripts/smoke_test.py, which deletes it."
        response = self.client.send(
            "POST",
            "/api/v1/items/",
            headers=self.auth(**{"Content-Type": "application/json"}),
            body=json.dumps({"title": self.item_title, "description": description}).encode(),
            retry_on=APP_UNAVAILABLE,
        )
        body = response.json_object()
        if isinstance(body.get("id"), str) and body["id"]:
            self.item_id = body["id"]  # first, so that cleanup follows whatever is wrong next
        else:
            raise CheckFailed(f"no id in {response.excerpt()}")
        if body.get("title") != self.item_title:
            raise CheckFailed(f"title {body.get('title')!r}, sent {self.item_title!r}")
        return f"id={self.item_id}"

    def item_read(self) -> str:
        response = self.client.send(
            "GET", f"/api/v1/items/{self.item_id}", headers=self.auth(), retry_on=TRANSIENT
        )
        body = response.json_object()
        if body.get("id") != self.item_id or body.get("title") != self.item_title:
            raise CheckFailed(f"another item came back: {response.excerpt()}")
        return f"id={self.item_id}"

    def item_list(self) -> str:
        response = self.client.send(
            "GET", "/api/v1/items/?skip=0&limit=100", headers=self.auth(), retry_on=TRANSIENT
        )
        body = response.json_object()
        data, count = body.get("data"), body.get("count")
        if not isinstance(data, list) or not isinstance(count, int):
            raise CheckFailed(f"not an items page: {response.excerpt()}")
        if self.item_id is None:
            return f"count={count}"
        ids = {entry.get("id") for entry in data if isinstance(entry, dict)}
        if self.item_id not in ids:
            raise CheckFailed(f"the new item is not on the first page (count={count})")
        return f"count={count} includes the new item"

    def item_delete(self) -> str:
        path = f"/api/v1/items/{self.item_id}"
        response = self.client.send("DELETE", path, headers=self.auth(), retry_on=TRANSIENT)
        response.json_object()
        self.item_id = None
        gone = self.client.send("GET", path, headers=self.auth(), retry_on=TRANSIENT)
        if gone.status != 404:
            raise CheckFailed(f"deleted, yet reading it answers {gone.problem()}")
        return "deleted, then 404"

    def cache_stats(self) -> str:
        response = self.client.send(
            "GET", "/api/v1/cache/stats", headers=self.auth(), retry_on=TRANSIENT
        )
        if response.status == 403:
            raise CheckFailed(
                f"{response.problem()}: the signed-in account is not a superuser "
                "(the release smoke test must sign in as one)"
            )
        body = response.json_object()
        if "mode" not in body:
            raise CheckFailed(f"no cache mode in {response.excerpt()}")
        return f"mode={body['mode']}"


def _statuses(response: Response) -> dict[str, str]:
    """The per-check statuses of a /readyz answer (empty when it is not the app's JSON)."""
    try:
        checks = json.loads(response.body).get("checks")
    except (ValueError, AttributeError):
        return {}
    return {str(k): str(v) for k, v in checks.items()} if isinstance(checks, dict) else {}


def _after(attempts: int) -> str:
    return f" after {attempts} attempts" if attempts > 1 else ""


def _tokens(header: str) -> set[str]:
    return {part.strip().upper() for part in header.split(",") if part.strip()}


# --- entry points ----------------------------------------------------------------------------


def run(
    base_url: str,
    *,
    expect_version: str | None = None,
    origin: str | None = None,
    attempts: int = DEFAULT_ATTEMPTS,
    wait: float = DEFAULT_WAIT_SECONDS,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run every check against ``base_url``, print a line per check and a summary; the exit code.

    ``environ`` (default ``os.environ``) supplies the credentials and the default origin.
    """
    environ = os.environ if environ is None else environ
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    try:
        url = base_url_of(base_url)
        credentials = credentials_from(environ)
        chosen_origin = origin_of(origin, "--origin") if origin else default_origin(environ)
        if expect_version is not None and not expect_version.strip():
            raise UsageError("--expect-version is empty")
        if attempts < 1 or wait < 0 or timeout <= 0:
            raise UsageError("--attempts must be at least 1, --wait >= 0 and --timeout > 0")
    except UsageError as exc:
        print(f"smoke test: {exc}", file=err, flush=True)
        return EXIT_USAGE

    smoke = SmokeTest(
        Client(url, timeout),
        credentials,
        expect_version=expect_version.strip() if expect_version else None,
        origin=chosen_origin,
        attempts=attempts,
        wait=wait,
        out=out,
    )
    expecting = f", expecting version {smoke.expect_version}" if smoke.expect_version else ""
    smoke.emit(
        f"Smoke test of {url} as {credentials.describe()}, "
        f"origin {chosen_origin or 'none'}{expecting}"
    )
    started = time.monotonic()
    outcomes = smoke.run()
    elapsed = time.monotonic() - started
    failed = [o.name for o in outcomes if o.verdict == "FAIL"]
    passed = sum(o.verdict == "PASS" for o in outcomes)
    skipped = sum(o.verdict == "SKIP" for o in outcomes)
    tally = f"{passed} passed, {len(failed)} failed, {skipped} skipped in {elapsed:.1f} s"
    if failed:
        smoke.emit(f"FAILED: {tally}")
        print(f"smoke test failed: {', '.join(failed)}", file=err, flush=True)
        return EXIT_FAILED
    smoke.emit(f"OK: {tally}")
    return EXIT_OK


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError("must be a number of seconds >= 0")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The smoke test's options, shared by this script and ``manage.py smoke``."""
    parser.add_argument(
        "base_url", metavar="BASE_URL", help="the deployment, e.g. https://<app>.azurewebsites.net"
    )
    parser.add_argument(
        "--expect-version", metavar="SHA", help="fail unless /healthz reports this APP_VERSION"
    )
    parser.add_argument(
        "--origin",
        help="browser origin for the CORS checks (default: first of SMOKE_ORIGIN, CORS_ORIGINS)",
    )
    parser.add_argument(
        "--attempts",
        type=_positive_int,
        default=DEFAULT_ATTEMPTS,
        help=f"warm-up attempts of /healthz and /readyz (default {DEFAULT_ATTEMPTS})",
    )
    parser.add_argument(
        "--wait",
        type=_seconds,
        default=DEFAULT_WAIT_SECONDS,
        help=f"seconds between the first warm-up attempts, doubling up to {MAX_WAIT_SECONDS:g} "
        f"(default {DEFAULT_WAIT_SECONDS:g})",
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT_SECONDS,
        help=f"seconds per request (default {DEFAULT_TIMEOUT_SECONDS:g})",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="smoke_test.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage and 0 after --help
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    return run(
        args.base_url,
        expect_version=args.expect_version,
        origin=args.origin,
        attempts=args.attempts,
        wait=args.wait,
        timeout=args.timeout,
    )


if __name__ == "__main__":
    sys.exit(main())
