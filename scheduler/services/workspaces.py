"""Workspaces and their bearer tokens (stored as sha256 hashes, never in clear).

A token belongs to one workspace and carries a scope; it may expire, can be revoked, and
records when it was last used (refreshed at most once a minute, so that authenticating
stays one indexed read).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID, uuid4

import psycopg

from events import sqlfiles
from scheduler.domain.inputs import check_person, text_problem
from scheduler.errors import InvalidInputError, NotFoundError

Scope = Literal["read", "write"]
WORKSPACE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
TOKEN_PREFIX = "ft_"  # noqa: S105 - a prefix, not a secret
MAX_LABEL = 200
Q = sqlfiles.load("scheduler.services", "tokens.sql")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a token's workspace and scope, and the person it belongs to."""

    token_id: UUID
    workspace_id: str
    scope: Scope
    owner: str | None = None
    label: str = ""

    @property
    def can_write(self) -> bool:
        return self.scope == "write"

    @property
    def actor(self) -> str:
        """The actor of the events this caller causes: the token's owner, else its label,
        else ``token:<id>`` (a token with neither)."""
        return self.owner or self.label or f"token:{self.token_id}"


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What can be known of a token after its creation (never the token)."""

    id: UUID
    workspace_id: str
    scope: Scope
    label: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    owner: str | None = None


def _info(row: Sequence[Any]) -> TokenInfo:
    return TokenInfo(id=row[0], workspace_id=row[1], scope=row[2], label=row[3], created_at=row[4],
                     expires_at=row[5], last_used_at=row[6], revoked_at=row[7], owner=row[8])


def hash_token(token: str) -> bytes:
    # Tokens are 256 random bits, so a fast hash is enough (no dictionary to guess from).
    return hashlib.sha256(token.encode()).digest()


def ensure_workspace(conn: psycopg.Connection[Any], workspace_id: str) -> None:
    if not WORKSPACE_ID.match(workspace_id):
        raise InvalidInputError("workspace", "must be lower-case letters, digits, '-' or '_' (at most 63)")
    conn.execute("INSERT INTO workspaces (id) VALUES (%s) ON CONFLICT (id) DO NOTHING", (workspace_id,))


def issue_token(
    conn: psycopg.Connection[Any], workspace_id: str, scope: Scope, *, label: str = "",
    expires_at: datetime | None = None, owner: str | None = None,
) -> tuple[TokenInfo, str]:
    """Create a token (and the workspace if new); returns it with the token, shown only this
    once. ``owner``: the person it belongs to, the actor of the events it causes."""
    if scope not in ("read", "write"):
        raise InvalidInputError("scope", "must be read or write")
    if (problem := text_problem(label)) is not None or len(label) > MAX_LABEL:
        raise InvalidInputError("label", problem or f"must be at most {MAX_LABEL} characters")
    if owner is not None:
        owner = check_person(owner)
    if expires_at is not None and expires_at.tzinfo is None:
        raise InvalidInputError("expires_at", "must carry a time-zone offset (RFC 3339)")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with conn.transaction():
        ensure_workspace(conn, workspace_id)
        row = conn.execute(Q["insert"], {"id": uuid4(), "workspace_id": workspace_id, "scope": scope,
                                         "token_hash": hash_token(token), "label": label,
                                         "expires_at": expires_at, "owner": owner}).fetchone()
    assert row is not None
    return _info(row), token


def create_token(
    conn: psycopg.Connection[Any], workspace_id: str, scope: Scope, *, label: str = "",
    expires_at: datetime | None = None, owner: str | None = None,
) -> str:
    """Create a token (and the workspace if new); returns the token, shown only this once."""
    return issue_token(conn, workspace_id, scope, label=label, expires_at=expires_at, owner=owner)[1]


def list_tokens(conn: psycopg.Connection[Any], workspace_id: str, *, include_revoked: bool = False) -> list[TokenInfo]:
    rows = conn.execute(Q["list"], {"workspace_id": workspace_id, "include_revoked": include_revoked}).fetchall()
    return [_info(r) for r in rows]


def revoke_token(conn: psycopg.Connection[Any], workspace_id: str, token_id: UUID) -> TokenInfo:
    """Revoke a token of this workspace (revoking twice is the same as once)."""
    with conn.transaction():
        row = conn.execute(Q["revoke"], {"id": token_id, "workspace_id": workspace_id}).fetchone()
    if row is None:
        raise NotFoundError("token", str(token_id))
    return _info(row)


def authenticate(conn: psycopg.Connection[Any], token: str) -> Principal | None:
    """The token's principal when it is known, not revoked and not expired."""
    if len(token) > 200 or not token.isascii():
        return None
    row = conn.execute(Q["authenticate"], {"token_hash": hash_token(token)}).fetchone()
    if row is None:
        return None
    if row[3]:
        conn.execute(Q["touch"], {"id": row[0]})
    return Principal(token_id=row[0], workspace_id=row[1], scope=row[2], owner=row[4], label=row[5])


def token_is_valid(conn: psycopg.Connection[Any], token: str, workspace_id: str, scope: Scope) -> bool:
    principal = authenticate(conn, token)
    return principal is not None and principal.workspace_id == workspace_id and principal.scope == scope


def session_key(conn: psycopg.Connection[Any], token_id: UUID) -> tuple[Principal, bytes] | None:
    """A live token by its id, with its stored hash (the key a dashboard session is signed with).

    Revoking the token ends every session signed with it."""
    row = conn.execute(Q["session_key"], {"id": token_id}).fetchone()
    if row is None:
        return None
    return Principal(token_id=row[0], workspace_id=row[1], scope=row[2], owner=row[4], label=row[5]), bytes(row[3])
