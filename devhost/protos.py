"""The host <-> worker messages (``FunctionRpc.proto``) as generated protobuf classes.

Azure's proxy worker hands the runtime a ``protos`` namespace of these classes in
``request.properties``. The generated modules are published in the pinned
``azure-functions-runtime-v1`` distribution, under its top-level ``tests/protos`` folder; their
package ``__init__`` imports grpc (for the service stubs, which devhost does not need), so the
folder is mounted as a package of our own name without running that ``__init__``, and only the
message modules are imported from it.
"""

from __future__ import annotations

import importlib
import sys
import types
from functools import cache
from importlib import metadata
from pathlib import Path

from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

from devhost.errors import DevhostError

PROTOS_DISTRIBUTION = "azure-functions-runtime-v1"
_PACKAGE = "devhost_function_rpc"
_MESSAGE_MODULES = ("FunctionRpc_pb2", "shared.NullableTypes_pb2", "identity.ClaimsIdentityRpc_pb2")


def _protos_directory() -> Path:
    try:
        distribution = metadata.distribution(PROTOS_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise DevhostError(
            f"{PROTOS_DISTRIBUTION} is not installed: install requirements-devhost.txt"
        ) from None
    directory = Path(str(distribution.locate_file("tests/protos")))
    if not (directory / "FunctionRpc_pb2.py").is_file():
        raise DevhostError(
            f"{PROTOS_DISTRIBUTION} {distribution.version} has no tests/protos/FunctionRpc_pb2.py"
        )
    return directory


@cache
def load_protos() -> types.SimpleNamespace:
    """Every message and enum of the schema, flat, as the proxy worker's ``protos`` module."""
    package = types.ModuleType(_PACKAGE)
    package.__path__ = [str(_protos_directory())]
    sys.modules.setdefault(_PACKAGE, package)
    namespace = types.SimpleNamespace()
    for name in _MESSAGE_MODULES:
        module = importlib.import_module(f"{_PACKAGE}.{name}")
        for symbol, value in vars(module).items():
            if not symbol.startswith("_") and isinstance(value, type | EnumTypeWrapper):
                setattr(namespace, symbol, value)
    return namespace


def protobuf_version() -> str:
    return metadata.version("protobuf")
