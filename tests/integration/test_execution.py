"""Executing shares against a real PostgreSQL, with an in-memory channel: once, in
order (tasks before the network call), with retries and reconciliation in the database."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from psycopg_pool import ConnectionPool

from events.store import EventStore
from followthrough.settings import Settings
from scheduler.services.shares import ShareService
from tests.support.fake_channel import Crash, FakeChannel
from tests.support.shares import WS, Clock, expire_lease, make_account, plan, runtime, share_service
from tests.support.shares import view as share_view_of
from workers import actors as actor_module
from workers import runtime as runtime_module
from workers.execution import execute_share, execute_shares
from workers.middleware import LogContext, Resources
from workers.runtime import Runtime


@pytest.fixture
def channel() -> FakeChannel:
    return FakeChannel()


@pytest.fixture
def rt(settings: Settings, store: EventStore, pool: ConnectionPool[Any], channel: FakeChannel,
       clock: Clock) -> Runtime:
    return runtime(pool, store, channel, clock=clock, lease_seconds=settings.lease_seconds, max_attempts=3)


@pytest.fixture
def shares(store: EventStore, pool: ConnectionPool[Any]) -> ShareService:
    return share_service(pool, store)


def types(store: EventStore, share_id: UUID) -> list[str]:
    return [r.type_name for r in store.read_stream(f"share-{share_id}")]


def schedule_row(pool: ConnectionPool[Any], share_id: UUID) -> tuple[Any, ...] | None:
    with pool.connection() as conn:
        return conn.execute("SELECT due_at, lease_until FROM schedule WHERE kind = 'publish' AND share_id = %s",
                            (share_id,)).fetchone()


def test_a_due_share_is_published_once_after_its_tasks_are_recorded(
    rt: Runtime, shares: ShareService, pool: ConnectionPool[Any], channel: FakeChannel, store: EventStore
) -> None:
    share_id = plan(shares, make_account(pool))
    assert execute_share(rt, share_id) == "share_sent"
    assert types(store, share_id) == ["SharePlanned", "ShareAttemptStarted", "ResponseTasksRecorded", "ShareSent"]
    assert channel.count_for(share_id) == 1
    assert schedule_row(pool, share_id) is None
    # A late duplicate of the message changes nothing
    assert execute_share(rt, share_id) == "share_skipped"
    assert len(channel.publish_calls) == 1
    view = share_view_of(shares, share_id)
    assert view["status"] == "sent"
    assert [t["status"] for t in view["response_tasks"]] == ["open", "open"]


def test_concurrent_duplicate_deliveries_publish_once(
    rt: Runtime, shares: ShareService, pool: ConnectionPool[Any], channel: FakeChannel, store: EventStore
) -> None:
    share_id = plan(shares, make_account(pool))
    barrier = threading.Barrier(6)
    results: list[str] = []

    def deliver() -> None:
        barrier.wait()
        results.append(execute_share(rt, share_id))

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("share_sent") == 1
    assert len(channel.publish_calls) == 1
    assert types(store, share_id).count("ShareAttemptStarted") == 1


def test_a_transient_failure_is_retried_from_the_database_with_backoff(
    rt: Runtime, shares: ShareService, pool: ConnectionPool[Any], channel: FakeChannel, clock: Clock
) -> None:
    share_id = plan(shares, make_account(pool))
    channel.script = ["transient"]
    before = datetime.now(UTC)
    assert execute_share(rt, share_id) == "share_retry_scheduled"
    view = share_view_of(shares, share_id)
    assert (view["status"], view["attempts"], view["last_error"]) == ("failed", 1, "503 Service Unavailable")
    next_at = datetime.fromisoformat(view["next_attempt_at"])
    # base 30 s, jitter centred (random=0.5): exactly 30 s after the failure
    assert before + timedelta(seconds=29) < next_at < datetime.now(UTC) + timedelta(seconds=31)
    row = schedule_row(pool, share_id)
    assert row is not None
    assert row[0] == next_at
    assert row[1] is None
    # Delivered early (a stray message), it waits for its time
    assert execute_share(rt, share_id) == "share_skipped"
    clock.offset = timedelta(seconds=31)
    assert execute_share(rt, share_id) == "share_sent"
    assert share_view_of(shares, share_id)["attempts"] == 2


def test_retry_after_from_the_channel_is_honoured(
    rt: Runtime, shares: ShareService, pool: ConnectionPool[Any], channel: FakeChannel
) -> None:
    share_id = plan(shares, make_account(pool))
    channel.script = ["429:600"]
    assert execute_share(rt, share_id) == "share_retry_scheduled"
    next_at = datetime.fromisoformat(share_view_of(shares, share_id)["next_attempt_at"])
    assert next_at > datetime.now(UTC) + timedelta(seconds=590)


def test_a_permanent_failure_is_not_retried_and_cancels_the_tasks(
    rt: Runtime, shares: ShareService, pool: ConnectionPool[Any], channel: FakeChannel
) -> None:
    share_id = plan(shares, make_account(pool))
    channel.script = ["permanent"]
    assert execute_share(rt, share_id) == "share_failed"
    view = share_view_of(shares, share_id)
    assert view["status"] == "failed"
    assert view["next_attempt_at"] is None
    assert view["last_error"] == "422 text rejected by the network"
    assert [t["status"] for t in view["response_tasks"]] == ["cancelled", "cancelled"]
    assert schedule_row(pool, share_id) is None


def test_after_the_last_attempt_the_share_is_abandoned(
    rt: Runtime, shares: ShareService, pool: ConnectionPool[Any], channel: FakeChannel, clock: Clock,
    store: EventStore,
) -> None:
    share_id = plan(shares, make_account(pool))
    channel.script = ["transient", "transient", "transient"]
    outcomes = []
    for hours in range(3):
        clock.offset = timedelta(hours=hours)
        outcomes.append(execute_share(rt, share_id))
    assert outcomes == ["share_retry_scheduled", "share_retry_scheduled", "share_abandoned"]
    view = share_view_of(shares, share_id)
    assert view["status"] == "abandoned"
    assert [t["status"] for t in view["response_tasks"]] == ["cancelled", "cancelled"]
    assert "ShareAbandoned" in types(store, share_id)
    assert schedule_row(pool, share_id) is None


def test_an_unknown_outcome_is_reconciled_before_any_resend(
    rt: Runtime, shares: ShareService, pool: ConnectionPool[Any], channel: FakeChannel, clock: Clock,
    store: EventStore,
) -> None:
    # Given the network took the post but the answer never came back
    share_id = plan(shares, make_account(pool))
    channel.script = ["unknown"]
    assert execute_share(rt, share_id) == "share_retry_scheduled"
    # When the retry runs
    clock.offset = timedelta(minutes=5)
    assert execute_share(rt, share_id) == "share_sent"
    # Then it found the post instead of publishing again
    assert channel.find_calls == [share_id]
    assert len(channel.publish_calls) == 1
    assert channel.count_for(share_id) == 1
    sent = store.read_stream(f"share-{share_id}")[-1]
    assert sent.type_name == "ShareSent"
    assert sent.event.model_dump()["reconciled"] is True


@pytest.mark.parametrize("crash", ["crash_before", "crash_after"])
def test_a_worker_that_dies_mid_attempt_is_followed_by_one_that_looks_first(
    rt: Runtime, shares: ShareService, pool: ConnectionPool[Any], channel: FakeChannel, clock: Clock, crash: str
) -> None:
    share_id = plan(shares, make_account(pool))
    channel.script = [crash]
    with pytest.raises(Crash):
        execute_share(rt, share_id)
    assert share_view_of(shares, share_id)["status"] == "sending"
    # A redelivery within the lease leaves the attempt in flight alone
    assert execute_share(rt, share_id) == "share_skipped"
    # After the lease, the next delivery reconciles, and publishes only if needed
    clock.offset = timedelta(seconds=rt.config.lease_seconds + 1)
    expire_lease(pool, share_id)
    assert execute_share(rt, share_id) == "share_sent"
    assert channel.find_calls == [share_id]
    assert channel.count_for(share_id) == 1


def test_a_share_cancelled_an_instant_before_its_delivery_is_not_published(
    rt: Runtime, shares: ShareService, pool: ConnectionPool[Any], channel: FakeChannel
) -> None:
    share_id = plan(shares, make_account(pool))
    shares.cancel(WS, share_id, reason="changed our mind", actor="test")
    assert execute_share(rt, share_id) == "share_skipped"
    assert channel.publish_calls == []


def test_a_share_rescheduled_later_is_not_published_by_an_old_message(
    rt: Runtime, shares: ShareService, pool: ConnectionPool[Any], channel: FakeChannel
) -> None:
    share_id = plan(shares, make_account(pool))
    shares.reschedule(WS, share_id, datetime.now(UTC) + timedelta(hours=1), actor="test")
    assert execute_share(rt, share_id) == "share_skipped"
    assert channel.publish_calls == []


def test_a_delivery_slightly_early_waits_for_the_due_time(
    rt: Runtime, shares: ShareService, pool: ConnectionPool[Any], channel: FakeChannel
) -> None:
    due = datetime.now(UTC) + timedelta(milliseconds=600)
    share_id = plan(shares, make_account(pool), at=due)
    assert execute_share(rt, share_id) == "share_sent"
    view = share_view_of(shares, share_id)
    assert 0 <= view["lateness_ms"] < 1000
    assert datetime.fromisoformat(view["sent_at"]) >= due


def test_a_share_found_far_past_due_is_held_under_a_hold_policy(
    rt: Runtime, shares: ShareService, pool: ConnectionPool[Any], channel: FakeChannel
) -> None:
    account = make_account(pool, name="careful", late_policy="hold", max_lateness_seconds=60)
    share_id = plan(shares, account, at=datetime.now(UTC) - timedelta(minutes=4))
    assert execute_share(rt, share_id) == "share_held"
    assert share_view_of(shares, share_id)["status"] == "held"
    assert channel.publish_calls == []
    # A person decides to send it now
    shares.reschedule(WS, share_id, datetime.now(UTC), actor="test")
    assert execute_share(rt, share_id) == "share_sent"


def test_the_actor_runs_through_a_dramatiq_worker(
    rt: Runtime, shares: ShareService, pool: ConnectionPool[Any], channel: FakeChannel, settings: Settings
) -> None:
    # Given the actors declared on a stub broker with the worker's middleware
    broker = StubBroker()
    broker.add_middleware(dramatiq.middleware.CurrentMessage())
    broker.add_middleware(LogContext())
    broker.add_middleware(Resources(lambda: rt))
    broker.emit_after("process_boot")
    actors = actor_module.declare(broker, queue_prefix=settings.queue_prefix)
    share_id = plan(shares, make_account(pool))
    worker = dramatiq.Worker(broker, worker_timeout=100)
    worker.start()
    try:
        # When the dispatcher's message arrives
        actors.send_for("publish", [share_id])
        broker.join(actor_module.queue_names(settings.queue_prefix)["publish"], fail_fast=True)
        worker.join()
        # Then the share went out once
        assert share_view_of(shares, share_id)["status"] == "sent"
        assert channel.count_for(share_id) == 1
    finally:
        worker.stop()
        runtime_module.install(None)


def test_a_group_of_shares_is_settled_together_each_exactly_once(
    rt: Runtime, shares: ShareService, pool: ConnectionPool[Any], channel: FakeChannel, store: EventStore
) -> None:
    # Given twelve due shares, one of them cancelled and one already sent, one the network refuses
    account = make_account(pool)
    ids = [plan(shares, account) for _ in range(12)]
    shares.cancel(WS, ids[0], reason="no", actor="test")
    assert execute_share(rt, ids[1]) == "share_sent"
    channel.script = ["permanent"]  # the next publish (the 3rd share) is refused
    # When one message delivers the whole group
    outcomes = execute_shares(rt, ids)
    # Then each share got the outcome it should, and went out at most once
    assert outcomes[ids[0]] == "share_skipped"
    assert outcomes[ids[1]] == "share_skipped"
    assert outcomes[ids[2]] == "share_failed"
    assert [outcomes[i] for i in ids[3:]] == ["share_sent"] * 9
    for share_id in ids[1:]:
        kinds = types(store, share_id)
        assert kinds.count("ShareAttemptStarted") == 1
        assert "ResponseTasksRecorded" in kinds
        if "ShareSent" in kinds:
            assert kinds.index("ResponseTasksRecorded") < kinds.index("ShareSent")
    assert all(channel.count_for(i) == 1 for i in ids[3:])
    assert channel.count_for(ids[0]) == 0
    with pool.connection() as conn:
        left = conn.execute("SELECT share_id FROM schedule WHERE kind = 'publish'").fetchall()
    assert left == []


def test_concurrent_deliveries_of_the_same_group_publish_each_share_once(
    rt: Runtime, shares: ShareService, pool: ConnectionPool[Any], channel: FakeChannel, store: EventStore
) -> None:
    account = make_account(pool)
    ids = [plan(shares, account) for _ in range(15)]
    barrier = threading.Barrier(4)
    results: list[dict[UUID, str]] = []

    def deliver(order: list[UUID]) -> None:
        barrier.wait()
        results.append(execute_shares(rt, order))

    orders = [ids, list(reversed(ids)), ids[5:] + ids[:5], ids[::2] + ids[1::2]]
    threads = [threading.Thread(target=deliver, args=(o,)) for o in orders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(channel.count_for(i) == 1 for i in ids)
    assert len(channel.publish_calls) == len(ids)
    for share_id in ids:
        kinds = types(store, share_id)
        assert kinds.count("ShareSent") == 1
        assert kinds.count("ShareAttemptStarted") == 1
    sent = [outcome for r in results for outcome in r.values() if outcome == "share_sent"]
    assert len(sent) == len(ids)
