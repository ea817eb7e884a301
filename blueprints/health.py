"""Liveness and readiness probes (anonymous; they answer even when configuration is wrong)."""

import azure.functions as func

from shared.http import ApiRequest, Reply, route

bp = func.Blueprint()


@route(
    bp,
    "healthz",
    "GET",
    operation_id="health-liveness",
    summary="Liveness",
    tags=["health"],
    response="Health",
    requires_config=False,
)
def liveness(req: ApiRequest) -> dict[str, str]:
    """The process is up and serving; touches no dependency."""
    return {"status": "healthy", "version": req.settings.app_version}


@route(
    bp,
    "readyz",
    "GET",
    operation_id="health-readiness",
    summary="Readiness",
    tags=["health"],
    response="Readiness",
    errors=(503,),
    requires_config=False,
)
def readiness(req: ApiRequest) -> Reply:
    """Database, migrations, cache and configuration checked under a deadline; 503 if any fails."""
    from shared.readiness import get_probe

    report = get_probe().report()
    return Reply(
        report.detailed() if _caller_is_superuser(req) else report.public(),
        status_code=200 if report.ok else 503,
        headers={"Cache-Control": "no-store"},
    )


def _caller_is_superuser(req: ApiRequest) -> bool:
    """Details (reasons, latencies) only for a superuser; a probe never fails on its caller."""
    if not req.header("authorization") or req.settings.errors:
        return False
    from shared.auth import authenticate

    try:
        return authenticate(req).is_superuser
    except Exception:
        return False
