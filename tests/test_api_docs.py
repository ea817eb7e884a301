"""/docs (Swagger UI) and /redoc (ReDoc) in Debian's Chromium, headless, with no network beyond
loopback: every request the pages make answers 200 from the app, none leaves it, each page lists
the document's operations (the contract's among them), and Swagger UI's "Authorize" signs in
with the password flow. Screenshots go to the artifacts directory (STRATUS_TEST_ARTIFACTS,
default tests/artifacts)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import SUPERUSER, SUPERUSER_PASSWORD, app_env, create_superuser, migrate
from tests.support.devhost_process import DevhostProcess
from tests.support.services import temporary_database, unavailable

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page, Request

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = json.loads((ROOT / "contracts" / "api-v1.openapi.json").read_text())
ARTIFACTS = Path(os.environ.get("STRATUS_TEST_ARTIFACTS", ROOT / "tests" / "artifacts"))
# Debian's launcher script wraps this binary; Playwright starts the binary itself.
CHROMIUM_BINARIES = ("/usr/lib/chromium/chromium", "chromium")
METHODS = ("get", "put", "post", "patch", "delete")
PAGE_TIMEOUT_MS = 60_000


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(METHOD, path) -> operationId."""
    return {
        (method.upper(), path): operation["operationId"]
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }


def _chromium() -> str:
    for candidate in CHROMIUM_BINARIES:
        found = shutil.which(candidate)
        if found:
            return found
    unavailable("chromium is not installed (Debian package chromium)")
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def server() -> Iterator[DevhostProcess]:
    with temporary_database() as url:
        migrate(url)
        env = app_env(url, None)
        create_superuser(env)
        with DevhostProcess(env=env) as process:
            yield process


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            # Root in CI has no user namespace sandbox; nothing but loopback resolves.
            args=["--no-sandbox", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
        )
        try:
            yield browser
        finally:
            browser.close()


class Traffic:
    """Every request a page makes, its answer, and whatever was refused for leaving the host."""

    def __init__(self, page: Page, origin: str) -> None:
        self.origin = origin
        self.requests: list[Request] = []
        self.off_host: list[str] = []
        self.console_errors: list[str] = []
        page.on("request", self._record)
        page.on("console", self._console)
        page.route("**/*", self._only_this_origin)

    def _record(self, request: Request) -> None:
        self.requests.append(request)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def _only_this_origin(self, route: Any) -> None:
        url = route.request.url
        if url.startswith(self.origin + "/"):
            route.continue_()
        else:
            self.off_host.append(url)
            route.abort()

    def check(self) -> list[str]:
        """The URLs requested, once each has been seen to answer 200 from the app."""
        assert self.off_host == []
        network = [r for r in self.requests if urlsplit(r.url).scheme in {"http", "https"}]
        assert network
        for request in network:
            assert request.url.startswith(self.origin + "/"), request.url
            response = request.response()
            assert response is not None, request.url
            assert response.status == 200, (request.url, response.status)
        return [urlsplit(r.url).path for r in network]


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        yield page
    finally:
        context.close()


def _screenshot(page: Page, name: str, full_page: bool = True) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=full_page)
    assert path.stat().st_size > 10_000  # a rendered page, not a blank one
    return path


@pytest.fixture(scope="module")
def document(server: DevhostProcess) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/api/v1/openapi.json", timeout=30)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_swagger_ui_lists_every_operation_from_assets_the_app_serves(server, page, document):
    traffic = Traffic(page, server.url)
    page.goto(f"{server.url}/docs")
    expected = _operations(document)
    page.wait_for_function(
        "n => document.querySelectorAll('.opblock').length === n", arg=len(expected)
    )
    shown = page.eval_on_selector_all(
        ".opblock",
        """blocks => blocks.map(b => [
            b.querySelector('.opblock-summary-method').textContent.trim(),
            b.querySelector('.opblock-summary-path').getAttribute('data-path'),
        ])""",
    )
    assert {tuple(pair) for pair in shown} == set(expected)
    assert set(_operations(CONTRACT)) <= {tuple(pair) for pair in shown}
    _screenshot(page, "swagger-ui.png")
    paths = traffic.check()
    assert {
        "/docs",
        "/docs/swagger-ui-bundle.js",
        "/docs/swagger-ui.css",
        "/api/v1/openapi.json",
    } <= set(paths)
    assert traffic.console_errors == []


