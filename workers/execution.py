"""Executing a share: the one place that calls a network to publish.

Order, always: append the attempt and the response tasks (one atomic append,
with the expected version) -> commit -> call the channel -> append the outcome.
A duplicate delivery loses the append race and stops; a delivery after a crash
reconciles (looks for the post) before it publishes again.

One database connection serves a whole delivery, and each write is as few round
trips as its atomicity allows: this path decides how many shares a worker sends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
import structlog

from events.errors import ConcurrencyError
from events.records import AppendResult, NewEvent, RecordedEvent, StreamAppend
from scheduler.domain import share as lifecycle
from scheduler.domain.share import Hold, Publish, ShareState, Skip, Wait
from scheduler.services.share_stream import stamp
from workers.channels import PermanentChannelError, Post, Published, TransientChannelError
from workers.runtime import Runtime

log = structlog.get_logger("workers.execution")

OUTCOME_APPEND_TRIES = 5
WAIT_ROUNDS = 3
ACCOUNT_CACHE_SECONDS = 30.0

Conn = psycopg.Connection[Any]


@dataclass
class Delivery:
    """One "publish this share now" message being handled, on one connection."""

    rt: Runtime
    conn: Conn
    share_id: UUID
    message_id: str | None
    workspace_id: str = ""

    def load(self) -> tuple[ShareState, list[RecordedEvent]]:
        history = self.rt.store.read_stream(lifecycle.stream_id(self.share_id), conn=self.conn)
        if history:
            self.workspace_id = history[0].workspace_id
        return lifecycle.fold(r.event for r in history), history

    def stamp(self, events: Sequence[NewEvent]) -> list[NewEvent]:
        """The events with this delivery's metadata (actor, correlation, causation)."""
        return stamp(events, workspace_id=self.workspace_id, actor="worker", share_id=self.share_id,
                     causation_id=self.message_id)

    def commit(self, events: Sequence[NewEvent], *, expected_version: int) -> AppendResult:
        """Append ``events`` and the schedule changes they imply, atomically."""
        return self.rt.streams.commit(self.conn, share_id=self.share_id, workspace_id=self.workspace_id,
                                      events=self.stamp(events), expected_version=expected_version)


def execute_share(rt: Runtime, share_id: UUID, *, message_id: str | None = None) -> str:
    """Run one delivery. Returns the name of its outcome (also its log event)."""
    with rt.pool.connection() as conn:
        return _execute(Delivery(rt, conn, share_id, message_id))


def _execute(d: Delivery) -> str:
    rt = d.rt
    for _ in range(WAIT_ROUNDS):
        state, history = d.load()
        structlog.contextvars.bind_contextvars(stream_version=state.version)
        if not history or state.planned is None:
            log.warning("share_unknown")
            return "share_unknown"
        decision = lifecycle.start_attempt(state, now=rt.clock(), in_flight_grace=rt.lease,
                                           early_window=rt.early_window)
        if not isinstance(decision, Wait):
            break
        # Handed out a moment early: wait for the due time, then read the stream again
        # (it may have been rescheduled or cancelled meanwhile).
        rt.sleep(max(0.0, (decision.until - rt.clock()).total_seconds()))
    else:
        log.info("share_skipped", reason="still not due after waiting")
        return "share_skipped"
    planned = state.planned
    assert planned is not None

    if isinstance(decision, Skip):
        log.info("share_skipped", reason=decision.reason, status=state.status)
        return "share_skipped"
    if isinstance(decision, Hold):
        try:
            d.commit(decision.events, expected_version=state.version)
        except ConcurrencyError:
            log.info("share_duplicate_delivery", stage="hold")
            return "share_duplicate_delivery"
        log.warning("share_held", reason=decision.events[0].event.model_dump().get("reason"))
        return "share_held"

    assert isinstance(decision, Publish)
    structlog.contextvars.bind_contextvars(attempt=decision.attempt)
    try:
        appended = d.commit(decision.events, expected_version=state.version)
    except ConcurrencyError as exc:
        # Another delivery of the same share got there first: it owns this attempt.
        log.info("share_duplicate_delivery", stage="attempt", actual_version=exc.actual_version)
        return "share_duplicate_delivery"
    if appended.written != len(decision.events):
        # Only this delivery's own write entitles it to call the network.
        log.info("share_duplicate_delivery", stage="attempt", actual_version=appended.version)
        return "share_duplicate_delivery"
    structlog.contextvars.bind_contextvars(stream_version=appended.version)
    state = _attempted(state, decision, appended.version)
    called = _call_channel(d, state, decision)
    if isinstance(called, str):
        return called
    published, reconciled, started = called
    return _sent(d, state, decision.attempt, published, reconciled=reconciled, sent_at=started)


def _attempted(state: ShareState, decision: Publish, version: int) -> ShareState:
    """The state once this delivery's attempt (and tasks) are in the log at ``version``."""
    return replace(lifecycle.fold((e.event for e in decision.events), state), version=version)


