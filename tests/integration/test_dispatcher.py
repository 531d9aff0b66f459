"""The dispatcher's claims on the schedule table: due work once, lost work again after its lease."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from psycopg_pool import ConnectionPool

from events.store import EventStore
from followthrough import bootstrap
from followthrough.settings import Settings
from scheduler.dispatch.dispatcher import Dispatcher
from scheduler.dispatch.schedule_table import DueItem
from scheduler.domain.schedule import DISPATCHER_MAX_SLEEP
from tests.support.plans import index_scans
from tests.support.shares import WS, make_account, plan, share_service
from tests.support.system import wait_until


def dispatcher(pool: ConnectionPool[Any], settings: Settings, sent: list[DueItem], **kw: Any) -> Dispatcher:
    return Dispatcher(pool, conninfo=settings.database_url or "", connect_kwargs={}, send=sent.extend,
                      batch=kw.pop("batch", 100), lease_seconds=kw.pop("lease_seconds", 1.0), **kw)


def test_due_work_is_handed_out_once_and_again_only_after_its_lease(
    pool: ConnectionPool[Any], store: EventStore, settings: Settings
) -> None:
    shares = share_service(pool, store, None)
    share_id = plan(shares, make_account(pool))
    sent: list[DueItem] = []
    d = dispatcher(pool, settings, sent, lease_seconds=1.0)
    # When the dispatcher claims due work twice in a row
    assert d.dispatch_once() == 1
    assert d.dispatch_once() == 0
    # Then the share was handed out once; its message may be lost, so after the lease it comes back
    assert wait_until(lambda: d.dispatch_once() == 1, timeout=10, what="the lease to run out")
    assert [(i.share_id, i.dispatch_count) for i in sent] == [(share_id, 1), (share_id, 2)]


def test_work_is_not_handed_out_before_the_dispatch_lead(
    pool: ConnectionPool[Any], store: EventStore, settings: Settings
) -> None:
    shares = share_service(pool, store, None)
    soon = plan(shares, make_account(pool), at=datetime.now(UTC) + timedelta(milliseconds=150))
    plan(shares, make_account(pool, name="later"), at=datetime.now(UTC) + timedelta(hours=1))
    sent: list[DueItem] = []
    d = dispatcher(pool, settings, sent, lead_seconds=0.25)
    assert d.dispatch_once() == 1
    assert [i.share_id for i in sent] == [soon]
    # Next look: when the handed-out row's lease ends (1 s), not the share due in an hour
    assert 0.0 <= d.seconds_to_next() <= 1.0


def test_two_dispatchers_claiming_at_once_never_hand_out_the_same_row(
    pool: ConnectionPool[Any], store: EventStore, settings: Settings
) -> None:
    shares = share_service(pool, store, None)
    account = make_account(pool)
    planned = {plan(shares, account) for _ in range(150)}
    sent_a: list[DueItem] = []
    sent_b: list[DueItem] = []
    a = dispatcher(pool, settings, sent_a, batch=7, lease_seconds=30.0)
    b = dispatcher(pool, settings, sent_b, batch=7, lease_seconds=30.0)

    def drain(d: Dispatcher) -> None:
        while d.dispatch_once():
            pass

    threads = [threading.Thread(target=drain, args=(d,)) for d in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids_a = [i.share_id for i in sent_a]
    ids_b = [i.share_id for i in sent_b]
    assert set(ids_a).isdisjoint(ids_b)
    assert set(ids_a) | set(ids_b) == planned
    assert len(ids_a) + len(ids_b) == 150


def test_a_running_dispatcher_wakes_for_newly_planned_work(
    pool: ConnectionPool[Any], store: EventStore, settings: Settings
) -> None:
    from events.notifier import Notifier

    notifier = Notifier(settings.database_url or "")
    notifier.start()
    shares = share_service(pool, store, notifier)
    sent: list[DueItem] = []
    d = dispatcher(pool, settings, sent, max_sleep=DISPATCHER_MAX_SLEEP.total_seconds())
    stop = threading.Event()
    thread = threading.Thread(target=d.run, args=(stop,))
    thread.start()
    try:
        assert d.leading.wait(10)
        wait_until(lambda: d.idle, timeout=10, what="the dispatcher to go idle")  # sleeping up to 5 s
        share_id: UUID = plan(shares, make_account(pool))
        wait_until(lambda: sent, timeout=3, interval=0.01, what="the share to be handed out")
        assert [i.share_id for i in sent] == [share_id]
    finally:
        stop.set()
        notifier.notify(("followthrough_schedule",))
        thread.join(timeout=35)
        notifier.stop()


def test_a_dispatcher_refuses_to_sleep_longer_than_the_schedule_s_writers_count_on(
    pool: ConnectionPool[Any], settings: Settings
) -> None:
    # Given a dispatcher asked to sleep up to 30 s (writes due later than 10 s wake no one)
    # When it is built
    # Then it is refused, naming the limit
    with pytest.raises(ValueError, match="max_sleep must be at most 5 s"):
        dispatcher(pool, settings, [], max_sleep=30.0)


def test_the_claim_reads_only_rows_already_due(pool: ConnectionPool[Any], store: EventStore) -> None:
    """The claim's time bounds are index bounds: with many rows due later (an hour of
    looks), a claim reads the due ones, not every row to the end of the index."""
    from scheduler.dispatch.schedule_table import Q

    shares = share_service(pool, store, None)
    account = make_account(pool)
    for _ in range(3):
        plan(shares, account, at=datetime.now(UTC) + timedelta(hours=1))
    with pool.connection() as conn, conn.transaction():
        # A test's table is small enough to read whole: the plan with the indexes is what a
        # large one gets, and the question is what bounds those scans.
        conn.execute("SET LOCAL enable_seqscan = off")
        conn.execute("SET LOCAL enable_bitmapscan = off")
        row = conn.execute("EXPLAIN (FORMAT JSON) " + Q["claim_due"],
                           {"limit": 50, "lease_seconds": 30.0, "lead_seconds": 0.0}).fetchone()
    assert row is not None
    scans = {s["Index Name"]: s for s in index_scans(row[0][0]["Plan"])}
    assert "due_at" in scans["schedule_due_idx"].get("Index Cond", "")
    assert "lease_until" in scans["schedule_lease_idx"].get("Index Cond", "")


def test_while_work_flows_the_dispatcher_looks_again_in_a_tick(
    pool: ConnectionPool[Any], store: EventStore, settings: Settings
) -> None:
    shares = share_service(pool, store, None)
    plan(shares, make_account(pool))
    plan(shares, make_account(pool, name="later"), at=datetime.now(UTC) + timedelta(hours=1))
    sent: list[DueItem] = []
    d = dispatcher(pool, settings, sent, tick=0.02, lease_seconds=30.0)
    # A round that handed work out looks again a tick later; one that found nothing sleeps
    # until the next due time (the other share's, an hour on, capped by max_sleep)
    assert d.follow_step() == 0.02
    assert d.follow_step() == d.max_sleep


def test_the_dispatcher_built_from_settings_takes_its_tick_and_message_size(settings: Settings) -> None:
    tuned = settings.model_copy(update={"dispatch_tick_ms": 25, "dispatch_message_size": 20})
    with bootstrap.dispatcher(tuned) as built:
        assert (built.tick, built.message_size) == (0.025, 20)


def test_only_posts_are_handed_out_ahead_looks_and_answers_at_their_time(
    pool: ConnectionPool[Any], store: EventStore, settings: Settings
) -> None:
    # Given a post, a look for replies and an answer, all due in 0.4 s
    shares = share_service(pool, store, None)
    due = datetime.now(UTC) + timedelta(milliseconds=400)
    post = plan(shares, make_account(pool), at=due)
    look, answer = uuid4(), uuid4()
    with pool.connection() as conn:
        for kind, share_id in (("check_replies", look), ("answer", answer)):
            conn.execute("INSERT INTO schedule (workspace_id, kind, share_id, due_at) VALUES (%s, %s, %s, %s)",
                         (WS, kind, share_id, due))
    sent: list[DueItem] = []
    d = dispatcher(pool, settings, sent, lead_seconds=1.0)
    # When the dispatcher looks now, with a lead of a second
    assert d.dispatch_once() == 1
    # Then only the post is handed out ahead (its worker waits for the moment); an answer's
    # retry found early would be let go and handed out again and again until its time
    assert [i.share_id for i in sent] == [post]
    # And the dispatcher sleeps until the look and the answer are due, not a tick
    assert 0.15 <= d.seconds_to_next() <= 0.4
    wait_until(lambda: datetime.now(UTC) >= due, timeout=2, interval=0.01, what="the due time")
    assert d.dispatch_once() == 2
    assert {(i.kind, i.share_id) for i in sent[1:]} == {("check_replies", look), ("answer", answer)}
