"""A function app exercising every devhost feature: route kinds, context, timers, failures."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
logger = logging.getLogger("sample")
# Read at import, to show local.settings.json is applied before the app module is imported.
SETTING_AT_IMPORT = os.environ.get("FROM_FILE")


def _echo(name: str, req: func.HttpRequest) -> func.HttpResponse:
    document = {
        "function": name,
        "method": req.method,
        "url": req.url,
        "headers": dict(req.headers),
        "params": dict(req.params),
        "route_params": dict(req.route_params),
        "body_hex": req.get_body().hex(),
        "thread": threading.current_thread().name,
    }
    return func.HttpResponse(json.dumps(document), mimetype="application/json")


# Precedence: a literal beats a constrained parameter beats a parameter beats optional/catch-all.
@app.route(route="users/me", methods=["GET"])
def users_me(req: func.HttpRequest) -> func.HttpResponse:
    return _echo("users_me", req)


@app.route(route="users/{user_id}", methods=["GET", "DELETE"])
def user_by_id(req: func.HttpRequest) -> func.HttpResponse:
    return _echo("user_by_id", req)


@app.route(route="users/{id:int}", methods=["GET"])
def user_by_number(req: func.HttpRequest) -> func.HttpResponse:
    return _echo("user_by_number", req)


@app.route(route="shelves/{*rest}", methods=["GET"])
def shelves_rest(req: func.HttpRequest) -> func.HttpResponse:
    return _echo("shelves_rest", req)


@app.route(route="shelves/{shelf?}", methods=["GET"])
def shelves_optional(req: func.HttpRequest) -> func.HttpResponse:
    return _echo("shelves_optional", req)


@app.route(route="shelves/{shelf}/books", methods=["GET"])
def shelf_books(req: func.HttpRequest) -> func.HttpResponse:
    return _echo("shelf_books", req)


# One function per constraint kind.
@app.route(route="kinds/guid/{value:guid}")
def kind_guid(req: func.HttpRequest) -> func.HttpResponse:
    return _echo("kind_guid", req)


@app.route(route="kinds/alpha/{value:alpha}")
def kind_alpha(req: func.HttpRequest) -> func.HttpResponse:
    return _echo("kind_alpha", req)


@app.route(route="kinds/bool/{value:bool}")
def kind_bool(req: func.HttpRequest) -> func.HttpResponse:
    return _echo("kind_bool", req)


@app.route(route="kinds/int/{value:int}")
def kind_int(req: func.HttpRequest) -> func.HttpResponse:
    return _echo("kind_int", req)


@app.route(route="kinds/long/{value:long}")
def kind_long(req: func.HttpRequest) -> func.HttpResponse:
    return _echo("kind_long", req)


@app.route(route="kinds/double/{value:double}")
def kind_double(req: func.HttpRequest) -> func.HttpResponse:
    return _echo("kind_double", req)


@app.route(route="kinds/length/{value:minlength(2):maxlength(4)}")
def kind_length(req: func.HttpRequest) -> func.HttpResponse:
    return _echo("kind_length", req)


@app.route(route="kinds/exact/{value:length(3)}")
def kind_exact(req: func.HttpRequest) -> func.HttpResponse:
    return _echo("kind_exact", req)


@app.route(route="kinds/regex/{value:regex(^[a-z]+-\\d{{2}}$)}")
def kind_regex(req: func.HttpRequest) -> func.HttpResponse:
    return _echo("kind_regex", req)


@app.route(route="kinds/file/{name}.{ext}")
def kind_complex(req: func.HttpRequest) -> func.HttpResponse:
    return _echo("kind_complex", req)


@app.route(route="kinds/default/{page:int=1}")
def kind_default(req: func.HttpRequest) -> func.HttpResponse:
    return _echo("kind_default", req)


@app.route(route="v1/items", methods=["GET", "POST"])
def items(req: func.HttpRequest) -> func.HttpResponse:
    return _echo("items", req)


@app.route(route="echo", methods=["POST", "PUT"])
def echo(req: func.HttpRequest) -> func.HttpResponse:
    return _echo("echo", req)


@app.route()
def unnamed_route(req: func.HttpRequest) -> func.HttpResponse:
    """No route given: the function name is the route; no methods given: every method."""
    return _echo("unnamed_route", req)


@app.route(route="ctx")
def with_context(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    storage = context.thread_local_storage
    document = {
        "invocation_id": context.invocation_id,
        "function_name": context.function_name,
        "function_directory": context.function_directory,
        "trace_parent": context.trace_context.trace_parent,
        "trace_state": context.trace_context.trace_state,
        "retry_count": context.retry_context.retry_count,
        "thread_invocation_id": getattr(storage, "invocation_id", None),
    }
    return func.HttpResponse(json.dumps(document), mimetype="application/json")


@app.route(route="async")
async def async_echo(req: func.HttpRequest) -> func.HttpResponse:
    await asyncio.sleep(0)
    return _echo("async_echo", req)


@app.route(route="boom")
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("secret-detail-that-must-not-leak")


@app.route(route="created", methods=["POST"])
def created(req: func.HttpRequest) -> func.HttpResponse:
    response = func.HttpResponse(
        "<p>made</p>", status_code=201, headers={"X-Made": "yes"}, mimetype="text/html"
    )
    response.headers.add_header("Set-Cookie", "a=1")
    response.headers.add_header(
        "Set-Cookie", 'b="x y"; Max-Age=60; Path=/app; Secure; HttpOnly; SameSite=Lax'
    )
    return response


@app.route(route="repeated-header")
def repeated_header(req: func.HttpRequest) -> func.HttpResponse:
    response = func.HttpResponse("two values")
    response.headers.add_header("X-Repeated", "first")
    response.headers.add_header("X-Repeated", "second")
    return response


@app.route(route="binary")
def binary(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(bytes(range(256)), mimetype="application/octet-stream")


@app.route(route="empty")
def empty(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(status_code=204)


@app.route(route="plain")
def plain(req: func.HttpRequest) -> str:
    return "just text"


@app.route(route="slow/{ms:int}")
def slow(req: func.HttpRequest) -> func.HttpResponse:
    logger.warning("slow request started")
    time.sleep(int(req.route_params["ms"]) / 1000)
    return func.HttpResponse("finished")


@app.route(route="settings/{name}")
def setting(req: func.HttpRequest) -> func.HttpResponse:
    value = os.environ.get(req.route_params["name"])
    return func.HttpResponse(json.dumps({"value": value}), mimetype="application/json")


@app.route(route="import-time-setting")
def import_time_setting(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps({"value": SETTING_AT_IMPORT}), mimetype="application/json")


@app.route(route="disabled")
def disabled_http(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("should be disabled")


@app.timer_trigger(schedule="%TICK_SCHEDULE%", arg_name="timer")
def tick(timer: func.TimerRequest) -> None:
    logger.warning("tick past_due=%s", timer.past_due)


@app.timer_trigger(schedule="%TICK_SCHEDULE%", arg_name="timer")
def failing_tick(timer: func.TimerRequest) -> None:
    raise RuntimeError("timer failure")


@app.timer_trigger(schedule="0 0 0 1 1 *", arg_name="timer", run_on_startup=True)
def startup_timer(timer: func.TimerRequest, context: func.Context) -> None:
    # A yearly schedule is monitored: the host's JSON carries the schedule status.
    status = getattr(timer, "schedule_status", None) or {}
    logger.warning(
        "startup timer ran with invocation %s, next run %s", context.invocation_id, status["Next"]
    )


@app.timer_trigger(schedule="%UNDEFINED_SCHEDULE_SETTING%", arg_name="timer")
def unresolved_timer(timer: func.TimerRequest) -> None:
    logger.warning("unresolved timer ran")


@app.timer_trigger(schedule="* * * * * *", arg_name="timer")
def disabled_timer(timer: func.TimerRequest) -> None:
    logger.warning("disabled timer ran")


@app.route(route="worker-pid")
def worker_pid(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps({"pid": os.getpid()}), mimetype="application/json")