def _call_channel(d: Delivery, state: ShareState, decision: Publish) -> tuple[Published, bool, datetime] | str:
    """Publish (looking for an earlier post first when the last outcome is unknown).

    Returns the post, whether it was found rather than made, and when the call started;
    or, when the channel refused, the outcome of recording that failure.
    """
    planned = state.planned
    assert planned is not None
    post = Post(
        share_id=d.share_id, workspace_id=d.workspace_id, account_name=planned.account_name,
        account_config=account_config(d.conn, planned.account_id), text=planned.text,
        scheduled_at=state.scheduled_at or planned.scheduled_at,
        idempotency_key=decision.idempotency_key, attempt=decision.attempt,
    )
    started = d.rt.clock()
    log.debug("share_publishing", channel=planned.channel, reconcile=decision.reconcile,
              lateness_ms=int((started - post.scheduled_at) / timedelta(milliseconds=1)))
    try:
        publisher = d.rt.publishers.for_channel(planned.channel)
        found = publisher.find(post) if decision.reconcile else None
        published = found or publisher.publish(post)
    except PermanentChannelError as exc:
        return _failed(d, state, decision.attempt, exc.reason, retryable=False, outcome_unknown=False,
                       retry_after=None)
    except TransientChannelError as exc:
        return _failed(d, state, decision.attempt, exc.reason, retryable=True,
                       outcome_unknown=exc.outcome_unknown, retry_after=exc.retry_after)
    return published, found is not None, started


def _sent(d: Delivery, state: ShareState, attempt: int, published: Published, *, reconciled: bool,
          sent_at: datetime) -> str:
    for _ in range(OUTCOME_APPEND_TRIES):
        events = lifecycle.record_sent(state, attempt=attempt, external_id=published.external_id,
                                       url=published.url, sent_at=sent_at, reconciled=reconciled)
        if not events:
            log.info("share_already_sent")
            return "share_already_sent"
        try:
            version = d.commit(events, expected_version=state.version).version
        except ConcurrencyError:
            state, _ = d.load()  # the stream moved (a reply, another delivery): decide again
            continue
        sent = events[-1].event
        log.info("share_sent", external_id=published.external_id, url=published.url, stream_version=version,
                 lateness_ms=getattr(sent, "lateness_ms", None), reconciled=reconciled)
        return "share_sent"
    raise RuntimeError(f"could not record the outcome of share {d.share_id} after {OUTCOME_APPEND_TRIES} tries")


def _failed(d: Delivery, state: ShareState, attempt: int, reason: str, *, retryable: bool, outcome_unknown: bool,
            retry_after: timedelta | None) -> str:
    rt = d.rt
    for _ in range(OUTCOME_APPEND_TRIES):
        events = lifecycle.record_failure(
            state, attempt=attempt, reason=reason, retryable=retryable, outcome_unknown=outcome_unknown,
            now=rt.clock(), policy=rt.retry_policy, random=rt.random(), retry_after=retry_after,
        )
        if not events:
            log.info("share_outcome_already_recorded", status=state.status)
            return "share_outcome_already_recorded"
        try:
            d.commit(events, expected_version=state.version)
        except ConcurrencyError:
            state, _ = d.load()
            continue
        names = [e.event.type_name for e in events]
        if "ShareAbandoned" in names:
            log.error("share_abandoned", reason=reason, attempts=attempt)
            return "share_abandoned"
        next_at = getattr(events[0].event, "next_attempt_at", None)
        if next_at is not None:
            log.warning("share_retry_scheduled", reason=reason, next_attempt_at=next_at.isoformat(),
                        outcome_unknown=outcome_unknown)
            return "share_retry_scheduled"
        log.error("share_failed", reason=reason, retryable=retryable)
        return "share_failed"
    raise RuntimeError(f"could not record the failure of share {d.share_id} after {OUTCOME_APPEND_TRIES} tries")


_accounts: dict[UUID, tuple[float, dict[str, Any]]] = {}
_accounts_lock = threading.Lock()


def account_config(conn: Conn, account_id: UUID) -> dict[str, Any]:
    """An account's channel config, cached briefly: it changes rarely, shares are many."""
    now = time.monotonic()
    with _accounts_lock:
        cached = _accounts.get(account_id)
    if cached is not None and now - cached[0] < ACCOUNT_CACHE_SECONDS:
        return cached[1]
    row = conn.execute("SELECT config FROM accounts WHERE id = %s", (account_id,)).fetchone()
    config = dict(row[0]) if row else {}
    with _accounts_lock:
        _accounts[account_id] = (now, config)
    return config


# --- many shares in one delivery --------------------------------------------------------


@dataclass
class _Ready:
    delivery: Delivery
    state: ShareState
    decision: Publish
    events: tuple[NewEvent, ...] = ()
    published: Published | None = None
    reconciled: bool = False


