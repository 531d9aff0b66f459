"""RFC 9457 problem details: every error the API returns, with the field it concerns.

HTTP status codes live here and nowhere else.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg import errors as pg_errors
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from events.errors import ConcurrencyError
from scheduler.errors import (
    ConflictError,
    ContentTooLargeError,
    ForbiddenError,
    IdempotencyKeyReusedError,
    InvalidInputError,
    NotFoundError,
    QuotaExceededError,
    UnsupportedMediaError,
)

MEDIA_TYPE = "application/problem+json"
# What a client is told to wait while the database is away (a restart takes seconds).
RETRY_AFTER_SECONDS = 5
log = structlog.get_logger("scheduler.api")


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    type_: str = "about:blank",
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {"type": type_, "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def invalid(errors: list[dict[str, str]]) -> JSONResponse:
    first = errors[0]
    return problem(
        422,
        "Invalid request",
        f"{first['field']}: {first['message']}",
        type_="urn:followthrough:problem:invalid-input",
        errors=errors,
    )


_FRIENDLY = {
    "timezone_aware": "must be RFC 3339 with a time-zone offset, e.g. 2026-11-25T18:00:00+01:00",
    "time_delta_parsing": "must be an ISO 8601 duration such as PT1H, PT30M or P1D",
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "uuid_parsing": "must be a UUID",
}


def _field(loc: tuple[int | str, ...], kind: str) -> str:
    if kind == "json_invalid":
        return "body"  # the location is a byte offset, not a field
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _message(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    if kind == "json_invalid":
        return f"is not valid JSON ({error.get('ctx', {}).get('error', 'syntax error')})"
    msg = str(error.get("msg", "invalid"))
    return _FRIENDLY.get(kind, msg.removeprefix("Value error, "))


def _validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": _field(tuple(e.get("loc", ())), e.get("type", "")), "message": _message(e)}
        for e in exc.errors()
    ] or [{"field": "body", "message": "invalid request"}]
    return invalid(errors)


def _invalid_input(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidInputError)
    return invalid([{"field": exc.field, "message": exc.message}])


def _unsupported_media(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, UnsupportedMediaError)
    return problem(415, "Unsupported media type", f"{exc.field}: {exc.message}",
                   type_="urn:followthrough:problem:unsupported-media", errors=[{"field": exc.field,
                                                                                "message": exc.message}])


def _too_large(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ContentTooLargeError)
    return problem(413, "Content too large", f"{exc.field}: {exc.message}",
                   errors=[{"field": exc.field, "message": exc.message}])


def _quota(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, QuotaExceededError)
    return problem(409, "Media quota exceeded", exc.message, type_="urn:followthrough:problem:media-quota-exceeded",
                   field=exc.field, errors=[{"field": exc.field or "file", "message": "is over the workspace's quota"}])


def _not_found(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, NotFoundError)
    return problem(404, "Not found", str(exc), type_="urn:followthrough:problem:not-found")


def _conflict(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ConflictError)
    extra: dict[str, Any] = {"field": exc.field} if exc.field else {}
    return problem(409, "Conflict", exc.message, type_="urn:followthrough:problem:conflict", **extra)


def _forbidden(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ForbiddenError)
    return problem(403, "Forbidden", exc.message, type_="urn:followthrough:problem:forbidden")


def _key_reused(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, IdempotencyKeyReusedError)
    return problem(
        422,
        "Idempotency-Key reused",
        str(exc),
        type_="urn:followthrough:problem:idempotency-key-reused",
        errors=[{"field": "Idempotency-Key", "message": "was used for a different request"}],
    )


def _busy(_: Request, __: Exception) -> JSONResponse:
    return problem(
        409,
        "Concurrent change",
        "the share changed while this request ran; try again",
        type_="urn:followthrough:problem:concurrent-change",
    )


_TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
           413: "Content too large", 415: "Unsupported media type"}


def _allowed(request: Request) -> str:
    """Every method the path answers, from the OpenAPI paths (Starlette names only the first
    route whose path matched, and /v1/accounts has a GET route and a POST route)."""
    table: list[tuple[re.Pattern[str], list[str]]] | None = getattr(request.app.state, "allow_table", None)
    if table is None:
        table = [(re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)) + "$"),
                  sorted(m.upper() for m in item))
                 for path, item in request.app.openapi().get("paths", {}).items()]
        request.app.state.allow_table = table
    methods = {m for pattern, allowed in table if pattern.match(request.url.path) for m in allowed}
    return ", ".join(sorted(methods or {"GET"}))


def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers) if exc.headers else None
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": _allowed(request)}
    extra: dict[str, Any] = {}
    if exc.status_code == 413:
        extra["errors"] = [{"field": "body", "message": "is too large"}]
    return problem(exc.status_code, _TITLES.get(exc.status_code, "Error"), str(exc.detail), headers=headers, **extra)


def _database(_: Request, exc: Exception) -> JSONResponse:
    """Every driver error a request can cause, as a 4xx (or 503 when the database is away).

    Logged with its SQLSTATE and constraint only: a driver message can quote the row
    (an account's config), and rows are not for logs.
    """
    assert isinstance(exc, psycopg.Error | PoolTimeout)
    diag = getattr(exc, "diag", None)
    log.warning("database_error_answered", error=type(exc).__name__, sqlstate=getattr(exc, "sqlstate", None),
                constraint=getattr(diag, "constraint_name", None))
    if isinstance(exc, pg_errors.UniqueViolation):
        return problem(409, "Conflict", "body: this would duplicate something that exists",
                       type_="urn:followthrough:problem:conflict", field="body")
    if isinstance(exc, psycopg.IntegrityError | psycopg.DataError):
        return invalid([{"field": "body", "message": "holds a value the database cannot store (out of range?)"}])
    if isinstance(exc, PoolTimeout | psycopg.OperationalError):
        return _database_away(exc)
    raise exc


def _database_away(exc: Exception) -> JSONResponse:
    log.warning("database_unavailable", error=type(exc).__name__)
    return problem(
        503,
        "Service unavailable",
        "the database is not answering (restarting or failing over); retry after Retry-After seconds "
        "(with the same Idempotency-Key when planning: a write that did land is then not repeated)",
        type_="urn:followthrough:problem:database-unavailable",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def _unstorable(_: Request, exc: Exception) -> JSONResponse:
    log.warning("input_unstorable", error=type(exc).__name__)
    return invalid([{"field": "body", "message": "holds a value that cannot be stored (unpaired surrogate or "
                                                 "out-of-range number or time)"}])


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(InvalidInputError, _invalid_input)
    app.add_exception_handler(UnsupportedMediaError, _unsupported_media)
    app.add_exception_handler(ContentTooLargeError, _too_large)
    app.add_exception_handler(QuotaExceededError, _quota)
    app.add_exception_handler(NotFoundError, _not_found)
    app.add_exception_handler(ConflictError, _conflict)
    app.add_exception_handler(ForbiddenError, _forbidden)
    app.add_exception_handler(IdempotencyKeyReusedError, _key_reused)
    app.add_exception_handler(ConcurrencyError, _busy)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(psycopg.Error, _database)
    app.add_exception_handler(PoolTimeout, _database)
    app.add_exception_handler(UnicodeError, _unstorable)
    app.add_exception_handler(OverflowError, _unstorable)
    # Anything else is caught, logged once with the request id and answered 500 by
    # middleware.Guard (a handler for Exception would be logged again by the server).
