"""Executing a share: the one place that calls a network to publish.

Order, always: append the attempt and the response tasks (one atomic append,
with the expected version) -> commit -> call the channel -> append the outcome.
A duplicate delivery loses the append race and stops; a delivery after a crash
reconciles (looks for the post) before it publishes again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any
from uuid import UUID

import structlog

from events.errors import ConcurrencyError
from events.records import AppendResult, NewEvent, RecordedEvent, metadata
from scheduler import schedule
from scheduler.domain import share as lifecycle
from scheduler.domain.schedule import ops_for
from scheduler.domain.share import Hold, Publish, ShareState, Skip, Wait
from workers.channels import PermanentChannelError, Post, Published, TransientChannelError
from workers.runtime import Runtime

log = structlog.get_logger("workers.execution")

OUTCOME_APPEND_TRIES = 5
WAIT_ROUNDS = 3


def load(rt: Runtime, share_id: UUID) -> tuple[ShareState, list[RecordedEvent]]:
    history = rt.store.read_stream(lifecycle.stream_id(share_id))
    return lifecycle.fold(r.event for r in history), history


def commit(
    rt: Runtime,
    share_id: UUID,
    workspace_id: str,
    events: Sequence[NewEvent],
    *,
    expected_version: int,
    actor: str,
    causation_id: str | None = None,
) -> AppendResult:
    """Append ``events`` and the schedule changes they imply, in one transaction."""
    meta = metadata(workspace_id=workspace_id, actor=actor, correlation_id=str(share_id), causation_id=causation_id)
    stamped = [replace(e, metadata=meta) for e in events]
    with rt.pool.connection() as conn, conn.transaction():
        result = rt.store.append(
            lifecycle.stream_id(share_id),
            stamped,
            expected_version=expected_version,
            workspace_id=workspace_id,
            conn=conn,
        )
        wake = schedule.apply(
            conn,
            share_id=share_id,
            workspace_id=workspace_id,
            ops=ops_for(e.event for e in events),
            lease_seconds=rt.settings.lease_seconds,
        )
    rt.store.appended()
    if wake:
        schedule.wake_dispatcher(rt.notifier)
    return result


def execute_share(rt: Runtime, share_id: UUID, *, message_id: str | None = None) -> str:
    """Run one "publish this share now" delivery. Returns the outcome's event name."""
    for _ in range(WAIT_ROUNDS):
        state, history = load(rt, share_id)
        structlog.contextvars.bind_contextvars(stream_version=state.version)
        if not history or state.planned is None:
            log.warning("share_unknown")
            return "share_unknown"
        decision = lifecycle.start_attempt(
            state, now=rt.clock(), in_flight_grace=rt.lease, early_window=rt.early_window
        )
        if not isinstance(decision, Wait):
            break
        # Handed out a moment early: wait for the due time, then read the stream again
        # (it may have been rescheduled or cancelled meanwhile).
        rt.sleep(max(0.0, (decision.until - rt.clock()).total_seconds()))
    else:
        log.info("share_skipped", reason="still not due after waiting")
        return "share_skipped"
    workspace_id = history[0].workspace_id
    planned = state.planned
    assert planned is not None
    if isinstance(decision, Skip):
        log.info("share_skipped", reason=decision.reason, status=state.status)
        return "share_skipped"
    if isinstance(decision, Hold):
        try:
            commit(
                rt,
                share_id,
                workspace_id,
                decision.events,
                expected_version=state.version,
                actor="worker",
                causation_id=message_id,
            )
        except ConcurrencyError:
            log.info("share_duplicate_delivery", stage="hold")
            return "share_duplicate_delivery"
        log.warning("share_held", reason=decision.events[0].event.model_dump().get("reason"))
        return "share_held"

    assert isinstance(decision, Publish)
    structlog.contextvars.bind_contextvars(attempt=decision.attempt)
    try:
        appended = commit(
            rt,
            share_id,
            workspace_id,
            decision.events,
            expected_version=state.version,
            actor="worker",
            causation_id=message_id,
        )
    except ConcurrencyError as exc:
        # Another delivery of the same share got there first: it owns this attempt.
        log.info("share_duplicate_delivery", stage="attempt", actual_version=exc.actual_version)
        return "share_duplicate_delivery"
    if appended.written != len(decision.events):
        # Only this delivery's own write entitles it to call the network.
        log.info("share_duplicate_delivery", stage="attempt", actual_version=appended.version)
        return "share_duplicate_delivery"
    structlog.contextvars.bind_contextvars(stream_version=appended.version)

    post = Post(
        share_id=share_id,
        workspace_id=workspace_id,
        account_name=planned.account_name,
        account_config=_account_config(rt, planned.account_id),
        text=planned.text,
        scheduled_at=state.scheduled_at or planned.scheduled_at,
        idempotency_key=decision.idempotency_key,
        attempt=decision.attempt,
    )
    started = rt.clock()
    scheduled = post.scheduled_at
    lateness_ms = int((started - scheduled) / timedelta(milliseconds=1))
    log.info("share_publishing", channel=planned.channel, lateness_ms=lateness_ms, reconcile=decision.reconcile)
    try:
        publisher = rt.publishers.for_channel(planned.channel)
        found = publisher.find(post) if decision.reconcile else None
        published = found or publisher.publish(post)
    except PermanentChannelError as exc:
        return _failed(
            rt,
            share_id,
            workspace_id,
            decision.attempt,
            exc.reason,
            retryable=False,
            outcome_unknown=False,
            retry_after=None,
            message_id=message_id,
        )
    except TransientChannelError as exc:
        return _failed(
            rt,
            share_id,
            workspace_id,
            decision.attempt,
            exc.reason,
            retryable=True,
            outcome_unknown=exc.outcome_unknown,
            retry_after=exc.retry_after,
            message_id=message_id,
        )
    return _sent(
        rt,
        share_id,
        workspace_id,
        decision.attempt,
        published,
        reconciled=found is not None,
        sent_at=started,
        message_id=message_id,
    )


