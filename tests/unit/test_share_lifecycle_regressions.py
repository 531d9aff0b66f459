"""Regressions: bugs once found in the share lifecycle, each pinned by a test.

1. a failed look-up forgot that an earlier attempt may have posted;
2. a superseded attempt's late failure was recorded while a newer attempt was in flight;
3. a post that landed after its share was given up left every response task cancelled.

The strict machine at the bottom keeps all three fixed for any interleaving.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from events.catalogue import Event
from scheduler.domain import share
from tests.support.factories import GRACE, PLAN, POLICY, T0, appended, planned, publish_decision
from tests.support.lifecycle_model import Outcome, ShareLifecycle


def _fail(
    history: list[Event], *, attempt: int, now: datetime, retryable: bool = True, unknown: bool = False
) -> list[Event]:
    return appended(
        history,
        share.record_failure(
            share.fold(history),
            attempt=attempt,
            reason="timeout" if unknown else "503",
            retryable=retryable,
            outcome_unknown=unknown,
            now=now,
            policy=POLICY,
            random=0.5,
        ),
    )


# --- bug 1: an unknown outcome is forgotten when the reconciling attempt fails -------------


def test_a_failed_look_up_does_not_forget_that_an_earlier_attempt_may_have_posted() -> None:
    # Given attempt 1 timed out after the request left (the post may exist)
    history = appended([planned()], publish_decision(share.fold([planned()]), T0))
    history = _fail(history, attempt=1, now=T0, unknown=True)
    # And attempt 2 reconciled, but looking for the post failed with a 503 (nothing learned)
    retry_at = share.fold(history).next_attempt_at
    assert retry_at is not None
    attempt_2 = publish_decision(share.fold(history), retry_at)
    assert attempt_2.reconcile
    history = _fail(appended(history, attempt_2), attempt=2, now=retry_at, unknown=False)
    # When attempt 3 is decided
    state = share.fold(history)
    assert state.next_attempt_at is not None
    attempt_3 = publish_decision(state, state.next_attempt_at)
    # Then it must still look for the post first: attempt 1's outcome is still unknown
    assert attempt_3.reconcile


def test_a_failed_look_up_after_a_crash_does_not_forget_the_crashed_attempt() -> None:
    # Given attempt 1's worker died after appending its attempt (it may have posted)
    history = appended([planned()], publish_decision(share.fold([planned()]), T0))
    # And attempt 2 reconciled after the grace, but the look-up failed with a 503
    attempt_2 = publish_decision(share.fold(history), T0 + GRACE)
    assert attempt_2.reconcile
    history = _fail(appended(history, attempt_2), attempt=2, now=T0 + GRACE)
    # When attempt 3 is decided
    state = share.fold(history)
    assert state.next_attempt_at is not None
    # Then it must still look for the post first
    assert publish_decision(state, state.next_attempt_at).reconcile


def test_a_channel_that_forgets_idempotency_keys_gets_no_second_post_after_a_failed_look_up() -> None:
    # Given a channel that remembers idempotency keys for one hour (as Mastodon does)
    machine = ShareLifecycle()
    machine.channel.memory = timedelta(hours=1)
    machine.find_may_fail = True
    machine.plan_share(PLAN, hold=False, max_lateness=0)
    # And attempt 1 timed out after the post was made
    machine.deliver(3, Outcome.TIMEOUT_POSTED, 0.5, timedelta(0))
    # And attempt 2's look-up for the post failed (503)
    machine.time_passes_until_the_share_is_due()
    machine.deliver(3, Outcome.TRANSIENT, 0.5, timedelta(0))
    # When attempt 3 runs more than an hour after the first post
    machine.time_passes(7200)
    machine.deliver(3, Outcome.OK, 0.5, timedelta(0))
    # Then the channel still holds one post
    machine.the_channel_never_holds_two_posts_for_one_share()


# --- bug 2: the outcome of a superseded attempt is applied over a newer one ---------------


def _two_attempts_in_flight() -> list[Event]:
    """Attempt 1 started at T0 and stalled past the grace; attempt 2 started (reconciling)."""
    history = appended([planned()], publish_decision(share.fold([planned()]), T0))
    return appended(history, publish_decision(share.fold(history), T0 + GRACE))


def test_the_failure_of_a_superseded_attempt_is_ignored_while_a_newer_attempt_is_in_flight() -> None:
    # Given attempt 1 stalled and attempt 2 is in flight
    history = _two_attempts_in_flight()
    # When attempt 1's 503 is finally recorded
    late = share.record_failure(
        share.fold(history),
        attempt=1,
        reason="503",
        retryable=True,
        outcome_unknown=False,
        now=T0 + GRACE + timedelta(seconds=1),
        policy=POLICY,
        random=0.5,
    )
    # Then nothing is appended: attempt 2 owns the share now
    # with reconcile=False while attempt 2 may be posting)
    assert late == ()


def test_a_share_that_went_out_keeps_its_tasks_after_a_stale_permanent_failure() -> None:
    # Given attempt 1 stalled and attempt 2 is in flight
    history = _two_attempts_in_flight()
    # When attempt 1's permanent failure arrives (its tasks get cancelled) and then attempt 2 succeeds
    history = _fail(history, attempt=1, now=T0 + GRACE, retryable=False)
    history = appended(
        history,
        share.record_sent(
            share.fold(history), attempt=2, external_id="9", url=None, sent_at=T0 + GRACE, reconciled=False
        ),
    )
    # Then the share is sent and its response tasks are live
    state = share.fold(history)
    assert state.status == "sent"
    assert [t.status(T0) for t in state.tasks] == ["open", "open"]


def test_a_stale_failure_does_not_lead_to_a_second_post_on_a_forgetting_channel() -> None:
    # Given a channel that remembers idempotency keys for one hour (as Mastodon does)
    machine = ShareLifecycle()
    machine.channel.memory = timedelta(hours=1)
    machine.plan_share(PLAN, hold=False, max_lateness=0)
    # And delivery 1 appended attempt 1 and stalled past the grace
    machine.deliver(1, Outcome.OK, 0.5, timedelta(0))
    machine.time_passes_until_the_share_is_due()
    # And delivery 2 appended attempt 2 and posted, then its worker died before recording it
    machine.deliver(2, Outcome.OK, 0.5, timedelta(0))
    assert machine.channel.created == ["post-1"]
    machine.crash(1)
    # And delivery 1 finally got a 503 and recorded it
    machine.advance(0, 2, Outcome.TRANSIENT, 0.5, timedelta(0))
    # When a retry runs two hours later
    machine.time_passes(7200)
    machine.deliver(3, Outcome.OK, 0.5, timedelta(0))
    # Then the channel still holds one post
    machine.the_channel_never_holds_two_posts_for_one_share()


# --- bug 3: a post that went out after its share was given up has no live tasks ---------



def test_a_stalled_attempt_that_posts_after_the_share_failed_permanently_revives_its_tasks() -> None:
    # Given attempt 1 stalled past the grace and attempt 2 (its own, current attempt) failed permanently
    history = _two_attempts_in_flight()
    history = _fail(history, attempt=2, now=T0 + GRACE, retryable=False)
    assert all(t.cancelled for t in share.fold(history).tasks)
    # When attempt 1's post lands after all and is recorded
    history = appended(
        history,
        share.record_sent(
            share.fold(history), attempt=1, external_id="9", url=None, sent_at=T0 + GRACE, reconciled=False
        ),
    )
    # Then the share is sent and its response tasks are live again: the post is out, so is the work
    state = share.fold(history)
    assert state.status == "sent"
    assert not any(t.cancelled for t in state.tasks)


def test_a_stalled_attempt_that_posts_after_the_share_was_cancelled_revives_its_tasks() -> None:
    # Given attempt 1 stalled, attempt 2 failed transiently, and a person cancelled the share
    history = _two_attempts_in_flight()
    history = _fail(history, attempt=2, now=T0 + GRACE)
    history = appended(history, share.cancel(share.fold(history), reason="not needed"))
    # When attempt 1's post lands after all and is recorded
    history = appended(
        history,
        share.record_sent(
            share.fold(history), attempt=1, external_id="9", url=None, sent_at=T0 + GRACE, reconciled=False
        ),
    )
    # Then the share is sent with live tasks
    state = share.fold(history)
    assert state.status == "sent"
    assert not any(t.cancelled for t in state.tasks)


# --- the strict machine ----------------------------------------------------------------


class StrictLifecycle(ShareLifecycle):
    strict = True
    find_may_fail = True


def test_no_delivery_publishes_blind_while_the_channel_may_hold_an_unrecorded_post() -> None:
    # Given look-ups that may fail and the strict guarantees
    # When any interleaving runs
    # Then a delivery reconciles whenever a post may exist, and a sent share keeps its tasks
    run_state_machine_as_test(
        StrictLifecycle,
        settings=settings(max_examples=150, stateful_step_count=40, deadline=None, database=None),
    )
