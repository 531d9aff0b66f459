"""Request dependencies: the services of this process, and who is calling."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from psycopg_pool import ConnectionPool

from events.store import EventStore
from scheduler.api.config import ApiConfig
from scheduler.services import workspaces
from scheduler.services.media import MediaLibrary
from scheduler.services.replies import ReplyService
from scheduler.services.shares import ShareService
from scheduler.services.webhook_secrets import SecretBox
from scheduler.services.workspaces import Principal


@dataclass
class Services:
    """What the API's routes use, built once by the composition root (never per request)."""

    pool: ConnectionPool[Any]
    store: EventStore
    shares: ShareService
    replies: ReplyService
    check_broker: Callable[[], None]
    start: Callable[[], None]
    stop: Callable[[], None]
    webhook_secrets: SecretBox | None = None
    config: ApiConfig = field(default_factory=ApiConfig)
    media: MediaLibrary | None = None


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


ServicesDep = Annotated[Services, Depends(services)]

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="followthrough"'}


def principal(request: Request, svc: ServicesDep) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(
            401, "send Authorization: Bearer <token> (create one with `followthrough token create`)", headers=CHALLENGE
        )
    with svc.pool.connection() as conn:
        found = workspaces.authenticate(conn, token.strip())
    if found is None:
        raise HTTPException(401, "unknown, expired or revoked token", headers=CHALLENGE)
    request.state.workspace_id = found.workspace_id  # for the access log
    return found


def writer(who: Annotated[Principal, Depends(principal)]) -> Principal:
    if not who.can_write:
        raise HTTPException(403, "this token has the read scope; writing needs a write token")
    return who


Reader = Annotated[Principal, Depends(principal)]
Writer = Annotated[Principal, Depends(writer)]
