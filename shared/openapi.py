"""The OpenAPI 3.1 document, generated from the registered routes and the pydantic models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from shared import schemas
from shared.config import Settings
from shared.http import ROUTES, RouteSpec

REF = "#/components/schemas/{model}"
ERROR_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    413: "Request body too large",
    415: "Unsupported media type",
    429: "Too many failed attempts",
    503: "Service temporarily unavailable",
}
SCALARS = {"bool": {"type": "boolean"}, "object": {"type": "object"}}
PATH_PARAM_SCHEMAS = {"uuid": {"type": "string", "format": "uuid"}, "string": {"type": "string"}}


def _model(name: str) -> type[BaseModel]:
    model = getattr(schemas, name)
    assert isinstance(model, type) and issubclass(model, BaseModel), name
    return model


def _component_names(models: list[type[BaseModel]]) -> tuple[dict[str, str], dict[str, Any]]:
    """JSON schemas of ``models`` keyed by their titles (``Body_login-login_access_token``)."""
    _, top = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    defs: dict[str, Any] = top.get("$defs", {})
    renamed = {name: schema.get("title", name) for name, schema in defs.items()}

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                key: (
                    REF.format(model=renamed[value.rsplit("/", 1)[1]])
                    if key == "$ref" and isinstance(value, str)
                    else rewrite(value)
                )
                for key, value in node.items()
            }
        if isinstance(node, list):
            return [rewrite(value) for value in node]
        return node

    components = {renamed[name]: rewrite(schema) for name, schema in defs.items()}
    return renamed, components


def _ref(name: str, renamed: dict[str, str]) -> dict[str, Any]:
    if name in SCALARS:
        return dict(SCALARS[name])
    return {"$ref": REF.format(model=renamed[name])}


def _title(name: str) -> str:
    return name.replace("_", " ").title()


def _parameters(spec: RouteSpec) -> list[dict[str, Any]]:
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {**PATH_PARAM_SCHEMAS[kind], "title": _title(name)},
        }
        for name, kind in spec.path_params.items()
    ]
    if spec.query:
        model = _model(spec.query)
        schema = model.model_json_schema(ref_template=REF)
        required = set(schema.get("required", ()))
        for name, field_schema in schema["properties"].items():
            parameters.append(
                {"name": name, "in": "query", "required": name in required, "schema": field_schema}
            )
    return parameters


def _errors(spec: RouteSpec) -> list[int]:
    codes = set(spec.errors)
    if spec.auth != "public":
        codes |= {400, 401, 403, 404}  # inactive user, no token, bad token or role, deleted user
    if spec.body:
        codes |= {413, 415}
    if spec.requires_config:
        codes.add(503)
    return sorted(codes)


def _operation(spec: RouteSpec, renamed: dict[str, str]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "tags": list(spec.tags),
        "summary": spec.summary,
        "description": spec.description,
        "operationId": spec.operation_id,
    }
    if spec.auth != "public":
        operation["security"] = [{"OAuth2PasswordBearer": []}]
    parameters = _parameters(spec)
    if parameters:
        operation["parameters"] = parameters
    if spec.body:
        operation["requestBody"] = {
            "required": True,
            "content": {spec.body_media: {"schema": _ref(spec.body, renamed)}},
        }
    if spec.response_media == "application/json":
        success_schema = _ref(spec.response, renamed) if spec.response else {}
    else:
        success_schema = {"type": "string"}
    responses: dict[str, Any] = {
        str(spec.status_code): {
            "description": "Successful Response",
            "content": {spec.response_media: {"schema": success_schema}},
        }
    }
    for code in _errors(spec):
        responses[str(code)] = {
            "description": ERROR_DESCRIPTIONS.get(code, "Error"),
            "content": {"application/json": {"schema": _ref("ErrorMessage", renamed)}},
        }
    if parameters or spec.body:
        responses["422"] = {
            "description": "Validation Error",
            "content": {"application/json": {"schema": _ref("HTTPValidationError", renamed)}},
        }
    operation["responses"] = dict(sorted(responses.items()))
    return operation


def build_document(settings: Settings) -> dict[str, Any]:
    routes = [spec for spec in ROUTES if spec.in_schema]
    names = {"ErrorMessage", "HTTPValidationError"}
    for spec in routes:
        names.update(n for n in (spec.body, spec.response) if n and n not in SCALARS)
    renamed, components = _component_names([_model(name) for name in sorted(names)])
    paths: dict[str, dict[str, Any]] = {}
    for spec in routes:
        paths.setdefault("/" + spec.path, {})[spec.method.lower()] = _operation(spec, renamed)
    return {
        "openapi": "3.1.0",
        "info": {"title": settings.project_name, "version": settings.app_version},
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {
                "OAuth2PasswordBearer": {
                    "type": "oauth2",
                    "flows": {"password": {"scopes": {}, "tokenUrl": "/api/v1/login/access-token"}},
                }
            },
        },
    }


def cached_document(settings: Settings) -> dict[str, Any]:
    """The document, built once per version and environment and kept in the DAILY tier."""
    from shared.cache import get_cache

    key = f"openapi:{settings.environment}:{settings.app_version}"
    document: dict[str, Any] = get_cache().get_or_set(
        key, lambda: build_document(settings), tier="daily"
    )
    return document
