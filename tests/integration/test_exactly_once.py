"""Exactly once against slow and hostile networks, at the worker's level: a real
PostgreSQL, real threads, and an in-memory channel that answers late, ignores the
idempotency key or hides the account's posts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from psycopg_pool import ConnectionPool

from events.projections import metrics
from events.projections.runner import ProjectionRunner
from events.projections.shares import SharesProjection
from events.store import EventStore
from scheduler.services import accounts, workspaces
from scheduler.services.shares import ShareService
from tests.support.fake_channel import Crash, FakeChannel
from tests.support.shares import WS, Clock, expire_lease, make_account, plan, runtime, share_service, view
from tests.support.system import wait_until
from workers.execution import execute_share, execute_shares
from workers.runtime import Runtime


@pytest.fixture
def channel() -> FakeChannel:
    return FakeChannel(honour_key=False)  # the worst case: only our own care prevents a second post


@pytest.fixture
def calls() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(8, thread_name_prefix="call") as executor:
        yield executor


@pytest.fixture
def rt(store: EventStore, pool: ConnectionPool[Any], channel: FakeChannel, calls: ThreadPoolExecutor) -> Runtime:
    return runtime(pool, store, channel, clock=Clock(), calls=calls)


@pytest.fixture
def shares(store: EventStore, pool: ConnectionPool[Any]) -> ShareService:
    return share_service(pool, store)


def status(shares: ShareService, share_id: UUID) -> str:
    return str(view(shares, share_id)["status"])


def types(store: EventStore, share_id: UUID) -> list[str]:
    return [r.type_name for r in store.read_stream(f"share-{share_id}")]


def account_with(pool: ConnectionPool[Any], **config: Any) -> accounts.Account:
    with pool.connection() as conn:
        workspaces.ensure_workspace(conn, WS)
        return accounts.create(conn, workspace_id=WS, name="team", channel="console", config=config,
                               default_response_plan=None, late_policy="send", max_lateness_seconds=None)


def test_a_groups_calls_run_concurrently_and_each_share_is_posted_once(
    rt: Runtime, shares: ShareService, pool: ConnectionPool[Any], channel: FakeChannel
) -> None:
    # Given twelve shares due together and a network that answers each post late
    channel.delay = 0.3
    account = make_account(pool)
    ids = [plan(shares, account) for _ in range(12)]
    # When one message delivers the whole group
    outcomes = execute_shares(rt, ids)
    # Then every share went out once, and the calls overlapped rather than queued
    assert set(outcomes.values()) == {"share_sent"}
    assert all(channel.count_for(i) == 1 for i in ids)
    assert channel.max_in_flight > 1


def test_each_outcome_is_recorded_as_soon_as_its_call_returns(
    rt: Runtime, shares: ShareService, pool: ConnectionPool[Any], channel: FakeChannel
) -> None:
    # Given a group of three shares, one of which the network answers only when let go
    account = make_account(pool)
    ids = [plan(shares, account) for _ in range(3)]
    slow = ids[0]
    channel.gates[slow] = threading.Event()
    # When the group is delivered
    delivery = threading.Thread(target=execute_shares, args=(rt, ids))
    delivery.start()
    try:
        # Then the other two are recorded sent while the slow call is still waiting
        wait_until(lambda: all(status(shares, i) == "sent" for i in ids[1:]), timeout=10,
                   what="the quick shares to be recorded")
        assert status(shares, slow) == "sending"
    finally:
        channel.gates[slow].set()
        delivery.join(timeout=30)
    assert status(shares, slow) == "sent"


def test_a_fault_of_ours_in_one_call_is_that_shares_outcome_and_the_groups_others_are_recorded(
    rt: Runtime, shares: ShareService, pool: ConnectionPool[Any], channel: FakeChannel
) -> None:
    # Given a group of five shares, and a fault of ours reading the answer to one of their posts
    # (the post made, then a KeyError: neither the network's answer nor a dying worker)
    account = make_account(pool)
    ids = [plan(shares, account) for _ in range(5)]
    channel.script = ["ok", "ok", "bug_after", "ok", "ok"]
    # When one message delivers the group
    outcomes = execute_shares(rt, ids)
    # Then the delivery does not fail: four are recorded sent, the fifth's outcome is unknown
    # and its retry scheduled, to look its post up first
    assert sorted(outcomes.values()) == ["share_retry_scheduled"] + ["share_sent"] * 4
    broken = next(i for i, outcome in outcomes.items() if outcome == "share_retry_scheduled")
    assert view(shares, broken)["last_error"].startswith("unexpected KeyError in the worker")
    # And once its retry is due, the look-up finds its post: each share posted exactly once
    expire_lease(pool, broken)
    rt.clock.offset += timedelta(hours=1)  # type: ignore[attr-defined]
    assert execute_share(rt, broken) == "share_sent"
    assert all(channel.count_for(i) == 1 for i in ids)
    assert channel.find_calls == [broken]


def test_no_second_attempt_starts_while_the_first_holds_the_lease(
    store: EventStore, shares: ShareService, pool: ConnectionPool[Any], channel: FakeChannel,
    calls: ThreadPoolExecutor,
) -> None:
    # Given a share whose post is made but whose answer has not come back (its lease: 30 s)
    rt = runtime(pool, store, channel, clock=Clock(), calls=calls, call_budget_seconds=30.0)
    share_id = plan(shares, make_account(pool))
    channel.gates[share_id] = threading.Event()
    first = threading.Thread(target=execute_share, args=(rt, share_id))
    first.start()
    try:
        wait_until(lambda: channel.in_flight == 1, timeout=10, what="the first call to be in flight")
        # When the same share is delivered again, even long after the attempt started by the clock
        rt.clock.offset = timedelta(minutes=10)  # type: ignore[attr-defined]
        again = execute_share(rt, share_id)
        # Then the second delivery does not look or post: the first attempt's lease is held
        assert again == "share_skipped"
        assert channel.find_calls == []
    finally:
        channel.gates[share_id].set()
        first.join(timeout=30)
    # And the share went out once
    assert status(shares, share_id) == "sent"
    assert channel.count_for(share_id) == 1


def test_a_reconciled_share_is_sent_at_the_posts_own_creation_time(
    rt: Runtime, shares: ShareService, pool: ConnectionPool[Any], channel: FakeChannel
) -> None:
    # Given a share whose worker died after the post was made
    share_id = plan(shares, make_account(pool))
    channel.script = ["crash_after"]
    with pytest.raises(Crash):
        execute_share(rt, share_id)
    made = channel.made[0][1]
    # When the lease runs out and a later delivery looks for the post
    expire_lease(pool, share_id)
    assert execute_share(rt, share_id) == "share_sent"
    # Then it is found, not posted again, and sent_at is the post's creation time, not the look-up's
    assert channel.count_for(share_id) == 1
    shown = view(shares, share_id)
    assert shown["external_id"] == made.external_id
    assert made.created_at is not None
    assert datetime.fromisoformat(shown["sent_at"]) == made.created_at
    assert [t["due_at"] for t in shown["response_tasks"]] == [
        (made.created_at + timedelta(hours=1)).isoformat(), (made.created_at + timedelta(days=1)).isoformat()]


def test_an_unknown_outcome_that_cannot_be_looked_up_is_held_for_a_person(
    rt: Runtime, shares: ShareService, pool: ConnectionPool[Any], channel: FakeChannel
) -> None:
    # Given a network that hides the account's posts, and an attempt whose answer never came
    channel.findable = False
    share_id = plan(shares, account_with(pool, base_url="https://social.example"))
    channel.script = ["crash_after"]
    with pytest.raises(Crash):
        execute_share(rt, share_id)
    # When the lease runs out and the share is delivered again
    expire_lease(pool, share_id)
    outcome = execute_share(rt, share_id)
    # Then it is held for a person, with the reason and where to look, and nothing is posted again
    assert outcome == "share_held"
    assert channel.count_for(share_id) == 1
    shown = view(shares, share_id)
    assert shown["status"] == "held"
    assert shown["held"]["outcome_unknown"] is True
    assert shown["held"]["candidate_url"] == "https://social.example"
    assert "mark the share sent" in shown["held"]["reason"]
    # And a person who finds the post settles it: its tasks count from the post's time
    posted_at = datetime.now(UTC) - timedelta(minutes=1)
    shares.mark_sent(WS, share_id, url="https://social.example/@team/1", external_id="1", sent_at=posted_at,
                     actor="test")
    settled = view(shares, share_id)
    assert (settled["status"], settled["url"]) == ("sent", "https://social.example/@team/1")
    assert datetime.fromisoformat(settled["sent_at"]) == posted_at
    assert execute_share(rt, share_id) == "share_skipped"
    assert channel.count_for(share_id) == 1


def test_a_held_share_rescheduled_by_a_person_is_posted_without_looking_again(
    rt: Runtime, shares: ShareService, pool: ConnectionPool[Any], channel: FakeChannel
) -> None:
    # Given a share held for an unknown outcome (its attempt failed before any post was made)
    channel.findable = False
    share_id = plan(shares, make_account(pool))
    channel.script = ["crash_before"]
    with pytest.raises(Crash):
        execute_share(rt, share_id)
    expire_lease(pool, share_id)
    assert execute_share(rt, share_id) == "share_held"
    # When a person, having looked and found nothing, reschedules it for now
    shares.reschedule(WS, share_id, datetime.now(UTC), actor="test")
    # Then the next delivery posts it, once
    assert execute_share(rt, share_id) == "share_sent"
    assert channel.count_for(share_id) == 1


def test_an_account_that_chose_to_resend_posts_again_instead_of_holding(
    rt: Runtime, shares: ShareService, pool: ConnectionPool[Any], channel: FakeChannel
) -> None:
    # Given an account that prefers a possible duplicate to a held share
    channel.findable = False
    share_id = plan(shares, account_with(pool, on_unknown_outcome="resend"))
    channel.script = ["crash_after"]
    with pytest.raises(Crash):
        execute_share(rt, share_id)
    expire_lease(pool, share_id)
    # When it is delivered again
    # Then it is posted again, knowingly
    assert execute_share(rt, share_id) == "share_sent"
    assert channel.count_for(share_id) == 2


@pytest.mark.parametrize("remove", [False, True])
def test_a_duplicate_that_happens_anyway_is_recorded_and_removed_when_asked(
    rt: Runtime, shares: ShareService, pool: ConnectionPool[Any], channel: FakeChannel, store: EventStore,
    database_url: str, remove: bool,
) -> None:
    # Given an attempt whose answer takes longer than its lease (a server hanging past every timeout)
    share_id = plan(shares, account_with(pool, remove_duplicates=remove))
    gate = threading.Event()
    channel.gates[share_id] = gate
    first = threading.Thread(target=execute_share, args=(rt, share_id))
    first.start()
    try:
        wait_until(lambda: channel.in_flight == 1, timeout=10, what="the first call to be in flight")
        # And a takeover once the lease ran out, on a server whose timeline does not show the
        # first post yet (indexing lag), which therefore posts again
        expire_lease(pool, share_id)
        channel.posts.clear()
        del channel.gates[share_id]
        assert execute_share(rt, share_id) == "share_sent"
    finally:
        # When the first attempt's answer finally comes back
        gate.set()
        first.join(timeout=30)
    # Then the share stays sent with the post recorded first, and the extra post is recorded
    assert channel.count_for(share_id) == 2
    shown = view(shares, share_id)
    assert shown["status"] == "sent"
    assert len(shown["duplicate_posts"]) == 1
    extra = shown["duplicate_posts"][0]
    assert extra["external_id"] != shown["external_id"]
    assert extra["removed"] is remove
    assert "DuplicatePosted" in types(store, share_id)
    # And it is deleted through the channel only when the account asks for that
    assert channel.deleted == ([extra["external_id"]] if remove else [])
    assert ("DuplicateRemoved" in types(store, share_id)) is remove
    # And the read model (dashboards, /metrics) counts it
    ProjectionRunner(store, SharesProjection(), conninfo=database_url).catch_up_fully()
    with pool.connection() as conn:
        counted = metrics.figures(conn)
    assert (counted.duplicate_posts, counted.duplicates_removed) == (1, 1 if remove else 0)


def test_a_group_handed_out_ahead_is_recorded_beforehand_and_each_call_starts_at_its_own_time(
    rt: Runtime, shares: ShareService, pool: ConnectionPool[Any], channel: FakeChannel, store: EventStore
) -> None:
    # Given three shares due 1, 1.4 and 1.8 s from now, handed out together ahead of time
    # (a dispatcher lead of 2 s)
    rt.config = replace(rt.config, dispatch_lead_seconds=2.0)
    account = make_account(pool)
    now = datetime.now(UTC)
    dues = [now + timedelta(seconds=s) for s in (1.0, 1.4, 1.8)]
    ids = [plan(shares, account, at=due) for due in dues]
    # When one message delivers the group at once
    delivery = threading.Thread(target=execute_shares, args=(rt, ids))
    delivery.start()
    try:
        # Then each attempt and its tasks are in the log before the first is due, and no call has started
        wait_until(lambda: all(types(store, i)[1:] == ["ShareAttemptStarted", "ResponseTasksRecorded"] for i in ids),
                   timeout=5, interval=0.01, what="the attempts to be recorded")
        assert datetime.now(UTC) < dues[0]
        assert channel.publish_calls == []
    finally:
        delivery.join(timeout=30)
    # And each call started at its own due time, not before, in order, and each went out once
    assert channel.publish_calls == ids
    for share_id, due in zip(ids, dues, strict=True):
        sent = view(shares, share_id)
        assert sent["status"] == "sent"
        assert datetime.fromisoformat(sent["sent_at"]) >= due
        assert 0 <= sent["lateness_ms"] < 300
        assert channel.count_for(share_id) == 1
