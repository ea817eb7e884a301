"""The Python worker's runtime, driven as Azure's proxy worker drives it.

For Python 3.13+, the Functions host starts a thin proxy worker that hands every gRPC message to
the ``azure_functions_runtime`` library: ``worker_init_request`` (which imports the script and
indexes its functions), ``functions_metadata_request``, ``function_load_request`` per function
and ``invocation_request`` per invocation, each wrapped with the message in ``request`` and the
``protos`` namespace in ``properties``. devhost sends the same messages in process, so indexing,
binding conversion, the thread pool (``PYTHON_THREADPOOL_THREAD_COUNT``) and error handling are
the runtime's own. The runtime keeps its state in module globals: one per process.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import azure_functions_runtime as runtime

from devhost.errors import DevhostError
from devhost.protos import load_protos

logger = logging.getLogger("devhost")

# What the host advertises in WorkerInitRequest (GrpcWorkerChannel): the worker may open up to
# this many streams. FunctionDataCache is only sent when the host enables that cache.
HOST_CAPABILITIES = {"MultiStream": "10"}
HOST_VERSION = "devhost"


@dataclass
class _WorkerRequest:
    """The proxy worker's envelope: the runtime reads ``request.request`` and ``properties``."""

    name: str
    request: Any
    properties: dict[str, Any] = field(default_factory=dict)


def _failure(result: Any) -> str | None:
    """The exception message and stack of a failed StatusResult, else None."""
    protos = load_protos()
    if result.status == protos.StatusResult.Success:
        return None
    stack = f"\n{result.exception.stack_trace}" if result.exception.stack_trace else ""
    return f"{result.exception.message or 'no message'}{stack}"


class FunctionsRuntime:
    """The worker side of one host <-> worker channel, in this process."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.protos = load_protos()
        self._host = host
        self._started = False

    @property
    def version(self) -> str:
        return metadata.version("azure-functions-runtime")

    @property
    def thread_count(self) -> int | None:
        """The size of the runtime's invocation thread pool, once started."""
        executor = runtime.get_threadpool_executor()
        return getattr(executor, "_max_workers", None)

    async def start(self, function_app_directory: str) -> list[Any]:
        """Initialise the worker, index the app, load every enabled function: the metadata of
        every function the runtime indexed (``RpcFunctionMetadata``)."""
        protos = self.protos
        runtime.start_threadpool_executor()
        self._started = True
        init = protos.StreamingMessage(
            worker_init_request=protos.WorkerInitRequest(
                host_version=HOST_VERSION,
                capabilities=HOST_CAPABILITIES,
                worker_directory=os.path.dirname(runtime.__file__),
                function_app_directory=function_app_directory,
            )
        )
        properties = {"protos": protos, "host": self._host}
        response = await runtime.worker_init_request(
            _WorkerRequest("WorkerInitRequest", init, properties)
        )
        problem = _failure(response.result)
        if problem:
            raise DevhostError(f"Worker failed to index functions: {problem}")
        listing = await runtime.functions_metadata_request(
            _WorkerRequest(
                "WorkerMetadataRequest",
                protos.StreamingMessage(
                    functions_metadata_request=protos.FunctionsMetadataRequest(
                        function_app_directory=function_app_directory
                    )
                ),
            )
        )
        problem = _failure(listing.result)
        if problem:
            raise DevhostError(f"Worker failed to index functions: {problem}")
        return list(listing.function_metadata_results)

    async def load(self, function: Any) -> None:
        """Send FunctionLoadRequest for one indexed function, as the host does before routing
        any invocation to it."""
        protos = self.protos
        response = await runtime.function_load_request(
            _WorkerRequest(
                "FunctionLoadRequest",
                protos.StreamingMessage(
                    function_load_request=protos.FunctionLoadRequest(
                        function_id=function.function_id, metadata=function
                    )
                ),
            )
        )
        problem = _failure(response.result)
        if problem:
            raise DevhostError(f"Function '{function.name}' failed to load: {problem}")

    async def invoke(self, request: Any) -> Any:
        """Run one ``InvocationRequest`` on the calling event loop; its ``InvocationResponse``.

        Sync functions run in the runtime's thread pool, ``async def`` ones on this loop, as
        under the proxy worker."""
        message = self.protos.StreamingMessage(invocation_request=request)
        return await runtime.invocation_request(
            _WorkerRequest("FunctionInvocationRequest", message)
        )

    def failure(self, response: Any) -> str | None:
        """The runtime's exception message and stack of a failed invocation, else None."""
        return _failure(response.result)

    def stop(self) -> None:
        """Drop queued invocations; callers wait for running ones before calling this."""
        executor = runtime.get_threadpool_executor()
        if self._started and executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
