"""Superuser cache administration: statistics, clear, reconnect, and invalidation by pattern.

Patterns are applied inside the cache's namespace server-side (``<CACHE_PREFIX>:<pattern>``),
so no pattern can reach keys outside it. Every action is logged with the acting user.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import azure.functions as func

from shared.errors import HTTPError
from shared.http import ApiRequest, Router
from shared.lazy import lazy_import

if TYPE_CHECKING:
    from shared import cache, glob
else:
    cache = lazy_import("shared.cache")
    glob = lazy_import("shared.glob")

bp = func.Blueprint()
router = Router(bp, tag="cache")
logger = logging.getLogger(__name__)


@router.get(
    "api/v1/cache/stats",
    operation_id="cache-stats",
    summary="Cache Statistics",
    auth="superuser",
    response="object",
)
def cache_stats(req: ApiRequest) -> dict[str, Any]:
    """Hits, misses, errors, mode and fallback history, each labelled with its scope."""
    logger.info("cache stats read by %s", req.user.id)
    return cache.get_cache().stats()


@router.post(
    "api/v1/cache/clear", operation_id="cache-clear", auth="superuser", response="CacheCleared"
)
def clear_cache(req: ApiRequest) -> dict[str, int]:
    """Delete every key in the cache's namespace (other keys in the database are untouched)."""
    removed = cache.get_cache().clear()
    logger.warning(
        "cache cleared by %s (%s): %d keys removed", req.user.email, req.user.id, removed
    )
    return {"removed": removed}


@router.post(
    "api/v1/cache/reconnect",
    operation_id="cache-reconnect",
    auth="superuser",
    response="CacheReconnected",
)
def reconnect_cache(req: ApiRequest) -> dict[str, Any]:
    """Check Redis now: back to ``redis`` mode if it answers (what the timer does, on demand)."""
    shared_cache = cache.get_cache()
    connected = shared_cache.reconnect()
    logger.warning(
        "cache reconnect by %s (%s): mode %s", req.user.email, req.user.id, shared_cache.mode
    )
    return {
        "mode": shared_cache.mode,
        "redis_configured": shared_cache.redis_configured,
        "connected": connected,
    }


@router.delete(
    "api/v1/cache/{pattern}",
    operation_id="cache-invalidate",
    summary="Invalidate Cache Keys",
    auth="superuser",
    response="CacheInvalidated",
    errors=(400,),
    functions_route="api/v1/cache/{pattern?}",
)
def invalidate_cache(req: ApiRequest) -> dict[str, Any]:
    """Delete the keys matching a Redis glob pattern (``*``, ``?``, ``[a-z]``, ``\\`` escapes)."""
    pattern = req.raw.route_params.get("pattern", "")
    try:
        glob.validate_pattern(pattern)
    except ValueError as exc:
        raise HTTPError(400, f"Invalid pattern: {exc}") from None
    removed = cache.get_cache().invalidate(pattern)
    logger.warning(
        "cache keys %r invalidated by %s (%s): %d removed",
        pattern,
        req.user.email,
        req.user.id,
        removed,
    )
    return {"pattern": pattern, "removed": removed}
