"""The app on the worker runtime directly, without devhost: a reference for fidelity tests.

``python -m tests.support.direct_runtime`` (in the project root, with the app's settings in the
environment) initialises ``azure_functions_runtime`` on the project, then answers one JSON line
on stdout per JSON line on stdin: ``{"function", "method", "url", "headers", "query",
"params", "body_b64"}`` in, ``{"status", "headers", "cookies", "body_b64"}`` (the function's
``RpcHttp`` response) or ``{"failure"}`` out. Messages are built here from the request as the
host's ``ToRpcHttp`` describes it, independently of devhost's own conversions.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import types
import uuid
from pathlib import Path
from typing import Any

import azure_functions_runtime as runtime

from devhost.protos import load_protos

ROOT = Path(__file__).resolve().parents[2]


def envelope(message: Any, protos: Any = None) -> Any:
    properties = {"protos": protos, "host": "127.0.0.1"} if protos else {}
    return types.SimpleNamespace(request=message, properties=properties)


async def start(protos: Any) -> dict[str, str]:
    runtime.start_threadpool_executor()
    init = protos.StreamingMessage(
        worker_init_request=protos.WorkerInitRequest(function_app_directory=str(ROOT))
    )
    response = await runtime.worker_init_request(envelope(init, protos))
    assert response.result.status == protos.StatusResult.Success, response.result
    listing = await runtime.functions_metadata_request(
        envelope(protos.StreamingMessage(functions_metadata_request={}))
    )
    return {function.name: function.function_id for function in listing.function_metadata_results}


async def invoke(protos: Any, function_ids: dict[str, str], call: dict[str, Any]) -> dict[str, Any]:
    body = base64.b64decode(call["body_b64"])
    http = protos.RpcHttp(
        method=call["method"],
        url=call["url"],
        headers=call["headers"],
        query=call["query"],
        params=call["params"],
    )
    if body:
        http.body.bytes = body
    request = protos.InvocationRequest(
        invocation_id=str(uuid.uuid4()),
        function_id=function_ids[call["function"]],
        input_data=[protos.ParameterBinding(name="req", data=protos.TypedData(http=http))],
    )
    response = await runtime.invocation_request(
        envelope(protos.StreamingMessage(invocation_request=request))
    )
    if response.result.status != protos.StatusResult.Success:
        return {"failure": response.result.exception.message}
    out = response.return_value.http
    return {
        "status": int(out.status_code or 200),
        "headers": dict(out.headers),
        "cookies": [cookie.name for cookie in out.cookies],
        "body_b64": base64.b64encode(out.body.bytes).decode(),
    }


def main() -> None:
    sys.path.insert(0, str(ROOT))
    protos = load_protos()
    loop = asyncio.new_event_loop()
    function_ids = loop.run_until_complete(start(protos))
    print(json.dumps({"ready": sorted(function_ids)}), flush=True)
    for line in sys.stdin:
        answer = loop.run_until_complete(invoke(protos, function_ids, json.loads(line)))
        print(json.dumps(answer), flush=True)
    runtime.stop_threadpool_executor()


if __name__ == "__main__":
    main()