def _sent(
    rt: Runtime,
    share_id: UUID,
    workspace_id: str,
    attempt: int,
    published: Published,
    *,
    reconciled: bool,
    sent_at: Any,
    message_id: str | None,
) -> str:
    for _ in range(OUTCOME_APPEND_TRIES):
        state, _history = load(rt, share_id)
        events = lifecycle.record_sent(
            state,
            attempt=attempt,
            external_id=published.external_id,
            url=published.url,
            sent_at=sent_at,
            reconciled=reconciled,
        )
        if not events:
            log.info("share_already_sent")
            return "share_already_sent"
        try:
            version = commit(
                rt,
                share_id,
                workspace_id,
                events,
                expected_version=state.version,
                actor="worker",
                causation_id=message_id,
            ).version
        except ConcurrencyError:
            continue  # the stream moved (a task, a reply, another delivery): decide again
        sent = events[0].event
        log.info(
            "share_sent",
            external_id=published.external_id,
            url=published.url,
            stream_version=version,
            lateness_ms=getattr(sent, "lateness_ms", None),
            reconciled=reconciled,
        )
        return "share_sent"
    raise RuntimeError(f"could not record the outcome of share {share_id} after {OUTCOME_APPEND_TRIES} tries")


def _failed(
    rt: Runtime,
    share_id: UUID,
    workspace_id: str,
    attempt: int,
    reason: str,
    *,
    retryable: bool,
    outcome_unknown: bool,
    retry_after: timedelta | None,
    message_id: str | None,
) -> str:
    for _ in range(OUTCOME_APPEND_TRIES):
        state, _history = load(rt, share_id)
        events = lifecycle.record_failure(
            state,
            attempt=attempt,
            reason=reason,
            retryable=retryable,
            outcome_unknown=outcome_unknown,
            now=rt.clock(),
            policy=rt.retry_policy,
            random=rt.random(),
            retry_after=retry_after,
        )
        if not events:
            log.info("share_outcome_already_recorded", status=state.status)
            return "share_outcome_already_recorded"
        try:
            commit(
                rt,
                share_id,
                workspace_id,
                events,
                expected_version=state.version,
                actor="worker",
                causation_id=message_id,
            )
        except ConcurrencyError:
            continue
        names = [e.event.type_name for e in events]
        if "ShareAbandoned" in names:
            log.error("share_abandoned", reason=reason, attempts=attempt)
            return "share_abandoned"
        failed = events[0].event
        next_at = getattr(failed, "next_attempt_at", None)
        if next_at is not None:
            log.warning(
                "share_retry_scheduled",
                reason=reason,
                next_attempt_at=next_at.isoformat(),
                outcome_unknown=outcome_unknown,
            )
            return "share_retry_scheduled"
        log.error("share_failed", reason=reason, retryable=retryable)
        return "share_failed"
    raise RuntimeError(f"could not record the failure of share {share_id} after {OUTCOME_APPEND_TRIES} tries")


def _account_config(rt: Runtime, account_id: UUID) -> dict[str, Any]:
    with rt.pool.connection() as conn:
        row = conn.execute("SELECT config FROM accounts WHERE id = %s", (account_id,)).fetchone()
    return dict(row[0]) if row else {}
