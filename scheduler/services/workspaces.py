"""Workspaces and their bearer tokens (stored as sha256 hashes, never in clear)."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID, uuid4

import psycopg

from scheduler.errors import InvalidInputError

Scope = Literal["read", "write"]
WORKSPACE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
TOKEN_PREFIX = "ft_"  # noqa: S105 - a prefix, not a secret


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a token's workspace and scope."""

    token_id: UUID
    workspace_id: str
    scope: Scope

    @property
    def can_write(self) -> bool:
        return self.scope == "write"


def hash_token(token: str) -> bytes:
    # Tokens are 256 random bits, so a fast hash is enough (no dictionary to guess from).
    return hashlib.sha256(token.encode()).digest()


def ensure_workspace(conn: psycopg.Connection[Any], workspace_id: str) -> None:
    if not WORKSPACE_ID.match(workspace_id):
        raise InvalidInputError("workspace", "must be lower-case letters, digits, '-' or '_' (at most 63)")
    conn.execute("INSERT INTO workspaces (id) VALUES (%s) ON CONFLICT (id) DO NOTHING", (workspace_id,))


def create_token(conn: psycopg.Connection[Any], workspace_id: str, scope: Scope, *, label: str = "") -> str:
    """Create a token (and the workspace if new); returns the token, shown only this once."""
    if scope not in ("read", "write"):
        raise InvalidInputError("scope", "must be read or write")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with conn.transaction():
        ensure_workspace(conn, workspace_id)
        conn.execute(
            "INSERT INTO api_tokens (id, workspace_id, scope, token_hash, label) VALUES (%s, %s, %s, %s, %s)",
            (uuid4(), workspace_id, scope, hash_token(token), label),
        )
    return token


def authenticate(conn: psycopg.Connection[Any], token: str) -> Principal | None:
    row = conn.execute(
        "SELECT id, workspace_id, scope FROM api_tokens WHERE token_hash = %s AND revoked_at IS NULL",
        (hash_token(token),),
    ).fetchone()
    if row is None:
        return None
    return Principal(token_id=row[0], workspace_id=row[1], scope=row[2])


def token_is_valid(conn: psycopg.Connection[Any], token: str, workspace_id: str, scope: Scope) -> bool:
    principal = authenticate(conn, token)
    return principal is not None and principal.workspace_id == workspace_id and principal.scope == scope


def session_key(conn: psycopg.Connection[Any], token_id: UUID) -> tuple[Principal, bytes] | None:
    """A live token by its id, with its stored hash (the key a dashboard session is signed with).

    Revoking the token ends every session signed with it."""
    row = conn.execute(
        "SELECT id, workspace_id, scope, token_hash FROM api_tokens WHERE id = %s AND revoked_at IS NULL",
        (token_id,),
    ).fetchone()
    if row is None:
        return None
    return Principal(token_id=row[0], workspace_id=row[1], scope=row[2]), bytes(row[3])
