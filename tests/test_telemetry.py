"""Telemetry: configured once and lazily; request spans, cache metrics and invocation ids.

Each scenario runs in a fresh interpreter, because OpenTelemetry's global providers can be set
only once per process. The app's spans, metrics and logs go to OpenTelemetry's in-memory
exporters and, through the real Azure Monitor exporters, to a loopback ingestion endpoint.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import app_env
from tests.support.ai_collector import IngestionEndpoint

ROOT = Path(__file__).resolve().parent.parent

SCENARIO = textwrap.dedent(
    """
    import asyncio, inspect, json, sys, uuid
    import azure.functions as func
    from opentelemetry.sdk._logs.export import InMemoryLogExporter, SimpleLogRecordProcessor
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from shared import telemetry
    from tests.support.worker_context import invocation_context
    from shared.config import get_settings

    spans, logs, reader = InMemorySpanExporter(), InMemoryLogExporter(), InMemoryMetricReader()
    configured = telemetry.configure(
        get_settings(),
        span_processors=[SimpleSpanProcessor(spans)],
        log_record_processors=[SimpleLogRecordProcessor(logs)],
        metric_readers=[reader],
    )
    # Later calls, as every request makes, must not configure a second time.
    telemetry.configure(get_settings())
    telemetry.ensure_configured(get_settings())

    import function_app

    functions = {
        f.get_function_name(): f.get_user_function() for f in function_app.app.get_functions()
    }
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

    def call(name, method, url, headers=None, route_params=None):
        context = invocation_context(name, parent)
        request = func.HttpRequest(
            method, url, headers=headers or {}, body=b"", route_params=route_params
        )
        response = functions[name](request, context)
        if inspect.isawaitable(response):  # the probes are async, run on the worker's loop
            response = asyncio.run(response)
        return context.invocation_id, response.status_code

    address = "secret.person@example.com"
    results = {
        "healthz": call("liveness", "GET", "http://localhost/healthz"),
        "me": call("read_user_me", "GET", "http://localhost/api/v1/users/me"),
        "readyz": call("readiness", "GET", "http://localhost/readyz"),
        "recover": call(
            "recover_password",
            "POST",
            f"http://localhost/api/v1/password-recovery/{address}",
            route_params={"email": address},
        ),
    }
    from shared.cache import get_cache
    get_cache().set("k", 1)
    get_cache().get("k")
    get_cache().get("absent")

    from opentelemetry import trace
    trace.get_tracer_provider().force_flush()
    metrics = {}
    for resource in reader.get_metrics_data().resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name.startswith("stratus."):
                    metrics[metric.name] = metric.data.data_points[0].value
    print(json.dumps({
        "configured": configured,
        "results": results,
        "spans": [
            {"name": s.name, "kind": s.kind.name, "attributes": dict(s.attributes),
             "trace_id": format(s.context.trace_id, "032x"),
             "parent": format(s.parent.span_id, "016x") if s.parent else None}
            for s in spans.get_finished_spans() if s.instrumentation_scope.name == "stratus"
        ],
        "logs": [
            {"body": str(r.log_record.body), "attributes": dict(r.log_record.attributes or {})}
            for r in logs.get_finished_logs()
        ],
        "metrics": metrics,
    }))
    """
)


def _run(env: dict[str, str]) -> dict[str, Any]:
    full = {
        **os.environ,
        **env,
        "PYTHONPATH": str(ROOT),
        # Keep every span (the distro's default samples 5 traces per second) and no statsbeat
        # (the exporter's own usage telemetry, which would try to reach Microsoft).
        "OTEL_TRACES_SAMPLER": "always_on",
        "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
    }
    result = subprocess.run(
        [sys.executable, "-c", SCENARIO],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    out: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return out


@pytest.fixture(scope="module")
def endpoint():
    with IngestionEndpoint() as collector:
        yield collector


@pytest.fixture
def unmigrated_sqlite(tmp_path):
    # /readyz fails its migrations check here, which logs a warning inside the invocation.
    return f"sqlite:///{tmp_path / 'telemetry.db'}"


def test_request_spans_metrics_and_invocation_ids(endpoint, unmigrated_sqlite):
    env = app_env(
        unmigrated_sqlite,
        None,
        APPLICATIONINSIGHTS_CONNECTION_STRING=endpoint.connection_string,
        READINESS_CACHE_MS="0",
    )
    out = _run(env)
    assert out["configured"] is True
    assert out["results"]["healthz"][1] == 200
    assert out["results"]["me"][1] == 401
    assert out["results"]["readyz"][1] == 503

    spans = {s["name"]: s for s in out["spans"]}
    # Exactly one span per invocation: configuring twice would have doubled them.
    assert len(out["spans"]) == 4
    health = spans["GET /healthz"]
    assert health["kind"] == "SERVER"
    assert health["attributes"]["http.route"] == "/healthz"
    assert health["attributes"]["http.response.status_code"] == 200
    assert health["attributes"]["faas.invocation_id"] == out["results"]["healthz"][0]
    assert spans["GET /api/v1/users/me"]["attributes"]["http.response.status_code"] == 401
    # Parented on the host's W3C trace context.
    assert health["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert health["parent"] == "b7ad6b7169203331"

    readiness_logs = [log for log in out["logs"] if "readiness" in log["body"]]
    assert readiness_logs
    assert all(
        log["attributes"].get("invocation_id") == out["results"]["readyz"][0]
        for log in readiness_logs
    )

    # A path parameter carrying an address is recorded as the route's template, never its value.
    recovery = spans["POST /api/v1/password-recovery/{email}"]["attributes"]
    assert recovery["url.full"] == "http://localhost/api/v1/password-recovery/{email}"
    assert "secret.person" not in json.dumps(out["spans"]) + json.dumps(out["logs"])

    assert out["metrics"]["stratus.cache.hits"] >= 1
    assert out["metrics"]["stratus.cache.misses"] >= 1
    assert out["metrics"]["stratus.cache.fallback"] == 0


def test_the_azure_monitor_exporter_delivers_requests_to_application_insights(
    endpoint, unmigrated_sqlite
):
    env = app_env(
        unmigrated_sqlite, None, APPLICATIONINSIGHTS_CONNECTION_STRING=endpoint.connection_string
    )
    out = _run(env)
    invocation = out["results"]["healthz"][0]
    requests = [
        e
        for e in endpoint.of_type("RequestData")
        if e["data"]["baseData"]["name"] == "GET /healthz"
    ]
    assert requests, endpoint.envelopes[:3]
    data = requests[-1]["data"]["baseData"]
    assert data["responseCode"] == "200"
    assert data["properties"]["faas.invocation_id"] == invocation
    recovery = [
        e["data"]["baseData"]
        for e in endpoint.of_type("RequestData")
        if e["data"]["baseData"]["name"] == "POST /api/v1/password-recovery/{email}"
    ]
    assert recovery and recovery[-1]["url"].endswith("/password-recovery/{email}"), recovery
    assert "secret.person" not in json.dumps(endpoint.envelopes)


def test_a_fallback_shows_in_the_metrics(endpoint, unmigrated_sqlite):
    from tests.support.services import free_port

    env = app_env(
        unmigrated_sqlite,
        f"redis://127.0.0.1:{free_port()}/0",  # nothing listens: the breaker opens at once
        APPLICATIONINSIGHTS_CONNECTION_STRING=endpoint.connection_string,
    )
    out = _run(env)
    assert out["metrics"]["stratus.cache.fallback"] == 1
    assert out["metrics"]["stratus.cache.fallback_activations"] == 1
    assert out["metrics"]["stratus.cache.errors"] >= 1


def test_when_the_worker_configured_azure_monitor_the_app_does_not_again(
    endpoint, unmigrated_sqlite
):
    script = textwrap.dedent(
        """
        import json
        from opentelemetry import trace
        from shared import telemetry
        from shared.config import get_settings
        print(json.dumps({
            "enabled": telemetry.ensure_configured(get_settings()),
            "provider": type(trace.get_tracer_provider()).__name__,
        }))
        """
    )
    env = {
        **os.environ,
        **app_env(
            unmigrated_sqlite,
            None,
            APPLICATIONINSIGHTS_CONNECTION_STRING=endpoint.connection_string,
        ),
        "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY": "true",
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["enabled"] is True
    # The app set no provider of its own: the worker's (here, none) stays in place.
    assert out["provider"] == "ProxyTracerProvider"


def test_without_a_connection_string_nothing_is_loaded(unmigrated_sqlite):
    script = textwrap.dedent(
        """
        import asyncio, json, sys
        import azure.functions as func
        import function_app
        from tests.support.worker_context import invocation_context
        function = next(f.get_user_function() for f in function_app.app.get_functions()
                        if f.get_function_name() == "liveness")
        status = asyncio.run(function(func.HttpRequest("GET", "http://localhost/healthz", body=b""),
                                      invocation_context("liveness"))).status_code
        loaded = [m for m in sys.modules if m.startswith(("opentelemetry", "azure.monitor"))]
        print(json.dumps({"status": status, "loaded": loaded}))
        """
    )
    env = {**os.environ, **app_env(unmigrated_sqlite, None), "PYTHONPATH": str(ROOT)}
    env.pop("APPLICATIONINSIGHTS_CONNECTION_STRING", None)
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["status"] == 200
    assert out["loaded"] == []
