"""SLA states of open tasks and unanswered replies, against a real PostgreSQL: one rule
(``sla_state`` in SQL, ``scheduler.domain.sla`` for views built from a stream), shown by
the share, the inbox, the replies list and ``/metrics`` alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from psycopg_pool import ConnectionPool

from events.catalogue import ResponseReceived
from events.projections import replies
from events.store import EventStore
from scheduler.domain import share as lifecycle
from scheduler.domain.sla import sla_state
from scheduler.services.share_stream import ShareStreams
from tests.support.api import bearer
from tests.support.fake_channel import FakeChannel
from tests.support.replies import caught_up, metric
from tests.support.shares import Clock, runtime
from workers.execution import execute_share

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)


@pytest.fixture
def auth(database_url: str) -> dict[str, str]:
    return bearer(database_url)


def test_the_sql_function_and_the_domain_agree_on_every_state(pool: ConnectionPool[Any]) -> None:
    cases = [(T0, T0 + timedelta(hours=1), T0 + timedelta(minutes=m), ratio)
             for m in (0, 30, 44, 45, 46, 59, 60, 61, 600) for ratio in (0.5, 0.75, 0.9)]
    cases += [(T0, T0, T0, 0.75), (T0, T0, T0 + timedelta(seconds=1), 0.75), (None, T0, T0, 0.75),
              (T0, None, T0, 0.75)]
    with pool.connection() as conn:
        for started, due, at, ratio in cases:
            row = conn.execute("SELECT sla_state(%s, %s, %s, %s)", (started, due, at, ratio)).fetchone()
            assert row is not None
            assert row[0] == sla_state(started, due, at, ratio), (started, due, at, ratio)
    assert sla_state(T0, T0 + timedelta(hours=1), T0 + timedelta(minutes=44)) == "on_track"
    assert sla_state(T0, T0 + timedelta(hours=1), T0 + timedelta(minutes=45)) == "at_risk"
    assert sla_state(T0, T0 + timedelta(hours=1), T0 + timedelta(minutes=61)) == "breached"


def plan(client: httpx.Client, auth: dict[str, str], account: dict[str, Any], steps: list[dict[str, Any]]) -> UUID:
    body = {"account_id": account["id"], "text": "hi", "response_plan": steps}
    return UUID(client.post("/v1/shares", headers=auth, json=body).json()["id"])


def test_tasks_and_replies_carry_their_sla_in_the_api_and_in_metrics(
    client: httpx.Client, auth: dict[str, str], pool: ConnectionPool[Any], store: EventStore, database_url: str
) -> None:
    # Given a share whose post went out 50 minutes ago, with tasks due after 1 h, 1 d and 10 min
    account = client.post("/v1/accounts", json={"name": "main", "channel": "console"}, headers=auth).json()
    first = plan(client, auth, account, [{"kind": "answer_replies", "after": "PT1H", "owner": "alice"},
                                         {"kind": "check_replies", "after": "P1D", "owner": "bob"},
                                         {"kind": "check_replies", "after": "PT10M", "owner": "carol"}])
    # And a share sent now with no answer_replies task
    second = plan(client, auth, account, [{"kind": "check_replies", "after": "P1D", "owner": "bob"}])
    now = datetime.now(UTC)
    assert execute_share(runtime(pool, store, FakeChannel(created_at=now - timedelta(minutes=50)), clock=Clock()),
                         first) == "share_sent"
    assert execute_share(runtime(pool, store, FakeChannel(), clock=Clock()), second) == "share_sent"
    # And a reply under each: one just written, one written 20 hours ago (as a look may find)
    streams = ShareStreams(store, None)
    for share_id, reply in (
        (first, ResponseReceived(reply_id="r1", author="ana", text="fresh", received_at=now)),
        (second, ResponseReceived(reply_id="r2", author="bo", text="old", received_at=now - timedelta(hours=20))),
    ):
        with pool.connection() as conn:
            streams.change(conn, share_id, lambda s, r=reply: lifecycle.receive_replies(s, [r]),  # type: ignore[misc]
                           workspace_id="acme", actor="test")
    # When the share is read: the task 50/60 through its hour is at risk, the day-long one
    # on track, the 10-minute one breached
    tasks = client.get(f"/v1/shares/{first}", headers=auth).json()["response_tasks"]
    assert [t["sla"] for t in tasks] == ["at_risk", "on_track", "breached"]
    # Then the inbox (the read model, through the SQL function) says the same
    caught_up(store, database_url, timeout=60)
    inbox = {t["id"]: t["sla"] for t in client.get("/v1/response-tasks", headers=auth).json()["tasks"]}
    assert {t["id"]: inbox[t["id"]] for t in tasks} == {t["id"]: t["sla"] for t in tasks}
    # And the fresh reply is due with the share's answer_replies task (on track); the old one,
    # under a share with no such task, a day after it was written: 20 of 24 hours used
    listed = {r["text"]: r for r in client.get("/v1/replies", headers=auth).json()["items"]}
    assert listed["fresh"]["sla"] == "on_track"
    assert datetime.fromisoformat(listed["fresh"]["sla_due_at"]) == datetime.fromisoformat(tasks[0]["due_at"])
    assert listed["old"]["sla"] == "at_risk"
    assert datetime.fromisoformat(listed["old"]["sla_due_at"]) == now + timedelta(hours=4)
    # And the replies page's query (its due times by one join, not a call per reply) says the same,
    # the at-risk reply before the one on track
    with pool.connection() as conn:
        page = replies.desk(conn, "acme", state=None, account_id=None, owner=None, share_id=None, limit=10)
    assert [(r["text"], r["sla"], r["sla_due_at"]) for r in page] == [
        (text, listed[text]["sla"], datetime.fromisoformat(listed[text]["sla_due_at"])) for text in ("old", "fresh")]
    # And /metrics counts the open work by state
    text = client.get("/metrics").text
    assert [metric(text, "task", s) for s in ("on_track", "at_risk", "breached")] == [2.0, 1.0, 1.0]
    assert [metric(text, "reply", s) for s in ("on_track", "at_risk", "breached")] == [1.0, 1.0, 0.0]
    # When the old reply is dismissed, it has no SLA any more
    dismissed = client.post(f"/v1/replies/{listed['old']['id']}/dismiss", headers=auth, json={}).json()
    assert dismissed["sla"] is None
    caught_up(store, database_url, timeout=60)
    assert [metric(client.get("/metrics").text, "reply", s) for s in ("on_track", "at_risk")] == [1.0, 0.0]
