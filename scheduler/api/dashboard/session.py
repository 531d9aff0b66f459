"""Dashboard sessions: a token is exchanged once for a signed, expiring cookie.

The cookie is ``<token id>.<expiry>.<signature>``: an HMAC-SHA256 keyed with the token's
stored hash, which never leaves the database. So a session needs no server-side state or
shared secret between API replicas, expires on its own, and ends when its token is
revoked. The cookie is HttpOnly and SameSite=Strict; forms also carry a CSRF value
derived from the session (and a cross-origin ``Origin`` is refused), so a write token's
session cannot be driven from another site.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from fastapi import Request
from psycopg_pool import ConnectionPool

from scheduler.services import workspaces
from scheduler.services.workspaces import Principal

COOKIE = "ft_session"
COOKIE_PATH = "/dashboard"
LIFETIME_SECONDS = 12 * 3600


@dataclass(frozen=True, slots=True)
class Session:
    principal: Principal
    cookie: str
    key: bytes

    @property
    def csrf(self) -> str:
        return _sign(self.key, f"csrf|{self.cookie}")

    def csrf_ok(self, offered: str | None) -> bool:
        return offered is not None and hmac.compare_digest(offered, self.csrf)


class NotSignedIn(Exception):
    """No valid session cookie on a dashboard page."""


class Forbidden(Exception):
    """A form without a valid CSRF value, from another origin, or needing a write token."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _sign(key: bytes, message: str) -> str:
    digest = hmac.new(key, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def issue(principal: Principal, key: bytes, *, now: float | None = None) -> str:
    """The cookie value for a session of ``principal`` (key: the token's stored hash)."""
    expires = int((time.time() if now is None else now) + LIFETIME_SECONDS)
    body = f"{principal.token_id}.{expires}"
    return f"{body}.{_sign(key, 'session|' + body)}"


def verify(pool: ConnectionPool[Any], cookie: str | None, *, now: float | None = None) -> Session | None:
    """The session a cookie stands for, or None when it is malformed, forged, expired or revoked."""
    if not cookie or cookie.count(".") != 2:
        return None
    token_id, expires, signature = cookie.split(".")
    try:
        tid, until = UUID(token_id), int(expires)
    except ValueError:
        return None
    if until < (time.time() if now is None else now):
        return None
    with pool.connection() as conn:
        found = workspaces.session_key(conn, tid)
    if found is None:
        return None
    principal, key = found
    if not hmac.compare_digest(signature, _sign(key, f"session|{token_id}.{expires}")):
        return None
    return Session(principal=principal, cookie=cookie, key=key)


def same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another site."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


def cookie_settings(request: Request) -> dict[str, Any]:
    return {
        "key": COOKIE,
        "path": COOKIE_PATH,
        "httponly": True,
        "samesite": "strict",
        "secure": request.url.scheme == "https",
    }
