"""The smoke test passes against the real app and fails, naming the check, when something breaks.

Every app here is the real one on PostgreSQL and Redis (devhost or ``manage.py serve``); the
breakages are real configurations (a wrong version or password, an origin missing from
CORS_ORIGINS, a database whose ``items`` table is gone), never edits of the app's code.
"""

from __future__ import annotations

import base64
import datetime
import io
import ipaddress
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from scripts.smoke_test import AFTER_LOGIN, CHECKS, run
from tests.conftest import (
    ROOT,
    SUPERUSER,
    SUPERUSER_PASSWORD,
    app_env,
    create_superuser,
    migrate,
)
from tests.support.entra import Tenant
from tests.support.services import free_port, temporary_database

ORIGIN = "https://app.example.com"
AS_SUPERUSER = {"SMOKE_USERNAME": SUPERUSER, "SMOKE_PASSWORD": SUPERUSER_PASSWORD}
ADMIN_ROLE = "Stratus.Admin"
_LINE = re.compile(r"^(PASS|FAIL|SKIP) ([a-z-]+)[ :]", re.MULTILINE)
# What the smoke test may read from the environment: the tests decide all of it.
_SMOKE_INPUTS = ("FIRST_SUPERUSER", "FIRST_SUPERUSER_PASSWORD", "CORS_ORIGINS")


