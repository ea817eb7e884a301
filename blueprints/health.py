"""Liveness and readiness probes (anonymous; they answer even when configuration is wrong).

Both are ``async def``: the worker runs them on its event loop, never in the thread pool that
API requests share, so requests stuck on a failing database cannot make the platform's health
check (``/healthz``) or the swap warm-up (``/readyz``) wait. Nothing here blocks the loop: the
readiness checks run on the probe's own threads, and the optional superuser sign-in on a small
pool of its own, both under the readiness budget.
"""

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor

import azure.functions as func

from shared.config import Settings
from shared.deadline import database_deadline
from shared.http import ApiRequest, Reply, Router

bp = func.Blueprint()
router = Router(bp, tag="health")

# Signing a superuser in reads the user (cache, else database): a thread, not the event loop.
_sign_ins = ThreadPoolExecutor(max_workers=2, thread_name_prefix="readyz-caller")


@router.get("healthz", response="Health", requires_config=False)
async def liveness(req: ApiRequest) -> dict[str, str]:
    """The process is up and serving; touches no dependency."""
    return {"status": "healthy", "version": req.settings.app_version}


@router.get("readyz", response="Readiness", errors=(503,), requires_config=False)
async def readiness(req: ApiRequest) -> Reply:
    """Database, migrations, cache and configuration checked under a deadline; 503 if any fails."""
    from shared.readiness import get_probe

    report, superuser = await asyncio.gather(
        asyncio.wrap_future(get_probe().start()), _caller_is_superuser(req)
    )
    return Reply(
        report.detailed() if superuser else report.public(),
        status_code=200 if report.ok else 503,
        headers={"Cache-Control": "no-store"},
    )


async def _caller_is_superuser(req: ApiRequest) -> bool:
    """Details (reasons, latencies) only for a superuser; a probe never fails on its caller, and
    never waits for it longer than the readiness budget."""
    if not req.header("authorization") or req.settings.errors:
        return False
    budget = req.settings.readiness_timeout_ms / 1000
    signing_in = _sign_ins.submit(_is_superuser, req.raw, req.invocation_id, req.settings, budget)
    try:
        return await asyncio.wait_for(asyncio.wrap_future(signing_in), budget)
    except TimeoutError:
        return False


def _is_superuser(
    raw: func.HttpRequest, invocation_id: str, settings: Settings, budget: float
) -> bool:
    from shared.auth import authenticate

    caller = ApiRequest(raw, invocation_id, settings)  # its own session, closed on this thread
    with database_deadline(budget):
        try:
            return authenticate(caller).is_superuser
        except Exception:
            return False
        finally:
            # A failed rollback of a read changes nothing (the connection is dropped).
            with contextlib.suppress(Exception):
                caller.close()
