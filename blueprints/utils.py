"""Utilities of the contract (test mail, health check) and the OpenAPI document."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import azure.functions as func

from shared.errors import HTTPError
from shared.http import ApiRequest, Router
from shared.lazy import lazy_import

if TYPE_CHECKING:
    from shared import email, openapi, schemas
else:
    email = lazy_import("shared.email")
    openapi = lazy_import("shared.openapi")
    schemas = lazy_import("shared.schemas")

bp = func.Blueprint()
router = Router(bp, tag="utils")
logger = logging.getLogger(__name__)


@router.post(
    "api/v1/utils/test-email/",
    operation_id="utils-test_email",
    summary="Test Email",
    auth="superuser",
    query="TestEmailQuery",
    response="Message",
    status_code=201,
    errors=(503,),
)
def send_test_email(req: ApiRequest) -> schemas.Message:
    """Test emails."""
    query = req.query(schemas.TestEmailQuery)
    try:
        email.send(req.settings, query.email_to, email.test_email(req.settings, query.email_to))
    except email.EmailNotConfigured:
        raise HTTPError(503, "Email is not configured") from None
    except email.DELIVERY_ERRORS as exc:
        logger.error("test mail could not be sent: %s", type(exc).__name__)
        raise HTTPError(503, "Email could not be sent", {"Retry-After": "30"}) from None
    return schemas.Message(message="Test email sent")


@router.get("api/v1/utils/health-check/", response="bool")
def health_check(req: ApiRequest) -> bool:
    """The template's health check: always true while the app serves."""
    return True


@router.get(
    "api/v1/openapi.json",
    operation_id="utils-openapi",
    summary="OpenAPI Document",
    response="object",
)
def openapi_document(req: ApiRequest) -> dict[str, Any]:
    """This API's OpenAPI 3.1 document, generated from the registered routes and models."""
    return openapi.cached_document(req.settings)
