"""Helpers for follow-through tests against a real database: the replies projection caught
up, the reply service, and a share planned and sent on a given channel."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any
from uuid import UUID

import psycopg
from psycopg_pool import ConnectionPool

from events.projections import replies as inbox
from events.projections.runner import ProjectionRunner
from events.projections.shares import SharesProjection
from events.store import EventStore
from scheduler.domain.plans import StepInput
from scheduler.services import accounts, workspaces
from scheduler.services.audit import wait_for_projection
from scheduler.services.replies import ReplyService
from scheduler.services.share_stream import ShareStreams
from scheduler.services.shares import PlanShare, ShareService
from tests.support.shares import WS
from workers.execution import execute_share
from workers.runtime import Runtime

ANSWER_PLAN = [StepInput(kind="answer_replies", after=timedelta(minutes=10), owner="alice"),
               StepInput(kind="check_replies", after=timedelta(hours=1), owner="bob")]


def catch_up(store: EventStore, database_url: str) -> int:
    """Bring the read models (shares, tasks, replies) up to the log."""
    return ProjectionRunner(store, SharesProjection(), conninfo=database_url).catch_up_fully()


def caught_up(store: EventStore, database_url: str, *, timeout: float = 30.0) -> None:
    """Bring the read models up to the whole log: a transaction running elsewhere on the
    server can hold the log's horizon back for a moment, so apply until nothing is left."""
    runner = ProjectionRunner(store, SharesProjection(), conninfo=database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        deadline = time.monotonic() + timeout
        while True:
            runner.catch_up()
            if wait_for_projection(conn, timeout=0) == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError("the shares projection did not catch up")
            time.sleep(0.1)


def reply_service(pool: ConnectionPool[Any], store: EventStore, shares: ShareService) -> ReplyService:
    return ReplyService(pool=pool, streams=ShareStreams(store, None), clock=shares.clock)


def account_on(pool: ConnectionPool[Any], channel: str, config: dict[str, Any], name: str = "team") -> accounts.Account:
    with pool.connection() as conn:
        workspaces.ensure_workspace(conn, WS)
        return accounts.create(conn, workspace_id=WS, name=name, channel=channel, config=config,
                               default_response_plan=None, late_policy="send", max_lateness_seconds=None)


def sent_share(rt: Runtime, shares: ShareService, account: accounts.Account, text: str = "We launched!",
               plan: list[StepInput] | None = None) -> UUID:
    planned = shares.plan(WS, PlanShare(account_id=account.id, text=text, scheduled_at=None,
                                        response_plan=plan or ANSWER_PLAN), actor="test")
    share_id = planned.share_id
    assert execute_share(rt, share_id) == "share_sent"
    return share_id


def inbox_page(pool: ConnectionPool[Any], *, state: str | None = None, share_id: UUID | None = None,
               limit: int = 100) -> list[dict[str, Any]]:
    with pool.connection() as conn:
        return inbox.inbox(conn, WS, state=state, account_id=None, owner=None, share_id=share_id, cursor=None,
                           limit=limit)


def schedule_due(pool: ConnectionPool[Any], kind: str, share_id: UUID) -> Any:
    with pool.connection() as conn:
        row = conn.execute("SELECT due_at FROM schedule WHERE kind = %s AND share_id = %s", (kind, share_id)).fetchone()
    return None if row is None else row[0]


def metric(text: str, kind: str, state: str) -> float:
    """A ``followthrough_sla`` sample of ``/metrics``' text."""
    line = next(x for x in text.splitlines() if x.startswith(f'followthrough_sla{{kind="{kind}",state="{state}"}}'))
    return float(line.split()[-1])