def execute_shares(rt: Runtime, share_ids: Sequence[UUID], *, message_id: str | None = None) -> dict[UUID, str]:
    """Run one delivery of several shares (the dispatcher groups work due together).

    The common path costs one statement for all the attempts and one transaction for
    all the outcomes; anything unusual (a skip, a hold, a failure, a race) goes
    through the one-share path, which re-reads that share's stream.
    """
    ids = list(dict.fromkeys(share_ids))
    if len(ids) == 1:
        return {ids[0]: execute_share(rt, ids[0], message_id=message_id)}
    outcomes: dict[UUID, str] = {}
    with rt.pool.connection() as conn:
        ready = _decide_many(rt, conn, ids, message_id, outcomes)
        ready = _start_attempts(rt, conn, ready, outcomes)
        for item in ready:
            _publish(item, outcomes)
        _record_sent(rt, conn, [r for r in ready if r.published is not None], outcomes)
    return outcomes


def _single(delivery: Delivery) -> str:
    with structlog.contextvars.bound_contextvars(share_id=str(delivery.share_id)):
        return _execute(delivery)


def _decide_many(rt: Runtime, conn: Conn, ids: list[UUID], message_id: str | None,
                 outcomes: dict[UUID, str]) -> list[_Ready]:
    histories = rt.store.read_streams([lifecycle.stream_id(i) for i in ids], conn=conn)
    now = rt.clock()
    ready = []
    for share_id in ids:
        history = histories.get(lifecycle.stream_id(share_id), [])
        delivery = Delivery(rt, conn, share_id, message_id, history[0].workspace_id if history else "")
        state = lifecycle.fold(r.event for r in history)
        decision = lifecycle.start_attempt(state, now=now, in_flight_grace=rt.lease, early_window=rt.early_window)
        if isinstance(decision, Publish) and history:
            ready.append(_Ready(delivery, state, decision))
        else:
            outcomes[share_id] = _single(delivery)  # skip, wait, hold, unknown: the one-share path
    return ready


def _start_attempts(rt: Runtime, conn: Conn, ready: list[_Ready], outcomes: dict[UUID, str]) -> list[_Ready]:
    appends = [
        StreamAppend(lifecycle.stream_id(r.delivery.share_id), r.delivery.stamp(r.decision.events),
                     r.state.version, r.delivery.workspace_id)
        for r in ready
    ]
    try:
        written = rt.store.append_many(appends, conn=conn)
    except ConcurrencyError:
        # A concurrent delivery raced for one of them: settle each on its own.
        for r in ready:
            outcomes[r.delivery.share_id] = _single(r.delivery)
        return []
    rt.streams.committed(wake=False)
    started = []
    for r in ready:
        version = written.get(lifecycle.stream_id(r.delivery.share_id))
        if version is None:
            with structlog.contextvars.bound_contextvars(share_id=str(r.delivery.share_id)):
                log.info("share_duplicate_delivery", stage="attempt")
            outcomes[r.delivery.share_id] = "share_duplicate_delivery"
            continue
        r.state = _attempted(r.state, r.decision, version)
        started.append(r)
    return started


def _publish(r: _Ready, outcomes: dict[UUID, str]) -> None:
    d = r.delivery
    with structlog.contextvars.bound_contextvars(share_id=str(d.share_id), attempt=r.decision.attempt,
                                                 stream_version=r.state.version):
        called = _call_channel(d, r.state, r.decision)
        if isinstance(called, str):
            outcomes[d.share_id] = called
            return
        published, r.reconciled, started = called
        r.published = published
        r.events = lifecycle.record_sent(r.state, attempt=r.decision.attempt, external_id=published.external_id,
                                         url=published.url, sent_at=started, reconciled=r.reconciled)


def _record_sent(rt: Runtime, conn: Conn, done: list[_Ready], outcomes: dict[UUID, str]) -> None:
    batch = [r for r in done if r.events]
    written: dict[str, int | None] = {}
    if batch:
        appends = [StreamAppend(lifecycle.stream_id(r.delivery.share_id), r.delivery.stamp(r.events),
                                r.state.version, r.delivery.workspace_id) for r in batch]
        try:
            written = rt.streams.commit_many(conn, [(r.delivery.share_id, a) for r, a in zip(batch, appends,
                                                                                           strict=True)])
        except ConcurrencyError:
            written = {}  # rolled back: record each on its own below
    for r in done:
        d = r.delivery
        assert r.published is not None
        version = written.get(lifecycle.stream_id(d.share_id))
        with structlog.contextvars.bound_contextvars(share_id=str(d.share_id), attempt=r.decision.attempt):
            if version is not None:
                sent = r.events[-1].event
                log.info("share_sent", external_id=r.published.external_id, url=r.published.url,
                         stream_version=version, lateness_ms=getattr(sent, "lateness_ms", None),
                         reconciled=r.reconciled)
                outcomes[d.share_id] = "share_sent"
            else:
                state, _ = d.load()  # the stream moved (or the batch raced): decide again
                sent_at = getattr(r.events[-1].event, "sent_at", rt.clock()) if r.events else rt.clock()
                outcomes[d.share_id] = _sent(d, state, r.decision.attempt, r.published, reconciled=r.reconciled,
                                             sent_at=sent_at)
