"""The cold-start baseline: one FunctionApp with one anonymous HTTP route and nothing else.

``bench.cold_start`` imports it beside ``function_app``; its route answers ``/healthz`` so the
same probe reaches both apps through devhost.
"""

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="healthz", methods=["GET"])
def healthz(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse('{"status": "healthy"}', mimetype="application/json")
