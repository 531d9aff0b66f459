"""The OpenAPI document, completed: bearer security, problem+json errors on every operation."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

PROBLEM_MEDIA = "application/problem+json"
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details; `errors[].field` names the field at fault",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "example": "urn:followthrough:problem:invalid-input"},
        "title": {"type": "string", "example": "Invalid request"},
        "status": {"type": "integer", "example": 422},
        "detail": {"type": "string", "example": "text: must not contain NUL characters (\\u0000)"},
        "field": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {"type": "object", "required": ["field", "message"],
                      "properties": {"field": {"type": "string"}, "message": {"type": "string"}}},
        },
    },
}
_WHY = {
    "401": "no valid bearer token (missing, unknown, expired or revoked)",
    "403": "the token has the read scope",
    "404": "not found in the token's workspace",
    "409": "the thing is in a state that does not allow this (the detail says why)",
    "413": "the body is larger than the limit",
    "422": "invalid input; errors[].field names the field",
    "429": "rate limit reached; see Retry-After",
    "503": "the database is busy or away; try again",
}


def _problem(status: str) -> dict[str, Any]:
    return {"description": _WHY[status],
            "content": {PROBLEM_MEDIA: {"schema": {"$ref": "#/components/schemas/Problem"}}}}


def _errors_of(path: str, method: str, operation: dict[str, Any]) -> list[str]:
    statuses = ["422", "429"]
    if path.startswith("/v1"):
        statuses += ["401", "503"]
        if method != "get" or path.startswith("/v1/tokens"):
            statuses.append("403")
        if "{" in path:
            statuses.append("404")
        if method == "post" and path != "/v1/tokens":
            statuses.append("409")
    if "requestBody" in operation or method in ("post", "put", "patch"):
        statuses.append("413")
    return sorted(statuses)


def complete(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes,
                         description="Every /v1 operation takes `Authorization: Bearer <token>`. Errors are "
                                     "RFC 9457 problem+json documents naming the field at fault.")
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Problem"] = PROBLEM_SCHEMA
    components["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer",
                   "description": "a workspace token (`followthrough token create` or POST /v1/tokens)"},
    }
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            responses = operation.setdefault("responses", {})
            for status in _errors_of(path, method, operation):
                responses[status] = _problem(status)
            if path.startswith("/v1"):
                operation["security"] = [{"bearer": []}]
    app.openapi_schema = schema
    return schema
