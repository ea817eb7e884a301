"""The error a lower layer raises to answer a request with a status code.

Plain Python, no Azure Functions types: request authentication raises it without importing the
route wrapper, which renders it as ``{"detail": detail}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class HTTPError(Exception):
    """An error response: ``{"detail": detail}`` with ``status_code``."""

    def __init__(
        self, status_code: int, detail: Any, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.headers = dict(headers or {})
