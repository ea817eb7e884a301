"""The app indexes: for the SDK and the worker runtime Azure runs, cheaply, without network I/O."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Run in a fresh interpreter: what importing function_app costs and touches is the point.
INDEX_SCRIPT = textwrap.dedent(
    """
    import json, socket, sys

    def no_network(*args, **kwargs):
        raise AssertionError("network I/O during indexing")

    socket.socket.connect = no_network
    socket.create_connection = no_network

    import function_app

    functions = function_app.app.get_functions()
    heavy = ["sqlalchemy", "pydantic", "redis", "opentelemetry", "msal", "azure.identity",
             "azure.monitor", "jwt", "argon2", "psycopg", "alembic"]
    print(json.dumps({
        "functions": {f.get_function_name(): [json.loads(b) for b in f.get_raw_bindings()]
                      for f in functions},
        "loaded": [m for m in heavy if m in sys.modules],
    }))
    """
)

# The worker runtime indexes the app as on Azure (WorkerInitRequest, then FunctionsMetadata).
WORKER_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from devhost.runtime import FunctionsRuntime

    sys.path.insert(0, sys.argv[1])
    for function in asyncio.run(FunctionsRuntime().start(sys.argv[1])):
        print(function.name)
    """
)


def _run(script: str, *args: str, cwd: Path = ROOT, env_extra: dict[str, str] | None = None):
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{cwd}:{ROOT}", "ENVIRONMENT": "development"}
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def indexed():
    result = _run(INDEX_SCRIPT)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_import_loads_no_heavy_module_and_does_no_network_io(indexed):
    assert indexed["loaded"] == []


def test_import_stays_light_with_telemetry_and_redis_configured():
    result = _run(
        INDEX_SCRIPT,
        env_extra={
            "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=0;IngestionEndpoint=http://127.0.0.1:9/",
            "REDIS_URL": "redis://127.0.0.1:9/0",
            "AZURE_TENANT_ID": "contoso.example.com",
            "AZURE_CLIENT_ID": "client",
        },
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["loaded"] == []


def test_every_function_has_a_valid_anonymous_http_or_timer_binding(indexed):
    functions = indexed["functions"]
    assert {"liveness", "readiness", "read_items", "create_private_user"} <= set(functions)
    for name, bindings in functions.items():
        trigger = bindings[0]
        assert trigger["direction"] == "IN", name
        if trigger["type"] == "httpTrigger":
            assert trigger["authLevel"] == "ANONYMOUS", name
            assert not trigger["route"].startswith("/"), name
            assert not trigger["route"].endswith("/"), name
            assert bindings[1] == {"direction": "OUT", "type": "http", "name": "$return"}
        else:
            assert trigger["type"] == "timerTrigger", name


def test_each_route_template_answers_options_exactly_once(indexed):
    templates: dict[str, int] = {}
    for bindings in indexed["functions"].values():
        trigger = bindings[0]
        if trigger["type"] == "httpTrigger":
            count = trigger["methods"].count("OPTIONS")
            templates[trigger["route"]] = templates.get(trigger["route"], 0) + count
    assert set(templates.values()) == {1}


def test_private_users_exist_only_in_development():
    result = _run(INDEX_SCRIPT, env_extra={"ENVIRONMENT": "test"})
    assert result.returncode == 0, result.stderr
    assert "create_private_user" not in json.loads(result.stdout)["functions"]


def test_the_worker_runtime_indexes_every_function(indexed):
    result = _run(WORKER_SCRIPT, str(ROOT))
    assert result.returncode == 0, result.stderr
    names = {line.split()[0] for line in result.stdout.splitlines()}
    assert names == set(indexed["functions"])


def test_the_worker_runtime_rejects_a_wrapper_that_chains_wrapped(tmp_path):
    # The failure DESIGN.md warns about: functools.wraps exposes the handler's extra parameter.
    (tmp_path / "function_app.py").write_text(
        textwrap.dedent(
            """
            import functools
            import azure.functions as func

            app = func.FunctionApp()

            def wrapper(handler):
                @functools.wraps(handler)
                def function(req: func.HttpRequest) -> func.HttpResponse:
                    return handler(req, None)
                return function

            @app.route(route="items/{id}")
            @wrapper
            def read_item(req: func.HttpRequest, ctx) -> func.HttpResponse:
                return func.HttpResponse("x")
            """
        )
    )
    result = _run(WORKER_SCRIPT, str(tmp_path), cwd=tmp_path)
    assert result.returncode != 0
    refusal = "cannot load the read_item function: the following parameters are declared in Python"
    assert refusal in result.stderr


ASYNC_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    import azure_functions_runtime
    from devhost.runtime import FunctionsRuntime

    sys.path.insert(0, sys.argv[1])
    registry = azure_functions_runtime.handle_event._functions
    for function in asyncio.run(FunctionsRuntime().start(sys.argv[1])):
        info = registry.get_function(function.function_id)
        print(function.name, "async" if info.is_async else "sync")
    """
)


def test_the_runtime_runs_the_probes_and_cached_reads_on_its_loop_and_the_rest_in_its_pool():
    """What the runtime itself decides from the wrapper: async functions are awaited on the
    worker's loop (no thread needed), sync ones go to the thread pool. The probes are async, as
    are the reads with an answer from the cache (``cached=``), which hand what the cache cannot
    answer to threads of their own."""
    result = _run(ASYNC_SCRIPT, str(ROOT))
    assert result.returncode == 0, result.stderr
    kinds = dict(line.split() for line in result.stdout.splitlines())
    for name in ("liveness", "readiness", "read_user_me", "read_items"):
        assert kinds.pop(name) == "async", name
    assert set(kinds.values()) == {"sync"}


def test_an_async_route_that_signs_in_is_refused_at_registration():
    import azure.functions as func

    from shared.http import ApiRequest, route

    async def read_me(req: ApiRequest) -> dict[str, str]:
        return {}

    with pytest.raises(TypeError, match="an async route runs on the event loop"):
        route(
            func.Blueprint(), "api/v1/probe-me", "GET", operation_id="x", summary="x", auth="user"
        )(read_me)
