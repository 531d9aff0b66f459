"""Webhook endpoints of a workspace: register (the signing secret is shown only then),
list with each one's state and last delivery, delete, enable again, and their deliveries;
and, for the operator rotating the sealing keys, every endpoint's secret re-sealed.

Receivers are reached over https; plain http only on loopback (a receiver on the same
machine, tests). The secret is stored for signing and never read back by these queries,
but for re-sealing, which never opens it outside ``SecretBox``.
"""

from __future__ import annotations

import base64
import ipaddress
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID, uuid4

import psycopg
from psycopg.rows import dict_row

from events import sqlfiles
from events.projections.webhooks import EVENT_TYPES
from scheduler.errors import ConflictError, InvalidInputError, NotFoundError
from scheduler.services.webhook_secrets import SecretBox, SecretUnreadableError

Q = sqlfiles.load("scheduler.services", "webhooks.sql")

SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret
MAX_URL = 2000
MAX_ENDPOINTS = 20  # per workspace: a typo loop must not fan one event out a thousand times


@dataclass(frozen=True, slots=True)
class Registered:
    """A new endpoint and its signing secret: the only time the secret leaves the service."""

    id: UUID
    secret: str


@dataclass(frozen=True, slots=True)
class Resealed:
    """What re-sealing did: how many secrets now open with the first key, and the endpoints
    (id, workspace) whose secret none of the keys opens, left as they were."""

    resealed: int
    unreadable: list[tuple[UUID, str]]


def message_id(delivery_id: UUID) -> str:
    """The ``webhook-id`` of a delivery: the same on every attempt, so receivers de-duplicate."""
    return f"msg_{delivery_id.hex}"


def new_secret() -> str:
    # 24 random bytes (192 bits), base64 as the Standard Webhooks libraries expect.
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_url(url: str) -> str:
    """An https URL, or http to a loopback address; no credentials inside it."""
    url = url.strip()
    if not url or len(url) > MAX_URL:
        raise InvalidInputError("url", f"must be an absolute https URL of at most {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError as exc:
        raise InvalidInputError("url", f"is not a valid URL ({exc})") from exc
    if parts.scheme not in ("https", "http") or not host:
        raise InvalidInputError("url", "must be an absolute https URL, e.g. https://example.com/hooks/followthrough")
    if parts.scheme == "http" and not _loopback(host):
        raise InvalidInputError("url", "must use https (plain http only to a loopback address such as 127.0.0.1)")
    if parts.username is not None or parts.password is not None:
        raise InvalidInputError("url", "must not carry credentials; verify the signature instead")
    if parts.fragment:
        raise InvalidInputError("url", "must not have a #fragment")
    return url


def validate_events(events: Sequence[str]) -> list[str]:
    if not events:
        raise InvalidInputError("events", f"must name at least one of {', '.join(EVENT_TYPES)}")
    for i, name in enumerate(events):
        if name not in EVENT_TYPES:
            raise InvalidInputError(f"events.{i}", f"{name!r} is not one of {', '.join(EVENT_TYPES)}")
    return sorted(set(events), key=EVENT_TYPES.index)


def register(conn: psycopg.Connection[Any], box: SecretBox, workspace_id: str, *, url: str, events: Sequence[str],
             description: str = "") -> Registered:
    """A new endpoint; its secret is stored sealed (``box``) and returned in clear only here."""
    clean_url, clean_events = validate_url(url), validate_events(events)
    secret = new_secret()
    with conn.transaction():
        row = conn.execute(Q["count_endpoints"], {"workspace_id": workspace_id}).fetchone()
        if row is not None and int(row[0]) >= MAX_ENDPOINTS:
            raise ConflictError(f"a workspace has at most {MAX_ENDPOINTS} webhook endpoints; delete one first")
        endpoint_id = uuid4()
        conn.execute(Q["insert_endpoint"], {"id": endpoint_id, "workspace_id": workspace_id, "url": clean_url,
                                            "events": clean_events, "description": description,
                                            "secret": box.seal(secret)})
    return Registered(id=endpoint_id, secret=secret)


def endpoints(conn: psycopg.Connection[Any], workspace_id: str, endpoint_id: UUID | None = None,
              ) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(Q["list_endpoints"], {"workspace_id": workspace_id, "id": endpoint_id}).fetchall()


def endpoint(conn: psycopg.Connection[Any], workspace_id: str, endpoint_id: UUID) -> dict[str, Any]:
    found = endpoints(conn, workspace_id, endpoint_id)
    if not found:
        raise NotFoundError("webhook endpoint", str(endpoint_id))
    return found[0]


def delete(conn: psycopg.Connection[Any], workspace_id: str, endpoint_id: UUID) -> None:
    """Stop delivering to the endpoint: it is gone from the list, its pending deliveries cancelled."""
    with conn.transaction():
        if conn.execute(Q["delete_endpoint"], {"id": endpoint_id, "workspace_id": workspace_id}).fetchone() is None:
            raise NotFoundError("webhook endpoint", str(endpoint_id))
        conn.execute(Q["cancel_pending"], {"id": endpoint_id})


def enable(conn: psycopg.Connection[Any], workspace_id: str, endpoint_id: UUID) -> None:
    """Deliver again to an endpoint that was disabled for failing; what waited is due now."""
    with conn.transaction():
        if conn.execute(Q["enable_endpoint"], {"id": endpoint_id, "workspace_id": workspace_id}).fetchone() is None:
            raise NotFoundError("webhook endpoint", str(endpoint_id))
        conn.execute(Q["due_now"], {"id": endpoint_id})


def deliveries(conn: psycopg.Connection[Any], workspace_id: str, endpoint_id: UUID, *, status: str | None = None,
               limit: int = 100) -> list[dict[str, Any]]:
    """The endpoint's recent deliveries, newest first, each with its attempts."""
    if conn.execute(Q["endpoint_exists"], {"id": endpoint_id, "workspace_id": workspace_id}).fetchone() is None:
        raise NotFoundError("webhook endpoint", str(endpoint_id))
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(Q["deliveries"], {"id": endpoint_id, "status": status, "limit": limit}).fetchall()


def reseal_secrets(conn: psycopg.Connection[Any], box: SecretBox) -> Resealed:
    """Seal every live endpoint's secret again under the first of ``box``'s keys, in one
    transaction (all or none), so that the other keys can be removed. A secret that no key
    opens is left untouched and named: its endpoint cannot be signed for until the key that
    sealed it is restored, or the endpoint is registered again."""
    resealed, unreadable = 0, []
    with conn.transaction():
        for endpoint_id, workspace_id, stored in conn.execute(Q["sealed_secrets"]).fetchall():
            try:
                sealed = box.reseal(stored)
            except SecretUnreadableError:
                unreadable.append((endpoint_id, workspace_id))
                continue
            conn.execute(Q["update_secret"], {"id": endpoint_id, "secret": sealed})
            resealed += 1
    return Resealed(resealed=resealed, unreadable=unreadable)