def smoke(
    *args: str,
    env: dict[str, str] | None = None,
    manage: bool = False,
    settings: str = "/nonexistent",
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    command = ["manage.py", "--settings", settings, "smoke"] if manage else []
    return subprocess.run(
        [sys.executable, *(command or ["scripts/smoke_test.py"]), *args],
        cwd=ROOT,
        env={**_clean_environment(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _clean_environment() -> dict[str, str]:
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("SMOKE_") and name not in _SMOKE_INPUTS
    }


def verdicts(output: str) -> dict[str, str]:
    return {name: verdict for verdict, name in _LINE.findall(output)}


def line_of(output: str, name: str) -> str:
    found = re.search(rf"^(?:PASS|FAIL|SKIP) {name}[ :].*$", output, re.MULTILINE)
    assert found, output
    return found.group(0)


def all_but(verdict: str, **others: str) -> dict[str, str]:
    """Every check with ``verdict`` except the ones named (``item_read="SKIP"``)."""
    named = {name.replace("_", "-"): value for name, value in others.items()}
    return {name: named.get(name, verdict) for name in CHECKS}


def assert_reveals_nothing(result: subprocess.CompletedProcess[str], *secrets: str) -> None:
    output = result.stdout + result.stderr
    for secret in (SUPERUSER_PASSWORD, *secrets):
        assert secret not in output
    assert "eyJ" not in output, "a JWT was printed"
    assert "Bearer" not in output


def assert_failed(result: subprocess.CompletedProcess[str], *names: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"smoke test failed: {', '.join(names)}" in result.stderr
    assert "FAILED:" in result.stdout


# --- against the session's app ---------------------------------------------------------------


def test_passes_with_the_expected_version_and_an_allowed_origin(api):
    result = smoke(
        api.url, "--expect-version", "test-version", "--origin", ORIGIN, env=AS_SUPERUSER
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert verdicts(result.stdout) == all_but("PASS")
    assert "PASS healthz version=test-version" in result.stdout
    assert f"origin={ORIGIN}" in line_of(result.stdout, "cors-preflight")
    assert "superuser=true" in line_of(result.stdout, "users-me")
    assert re.search(r"^OK: 11 passed, 0 failed, 0 skipped", result.stdout, re.MULTILINE)
    assert result.stderr == ""
    assert_reveals_nothing(result)


def test_origin_and_account_default_to_the_app_settings_in_the_environment(api):
    env = {
        "FIRST_SUPERUSER": SUPERUSER,
        "FIRST_SUPERUSER_PASSWORD": SUPERUSER_PASSWORD,
        "CORS_ORIGINS": f"*, {ORIGIN},http://localhost:5173",
    }
    result = smoke(api.url, env=env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert verdicts(result.stdout) == all_but("PASS")
    assert f"origin={ORIGIN}" in line_of(result.stdout, "cors-request")
    assert_reveals_nothing(result)


def test_manage_py_smoke_takes_the_account_and_origin_from_local_settings(api, tmp_path):
    settings = tmp_path / "local.settings.json"
    values = {
        "FIRST_SUPERUSER": SUPERUSER,
        "FIRST_SUPERUSER_PASSWORD": SUPERUSER_PASSWORD,
        "CORS_ORIGINS": ORIGIN,
    }
    settings.write_text(json.dumps({"IsEncrypted": False, "Values": values}))
    result = smoke(api.url, manage=True, settings=str(settings))

    assert result.returncode == 0, result.stdout + result.stderr
    assert verdicts(result.stdout) == all_but("PASS")
    assert_reveals_nothing(result)


def test_manage_py_smoke_of_a_remote_url_ignores_local_settings(tmp_path):
    settings = tmp_path / "local.settings.json"
    values = {"FIRST_SUPERUSER": SUPERUSER, "FIRST_SUPERUSER_PASSWORD": SUPERUSER_PASSWORD}
    settings.write_text(json.dumps({"IsEncrypted": False, "Values": values}))
    # The credentials are checked before any request: without the file's, none are left.
    result = smoke("https://stratus.invalid", manage=True, settings=str(settings))

    assert result.returncode == 2, result.stdout + result.stderr
    assert "no credentials" in result.stderr


def test_without_any_origin_the_cors_checks_are_skipped_not_failed(api):
    result = smoke(api.url, env=AS_SUPERUSER)

    assert result.returncode == 0, result.stdout + result.stderr
    expected = all_but("PASS", cors_preflight="SKIP", cors_request="SKIP")
    assert verdicts(result.stdout) == expected
    assert "no origin" in line_of(result.stdout, "cors-preflight")


def test_a_different_version_fails_naming_healthz(api):
    result = smoke(api.url, "--expect-version", "0123abc", "--origin", ORIGIN, env=AS_SUPERUSER)

    assert_failed(result, "healthz")
    assert verdicts(result.stdout) == all_but("PASS", healthz="FAIL")
    assert "serving 'test-version', expected '0123abc'" in line_of(result.stdout, "healthz")


def test_a_wrong_password_fails_sign_in_and_is_never_printed(api):
    wrong = "not-the-password-" + uuid.uuid4().hex
    env = {"SMOKE_USERNAME": SUPERUSER, "SMOKE_PASSWORD": wrong}
    result = smoke(api.url, "--origin", ORIGIN, env=env)

    assert_failed(result, "login")
    expected = all_but("PASS", login="FAIL", **{n.replace("-", "_"): "SKIP" for n in AFTER_LOGIN})
    assert verdicts(result.stdout) == expected
    assert "HTTP 400" in line_of(result.stdout, "login")
    assert "Incorrect email or password" in line_of(result.stdout, "login")
    assert_reveals_nothing(result, wrong)


def test_a_normal_account_fails_only_the_superuser_check_and_leaves_no_item(api):
    user = api.new_user()
    result = smoke(
        api.url,
        "--origin",
        ORIGIN,
        env={"SMOKE_USERNAME": user.email, "SMOKE_PASSWORD": user.password},
    )

    assert_failed(result, "cache-stats")
    assert verdicts(result.stdout) == all_but("PASS", cache_stats="FAIL")
    assert "not a superuser" in line_of(result.stdout, "cache-stats")
    items = api.request("GET", "/api/v1/items/", headers=user.headers).json()
    assert items == {"data": [], "count": 0}
    assert_reveals_nothing(result, user.password, user.token)


def test_the_item_is_deleted_even_when_the_run_is_interrupted_after_creating_it(api):
    class InterruptAfterCreate(io.StringIO):
        """Ctrl+C (or a cancelled CI job) right after the item was created."""

        interrupted = False

        def write(self, text: str) -> int:
            written = super().write(text)
            if text.startswith("PASS item-create") and not self.interrupted:
                self.interrupted = True
                raise KeyboardInterrupt
            return written

    out = InterruptAfterCreate()
    with pytest.raises(KeyboardInterrupt):
        run(api.url, origin=ORIGIN, environ=AS_SUPERUSER, out=out, err=io.StringIO())

    output = out.getvalue()
    item_id = re.search(r"PASS item-create id=(\S+)", output)
    assert item_id, output
    assert "PASS item-delete" in output
    assert "item-list" not in output
    gone = api.request("GET", f"/api/v1/items/{item_id.group(1)}", headers=api.admin.headers)
    assert gone.status_code == 404


# --- real breakages, each in its own app -----------------------------------------------------


def test_an_origin_missing_from_cors_origins_fails_both_cors_checks(pg_url, redis_url):
    from tests.support.devhost_process import DevhostProcess

    env = app_env(pg_url, redis_url, CORS_ORIGINS="http://localhost:5173")
    create_superuser(env)
    with DevhostProcess(env=env) as server:
        result = smoke(server.url, "--origin", ORIGIN, env=AS_SUPERUSER)

    assert_failed(result, "cors-preflight", "cors-request")
    expected = all_but("PASS", cors_preflight="FAIL", cors_request="FAIL")
    assert verdicts(result.stdout) == expected
    assert "Disallowed CORS origin" in line_of(result.stdout, "cors-preflight")
    assert "Access-Control-Allow-Origin missing" in line_of(result.stdout, "cors-request")


def test_a_database_without_the_items_table_fails_the_item_checks(redis_url):
    import psycopg

    from tests.support.devhost_process import DevhostProcess

    with temporary_database("stratus_smoke") as url:
        migrate(url)
        with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as connection:
            connection.execute("DROP TABLE items")
        env = app_env(url, redis_url)
        create_superuser(env)
        with DevhostProcess(env=env) as server:
            result = smoke(server.url, "--origin", ORIGIN, env=AS_SUPERUSER)

    assert_failed(result, "item-create", "item-list")
    expected = all_but(
        "PASS", item_create="FAIL", item_read="SKIP", item_list="FAIL", item_delete="SKIP"
    )
    assert verdicts(result.stdout) == expected
    assert "HTTP 500" in line_of(result.stdout, "item-create")
    assert "needs item-create" in line_of(result.stdout, "item-delete")


def test_an_unreachable_base_url_fails_within_the_bounded_retries():
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    result = smoke(url, "--attempts", "3", "--wait", "0.1", env=AS_SUPERUSER, timeout=30)
    elapsed = time.monotonic() - started

    assert_failed(result, "healthz")
    assert elapsed < 15
    assert verdicts(result.stdout) == all_but("SKIP", healthz="FAIL")
    healthz = line_of(result.stdout, "healthz")
    assert "no answer: connection refused after 3 attempts" in healthz
    assert_reveals_nothing(result)


def test_manage_py_smoke_waits_for_manage_py_serve_to_start_then_passes(pg_url, redis_url):
    """What CI does: serve the app with manage.py, smoke-test it while it is still starting."""
    env = app_env(pg_url, redis_url)
    create_superuser(env)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    smoke_args = [url, "--expect-version", "test-version", "--origin", ORIGIN, "--wait", "0.5"]
    command = [sys.executable, "manage.py", "--settings", "/nonexistent", "smoke", *smoke_args]
    tester = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**_clean_environment(), **AS_SUPERUSER},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.0)  # the smoke test is knocking on a port nobody listens on yet
    server = subprocess.Popen(
        [sys.executable, "manage.py", "--settings", "/nonexistent", "serve", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        stdout, stderr = tester.communicate(timeout=120)
    finally:
        tester.kill()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    assert tester.returncode == 0, stdout + stderr
    assert verdicts(stdout) == all_but("PASS")
    assert re.search(r"PASS healthz version=test-version after \d+ attempts", stdout), stdout


def test_manage_py_smoke_uses_the_same_checks_and_exit_codes(api):
    result = smoke(
        api.url, "--expect-version", "other", "--origin", ORIGIN, env=AS_SUPERUSER, manage=True
    )

    assert_failed(result, "healthz")
    assert verdicts(result.stdout) == all_but("PASS", healthz="FAIL")


# --- usage ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["http://127.0.0.1:9"], {}, "no credentials"),
        (["http://127.0.0.1:9"], {"SMOKE_USERNAME": SUPERUSER}, "SMOKE_PASSWORD must be set"),
        (
            ["http://127.0.0.1:9"],
            {"SMOKE_CLIENT_ID": "x", "SMOKE_CLIENT_SECRET": "y"},
            "needs SMOKE_TENANT_ID, SMOKE_SCOPE",
        ),
        (["ftp://example.com"], AS_SUPERUSER, "BASE_URL must be an http:// or https:// URL"),
        (["https://admin:hunter22@example.com"], AS_SUPERUSER, "must not hold credentials"),
        (["http://127.0.0.1:9", "--origin", "https://a.example/app"], AS_SUPERUSER, "origin"),
        (["http://127.0.0.1:9", "--expect-version", ""], AS_SUPERUSER, "is empty"),
        (["http://127.0.0.1:9", "--attempts", "0"], AS_SUPERUSER, "must be at least 1"),
        ([], AS_SUPERUSER, "BASE_URL"),
    ],
)
def test_bad_usage_exits_2_without_a_request(args, env, message):
    result = smoke(*args, env=env, timeout=30)

    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert result.stdout == ""
    assert_reveals_nothing(result, "hunter22")


# --- Entra ID client credentials ---------------------------------------------------------------


class EntraAuthority:
    """A loopback HTTPS stand-in for login.microsoftonline.com's client-credentials flow.

    msal talks to it as to Entra ID (OpenID discovery, then the token endpoint over TLS with a
    certificate it trusts through REQUESTS_CA_BUNDLE); the tokens it issues are signed with the
    ``Tenant``'s keys, so the app validates them with its production code.
    """

    def __init__(self, tenant: Tenant, directory: Path, client_id: str, secret: str) -> None:
        self.tenant = tenant
        self.client_id = client_id
        self.secret = secret
        self.service_principal_oid = str(uuid.uuid4())
        self.ca_bundle = directory / "authority.pem"
        key_file = directory / "authority.key"
        _self_signed_certificate(self.ca_bundle, key_file)
        authority = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                prefix = f"{authority.url}/{tenant.tenant_id}"
                if self.path != f"/{tenant.tenant_id}/v2.0/.well-known/openid-configuration":
                    self._reply(404, {"error": "not_found"})
                    return
                self._reply(
                    200,
                    {
                        "issuer": f"{prefix}/v2.0",
                        "authorization_endpoint": f"{prefix}/oauth2/v2.0/authorize",
                        "token_endpoint": f"{prefix}/oauth2/v2.0/token",
                    },
                )

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
                client, secret = form.get("client_id"), form.get("client_secret")
                basic = self.headers.get("Authorization", "")
                if basic.startswith("Basic "):
                    pair = base64.b64decode(basic[6:]).decode()
                    client, _, secret = (urllib.parse.unquote_plus(p) for p in pair.partition(":"))
                if self.path != f"/{tenant.tenant_id}/oauth2/v2.0/token":
                    self._reply(404, {"error": "not_found"})
                elif (client, secret) != (authority.client_id, authority.secret):
                    self._reply(
                        401,
                        {
                            "error": "invalid_client",
                            "error_description": "AADSTS7000215: Invalid client secret provided.",
                        },
                    )
                elif form.get("grant_type") != "client_credentials" or form.get("scope") != (
                    f"api://{tenant.client_id}/.default"
                ):
                    self._reply(400, {"error": "invalid_scope"})
                else:
                    token = tenant.token(  # an app-only token: no user name, the app role
                        oid=authority.service_principal_oid,
                        roles=[ADMIN_ROLE],
                        preferred_username=None,
                        name=None,
                        azp=authority.client_id,
                        idtyp="app",
                    )
                    self._reply(
                        200, {"token_type": "Bearer", "expires_in": 600, "access_token": token}
                    )

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                content = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        import ssl

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca_bundle, key_file)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> EntraAuthority:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _self_signed_certificate(cert_file: Path, key_file: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def test_entra_id_client_credentials_sign_in_through_msal(pg_url, redis_url, tmp_path):
    from tests.support.devhost_process import DevhostProcess

    secret = "entra-client-secret-" + uuid.uuid4().hex
    with (
        Tenant() as tenant,
        EntraAuthority(tenant, tmp_path, str(uuid.uuid4()), secret) as authority,
    ):
        # App-only tokens carry no e-mail: the app provisions the application under a
        # reserved, undeliverable domain, and the admin app role makes it a superuser.
        email = f"{authority.service_principal_oid}@entra-application.example"
        env = app_env(pg_url, redis_url, **tenant.app_settings(ADMIN_ROLE))
        smoke_env = {
            "SMOKE_TENANT_ID": tenant.tenant_id,
            "SMOKE_CLIENT_ID": authority.client_id,
            "SMOKE_CLIENT_SECRET": secret,
            "SMOKE_SCOPE": f"api://{tenant.client_id}/.default",
            "SMOKE_AUTHORITY_HOST": authority.url,
            "REQUESTS_CA_BUNDLE": str(authority.ca_bundle),
        }
        with DevhostProcess(env=env) as server:
            passed = smoke(server.url, "--origin", ORIGIN, env=smoke_env)
            wrong_secret = smoke(
                server.url, "--origin", ORIGIN, env={**smoke_env, "SMOKE_CLIENT_SECRET": "nope-x"}
            )

    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert verdicts(passed.stdout) == all_but("PASS")
    assert f"Entra ID client {authority.client_id}" in line_of(passed.stdout, "login")
    assert f"email={email} superuser=true" in line_of(passed.stdout, "users-me")
    assert_reveals_nothing(passed, secret)

    assert_failed(wrong_secret, "login")
    assert "invalid_client" in line_of(wrong_secret.stdout, "login")
    assert_reveals_nothing(wrong_secret, secret, "nope-x")
