"""The share lifecycle's decisions, case by case (history + command -> new events)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import NAMESPACE_URL, uuid4, uuid5

import pytest

from events.catalogue import (
    Event,
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
from scheduler.domain.plans import tasks_for
from scheduler.domain.retry import RetryPolicy
from scheduler.domain.share import Hold, Publish, ShareState, Skip, Wait
from scheduler.errors import ConflictError, NotFoundError
from tests.support.factories import (
    GRACE,
    PLAN,
    POLICY,
    SHARE_ID,
    T0,
    appended,
    planned,
    publish_decision,
    reply,
    sent_history,
)


def _sending(now: datetime = T0) -> list[Event]:
    """Planned, and the first attempt (with its tasks) appended at ``now``."""
    history: list[Event] = [planned()]
    return appended(history, publish_decision(share.fold(history), now))


def _fail(history: list[Event], **kw: Any) -> list[Event]:
    state = share.fold(history)
    args: dict[str, Any] = {
        "attempt": state.attempts,
        "reason": "503 from the server",
        "retryable": True,
        "outcome_unknown": False,
        "now": T0,
        "policy": POLICY,
        "random": 0.5,
    }
    args.update(kw)
    return appended(history, share.record_failure(state, **args))


# --- start_attempt ----------------------------------------------------------------------


def test_the_first_attempt_records_the_response_tasks_in_the_same_append() -> None:
    # Given a share planned for T0
    state = share.fold([planned()])
    # When it is delivered at its due time
    decision = share.start_attempt(state, now=T0, in_flight_grace=GRACE)
    # Then the decision publishes attempt 1 with the stable key, after appending the attempt and the plan's tasks
    assert isinstance(decision, Publish)
    assert decision.attempt == 1
    assert decision.reconcile is False
    assert decision.idempotency_key == share.idempotency_key(SHARE_ID)
    started, recorded = (e.event for e in decision.events)
    assert isinstance(started, ShareAttemptStarted)
    assert started.attempt == 1
    assert started.idempotency_key == decision.idempotency_key
    assert isinstance(recorded, ResponseTasksRecorded)
    assert recorded.tasks == tasks_for(SHARE_ID, PLAN)


def test_racing_deliveries_get_fresh_attempt_event_ids_but_the_same_task_ids() -> None:
    # Given the same state decided by two racing deliveries
    state = share.fold([planned()])
    # When both decide attempt 1
    first = publish_decision(state, T0)
    second = publish_decision(state, T0 + timedelta(seconds=1))
    # Then their event ids differ (the loser's append fails on the expected version
    # instead of passing for an idempotent retry), while the task ids inside are the same
    assert {e.event_id for e in first.events}.isdisjoint(e.event_id for e in second.events)
    first_tasks, second_tasks = first.events[1].event, second.events[1].event
    assert isinstance(first_tasks, ResponseTasksRecorded)
    assert isinstance(second_tasks, ResponseTasksRecorded)
    assert first_tasks.tasks == second_tasks.tasks


def test_other_decisions_have_deterministic_event_ids_so_a_retried_append_is_a_no_op() -> None:
    # Given an attempt in flight
    state = share.fold(_sending(T0))
    # When its outcome is decided twice (a retried append after a lost connection)
    first = share.record_sent(state, attempt=1, external_id="1", url=None, sent_at=T0, reconciled=False)
    second = share.record_sent(state, attempt=1, external_id="1", url=None, sent_at=T0, reconciled=False)
    # Then the event ids are the same, and the standard name-based ids recorded before
    # (uuid.uuid5: a retried append across an upgrade is still a no-op)
    assert [e.event_id for e in first] == [e.event_id for e in second]
    assert first[-1].event_id == uuid5(NAMESPACE_URL, f"followthrough:share:{SHARE_ID}:sent-1")


def test_a_delivery_before_the_due_time_is_skipped() -> None:
    # Given a share planned for T0
    state = share.fold([planned()])
    # When it is delivered a second early
    decision = share.start_attempt(state, now=T0 - timedelta(seconds=1), in_flight_grace=GRACE)
    # Then it is skipped as not due
    assert decision == Skip("not due yet")


def test_a_delivery_within_the_early_window_waits_for_the_due_time() -> None:
    # Given a share planned for T0 and a dispatcher that hands work out up to 2 s early
    state = share.fold([planned()])
    # When it is delivered 1.5 s early, then 3 s early
    near = share.start_attempt(
        state, now=T0 - timedelta(seconds=1.5), in_flight_grace=GRACE, early_window=timedelta(seconds=2)
    )
    far = share.start_attempt(
        state, now=T0 - timedelta(seconds=3), in_flight_grace=GRACE, early_window=timedelta(seconds=2)
    )
    # Then the near one waits until T0 and the far one is skipped
    assert near == Wait(T0)
    assert far == Skip("not due yet")


def test_a_retry_delivered_within_the_early_window_waits_for_its_next_attempt_time() -> None:
    # Given a transient failure with a retry scheduled
    state = share.fold(_fail(_sending(T0)))
    retry_at = state.next_attempt_at
    assert retry_at is not None
    # When the retry is delivered a moment early
    decision = share.start_attempt(
        state, now=retry_at - timedelta(milliseconds=250), in_flight_grace=GRACE, early_window=timedelta(seconds=1)
    )
    # Then it waits for the retry time
    assert decision == Wait(retry_at)


def test_a_delivery_for_an_unknown_share_is_skipped() -> None:
    # Given no history
    # When a delivery arrives
    decision = share.start_attempt(ShareState(), now=T0, in_flight_grace=GRACE)
    # Then it is skipped
    assert decision == Skip("unknown share")


@pytest.mark.parametrize("status", ["sent", "cancelled", "abandoned", "held"])
def test_a_delivery_for_a_settled_or_held_share_is_skipped(status: share.Status) -> None:
    # Given a share in a status that must not publish
    state = ShareState(share_id=SHARE_ID, planned=planned(), status=status, scheduled_at=T0)
    # When a delivery arrives
    decision = share.start_attempt(state, now=T0 + timedelta(hours=1), in_flight_grace=GRACE)
    # Then it is skipped naming the status
    assert decision == Skip(f"share is {status}")


def test_a_duplicate_delivery_while_an_attempt_is_in_flight_is_skipped() -> None:
    # Given an attempt started at T0
    state = share.fold(_sending(T0))
    # When a second delivery arrives within the in-flight grace
    decision = share.start_attempt(state, now=T0 + GRACE - timedelta(seconds=1), in_flight_grace=GRACE)
    # Then it is skipped
    assert decision == Skip("an attempt is in flight")


def test_a_delivery_after_a_crashed_attempt_reconciles_and_does_not_record_the_tasks_again() -> None:
    # Given an attempt started at T0 whose worker died (no outcome recorded)
    state = share.fold(_sending(T0))
    # When a delivery arrives after the grace
    decision = share.start_attempt(state, now=T0 + GRACE, in_flight_grace=GRACE)
    # Then attempt 2 reconciles first, with the same key, and carries no second ResponseTasksRecorded
    assert isinstance(decision, Publish)
    assert decision.attempt == 2
    assert decision.reconcile is True
    assert decision.idempotency_key == share.idempotency_key(SHARE_ID)
    assert [e.event.type_name for e in decision.events] == ["ShareAttemptStarted"]


def test_a_retry_is_skipped_until_its_backoff_is_over_then_publishes() -> None:
    # Given a transient failure at T0 with a retry scheduled
    history = _fail(_sending(T0))
    state = share.fold(history)
    assert state.next_attempt_at is not None
    # When delivered before, then at, the next attempt time
    early = share.start_attempt(state, now=state.next_attempt_at - timedelta(seconds=1), in_flight_grace=GRACE)
    due = share.start_attempt(state, now=state.next_attempt_at, in_flight_grace=GRACE)
    # Then the early one is skipped and the due one publishes attempt 2 without reconciling
    assert early == Skip("not due yet")
    assert isinstance(due, Publish)
    assert (due.attempt, due.reconcile) == (2, False)


def test_a_retry_after_an_outcome_unknown_failure_reconciles() -> None:
    # Given a timeout after the request left (outcome unknown)
    state = share.fold(_fail(_sending(T0), outcome_unknown=True))
    assert state.next_attempt_at is not None
    # When the retry is delivered
    decision = share.start_attempt(state, now=state.next_attempt_at, in_flight_grace=GRACE)
    # Then it looks for the post before posting
    assert isinstance(decision, Publish)
    assert decision.reconcile is True


def test_a_permanently_failed_share_is_never_attempted_again() -> None:
    # Given a permanent failure
    state = share.fold(_fail(_sending(T0), retryable=False))
    # When a delivery arrives much later
    decision = share.start_attempt(state, now=T0 + timedelta(days=1), in_flight_grace=GRACE)
    # Then it is skipped
    assert decision == Skip("share failed permanently")


def test_a_share_too_late_under_a_hold_policy_is_held_instead_of_published() -> None:
    # Given an account that holds posts more than 10 minutes late
    state = share.fold([planned(late_policy="hold", max_lateness_seconds=600)])
    # When the share is delivered 11 minutes late
    decision = share.start_attempt(state, now=T0 + timedelta(minutes=11), in_flight_grace=GRACE)
    # Then it is held with its lateness, and nothing is published
    assert isinstance(decision, Hold)
    (held,) = (e.event for e in decision.events)
    assert isinstance(held, ShareHeld)
    assert held.lateness_ms == 660_000


def test_a_share_within_the_hold_limit_is_published() -> None:
    # Given an account that holds posts more than 10 minutes late
    state = share.fold([planned(late_policy="hold", max_lateness_seconds=600)])
    # When it is delivered exactly 10 minutes late
    decision = share.start_attempt(state, now=T0 + timedelta(minutes=10), in_flight_grace=GRACE)
    # Then it is published
    assert isinstance(decision, Publish)


def test_a_held_share_rescheduled_publishes_at_its_new_time() -> None:
    # Given a held share
    history: list[Event] = [planned(late_policy="hold", max_lateness_seconds=60)]
    now = T0 + timedelta(hours=1)
    history = appended(history, share.start_attempt(share.fold(history), now=now, in_flight_grace=GRACE))
    assert share.fold(history).status == "held"
    # When a person reschedules it to now
    history = appended(history, share.reschedule(share.fold(history), scheduled_at=now))
    # Then a delivery now publishes it with its tasks
    decision = share.start_attempt(share.fold(history), now=now, in_flight_grace=GRACE)
    assert isinstance(decision, Publish)
    assert any(isinstance(e.event, ResponseTasksRecorded) for e in decision.events)


# --- record_sent ------------------------------------------------------------------------


def test_recording_sent_measures_lateness_from_the_scheduled_time() -> None:
    # Given an attempt in flight for a share due at T0
    state = share.fold(_sending(T0))
    # When the channel accepted the post 2.5 s late
    (sent,) = (
        e.event
        for e in share.record_sent(
            state,
            attempt=1,
            external_id="42",
            url="https://x/42",
            sent_at=T0 + timedelta(seconds=2.5),
            reconciled=False,
        )
    )
    # Then ShareSent carries the post and 2500 ms of lateness
    assert isinstance(sent, ShareSent)
    assert (sent.external_id, sent.url, sent.lateness_ms, sent.scheduled_at) == ("42", "https://x/42", 2500, T0)


def test_recording_sent_twice_records_it_once() -> None:
    # Given a sent share
    state = share.fold(sent_history())
    # When the outcome is recorded again (a duplicate delivery found the same post)
    again = share.record_sent(state, attempt=2, external_id="109", url=None, sent_at=T0, reconciled=True)
    # Then nothing is appended
    assert again == ()


def test_a_second_post_for_a_sent_share_is_recorded_as_a_duplicate_once() -> None:
    # Given a sent share (post 109)
    state = share.fold(sent_history())
    # When a late attempt reports another post
    extra = share.record_sent(state, attempt=2, external_id="42", url="https://example.social/@team/42",
                              sent_at=T0 + timedelta(seconds=3), reconciled=False, now=T0 + timedelta(seconds=4))
    # Then the extra post is recorded, not dropped, and the share stays sent with its first post
    assert [e.event.type_name for e in extra] == ["DuplicatePosted"]
    after = share.fold((e.event for e in extra), state)
    assert after.status == "sent"
    assert after.sent is not None
    assert after.sent.external_id == "109"
    assert after.duplicates == ("42",)
    # And reporting it again records nothing more; its removal is recorded once
    assert share.record_sent(after, attempt=2, external_id="42", url=None, sent_at=T0, reconciled=False) == ()
    removed = share.duplicate_removed(after, external_id="42", now=T0)
    assert [e.event.type_name for e in removed] == ["DuplicateRemoved"]
    assert share.duplicate_removed(share.fold((e.event for e in removed), after), external_id="42", now=T0) == ()


def test_recording_sent_without_recorded_tasks_is_refused() -> None:
    # Given a state in which no response tasks were recorded (a corrupted or hand-made history)
    history: list[Event] = [planned(), ShareAttemptStarted(attempt=1, started_at=T0, idempotency_key="k")]
    # When the share would be recorded as sent
    # Then the invariant refuses it
    with pytest.raises(ConflictError, match="response tasks"):
        share.record_sent(share.fold(history), attempt=1, external_id="1", url=None, sent_at=T0, reconciled=False)


# --- record_failure ---------------------------------------------------------------------


def test_a_transient_failure_schedules_a_retry_with_backoff() -> None:
    # Given an attempt in flight
    history = _sending(T0)
    # When it fails transiently with random 0.5 (no jitter offset)
    (failed,) = _fail(history)[len(history) :]
    # Then a retry is scheduled one base delay later
    assert isinstance(failed, ShareFailed)
    assert failed.retryable
    assert failed.next_attempt_at == T0 + POLICY.base


def test_a_permanent_failure_cancels_the_tasks_without_abandoning() -> None:
    # Given an attempt in flight
    history = _sending(T0)
    # When it fails permanently
    failed, cancelled = _fail(history, retryable=False)[len(history) :]
    # Then the failure is not retryable and every task is cancelled
    assert isinstance(failed, ShareFailed)
    assert not failed.retryable
    assert failed.next_attempt_at is None
    assert isinstance(cancelled, ResponseTasksCancelled)
    assert set(cancelled.task_ids) == {t.task_id for t in tasks_for(SHARE_ID, PLAN)}


def test_the_last_failed_attempt_abandons_the_share_and_cancels_its_tasks() -> None:
    # Given a policy allowing one attempt
    history = _sending(T0)
    # When that attempt fails transiently
    new = _fail(history, policy=RetryPolicy(max_attempts=1))[len(history) :]
    # Then the share fails, is abandoned, and its tasks are cancelled
    assert [e.type_name for e in new] == ["ShareFailed", "ShareAbandoned", "ResponseTasksCancelled"]
    abandoned = new[1]
    assert isinstance(abandoned, ShareAbandoned)
    assert "last error: 503 from the server" in abandoned.reason


def test_a_failure_is_ignored_when_no_attempt_is_in_flight() -> None:
    # Given a sent share
    state = share.fold(sent_history())
    # When a late failure of the same attempt arrives
    late = share.record_failure(
        state, attempt=1, reason="timeout", retryable=True, outcome_unknown=True, now=T0, policy=POLICY, random=0.1
    )
    # Then nothing is appended
    assert late == ()


def test_a_rate_limit_retry_waits_at_least_the_channels_retry_after() -> None:
    # Given an attempt in flight
    history = _sending(T0)
    # When it is rate limited with Retry-After: 15 min
    (failed,) = _fail(history, retry_after=timedelta(minutes=15))[len(history) :]
    # Then the retry is no earlier than 15 minutes
    assert isinstance(failed, ShareFailed)
    assert failed.next_attempt_at == T0 + timedelta(minutes=15)


# --- cancel and reschedule --------------------------------------------------------------


def test_cancelling_a_planned_share_cancels_it_without_tasks_to_cancel() -> None:
    # Given a planned share (no tasks recorded yet)
    state = share.fold([planned()])
    # When it is cancelled
    (cancelled,) = (e.event for e in share.cancel(state, reason="typo"))
    # Then one ShareCancelled is appended
    assert cancelled == ShareCancelled(reason="typo")


def test_cancelling_a_share_awaiting_a_retry_cancels_its_tasks() -> None:
    # Given a share that failed transiently and awaits a retry
    state = share.fold(_fail(_sending(T0)))
    # When it is cancelled
    new = [e.event for e in share.cancel(state, reason="no longer relevant")]
    # Then the share and its tasks are cancelled
    assert [e.type_name for e in new] == ["ShareCancelled", "ResponseTasksCancelled"]
    after = share.fold(new, state)
    assert all(t.status(T0) == "cancelled" for t in after.tasks)


def test_cancelling_twice_is_the_same_as_once() -> None:
    # Given a cancelled share
    history = appended([planned()], share.cancel(share.fold([planned()]), reason="x"))
    # When it is cancelled again
    # Then nothing more is appended
    assert share.cancel(share.fold(history), reason="x") == ()


@pytest.mark.parametrize(
    "history",
    [pytest.param(sent_history(), id="sent"), pytest.param(_sending(T0), id="sending")],
)
def test_a_sent_or_sending_share_cannot_be_cancelled(history: list[Event]) -> None:
    # Given a share already sent or being sent
    # When it is cancelled
    # Then the request conflicts
    with pytest.raises(ConflictError, match="cannot be cancelled"):
        share.cancel(share.fold(history), reason="too late")


def test_an_unknown_share_cannot_be_cancelled_or_rescheduled() -> None:
    # Given no share
    # When it is cancelled or rescheduled
    # Then it is not found
    with pytest.raises(NotFoundError):
        share.cancel(ShareState(), reason="x")
    with pytest.raises(NotFoundError):
        share.reschedule(ShareState(), scheduled_at=T0)


def test_rescheduling_a_planned_share_moves_its_due_time() -> None:
    # Given a planned share
    state = share.fold([planned()])
    # When it is rescheduled an hour later
    new = share.reschedule(state, scheduled_at=T0 + timedelta(hours=1))
    # Then the new time is recorded and a delivery at the old time is not due
    assert [e.event for e in new] == [ShareRescheduled(scheduled_at=T0 + timedelta(hours=1))]
    after = share.fold((e.event for e in new), state)
    assert share.start_attempt(after, now=T0, in_flight_grace=GRACE) == Skip("not due yet")


def test_a_sent_share_cannot_be_rescheduled_and_the_error_names_the_field() -> None:
    # Given a sent share
    # When it is rescheduled
    # Then the conflict names scheduled_at
    with pytest.raises(ConflictError) as caught:
        share.reschedule(share.fold(sent_history()), scheduled_at=T0)
    assert caught.value.field == "scheduled_at"


# --- tasks and replies ------------------------------------------------------------------


def test_completing_a_task_twice_is_the_same_as_once() -> None:
    # Given a sent share whose first task was completed
    state = share.fold(sent_history())
    task_id = state.tasks[0].task_id
    state = share.fold((e.event for e in share.complete_task(state, task_id=task_id, now=T0, by="alice")), state)
    # When it is completed again
    # Then nothing is appended
    assert share.complete_task(state, task_id=task_id, now=T0, by="bob") == ()


def test_a_task_cannot_be_completed_before_its_share_is_sent() -> None:
    # Given a share whose attempt is in flight
    state = share.fold(_sending(T0))
    # When its task is completed
    # Then the request conflicts
    with pytest.raises(ConflictError, match="only after its share is sent"):
        share.complete_task(state, task_id=state.tasks[0].task_id, now=T0, by="alice")


def test_a_cancelled_task_cannot_be_completed() -> None:
    # Given a permanently failed share (its tasks cancelled)
    state = share.fold(_fail(_sending(T0), retryable=False))
    # When a task is completed
    # Then the request conflicts
    with pytest.raises(ConflictError, match="cancelled"):
        share.complete_task(state, task_id=state.tasks[0].task_id, now=T0, by="alice")


def test_an_unknown_task_is_not_found() -> None:
    # Given a sent share
    # When a task id it does not hold is completed
    # Then it is not found
    with pytest.raises(NotFoundError):
        share.complete_task(share.fold(sent_history()), task_id=uuid4(), now=T0, by="alice")


def test_replies_already_received_are_not_recorded_again() -> None:
    # Given a sent share with reply r1 recorded
    state = share.fold(sent_history())
    state = share.fold((e.event for e in share.receive_replies(state, [reply("r1")])), state)
    # When a poll returns r1 again, r2, and r2 a second time
    new = share.receive_replies(state, [reply("r1"), reply("r2"), reply("r2")])
    # Then only r2 is recorded, under an id derived from the share and the reply
    assert [e.event for e in new] == [reply("r2")]
    assert new[0].event_id == share.event_id(SHARE_ID, "reply-r2")


def test_replies_for_an_unknown_share_are_dropped() -> None:
    # Given no share
    # When replies arrive
    # Then nothing is appended
    assert share.receive_replies(ShareState(), [reply("r1")]) == ()


def test_response_tasks_reads_back_the_recorded_tasks() -> None:
    # Given a sent share
    state = share.fold(sent_history())
    # When its response tasks are read
    # Then they are the tasks of its plan
    assert share.response_tasks(state) == tasks_for(SHARE_ID, PLAN)
