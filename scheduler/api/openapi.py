"""The OpenAPI document, completed: bearer security, problem+json errors on every operation."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from scheduler.api import responses

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
    "400": "the body cannot be read (not UTF-8)",
    "401": "no valid bearer token (missing, unknown, expired or revoked)",
    "403": "the token has the read scope, or its owner may not do this (approving or rejecting: not an "
           "approver, or four eyes); the detail says why",
    "404": "not found in the token's workspace",
    "409": "the thing is in a state that does not allow this (the detail says why)",
    "413": "the body is larger than the limit",
    "415": "not a type taken here (a media upload: not JPEG, PNG, WebP, GIF or MP4 by its content)",
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
        # an id in the path, or a query naming one (GET /v1/calendar?account_id=: another
        # workspace's account is not found)
        if "{" in path or any(p.get("in") == "query" and p.get("name", "").endswith("_id")
                              for p in operation.get("parameters", ())):
            statuses.append("404")
        if (method == "post" and path != "/v1/tokens") or (method, path) == ("delete", "/v1/media/{media_id}"):
            statuses.append("409")
        if (method, path) == ("post", "/v1/media"):
            statuses.append("415")
    if "requestBody" in operation or method in ("post", "put", "patch"):
        statuses += ["400", "413"]
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
    schemas.update(_answer_schemas())
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            answers = operation.setdefault("responses", {})
            _success(answers, method, path)
            for status in _errors_of(path, method, operation):
                answers[status] = _problem(status)
            if path.startswith("/v1"):
                operation["security"] = [{"bearer": []}]
    app.openapi_schema = schema
    return schema


def _answer_schemas() -> dict[str, Any]:
    models = {m for _, m, _ in responses.SUCCESS.values() if m is not None} | {responses.EventOut}
    _, found = models_json_schema([(m, "serialization") for m in sorted(models, key=lambda m: m.__name__)],
                                  ref_template="#/components/schemas/{model}")
    defs: dict[str, Any] = dict(found.get("$defs", {}))
    defs[responses.EVENT_LIST] = {"type": "array", "items": {"$ref": "#/components/schemas/EventOut"}}
    return defs


def _success(answers: dict[str, Any], method: str, path: str) -> None:
    """The operation's success answer with its model (replacing FastAPI's bare ``object``)."""
    known = responses.SUCCESS.get((method, path))
    if known is None:
        return
    status, model, description = known
    for other in ("200", "201", "204"):
        if other != status:
            answers.pop(other, None)
    if status == "204":
        answers[status] = {"description": description}
        return
    name = model.__name__ if model is not None else responses.EVENT_LIST
    answers[status] = {"description": description,
                       "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}
    if (method, path) == ("put", "/v1/calendars/{name}"):
        answers["201"] = {**answers[status], "description": "the calendar, new"}
    if path == "/readyz":
        answers["503"] = {"description": "the database or the broker does not answer",
                          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Readiness"}}}}
