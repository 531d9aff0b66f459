"""/v1/tokens: a workspace's API tokens. Write scope; a token is shown only when created."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from pydantic import Field

from scheduler.api.deps import ServicesDep, Writer
from scheduler.api.schemas import Body, Moment, Name
from scheduler.errors import InvalidInputError
from scheduler.services import workspaces

router = APIRouter(prefix="/v1", tags=["tokens"])


class TokenIn(Body):
    scope: Literal["read", "write"] = Field(examples=["read"])
    label: Name = Field(default="", examples=["dashboard"])
    expires_at: Moment | None = Field(default=None, description="RFC 3339; omitted = never expires")
    owner: str | None = Field(default=None, max_length=200, examples=["ana"],
                              description="the person the token belongs to: the actor of the events it causes "
                                          "(omitted: its label is); `mine` in the replies inbox")


def token_view(info: workspaces.TokenInfo) -> dict[str, Any]:
    def iso(moment: datetime | None) -> str | None:
        return None if moment is None else moment.isoformat()

    return {"id": str(info.id), "scope": info.scope, "label": info.label, "created_at": iso(info.created_at),
            "expires_at": iso(info.expires_at), "last_used_at": iso(info.last_used_at),
            "revoked_at": iso(info.revoked_at), "owner": info.owner}


@router.post("/tokens", status_code=201, operation_id="create_token")
def create_token(body: TokenIn, who: Writer, svc: ServicesDep) -> JSONResponse:
    """A new token of the caller's workspace; the answer's ``token`` is never shown again."""
    if body.expires_at is not None and body.expires_at <= datetime.now(UTC):
        raise InvalidInputError("expires_at", "is in the past")
    with svc.pool.connection() as conn:
        info, token = workspaces.issue_token(conn, who.workspace_id, body.scope, label=body.label,
                                             expires_at=body.expires_at, owner=body.owner)
    return JSONResponse({**token_view(info), "token": token}, status_code=201)


@router.get("/tokens", operation_id="list_tokens")
def list_tokens(who: Writer, svc: ServicesDep, include_revoked: bool = False) -> dict[str, Any]:
    with svc.pool.connection() as conn:
        found = workspaces.list_tokens(conn, who.workspace_id, include_revoked=include_revoked)
    return {"tokens": [token_view(t) for t in found]}


@router.delete("/tokens/{token_id}", status_code=204, operation_id="revoke_token")
def revoke_token(token_id: Annotated[UUID, "the token's id"], who: Writer, svc: ServicesDep) -> Response:
    with svc.pool.connection() as conn:
        workspaces.revoke_token(conn, who.workspace_id, token_id)
    return Response(status_code=204)
