"""devhost end to end: a sample function app served over real HTTP, with its timers running."""

from __future__ import annotations

import json
import platform
import re
import socket
import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.support.devhost_process import DevhostProcess

SAMPLE_APP = "tests/apps/devhost_sample.py"
LOG_WAIT_SECONDS = 10.0


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevhostProcess]:
    # No host.json in the working directory: the host's default route prefix "api" applies.
    workdir = tmp_path_factory.mktemp("devhost-sample")
    settings = workdir / "local.settings.json"
    values = {"PRESET": "from-file", "FROM_FILE": "file-value"}
    settings.write_text(json.dumps({"IsEncrypted": False, "Values": values}))
    env = {
        "PRESET": "from-environment",
        "TICK_SCHEDULE": "*/1 * * * * *",
        "AzureWebJobs.disabled_timer.Disabled": "true",
        "AzureWebJobs__disabled_http__Disabled": "true",
    }
    with DevhostProcess(
        env=env, script=SAMPLE_APP, cwd=workdir, port=0, settings_file=str(settings)
    ) as server:
        yield server


@pytest.fixture(scope="module")
def client(sample: DevhostProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sample.url, timeout=10) as http:
        yield http


def wait_for_output(server: DevhostProcess, ready: Callable[[str], bool]) -> str:
    deadline = time.monotonic() + LOG_WAIT_SECONDS
    while time.monotonic() < deadline:
        output = server.output()
        if ready(output):
            return output
        time.sleep(0.1)
    pytest.fail(f"the expected log lines did not appear:\n{server.output()}")


def test_port_zero_picks_a_free_port_and_prints_it(sample):
    port = int(sample.url.rsplit(":", 1)[1])
    assert port > 0
    assert f"Host started on http://127.0.0.1:{port}" in sample.output()


def test_startup_lists_functions_like_func_start(sample):
    output = sample.output()
    assert "Functions:\n\n        users_me: [GET] " in output
    assert f"        user_by_id: [GET,DELETE] {sample.url}/api/users/{{user_id}}\n" in output
    assert f"        unnamed_route: {sample.url}/api/unnamed_route\n" in output
    assert "        tick: timerTrigger\n" in output
    assert "        disabled_timer: timerTrigger (disabled)\n" in output
    assert f"        disabled_http: {sample.url}/api/disabled (disabled)\n" in output
    assert output.index("Functions:") < output.index("Host started on")


def test_the_banner_names_the_worker_runtime_it_runs_on(sample):
    from importlib import metadata

    expected = (
        f"Worker runtime: azure-functions-runtime {metadata.version('azure-functions-runtime')} "
        f"(azure-functions {metadata.version('azure-functions')}, "
        f"protobuf {metadata.version('protobuf')}, Python {platform.python_version()})"
    )
    assert expected in sample.output()
    assert metadata.version("azure-functions").startswith("2.")


@pytest.mark.parametrize(
    ("method", "path", "function", "route_params"),
    [
        ("GET", "/api/users/me", "users_me", {}),
        ("GET", "/API/Users/ME/", "users_me", {}),
        ("GET", "/api/users/42", "user_by_number", {"id": "42"}),
        ("GET", "/api/users/bob", "user_by_id", {"user_id": "bob"}),
        ("DELETE", "/api/users/me", "user_by_id", {"user_id": "me"}),
        ("GET", "/api/users/a%5C*b%3F", "user_by_id", {"user_id": "a\\*b?"}),
        ("GET", "/api/shelves", "shelves_optional", {}),
        ("GET", "/api/shelves/s1", "shelves_optional", {"shelf": "s1"}),
        ("GET", "/api/shelves/s1/books", "shelf_books", {"shelf": "s1"}),
        ("GET", "/api/shelves/s1/b/c", "shelves_rest", {"rest": "s1/b/c"}),
        ("GET", "/api/v1/items", "items", {}),
        ("GET", "/api/v1/items/", "items", {}),
        ("PATCH", "/api/unnamed_route", "unnamed_route", {}),
        (
            "GET",
            "/api/kinds/guid/6f9619ff-8b86-d011-b42d-00cf4fc964ff",
            "kind_guid",
            {"value": "6f9619ff-8b86-d011-b42d-00cf4fc964ff"},
        ),
        ("GET", "/api/kinds/alpha/Hello", "kind_alpha", {"value": "Hello"}),
        ("GET", "/api/kinds/bool/TRUE", "kind_bool", {"value": "TRUE"}),
        ("GET", "/api/kinds/int/-12", "kind_int", {"value": "-12"}),
        ("GET", "/api/kinds/long/9000000000", "kind_long", {"value": "9000000000"}),
        ("GET", "/api/kinds/double/2.5e3", "kind_double", {"value": "2.5e3"}),
        ("GET", "/api/kinds/length/abc", "kind_length", {"value": "abc"}),
        ("GET", "/api/kinds/exact/abc", "kind_exact", {"value": "abc"}),
        ("GET", "/api/kinds/regex/ab-12", "kind_regex", {"value": "ab-12"}),
        ("GET", "/api/kinds/file/a.b.csv", "kind_complex", {"name": "a.b", "ext": "csv"}),
        ("GET", "/api/kinds/default", "kind_default", {"page": "1"}),
        ("GET", "/api/kinds/default/3", "kind_default", {"page": "3"}),
    ],
)
def test_routes_reach_the_function_with_decoded_route_params(
    client, method, path, function, route_params
):
    response = client.request(method, path)
    assert response.status_code == 200, response.text
    assert response.json()["function"] == function
    assert response.json()["route_params"] == route_params


