"""What every request goes through before any route: an id, a body bound, rate limits,
security headers, one access-log line, metrics, and the last word on unexpected errors.

Plain ASGI (no BaseHTTPMiddleware): the body is counted as it arrives, so a client cannot
make the API keep more than ``max_body_bytes`` of it, with or without a token. The media upload
(``POST /v1/media``) has its own, larger bound, ``max_media_body_bytes``, counted the same way:
its route spools the file as it arrives and never holds the body whole.

A body refused as too large is still read to its end and dropped, up to ``drain_body_bytes``
and for ``DRAIN_SECONDS`` at most, before the 413 goes out: a client that sends its whole
body before reading anything (``urllib``, most scripts) would otherwise write into a closed
connection and see "connection reset", never the 413. Past either bound the answer says
``Connection: close`` and the client may see the reset after all.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from uuid import uuid4

import orjson
import structlog
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException

from scheduler.api.config import ApiConfig
from scheduler.api.http_metrics import HttpMetrics
from scheduler.api.ratelimits import RateLimits

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

log = structlog.get_logger("scheduler.api")

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
PROBLEM = "application/problem+json"
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self' data:; worker-src 'self' blob:; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'"
)
API_CSP = "default-src 'none'; frame-ancestors 'none'"
DOCS_PATHS = ("/docs", "/redoc", "/static/docs")
MEDIA_UPLOAD_PATH = "/v1/media"
# How long a refused body may take to be read and dropped (a slow sender is cut off after it).
DRAIN_SECONDS = 10.0


class BodyTooLargeError(HTTPException):
    """Raised from ``receive`` once the body passes the bound (FastAPI lets HTTPExceptions through)."""

    def __init__(self, limit: int, *, drained: bool) -> None:
        super().__init__(413, f"body: the request body is larger than {limit} bytes",
                         headers=None if drained else {"Connection": "close"})


async def drain(receive: Receive, cap: int, seconds: float = DRAIN_SECONDS) -> bool:
    """Read and drop the rest of a request's body, at most ``cap`` bytes within ``seconds``;
    True when its end was reached (the connection can then serve the next request)."""
    seen = 0
    try:
        async with asyncio.timeout(seconds):
            while seen <= cap:
                message = await receive()
                if message["type"] != "http.request":
                    return False
                seen += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return True
    except TimeoutError:
        return False
    return False


def route_of(scope: Scope) -> str:
    route = scope.get("route")
    return str(getattr(route, "path", None) or "unmatched")


def _security_headers(path: str, headers: MutableHeaders) -> None:
    """Defaults for every answer; a route that sets its own (the dashboard's pages: their CSP,
    and a referrer policy under which a browser still sends our Origin on our forms) keeps them."""
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "no-referrer")
    docs = path.startswith(DOCS_PATHS)
    headers.setdefault("Content-Security-Policy", DOCS_CSP if docs else API_CSP)
    # The media library's bytes never change under an id: their route's own caching stands.
    keeps_own = path.startswith("/v1/media/") and "cache-control" in headers
    if (path.startswith("/v1") or path == "/metrics") and not keeps_own:
        headers["Cache-Control"] = "no-store"


async def send_problem(send: Send, status: int, title: str, detail: str, *, request_id: str,
                       headers: dict[str, str] | None = None, **extra: Any) -> None:
    body = orjson.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail,
                         "request_id": request_id, **extra})
    raw = [(b"content-type", PROBLEM.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """The outermost layer of our own: see the module's docstring."""

    def __init__(self, app: App, config: ApiConfig, metrics: HttpMetrics, limits: RateLimits) -> None:
        self.app = app
        self.config = config
        self.metrics = metrics
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        given = headers.get("x-request-id", "")
        request_id = given if REQUEST_ID.match(given) else uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        outcome = {"status": 500, "sent": False}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                outcome["status"], outcome["sent"] = message["status"], True
                out = MutableHeaders(scope=message)
                out["X-Request-ID"] = request_id
                _security_headers(scope["path"], out)
            await send(message)

        try:
            refused = await self._refuse_early(scope, headers, receive)
            if refused is not None:
                status, title, detail, extra_headers, extra = refused
                await send_problem(send_with_headers, status, title, detail, request_id=request_id,
                                   headers=extra_headers, **extra)
            else:
                await self.app(scope, self._bounded(receive, self._limit(scope)), send_with_headers)
        except Exception as exc:
            log.exception("request_failed", request_id=request_id, method=scope["method"], route=route_of(scope),
                          error=type(exc).__name__)
            if not outcome["sent"]:
                await send_problem(send_with_headers, 500, "Internal error",
                                   f"the request failed; quote request id {request_id}", request_id=request_id)
        finally:
            self._record(scope, int(outcome["status"]), time.perf_counter() - started, request_id)

    def _limit(self, scope: Scope) -> int:
        """The body bound of this request: the media upload route has its own, larger one (its
        route streams the file to a spooled temporary file, never holding it whole)."""
        if scope["method"] == "POST" and scope["path"] == MEDIA_UPLOAD_PATH:
            return self.config.max_media_body_bytes
        return self.config.max_body_bytes

    async def _refuse_early(self, scope: Scope, headers: Headers, receive: Receive) -> tuple[Any, ...] | None:
        length = headers.get("content-length")
        limit = self._limit(scope)
        if length is not None and (not length.isdigit() or int(length) > limit):
            cap = self.config.drain_body_bytes
            # A client that asked "Expect: 100-continue" has sent nothing yet: reading would
            # invite the body in (the server answers 100 first), so it is refused unread.
            waiting = "100-continue" in headers.get("expect", "").lower()
            drained = not waiting and length.isdigit() and int(length) <= cap and await drain(receive, cap)
            return (413, "Content too large", f"body: the request body is larger than {limit} bytes",
                    None if drained else {"Connection": "close"},
                    {"errors": [{"field": "body", "message": f"must be at most {limit} bytes"}]})
        client = scope.get("client")
        address = client[0] if client else "unknown"
        auth = headers.get("authorization", "")
        token_key = hashlib.sha256(auth.encode()).hexdigest()[:32] if auth else None
        retry_after = await self.limits.hit(address, token_key)
        if retry_after is not None:
            return (429, "Too many requests", f"rate limit reached; retry in {retry_after} s",
                    {"Retry-After": str(retry_after)}, {})
        return None

    def _bounded(self, receive: Receive, limit: int) -> Receive:
        seen = 0

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    ended = not message.get("more_body", False)
                    raise BodyTooLargeError(limit, drained=ended or await drain(receive, self.config.drain_body_bytes))
            return message

        return bounded

    def _record(self, scope: Scope, status: int, seconds: float, request_id: str) -> None:
        route = route_of(scope)
        state = scope.get("state") or {}
        self.metrics.observe(scope["method"], route, status, seconds, state.get("workspace_id"))
        log.info("http_request", method=scope["method"], route=route, status=status,
                 duration_ms=round(seconds * 1000, 2), workspace_id=state.get("workspace_id"),
                 request_id=request_id)
