"""The API served for tests: its production server options, tokens, counts of what is stored."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psycopg
from psycopg import sql

from followthrough import bootstrap
from followthrough.settings import Settings
from scheduler.services import workspaces
from tests.support.database import connect
from tests.support.servers import serve

PLAN = [{"kind": "check_replies", "after": "PT1H", "owner": "alice"}]
STORED_TABLES = ("events", "accounts", "idempotency_keys", "share_tasks", "schedule", "slot_claims", "post_shares",
                 "api_tokens", "workspaces", "saved_replies")


@contextmanager
def api_client(settings: Settings) -> Iterator[httpx.Client]:
    """The API built as the `api` role builds it, served by uvicorn on loopback, over real HTTP."""
    app = bootstrap.build_api(settings)
    with serve(app, **bootstrap.API_SERVER_OPTIONS) as base_url, httpx.Client(base_url=base_url, timeout=10) as c:
        yield c


def bearer(database_url: str, workspace: str = "acme", scope: workspaces.Scope = "write",
           owner: str | None = None) -> dict[str, str]:
    """A token's Authorization header (``owner``: the person it belongs to, the actor of what it does)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        return {"Authorization": f"Bearer {workspaces.create_token(conn, workspace, scope, owner=owner)}"}


def stored(database_url: str) -> dict[str, int]:
    """How many rows each table the API writes holds."""
    with connect(database_url) as conn:
        counts = {}
        for table in STORED_TABLES:
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
            assert row is not None
            counts[table] = int(row[0])
    return counts


def assert_problem(response: Any, status: int, field: str | None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body = response.json()
    assert body["status"] == status
    if field is not None:
        fields = [e["field"] for e in body.get("errors", [])] + [body.get("field")]
        assert field in fields, body
