"""Routes through the app's own route wrapper that answer 200, 404 and 500, one function that
fails in the host's sense (its exception reaches the runtime), and a timer: what devhost's
invocation log lines are tested on."""

from __future__ import annotations

import logging

import azure.functions as func

from shared.errors import HTTPError
from shared.http import ApiRequest, route

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
bp = func.Blueprint()
logger = logging.getLogger("invocation_log_app")


@route(bp, "ok", "GET", requires_config=False)
def ok(req: ApiRequest) -> dict[str, str]:
    logger.warning("ok ran with invocation %s", req.invocation_id)
    return {"invocation_id": req.invocation_id}


@route(bp, "missing", "GET", requires_config=False)
def missing(req: ApiRequest) -> None:
    raise HTTPError(404, "Nothing here")


@route(bp, "broken", "GET", requires_config=False)
def broken(req: ApiRequest) -> None:
    raise RuntimeError("a bug the app turns into its 500")


app.register_functions(bp)


@app.route(route="crash", methods=["GET"])
def crash(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("an exception the host reports")


@app.timer_trigger(schedule="*/2 * * * * *", arg_name="timer")
def heartbeat(timer: func.TimerRequest) -> None:
    logger.warning("heartbeat ran")