@pytest.mark.parametrize(
    "path",
    [
        "/api/kinds/guid/not-a-guid",
        "/api/kinds/alpha/abc1",
        "/api/kinds/bool/yes",
        "/api/kinds/int/1.5",
        "/api/kinds/long/99999999999999999999",
        "/api/kinds/double/abc",
        "/api/kinds/length/a",
        "/api/kinds/length/abcde",
        "/api/kinds/exact/ab",
        "/api/kinds/regex/ab-123",
        "/api/kinds/file/noextension",
        "/api/kinds/default/x",
        "/users/me",  # the route prefix is part of every template
        "/api/nowhere",
    ],
)
def test_unmatched_paths_are_404_json(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}
    assert response.headers["content-type"] == "application/json"


def test_a_path_without_the_method_is_405_with_allow(client):
    response = client.post("/api/users/bob")
    assert response.status_code == 405
    assert response.json() == {"detail": "Method Not Allowed"}
    assert response.headers["allow"] == "DELETE, GET"


def test_the_request_carries_url_headers_query_and_body(client, sample):
    body = bytes(range(256)) * 1024
    response = client.put(
        "/api/echo?x=1&X=2&empty=&flag&name=a%20b+c",
        content=body,
        headers={"X-Custom": "value", "Content-Type": "application/octet-stream"},
    )
    document = response.json()
    assert document["method"] == "PUT"
    assert document["url"] == f"{sample.url}/api/echo?x=1&X=2&empty=&flag&name=a%20b+c"
    assert document["headers"]["x-custom"] == "value"
    assert document["headers"]["content-length"] == str(len(body))
    # As the host forwards ASP.NET's query collection: keys case-insensitive, repeated values
    # joined with ",", empty values left out.
    assert document["params"] == {"x": "1,2", "name": "a b c"}
    assert document["body_hex"] == body.hex()
    assert document["thread"].startswith("ThreadPoolExecutor-")


def test_repeated_request_headers_arrive_joined_with_commas(client):
    response = client.get("/api/users/me", headers=[("X-Multi", "a"), ("x-multi", "b, c")])
    assert response.json()["headers"]["x-multi"] == "a,b, c"


