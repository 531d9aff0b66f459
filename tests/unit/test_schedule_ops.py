"""The schedule as an inline projection: the due-work operations each share event implies."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest
from hypothesis import given, settings

from events.catalogue import (
    Event,
    ResponseReceived,
    ResponseTaskCompleted,
    ResponseTasksCancelled,
    ResponseTasksRecorded,
    ShareAbandoned,
    ShareAttemptStarted,
    ShareCancelled,
    ShareFailed,
    ShareHeld,
    ShareRescheduled,
    ShareSent,
)
from scheduler.domain import share
from scheduler.domain.retry import RetryPolicy
from scheduler.domain.schedule import (
    DISPATCHER_MAX_SLEEP,
    MAX_DISPATCH_LEAD,
    Remove,
    Upsert,
    Wake,
    ops_for,
    wakes_dispatcher,
)
from tests.support.factories import T0, planned, share_histories

LATER = T0 + timedelta(hours=2)


@pytest.mark.parametrize(
    ("event", "ops"),
    [
        pytest.param(planned(scheduled_at=LATER), [Upsert("publish", LATER)], id="SharePlanned"),
        pytest.param(ShareRescheduled(scheduled_at=LATER), [Upsert("publish", LATER)], id="ShareRescheduled"),
        pytest.param(
            ShareFailed(attempt=1, failed_at=T0, reason="503", retryable=True, next_attempt_at=LATER),
            [Upsert("publish", LATER)],
            id="ShareFailed with a retry",
        ),
        pytest.param(
            ShareFailed(attempt=1, failed_at=T0, reason="422", retryable=False),
            [Remove("publish")],
            id="ShareFailed for good",
        ),
        pytest.param(
            ShareSent(attempt=1, external_id="1", url=None, scheduled_at=T0, sent_at=T0, lateness_ms=0),
            [Remove("publish")],
            id="ShareSent",
        ),
        pytest.param(ShareCancelled(reason="x"), [Remove("publish")], id="ShareCancelled"),
        pytest.param(ShareAbandoned(attempts=5, abandoned_at=T0, reason="x"), [Remove("publish")], id="ShareAbandoned"),
        pytest.param(ShareHeld(held_at=T0, lateness_ms=1, reason="x"), [Remove("publish")], id="ShareHeld"),
        # The dispatcher leased the row when it handed it out; the attempt itself changes nothing.
        pytest.param(ShareAttemptStarted(attempt=1, started_at=T0, idempotency_key="k"), [], id="ShareAttemptStarted"),
        pytest.param(ResponseTasksRecorded(tasks=()), [], id="ResponseTasksRecorded"),
        pytest.param(ResponseTasksCancelled(task_ids=(), reason="x"), [], id="ResponseTasksCancelled"),
        pytest.param(ResponseReceived(reply_id="r", author="a", text="t", received_at=T0), [], id="ResponseReceived"),
        pytest.param(
            ResponseTaskCompleted(task_id=uuid4(), completed_at=T0, completed_by="alice"),
            [],
            id="ResponseTaskCompleted",
        ),
    ],
)
def test_each_event_implies_its_schedule_operation(event: Event, ops: list[object]) -> None:
    # Given one event of a share's stream
    # When the schedule operations are derived
    # Then they are the expected upsert, removal, or nothing
    assert ops_for([event]) == ops


def test_operations_come_in_the_order_of_their_events() -> None:
    # Given a plan, a reschedule, and a failure with a retry, in one batch
    events: list[Event] = [
        planned(scheduled_at=T0),
        ShareRescheduled(scheduled_at=LATER),
        ShareFailed(attempt=1, failed_at=LATER, reason="503", retryable=True, next_attempt_at=LATER + timedelta(1)),
    ]
    # When derived
    # Then the last upsert (the retry time) is the one that wins when applied in order
    assert ops_for(events) == [
        Upsert("publish", T0),
        Upsert("publish", LATER),
        Upsert("publish", LATER + timedelta(1)),
    ]


def test_a_permanent_failure_batch_removes_the_publish_row() -> None:
    # Given an attempt in flight that fails for good (failure + cancelled tasks in one append)
    history: list[Event] = [planned()]
    decision = share.start_attempt(share.fold(history), now=T0, in_flight_grace=timedelta(minutes=5))
    assert isinstance(decision, share.Publish)
    history += [e.event for e in decision.events]
    batch = share.record_failure(
        share.fold(history),
        attempt=1,
        reason="422",
        retryable=False,
        outcome_unknown=False,
        now=T0,
        policy=RetryPolicy(),
        random=0.5,
    )
    # When the batch's operations are derived
    # Then the publish row is removed
    assert ops_for(e.event for e in batch) == [Remove("publish")]


@settings(max_examples=100, deadline=None, database=None)
@given(history=share_histories())
def test_replaying_a_history_leaves_a_publish_row_exactly_while_the_share_can_still_be_published(
    history: list[Event],
) -> None:
    # Given any valid history
    # When its operations are applied in order to an empty schedule
    row = None
    for op in ops_for(history):
        if op.kind == "publish":
            row = op.due_at if isinstance(op, Upsert) else None
    state = share.fold(history)
    # Then a planned share, or one awaiting a retry, has a row due at its next time; settled ones have none.
    # (An attempt in flight keeps its row: the dispatcher's lease hands it out again if the worker dies.)
    if state.status == "planned":
        assert row == state.scheduled_at
    elif state.status == "failed" and state.retryable:
        assert row == state.next_attempt_at
    elif state.status in ("sent", "cancelled", "abandoned", "held") or state.status == "failed":
        assert row is None


def test_only_rows_due_before_the_dispatchers_next_look_wake_it() -> None:
    # Given the dispatcher looks at least every DISPATCHER_MAX_SLEEP, up to the longest lead ahead
    soon, hour = T0 + timedelta(seconds=2), T0 + timedelta(hours=1)
    # Then work due soon wakes it; a first look an hour on (every post sent writes one) does not
    assert wakes_dispatcher([Remove("publish"), Upsert("check_replies", soon)], T0)
    assert wakes_dispatcher([Wake("answer", T0)], T0)
    assert not wakes_dispatcher([Remove("publish"), Upsert("check_replies", hour)], T0)
    assert not wakes_dispatcher([Remove("publish")], T0)
    # And the horizon covers its longest sleep and its longest lead, nothing less
    edge = T0 + DISPATCHER_MAX_SLEEP + MAX_DISPATCH_LEAD
    assert wakes_dispatcher([Upsert("publish", edge - timedelta(milliseconds=1))], T0)
    assert not wakes_dispatcher([Upsert("publish", edge)], T0)
