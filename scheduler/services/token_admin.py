"""Token rotation for operators: list a workspace's tokens, revoke one (by id, or by the
token itself). A revoked token answers 401 from its next request on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

from events import sqlfiles
from scheduler.errors import InvalidInputError, NotFoundError
from scheduler.services.workspaces import TOKEN_PREFIX, hash_token

Q = sqlfiles.load("scheduler.services", "tokens.sql")


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: UUID
    workspace_id: str
    scope: str
    label: str
    created_at: datetime
    revoked_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {"id": str(self.id), "workspace_id": self.workspace_id, "scope": self.scope, "label": self.label,
                "created_at": self.created_at.isoformat(),
                "revoked_at": None if self.revoked_at is None else self.revoked_at.isoformat()}


def list_tokens(conn: psycopg.Connection[Any], workspace_id: str) -> list[TokenInfo]:
    rows = conn.execute(Q["list"], {"workspace_id": workspace_id}).fetchall()
    return [TokenInfo(*row) for row in rows]


def revoke(conn: psycopg.Connection[Any], which: str) -> TokenInfo:
    """Revoke the token with this id, or this token itself (``ft_…``). Revoking twice keeps
    the first time."""
    value: Any
    if which.startswith(TOKEN_PREFIX):
        query, value = Q["revoke_by_hash"], hash_token(which)
    else:
        try:
            value = UUID(which)
        except ValueError:
            raise InvalidInputError("token", f"give a token id (a UUID) or the token ({TOKEN_PREFIX}…)") from None
        query = Q["revoke_by_id"]
    row = conn.execute(query, {"value": value}).fetchone()
    if row is None:
        raise NotFoundError("token", which if not which.startswith(TOKEN_PREFIX) else "(the token given)")
    return TokenInfo(*row)