def test_an_empty_body_and_a_body_without_content_length(sample):
    host, port = sample.url.removeprefix("http://").split(":")
    assert httpx.post(f"{sample.url}/api/echo", content=b"").json()["body_hex"] == ""
    # The host forwards a body only when Content-Length is positive (ToRpcHttp): a chunked
    # body reaches the function empty.
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(
            b"POST /api/echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        )
        reply = b""
        while chunk := connection.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 200 ")
    assert json.loads(reply.split(b"\r\n\r\n", 1)[1])["body_hex"] == ""


def test_a_body_over_100_mib_is_refused_before_it_is_read(sample):
    host, port = sample.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(
            b"POST /api/echo HTTP/1.1\r\nHost: test\r\nContent-Length: 104857601\r\n\r\n"
        )
        status_line = connection.recv(4096).split(b"\r\n", 1)[0]
    # The reason phrase is Python's (3.13 says "Content Too Large", after RFC 9110).
    assert status_line.split(b" ")[:2] == [b"HTTP/1.1", b"413"]


def test_functions_declaring_context_get_the_trace_as_the_host_passes_it(client):
    trace_parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    first = client.get(
        "/api/ctx", headers={"traceparent": trace_parent, "tracestate": "vendor=1"}
    ).json()
    second = client.get("/api/ctx").json()
    assert uuid.UUID(first["invocation_id"]).version == 4
    assert first["invocation_id"] != second["invocation_id"]
    assert first["function_name"] == "with_context"
    assert first["function_directory"].endswith("tests/apps")
    # The host's invocation activity is a child of the caller's span: same trace and flags.
    trace_id, span_id, flags = first["trace_parent"].split("-")[1:]
    assert (trace_id, flags) == ("0af7651916cd43dd8448eb211c80319c", "01")
    assert re.fullmatch(r"[0-9a-f]{16}", span_id) and span_id != "b7ad6b7169203331"
    assert first["trace_state"] == "vendor=1"
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-00", second["trace_parent"])
    assert second["trace_parent"].split("-")[1] != trace_id
    assert first["retry_count"] == 0
    assert first["thread_invocation_id"] == first["invocation_id"]


def test_async_functions_run_on_the_event_loop(client):
    response = client.get("/api/async")
    assert response.json()["function"] == "async_echo"
    assert response.json()["thread"] == "MainThread"


def test_an_exception_is_the_hosts_empty_500_and_the_traceback_is_only_logged(client, sample):
    response = client.get("/api/boom")
    assert response.status_code == 500
    assert response.content == b""
    output = wait_for_output(sample, lambda text: "secret-detail-that-must-not-leak" in text)
    assert re.search(
        r"Executed 'Functions\.boom' \(Failed, Id=[0-9a-f-]{36}, Duration=\d+ms\)", output
    )
    assert "Exception while executing function: Functions.boom. Result: Failure" in output
    assert "RuntimeError: secret-detail-that-must-not-leak" in output
    assert "Traceback (most recent call last)" in output


def test_the_response_keeps_status_headers_cookies_and_content_type(client):
    response = client.post("/api/created")
    assert response.status_code == 201
    assert response.text == "<p>made</p>"
    assert response.headers["x-made"] == "yes"
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    # The runtime turns Set-Cookie headers into RpcHttpCookie messages; the host writes them
    # back with ASP.NET's cookie writer, which keeps the empty domain and path Python sent.
    assert response.headers.get_list("set-cookie") == [
        "a=1; domain=; path=",
        "b=x%20y; max-age=60; domain=; path=/app; secure; samesite=lax; httponly",
    ]


def test_a_repeated_response_header_keeps_only_its_last_value(client):
    # RpcHttp.headers is a map: the runtime sends one value per header name, as on Azure.
    response = client.get("/api/repeated-header")
    assert response.headers.get_list("x-repeated") == ["second"]


def test_a_binary_response_body_and_an_empty_one(client):
    binary = client.get("/api/binary")
    assert binary.content == bytes(range(256))
    assert binary.headers["content-type"] == "application/octet-stream"
    empty = client.get("/api/empty")
    assert empty.status_code == 204
    assert empty.content == b""


def test_a_returned_string_is_a_plain_text_200(client):
    response = client.get("/api/plain")
    assert response.status_code == 200
    assert response.text == "just text"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


def test_local_settings_are_loaded_before_import_without_overriding_the_environment(client):
    assert client.get("/api/settings/FROM_FILE").json() == {"value": "file-value"}
    assert client.get("/api/settings/PRESET").json() == {"value": "from-environment"}
    assert client.get("/api/import-time-setting").json() == {"value": "file-value"}


def test_a_disabled_http_function_is_not_served(client):
    assert client.get("/api/disabled").status_code == 404


def test_timers_fire_on_a_schedule_from_an_app_setting(sample):
    def ticked_twice(text: str) -> bool:
        return (
            text.count("Executed 'Functions.tick' (Succeeded") >= 2
            and text.count("Executed 'Functions.failing_tick' (Failed") >= 2
        )

    output = wait_for_output(sample, ticked_twice)
    assert re.search(
        r"Executing 'Functions\.tick' \(Reason='Timer fired at \d{4}-\d\d-\d\dT[^']+', "
        r"Id=[0-9a-f-]{36}\)",
        output,
    )
    assert re.search(
        r"Executed 'Functions\.tick' \(Succeeded, Id=[0-9a-f-]{36}, Duration=\d+ms\)", output
    )
    assert "tick past_due=False" in output


def test_run_on_startup_fires_once_at_start(sample):
    output = wait_for_output(sample, lambda text: "Functions.startup_timer' (Succeeded" in text)
    assert output.count("Executed 'Functions.startup_timer'") == 1
    assert re.search(
        r"startup timer ran with invocation [0-9a-f-]{36}, next run \d{4}-01-01T00:00:00", output
    )


def test_an_unresolvable_schedule_setting_is_reported_and_not_scheduled(sample):
    output = wait_for_output(sample, lambda text: "Executed 'Functions.tick'" in text)
    assert "'%UNDEFINED_SCHEDULE_SETTING%' does not resolve to a value" in output
    assert "        unresolved_timer: timerTrigger (in error: not scheduled)\n" in output
    assert "unresolved timer ran" not in output


def test_a_disabled_timer_never_fires(sample):
    output = wait_for_output(
        sample, lambda text: text.count("Executed 'Functions.tick' (Succeeded") >= 2
    )
    assert "Functions.disabled_timer" not in output
    assert "disabled timer ran" not in output
