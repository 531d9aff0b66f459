"""The share lifecycle under duplicate deliveries, crashes, failures, retries and time.

The model (``lifecycle_model.py``) runs the pure decisions the way the worker does, one
step per rule, so Hypothesis interleaves everything that can happen to a share. The
mutant tests below swap a broken decision in and check that the machine notices: a
property test that cannot fail proves nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from scheduler.domain import share
from tests.support.lifecycle_model import ShareLifecycle

LIFECYCLE = settings(
    max_examples=250,
    stateful_step_count=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# Looking for a counterexample only: no shrinking, stop at the first failure.
HUNT = settings(LIFECYCLE, max_examples=3000, phases=[Phase.generate], report_multiple_bugs=False)


def test_no_share_is_posted_twice_or_published_before_its_tasks_whatever_happens() -> None:
    # Given any interleaving of deliveries, crashes, channel failures, API commands and time
    # When the worker's steps run through the pure decisions
    # Then every invariant of ShareLifecycle holds after every step
    run_state_machine_as_test(ShareLifecycle, settings=LIFECYCLE)


# --- mutants: the machine must catch each of these broken decisions ----------------------

_start_attempt = share.start_attempt
_record_failure = share.record_failure


def _publish_without_tasks(*args: Any, **kw: Any) -> share.AttemptDecision:
    decision = _start_attempt(*args, **kw)
    if isinstance(decision, share.Publish):
        kept = tuple(e for e in decision.events if e.event.type_name != "ResponseTasksRecorded")
        return replace(decision, events=kept)
    return decision


def _never_reconcile(*args: Any, **kw: Any) -> share.AttemptDecision:
    decision = _start_attempt(*args, **kw)
    return replace(decision, reconcile=False) if isinstance(decision, share.Publish) else decision


def _a_new_key_per_attempt(*args: Any, **kw: Any) -> share.AttemptDecision:
    decision = _start_attempt(*args, **kw)
    if isinstance(decision, share.Publish):
        return replace(decision, idempotency_key=f"{decision.idempotency_key}-{decision.attempt}")
    return decision


def _publish_again_after_sent(state: share.ShareState, **kw: Any) -> share.AttemptDecision:
    return _start_attempt(replace(state, status="failed") if state.status == "sent" else state, **kw)


def _give_up_without_cancelling_tasks(*args: Any, **kw: Any) -> tuple[Any, ...]:
    return tuple(e for e in _record_failure(*args, **kw) if e.event.type_name != "ResponseTasksCancelled")


class EndToEnd(ShareLifecycle):
    """Judged by the end-to-end invariants only (the channel, the log, the tasks)."""

    check_decisions = False


MUTANTS: dict[str, tuple[str, Callable[..., Any], type[ShareLifecycle], str]] = {
    "publish without recording the tasks": (
        "start_attempt",
        _publish_without_tasks,
        EndToEnd,
        "channel was called before ResponseTasksRecorded",
    ),
    "a new idempotency key per attempt": ("start_attempt", _a_new_key_per_attempt, EndToEnd, "two posts for one share"),
    "publish again after sent": (
        "start_attempt",
        _publish_again_after_sent,
        EndToEnd,
        "ShareSent recorded twice|disagrees with the log",
    ),
    "give up without cancelling the tasks": (
        "record_failure",
        _give_up_without_cancelling_tasks,
        EndToEnd,
        "given up but its tasks stay open",
    ),
    # With a channel that dedupes forever, skipping reconciliation does no visible harm;
    # the decision check is what catches it.
    "never reconcile after a crash": (
        "start_attempt",
        _never_reconcile,
        ShareLifecycle,
        "must look for the post first",
    ),
}


@pytest.mark.parametrize("mutant", list(MUTANTS))
def test_the_lifecycle_machine_catches_a_broken_decision(mutant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a decision broken on purpose
    name, broken, machine, complaint = MUTANTS[mutant]
    monkeypatch.setattr(share, name, broken)
    # When the lifecycle machine runs against it
    # Then the invariant guarding that behaviour fails
    with pytest.raises(AssertionError, match=complaint):
        run_state_machine_as_test(machine, settings=HUNT)


def test_the_end_to_end_machine_passes_on_the_real_decisions() -> None:
    # Given the real decisions (so the mutants above fail for their mutation, not for the harness)
    # When the end-to-end-only machine runs
    # Then it passes
    run_state_machine_as_test(EndToEnd, settings=settings(LIFECYCLE, max_examples=100))
