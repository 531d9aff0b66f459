"""RFC 9457 problem details: every error the API returns, with the field it concerns.

HTTP status codes live here and nowhere else.
"""

from __future__ import annotations

from typing import Any

import psycopg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from events.errors import ConcurrencyError
from scheduler.errors import (
    ConflictError,
    IdempotencyKeyReusedError,
    InvalidInputError,
    NotFoundError,
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


def _field(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": _field(tuple(e.get("loc", ()))), "message": _FRIENDLY.get(e.get("type", ""), e.get("msg", "invalid"))}
        for e in exc.errors()
    ] or [{"field": "body", "message": "invalid request"}]
    return invalid(errors)


def _invalid_input(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidInputError)
    return invalid([{"field": exc.field, "message": exc.message}])


def _not_found(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, NotFoundError)
    return problem(404, "Not found", str(exc), type_="urn:followthrough:problem:not-found")


def _conflict(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ConflictError)
    extra: dict[str, Any] = {"field": exc.field} if exc.field else {}
    return problem(409, "Conflict", exc.message, type_="urn:followthrough:problem:conflict", **extra)


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


def _http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers) if exc.headers else None
    titles = {401: "Unauthorized", 403: "Forbidden", 404: "Not found", 405: "Method not allowed"}
    return problem(exc.status_code, titles.get(exc.status_code, "Error"), str(exc.detail), headers=headers)


def _database_away(_: Request, exc: Exception) -> JSONResponse:
    log.warning("database_unavailable", error=type(exc).__name__, detail=str(exc).splitlines()[0] if str(exc) else "")
    return problem(
        503,
        "Service unavailable",
        "the database is not answering (restarting or failing over); retry after Retry-After seconds "
        "(with the same Idempotency-Key when planning: a write that did land is then not repeated)",
        type_="urn:followthrough:problem:database-unavailable",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("request_failed", error=repr(exc))
    return problem(500, "Internal error", "the request failed; the error was logged")


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(InvalidInputError, _invalid_input)
    app.add_exception_handler(NotFoundError, _not_found)
    app.add_exception_handler(ConflictError, _conflict)
    app.add_exception_handler(IdempotencyKeyReusedError, _key_reused)
    app.add_exception_handler(ConcurrencyError, _busy)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(psycopg.OperationalError, _database_away)
    app.add_exception_handler(PoolTimeout, _database_away)
    app.add_exception_handler(Exception, _unexpected)
