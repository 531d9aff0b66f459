"""PostgreSQL restarting under the API, the projector and the dispatcher, on a private
server this test stops and starts (never the shared one)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from followthrough import bootstrap
from followthrough.schema import migrate
from followthrough.settings import Settings
from scheduler.dispatch.dispatcher import Dispatcher
from scheduler.services import workspaces
from tests.support.private_postgres import PrivatePostgres, private_postgres
from tests.support.servers import serve

PLAN = [{"kind": "check_replies", "after": "PT1H", "owner": "alice"}]


@pytest.fixture
def server() -> Iterator[PrivatePostgres]:
    with private_postgres() as pg:
        with psycopg.connect(pg.admin_url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE followthrough")
        migrate(pg.url("followthrough"))
        yield pg


@pytest.fixture
def private_settings(server: PrivatePostgres, broker_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=server.url("followthrough"), broker_url=broker_url, home=tmp_path,
                    queue_prefix=f"ft_dbrestart_{uuid.uuid4().hex[:8]}")


def share_body(account_id: str, minutes: int = 60) -> dict[str, Any]:
    at = (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()
    return {"account_id": account_id, "text": "hello", "scheduled_at": at, "response_plan": PLAN}


def projected(url: str, share_id: str, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                if conn.execute("SELECT 1 FROM rm_shares WHERE share_id = %s", (share_id,)).fetchone():
                    return True
        except psycopg.OperationalError:
            pass
        time.sleep(0.2)
    return False


def test_while_postgresql_restarts_the_api_answers_503_with_retry_after_and_every_role_resumes(
    server: PrivatePostgres, private_settings: Settings
) -> None:
    # Given the API, the projector and the dispatcher running on a private PostgreSQL
    url = server.url("followthrough")
    with psycopg.connect(url, autocommit=True) as conn:
        headers = {"Authorization": f"Bearer {workspaces.create_token(conn, 'acme', 'write')}"}
    stop = threading.Event()
    projector = threading.Thread(target=bootstrap.run_projector, args=(private_settings, stop), daemon=True)
    projector.start()
    with bootstrap.dispatcher(private_settings) as dispatcher, \
            serve(bootstrap.build_api(private_settings)) as base, httpx.Client(base_url=base, timeout=30) as api:
        leader = threading.Thread(target=Dispatcher.run, args=(dispatcher, stop), daemon=True)
        leader.start()
        account = api.post("/v1/accounts", json={"name": "main", "channel": "console"}, headers=headers).json()
        before = api.post("/v1/shares", json=share_body(account["id"]), headers=headers)
        assert before.status_code == 201, before.text
        assert projected(url, before.json()["id"])
        assert dispatcher.leading.wait(30)

        # When PostgreSQL goes away, and clients keep calling
        server.stop()
        answers = []
        for n in range(6):
            answers.append(api.get("/v1/shares", headers=headers))
            answers.append(api.post("/v1/shares", json=share_body(account["id"]), headers={
                **headers, "Idempotency-Key": f"during-outage-{n}"}))
        ready = api.get("/readyz")

        # Then every answer is a 503 problem with Retry-After (no hang: each came back), readiness says so
        assert {(a.status_code, a.headers.get("content-type"), a.headers.get("retry-after")) for a in answers} == {
            (503, "application/problem+json", "5")}
        assert answers[1].json()["type"] == "urn:followthrough:problem:database-unavailable"
        assert ready.status_code == 503

        # When it comes back
        server.start()
        after = None
        for _ in range(60):
            after = api.post("/v1/shares", json=share_body(account["id"]), headers=headers)
            if after.status_code != 503:
                break
            time.sleep(0.5)

        # Then the API's pool reconnected, the projector resumed, and the dispatcher leads again
        assert after is not None
        assert after.status_code == 201, after.text
        assert projected(url, after.json()["id"])
        assert api.get("/readyz").status_code == 200
        deadline = time.monotonic() + 60
        while not dispatcher.leading.is_set() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert dispatcher.leading.is_set()
        assert projector.is_alive()
        assert leader.is_alive()
        stop.set()
        leader.join(timeout=15)
    projector.join(timeout=15)
