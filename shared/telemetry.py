"""Application Insights through azure-monitor-opentelemetry: configured once, loaded lazily.

Nothing here imports OpenTelemetry until telemetry is on (``APPLICATIONINSIGHTS_CONNECTION_STRING``
set), so cold start does not pay for it otherwise. When the Functions worker has configured Azure
Monitor itself (``PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true``), configuring it again would
send every item twice, so the app only adds its spans and metrics to the worker's providers.

What the app records: a SERVER span per HTTP invocation (route, method, status, invocation id,
parented on the host's trace context); the cache's hits, misses, errors, fallback activations and
fallback state as metrics; and the invocation id on every log record written during an
invocation.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from shared.config import Settings

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, Observation


logger = logging.getLogger(__name__)

WORKER_TELEMETRY_SETTING = "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"
INSTRUMENTATION_NAME = "stratus"

_lock = threading.Lock()
_enabled: bool | None = None
_invocation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "invocation_id", default=None
)


def worker_configured_telemetry() -> bool:
    return os.environ.get(WORKER_TELEMETRY_SETTING, "").strip().lower() == "true"


def ensure_configured(settings: Settings) -> bool:
    """Configure telemetry the first time it is asked for; whether it is on."""
    if _enabled is None:
        configure(settings)
    return bool(_enabled)


def configure(settings: Settings, **azure_monitor_options: Any) -> bool:
    """Configure once per process; later calls change nothing.

    ``azure_monitor_options`` go to ``configure_azure_monitor`` (tests add in-memory
    processors and readers beside the Azure Monitor exporters this way).
    """
    global _enabled
    with _lock:
        if _enabled is not None:
            return _enabled
        if not settings.applicationinsights_connection_string:
            _enabled = False
            return False
        _install_invocation_id_on_log_records()
        if worker_configured_telemetry():
            logger.info("Azure Monitor was configured by the Functions worker; not again")
        else:
            from azure.monitor.opentelemetry import configure_azure_monitor
            from opentelemetry.sdk.resources import Resource

            configure_azure_monitor(
                connection_string=settings.applicationinsights_connection_string,
                # OTEL_SERVICE_NAME (a sticky slot setting) tells the slots apart in the portal.
                resource=Resource.create(
                    {
                        "service.name": os.environ.get("OTEL_SERVICE_NAME") or "stratus",
                        "service.version": settings.app_version,
                    }
                ),
                **azure_monitor_options,
            )
        _register_cache_metrics()
        _enabled = True
        return True


@contextlib.contextmanager
def invocation(invocation_id: str) -> Iterator[None]:
    """Mark the log records written inside as belonging to this invocation."""
    token = _invocation_id.set(invocation_id)
    try:
        yield
    finally:
        _invocation_id.reset(token)


@contextlib.contextmanager
def request_span(
    method: str,
    route: str,
    url: str,
    invocation_id: str,
    trace_parent: str | None,
    trace_state: str | None,
) -> Iterator[Callable[[int], None]]:
    """A SERVER span that Application Insights records as a request; the caller records the
    response's status through the function it yields (sync and async handlers alike).

    ``trace_parent``/``trace_state`` are the W3C headers the Functions host hands the
    invocation, so the span joins the host's trace.
    """
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    parent = None
    if trace_parent:
        parent = TraceContextTextMapPropagator().extract(
            {"traceparent": trace_parent, "tracestate": trace_state or ""}
        )
    tracer = trace.get_tracer(INSTRUMENTATION_NAME)
    attributes = {
        "http.request.method": method,
        "http.route": route,
        "url.full": url.split("?", 1)[0],
        "faas.invocation_id": invocation_id,
    }
    with tracer.start_as_current_span(
        f"{method} {route}", context=parent, kind=SpanKind.SERVER, attributes=attributes
    ) as span:

        def record(status_code: int) -> None:
            span.set_attribute("http.response.status_code", status_code)
            if status_code >= 500:
                span.set_status(StatusCode.ERROR)

        yield record


def _install_invocation_id_on_log_records() -> None:
    """Every record gets ``invocation_id`` (an exported custom dimension) while one is current."""
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        invocation_id = _invocation_id.get()
        if invocation_id is not None:
            record.invocation_id = invocation_id
        return record

    logging.setLogRecordFactory(factory)


def _register_cache_metrics() -> None:
    from opentelemetry import metrics
    from opentelemetry.metrics import Observation

    meter = metrics.get_meter(INSTRUMENTATION_NAME)

    def counter(name: str) -> Callable[[CallbackOptions], list[Observation]]:
        def observe(_options: CallbackOptions) -> list[Observation]:
            from shared.cache import get_cache

            return [Observation(get_cache().process_counts()[name])]

        return observe

    for name, description in (
        ("hits", "cache reads answered from the cache"),
        ("misses", "cache reads that went to the loader"),
        ("errors", "Redis calls that failed"),
        ("fallback_activations", "times the breaker opened"),
    ):
        meter.create_observable_counter(
            f"stratus.cache.{name}", callbacks=[counter(name)], description=description
        )

    def fallback(_options: CallbackOptions) -> list[Observation]:
        from shared.cache import get_cache

        cache = get_cache()
        return [Observation(1 if cache.redis_configured and cache.mode == "memory" else 0)]

    meter.create_observable_gauge(
        "stratus.cache.fallback",
        callbacks=[fallback],
        description="1 while Redis is configured but the in-process fallback serves",
    )
