"""The shares projection against a real PostgreSQL: exactly-once, and the figures dashboards read."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from psycopg_pool import ConnectionPool

from events.projections import reports
from events.projections.runner import ProjectionRunner
from events.projections.shares import SharesProjection
from events.store import EventStore
from followthrough.settings import Settings
from tests.support.fake_channel import Crash, FakeChannel
from tests.support.shares import WS, Clock, make_account, plan, runtime, share_service, view
from workers.execution import execute_share


def runner(store: EventStore, settings: Settings, batch_size: int = 500) -> ProjectionRunner:
    return ProjectionRunner(store, SharesProjection(), conninfo=settings.database_url or "", batch_size=batch_size)


def row(pool: ConnectionPool[Any], sql: str, *args: Any) -> Any:
    with pool.connection() as conn:
        return conn.execute(sql, args).fetchone()


def test_the_read_models_follow_a_share_from_plan_to_follow_through_exactly_once(
    settings: Settings, store: EventStore, pool: ConnectionPool[Any]
) -> None:
    # Given two sent shares, one task done on time, one task left open, and one share cancelled
    shares = share_service(pool, store, None)
    rt = runtime(pool, store, FakeChannel(), clock=Clock())
    account = make_account(pool)
    sent = [plan(shares, account) for _ in range(2)]
    later = plan(shares, account, at=datetime.now(UTC) + timedelta(hours=2))
    for share_id in sent:
        assert execute_share(rt, share_id) == "share_sent"
    shares.cancel(WS, later, reason="no", actor="test")
    first_tasks = view(shares, sent[0])["response_tasks"]
    # When the projection catches up in small batches (restarting between them)
    assert runner(store, settings, batch_size=3).catch_up_fully() > 0
    shares.complete_task(WS, UUID(first_tasks[0]["id"]), by="alice", note="")
    applied_again = runner(store, settings, batch_size=3).catch_up_fully()
    # Then each event was applied once (the checkpoint moved with the rows)
    assert applied_again == 1
    assert runner(store, settings).catch_up() == 0
    assert row(pool, "SELECT count(*), count(*) FILTER (WHERE status = 'sent') FROM rm_shares") == (3, 2)
    assert row(pool, "SELECT status, attempts, url IS NOT NULL FROM rm_shares WHERE share_id = %s", sent[0]) == (
        "sent", 1, True)
    assert row(pool, "SELECT count(*) FROM rm_response_tasks WHERE status = 'cancelled'") == (0,)  # never recorded
    # And the follow-through figures are what the API and dashboards read
    with pool.connection() as conn:
        [by_account] = reports.followthrough(conn, WS, by="account")
        inbox = reports.inbox(conn, WS, states=["open", "overdue"], owner=None, limit=100)
        assert reports.sent_without_tasks(conn, WS) == 0
        daily = conn.execute("SELECT sum(done_on_time), sum(open) FROM followthrough_daily").fetchone()
    assert (by_account["done_on_time"], by_account["open"], by_account["overdue"]) == (1, 3, 0)
    assert by_account["rate"] == 1.0
    assert len(inbox) == 3
    assert daily == (1, 3)


def test_the_rate_is_null_until_something_is_settled(
    settings: Settings, store: EventStore, pool: ConnectionPool[Any]
) -> None:
    shares = share_service(pool, store, None)
    rt = runtime(pool, store, FakeChannel(), clock=Clock())
    share_id = plan(shares, make_account(pool))
    execute_share(rt, share_id)
    runner(store, settings).catch_up_fully()
    with pool.connection() as conn:
        [only] = reports.followthrough(conn, WS, by="account")
        assert only["rate"] is None
        assert only["open"] == 2


def test_a_post_that_lands_after_its_share_was_given_up_brings_its_tasks_back(
    settings: Settings, store: EventStore, pool: ConnectionPool[Any]
) -> None:
    # Given a share whose attempt stalled, then failed permanently on a retry
    from scheduler.domain import share as lifecycle
    from workers.delivery import Delivery

    shares = share_service(pool, store, None)
    share_id = plan(shares, make_account(pool))
    channel = FakeChannel(script=["crash_after"])
    rt = runtime(pool, store, channel, clock=Clock())
    with contextlib.suppress(Crash):  # the fake crash stands for a dying worker
        execute_share(rt, share_id)
    state = lifecycle.fold(r.event for r in store.read_stream(f"share-{share_id}"))
    cancelled = lifecycle.record_failure(state, attempt=state.attempts, reason="422", retryable=False,
                                         outcome_unknown=False, now=datetime.now(UTC), policy=rt.retry_policy,
                                         random=0.5)
    with pool.connection() as conn:
        Delivery(rt, conn, share_id, None, WS).commit(cancelled, expected_version=state.version)
    runner(store, settings).catch_up_fully()
    assert row(pool, "SELECT count(*) FROM rm_response_tasks WHERE status = 'cancelled'") == (2,)
    # When the stalled attempt's post is recorded after all
    state = lifecycle.fold(r.event for r in store.read_stream(f"share-{share_id}"))
    events = lifecycle.record_sent(state, attempt=1, external_id="late", url=None, sent_at=datetime.now(UTC),
                                   reconciled=True)
    with pool.connection() as conn:
        Delivery(rt, conn, share_id, None, WS).commit(events, expected_version=state.version)
    runner(store, settings).catch_up_fully()
    # Then the share is sent and its response work is owed again
    assert row(pool, "SELECT status FROM rm_shares WHERE share_id = %s", share_id) == ("sent",)
    assert row(pool, "SELECT count(*) FROM rm_response_tasks WHERE status = 'open'") == (2,)
