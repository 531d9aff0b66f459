"""Folding a share's events into its state, and a task's status over time."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from events.catalogue import Event, ShareFailed, ShareRescheduled
from scheduler.domain import share
from scheduler.domain.share import ShareState, TaskState
from tests.support.factories import GRACE, PLAN, POLICY, SHARE_ID, T0, planned, reply, sent_history, share_histories

FAST = settings(max_examples=150, deadline=None)


# --- replaying ----------------------------------------------------------------------------


@FAST
@given(history=share_histories(), data=st.data())
def test_replaying_any_prefix_then_the_rest_equals_replaying_all(history: list[Event], data: st.DataObject) -> None:
    # Given a valid history and any split point
    split = data.draw(st.integers(0, len(history)), label="split")
    # When the prefix is folded, then the rest is folded onto that state
    resumed = share.fold(history[split:], share.fold(history[:split]))
    # Then the result is exactly the state of folding everything at once
    assert resumed == share.fold(history)


@FAST
@given(history=share_histories())
def test_the_folded_version_counts_every_event_of_the_history(history: list[Event]) -> None:
    # Given a valid history
    # When it is folded
    state = share.fold(history)
    # Then the state's version is the stream version the store would report, and the share exists
    assert state.version == len(history)
    assert state.exists
    assert state.share_id == history[0].share_id  # type: ignore[attr-defined]


@FAST
@given(history=share_histories())
def test_a_generated_history_never_sends_before_recording_its_tasks(history: list[Event]) -> None:
    # Given a valid history built only through the decisions
    names = [e.type_name for e in history]
    # Then ShareSent, if present, is single and comes after ResponseTasksRecorded
    assert names.count("ShareSent") <= 1
    assert names.count("ResponseTasksRecorded") <= 1
    if "ShareSent" in names:
        assert names.index("ResponseTasksRecorded") < names.index("ShareSent")


def test_folding_nothing_gives_a_share_that_does_not_exist() -> None:
    # Given no events
    # When they are folded
    state = share.fold([])
    # Then the share does not exist and has version 0
    assert state == ShareState()
    assert not state.exists
    assert state.version == 0


def test_folding_a_sent_share_sets_each_task_due_from_the_sent_time() -> None:
    # Given a share sent 10 minutes late
    sent_at = T0 + timedelta(minutes=10)
    # When its history is folded
    state = share.fold(sent_history(sent_at=sent_at))
    # Then it is sent, its tasks are due their offsets after the sent time, and nothing is open for retry
    assert state.status == "sent"
    assert state.sent is not None
    assert state.sent.lateness_ms == 600_000
    assert [t.due_at for t in state.tasks] == [sent_at + timedelta(seconds=s.after_seconds) for s in PLAN]
    assert state.next_attempt_at is None


def test_a_reschedule_releases_a_held_share_and_keeps_other_statuses() -> None:
    # Given a held share and a planned share
    held = ShareState(share_id=SHARE_ID, planned=planned(), status="held")
    plain = ShareState(share_id=SHARE_ID, planned=planned(), status="planned")
    later = T0 + timedelta(hours=2)
    # When each is rescheduled
    # Then the held one is planned again and both carry the new time
    assert share.evolve(held, ShareRescheduled(scheduled_at=later)).status == "planned"
    assert share.evolve(held, ShareRescheduled(scheduled_at=later)).scheduled_at == later
    assert share.evolve(plain, ShareRescheduled(scheduled_at=later)).status == "planned"


def test_a_failure_without_a_next_attempt_is_not_retryable() -> None:
    # Given a share whose attempt is in flight
    state = ShareState(share_id=SHARE_ID, planned=planned(), status="sending", attempts=1)
    # When a retryable failure without a next attempt time is folded (the policy gave up)
    failed = share.evolve(state, ShareFailed(attempt=1, failed_at=T0, reason="503", retryable=True))
    # Then the share is failed and not retryable
    assert failed.status == "failed"
    assert not failed.retryable


def test_replies_are_kept_in_the_order_they_arrived() -> None:
    # Given a sent share
    state = share.fold(sent_history())
    # When two replies are folded
    state = share.fold([reply("r1"), reply("r2")], state)
    # Then both ids are kept, in order
    assert state.replies == ("r1", "r2")


# --- task status over time --------------------------------------------------------------


def _task(**changes: Any) -> TaskState:
    return replace(TaskState(task_id=SHARE_ID, kind="check_replies", owner="alice", after_seconds=3600), **changes)


def test_a_task_is_pending_before_its_share_is_sent() -> None:
    # Given a task recorded with an attempt, its share not yet sent
    task = _task()
    # When asked for its status at any time
    # Then it is pending
    assert task.status(T0) == "pending"
    assert task.status(T0 + timedelta(days=365)) == "pending"


def test_a_task_is_open_before_its_due_time_and_overdue_from_it() -> None:
    # Given a task due at T0 + 1 h
    due = T0 + timedelta(hours=1)
    task = _task(due_at=due)
    # When asked just before, at, and after its due time
    # Then it is open, then overdue at the due time itself, then still overdue
    assert task.status(due - timedelta(microseconds=1)) == "open"
    assert task.status(due) == "overdue"
    assert task.status(due + timedelta(days=3)) == "overdue"


def test_a_completed_task_is_done_whenever_it_was_completed() -> None:
    # Given a task completed late and one completed early
    due = T0 + timedelta(hours=1)
    late = _task(due_at=due, completed_at=due + timedelta(hours=5))
    early = _task(due_at=due, completed_at=due - timedelta(minutes=5))
    # When asked for their status long after
    # Then both are done
    assert late.status(due + timedelta(days=1)) == "done"
    assert early.status(due - timedelta(minutes=1)) == "done"


def test_a_cancelled_task_is_cancelled_even_when_overdue() -> None:
    # Given a cancelled task whose due time passed
    task = _task(due_at=T0, cancelled=True)
    # When asked for its status
    # Then it is cancelled, never overdue
    assert task.status(T0 + timedelta(days=1)) == "cancelled"


def test_task_statuses_follow_a_share_through_sending_and_completion() -> None:
    # Given a share planned and its attempt started (tasks recorded, not yet sent)
    events: list[Event] = [planned()]
    decision = share.start_attempt(share.fold(events), now=T0, in_flight_grace=GRACE)
    assert isinstance(decision, share.Publish)
    events += [e.event for e in decision.events]
    first, second = share.fold(events).tasks
    # Then both tasks are pending
    assert first.status(T0) == second.status(T0) == "pending"
    # When the share is sent at T0 and one hour passes
    events += [
        e.event
        for e in share.record_sent(
            share.fold(events), attempt=1, external_id="1", url=None, sent_at=T0, reconciled=False
        )
    ]
    state = share.fold(events)
    # Then the 1 h check is overdue at exactly 1 h and the 24 h check is open
    one_hour = T0 + timedelta(hours=1)
    assert [t.status(one_hour) for t in state.tasks] == ["overdue", "open"]
    # When the 1 h check is completed
    events += [e.event for e in share.complete_task(state, task_id=first.task_id, now=one_hour, by="alice")]
    # Then it is done and the other is still open
    assert [t.status(one_hour) for t in share.fold(events).tasks] == ["done", "open"]


def test_tasks_of_an_abandoned_share_are_cancelled() -> None:
    # Given a share whose every attempt failed until the policy gave up
    events: list[Event] = [planned()]
    now = T0
    for attempt in range(1, POLICY.max_attempts + 1):
        decision = share.start_attempt(share.fold(events), now=now, in_flight_grace=GRACE)
        assert isinstance(decision, share.Publish)
        assert decision.attempt == attempt
        events += [e.event for e in decision.events]
        events += [
            e.event
            for e in share.record_failure(
                share.fold(events),
                attempt=attempt,
                reason="503",
                retryable=True,
                outcome_unknown=False,
                now=now,
                policy=POLICY,
                random=0.5,
            )
        ]
        now += timedelta(days=1)
    # When the history is folded
    state = share.fold(events)
    # Then the share is abandoned and every task is cancelled
    assert state.status == "abandoned"
    assert [t.status(now) for t in state.tasks] == ["cancelled", "cancelled"]