def test_authorize_signs_in_with_the_password_flow_and_try_it_out_sends_the_token(server, page):
    traffic = Traffic(page, server.url)
    page.goto(f"{server.url}/docs")
    page.click("button.authorize")
    page.fill("#oauth_username", SUPERUSER)
    page.fill("#oauth_password", SUPERUSER_PASSWORD)
    with page.expect_response(lambda r: r.url.endswith("/api/v1/login/access-token")) as login:
        page.click(".auth-btn-wrapper button.authorize")
    assert login.value.status == 200
    page.wait_for_selector(".auth-btn-wrapper button:has-text('Logout')")
    page.click(".auth-btn-wrapper button.btn-done")

    operation = page.locator("#operations-login-login-test_token")
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    with page.expect_response(lambda r: r.url.endswith("/api/v1/login/test-token")) as call:
        operation.locator("button.execute").click()
    assert call.value.status == 200
    assert call.value.request.headers["authorization"].startswith("Bearer ")
    assert call.value.json()["email"] == SUPERUSER
    operation.locator(".live-responses-table").wait_for()
    _screenshot(page, "swagger-ui-authorized.png")
    traffic.check()


def test_redoc_lists_every_operation_from_assets_the_app_serves(server, page, document):
    traffic = Traffic(page, server.url)
    page.goto(f"{server.url}/redoc")
    expected = set(_operations(document).values())
    # The side menu (collapsed by tag) and the operations' sections in the page itself.
    page.wait_for_function(
        "n => document.querySelectorAll('[data-item-id*=\"/operation/\"]').length === n",
        arg=len(expected),
    )
    items = page.eval_on_selector_all(
        "[data-item-id*='/operation/']", "items => items.map(i => i.getAttribute('data-item-id'))"
    )
    shown = {item.rsplit("/operation/", 1)[1] for item in items}
    sections = page.eval_on_selector_all(
        "div[id*='/operation/']", "sections => sections.map(s => s.id)"
    )
    assert {section.rsplit("/operation/", 1)[1] for section in sections} == shown
    assert shown == expected
    assert set(_operations(CONTRACT).values()) <= shown
    _screenshot(page, "redoc.png", full_page=False)  # the whole is 25,000 px tall
    paths = traffic.check()
    assert {"/redoc", "/redoc/redoc.standalone.js", "/api/v1/openapi.json"} <= set(paths)
    assert traffic.console_errors == []


def test_assets_are_cached_compressed_and_revalidated(server):
    url = f"{server.url}/docs/swagger-ui-bundle.js"
    plain = httpx.get(url, headers={"Accept-Encoding": "identity"}, timeout=30)
    assert plain.status_code == 200
    assert plain.headers["content-type"].startswith("text/javascript")
    assert "max-age=" in plain.headers["cache-control"]
    assert "Accept-Encoding" in plain.headers["vary"]
    compressed = httpx.get(url, headers={"Accept-Encoding": "gzip"}, timeout=30)
    assert compressed.headers["content-encoding"] == "gzip"
    assert int(compressed.headers["content-length"]) < len(plain.content) / 2  # on the wire
    assert compressed.content == plain.content  # as httpx decoded it
    assert compressed.headers["etag"] != plain.headers["etag"]
    for representation, encoding in ((plain, "identity"), (compressed, "gzip")):
        headers = {"If-None-Match": representation.headers["etag"], "Accept-Encoding": encoding}
        again = httpx.get(url, headers=headers, timeout=30)
        assert again.status_code == 304, encoding
        assert again.content == b""
    page = httpx.get(f"{server.url}/docs", timeout=30)
    assert page.headers["cache-control"] == "no-cache"
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_unknown_assets_are_404_and_the_docs_stay_out_of_the_document(server, document):
    for path in (
        "/docs/..%2F..%2Ffunction_app.py",
        "/docs/swagger-ui.js",
        "/docs/redoc.standalone.js",  # ReDoc's, under /redoc only
        "/redoc/LICENSE",
    ):
        assert httpx.get(f"{server.url}{path}", timeout=30).status_code == 404, path
    assert not {"/docs", "/redoc"} & set(document["paths"])


def test_api_docs_enabled_false_turns_them_off(tmp_path):
    env = app_env(f"sqlite:///{tmp_path / 'docs.db'}", None, API_DOCS_ENABLED="false")
    with DevhostProcess(env=env) as off:
        for path in ("/docs", "/redoc", "/docs/swagger-ui-bundle.js", "/redoc/logo-mini.svg"):
            response = httpx.get(f"{off.url}{path}", timeout=30)
            assert response.status_code == 404, path
            assert response.json() == {"detail": "Not Found"}
        assert httpx.get(f"{off.url}/api/v1/openapi.json", timeout=30).status_code == 200
