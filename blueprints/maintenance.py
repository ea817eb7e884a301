"""The Redis connectivity timer: a backstop to the cache's own half-open probe.

Timers run on one instance when the app scales out, so recovery lives in the cache client on
every instance; this timer checks Redis on the instance it runs on, reconnects it when the
breaker is open, and records the outcome. The staging slot disables it with the sticky setting
``AzureWebJobs.redis_reconnect.Disabled=true``.
"""

import logging

import azure.functions as func

bp = func.Blueprint()
logger = logging.getLogger(__name__)


@bp.timer_trigger(
    schedule="%REDIS_RECONNECT_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=False
)
def redis_reconnect(timer: func.TimerRequest) -> None:
    from shared.cache import get_cache

    cache = get_cache()
    if not cache.redis_configured:
        logger.debug("redis_reconnect: no REDIS_URL, in-process cache only")
        return
    was_open = cache.mode == "memory"
    connected = cache.reconnect()
    if was_open and connected:
        logger.warning("redis_reconnect: Redis is back; cache returned to redis mode")
    elif not connected:
        logger.error("redis_reconnect: Redis unreachable; cache stays in memory mode")
    else:
        logger.info("redis_reconnect: Redis answers; cache in redis mode")
