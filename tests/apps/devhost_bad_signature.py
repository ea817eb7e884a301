"""A handler whose parameters do not match its bindings; the worker rejects it at indexing."""

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="bad")
def bad(req: func.HttpRequest, extra: str) -> func.HttpResponse:
    return func.HttpResponse(extra)
