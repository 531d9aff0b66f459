"""A model of the execution path around the pure share decisions, for stateful property tests.

It plays what ``workers/execution.py`` does (load -> decide -> append attempt + tasks ->
call the channel -> append the outcome) with each step a separate rule, so Hypothesis can
interleave duplicate deliveries of the "publish now" message, crashes between any two
steps, channel failures, API commands and time passing. Pieces:

* ``FakeLog``: one stream as a list, with the store's append contract (expected version,
  ``ConcurrencyError``; re-appending stored event ids is a success that writes nothing,
  so the executor checks how many events its attempt append wrote).
* ``FakeChannel``: posts keyed by idempotency key (Mastodon's ``Idempotency-Key``), so a
  repeat returns the same post; it counts the posts really created.
* ``ShareLifecycle``: the state machine; its invariants are the lifecycle's guarantees.

The decisions are called through the ``share`` module so that tests can swap a broken
decision in and check that the machine catches it.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from events.catalogue import (
    Event,
    ResponseReceived,
    ResponseStep,
    ResponseTasksRecorded,
    ShareAbandoned,
    ShareAttemptStarted,
    ShareFailed,
    SharePlanned,
    ShareSent,
)
from events.errors import ConcurrencyError, PartialDuplicateError
from events.records import NewEvent
from scheduler.domain import share
from scheduler.domain.plans import tasks_for
from scheduler.domain.retry import RetryPolicy
from scheduler.errors import ConflictError, NotFoundError
from tests.support.factories import GRACE, SHARE_ID, T0, planned, plans


class FakeLog:
    """One stream of the event log, with the real store's append contract."""

    def __init__(self) -> None:
        self.records: list[NewEvent] = []
        self._folded = share.ShareState()

    @property
    def events(self) -> list[Event]:
        return [r.event for r in self.records]

    @property
    def version(self) -> int:
        return len(self.records)

    def state(self) -> share.ShareState:
        """The fold of the stream, caught up incrementally (fold(prefix) then the rest)."""
        if self._folded.version < self.version:
            self._folded = share.fold(self.events[self._folded.version :], self._folded)
        return self._folded

    def append(self, batch: tuple[NewEvent, ...], *, expected_version: int) -> int:
        """Append atomically; return how many events were written (0: an idempotent repeat)."""
        stored = {r.event_id for r in self.records}
        present = [e.event_id in stored for e in batch]
        if expected_version != self.version:
            if all(present):
                return 0  # "Re-appending the same event ids is a success that writes nothing"
            if any(present):
                raise PartialDuplicateError(share.stream_id(SHARE_ID), [], [])
            raise ConcurrencyError(share.stream_id(SHARE_ID), expected_version, self.version)
        if any(present):  # unique event id violated at the right version: a lost race
            raise ConcurrencyError(share.stream_id(SHARE_ID), expected_version, self.version)
        self.records.extend(batch)
        return len(batch)


@dataclass
class FakeChannel:
    """A network that dedupes publishes by idempotency key and counts the posts it really made.

    ``memory`` is how long it remembers a key (None: forever; Mastodon: one hour). ``find``
    (reconciliation) looks at the posts themselves, so it never forgets.
    """

    memory: timedelta | None = None
    keys: dict[str, tuple[str, datetime]] = field(default_factory=dict)  # key -> (external id, when)
    created: list[str] = field(default_factory=list)

    def find(self, key: str) -> str | None:
        known = self.keys.get(key)
        return None if known is None else known[0]

    def publish(self, key: str, now: datetime) -> str:
        known = self.keys.get(key)
        if known is not None and (self.memory is None or now - known[1] < self.memory):
            return known[0]
        external_id = f"post-{len(self.created) + 1}"
        self.created.append(external_id)
        self.keys[key] = (external_id, now)
        return external_id


class Outcome(enum.Enum):
    """What the network does with one publish call."""

    OK = "accepted"
    TRANSIENT = "503 before the request reached the network"
    RATE_LIMITED = "429 with Retry-After"
    PERMANENT = "422 content rejected"
    TIMEOUT_POSTED = "read timeout; the post was made"
    TIMEOUT_NOT_POSTED = "read timeout; the post was not made"


@dataclass(frozen=True)
class Failure:
    reason: str
    retryable: bool
    outcome_unknown: bool
    retry_after: timedelta | None = None


@dataclass
class Delivery:
    """One delivery of the "publish now" message, between its steps."""

    number: int
    decision: share.Publish
    expected_version: int
    phase: Literal["decided", "appended", "called"] = "decided"
    result: str | Failure | None = None
    reconciled: bool = False


POLICY = RetryPolicy(max_attempts=3)  # fewer than the default, so runs reach abandonment
OUTCOMES = st.sampled_from(Outcome)
RANDOM = st.floats(0, 0.999)
RETRY_AFTER = st.sampled_from([timedelta(seconds=1), timedelta(minutes=15), timedelta(hours=3)])
RARELY = st.sampled_from([False] * 9 + [True])
TIME_STEPS = st.sampled_from([1, 29, 30, 299, 300, 3599, 3600, 86_400])


class ShareLifecycle(RuleBasedStateMachine):
    """One share through deliveries, crashes, failures, retries, API commands and time."""

    # A reconciling attempt may fail while looking for the post (find -> 503), before it
    # learns anything. Off in the main machine; on in the strict one (see ``strict``).
    find_may_fail = False
    # Stronger guarantees than the documented ones; the current code breaks the first two
    # (see test_share_lifecycle_bugs.py). Each is checked only when this is True:
    # - while the channel holds a post the log does not know about, a delivery reconciles;
    # - a share that went out keeps its response tasks (none cancelled);
    # - one attempt reaches the channel through one delivery only.
    strict = False
    # Check each Publish decision directly (tasks carried, stable key, reconcile after an
    # unknown outcome). Off, only the end-to-end invariants below judge the run.
    check_decisions = True
    channel_memory: timedelta | None = None

    def __init__(self) -> None:
        super().__init__()
        self.log = FakeLog()
        self.channel = FakeChannel(memory=self.channel_memory)
        self.now = T0
        self.in_flight: list[Delivery] = []
        self.deliveries = 0
        self.decisions: list[share.Publish] = []
        self.channel_callers: dict[int, set[int]] = {}  # attempt -> deliveries that called the channel

    # --- set-up ---------------------------------------------------------------------

    @initialize(plan=plans, hold=st.sampled_from([False, False, False, True]), max_lateness=st.sampled_from([0, 600]))
    def plan_share(self, plan: tuple[ResponseStep, ...], hold: bool, max_lateness: int) -> None:
        event = planned(
            plan=plan,
            late_policy="hold" if hold else "send",
            max_lateness_seconds=max_lateness if hold else None,
        )
        self.log.append((NewEvent(event, share.event_id(SHARE_ID, "planned")),), expected_version=0)

    # --- the worker: one rule per step ------------------------------------------------

    @rule(steps=st.integers(0, 3), outcome=OUTCOMES, rnd=RANDOM, retry_after=RETRY_AFTER)
    def deliver(self, steps: int, outcome: Outcome, rnd: float, retry_after: timedelta) -> None:
        """A "publish now" message arrives (again and again: duplicates are normal) and
        its delivery runs ``steps`` steps straight away; ``advance`` runs the rest later."""
        delivery = self.decide()
        if delivery is not None and steps:
            self.run_steps(delivery, steps, outcome, rnd, retry_after)

    def decide(self) -> Delivery | None:
        state = self.log.state()
        decision = share.start_attempt(state, now=self.now, in_flight_grace=GRACE)
        if isinstance(decision, share.Hold):
            with contextlib.suppress(ConcurrencyError):
                self.log.append(decision.events, expected_version=state.version)
            return None
        if not isinstance(decision, share.Publish):
            return None  # Skip (or Wait, which this model never asks for: no early window)
        if self.check_decisions:
            self.check_decision(decision, state)
        if self.strict and self.channel_holds_unrecorded_post():
            assert decision.reconcile, "the channel holds an unrecorded post, yet this delivery would not look for it"
        self.decisions.append(decision)
        self.deliveries += 1
        delivery = Delivery(self.deliveries, decision, state.version)
        self.in_flight.append(delivery)
        return delivery

    @precondition(lambda self: self.in_flight)
    @rule(pick=st.integers(0, 7), steps=st.integers(1, 3), outcome=OUTCOMES, rnd=RANDOM, retry_after=RETRY_AFTER)
    def advance(self, pick: int, steps: int, outcome: Outcome, rnd: float, retry_after: timedelta) -> None:
        """A delivery in flight takes its next step or steps (append, call the channel, record)."""
        self.run_steps(self.in_flight[pick % len(self.in_flight)], steps, outcome, rnd, retry_after)

    def run_steps(self, delivery: Delivery, steps: int, outcome: Outcome, rnd: float, retry_after: timedelta) -> None:
        for _ in range(steps):
            if delivery not in self.in_flight:
                return
            if delivery.phase == "decided":
                self.append_attempt(delivery)
            elif delivery.phase == "appended":
                self.call_channel(delivery, outcome, retry_after)
            else:
                self.record_outcome(delivery, rnd)

    @precondition(lambda self: self.in_flight)
    @rule(pick=st.integers(0, 7))
    def crash(self, pick: int) -> None:
        """The worker dies between two steps: before the append, after the append but
        before publishing, or after publishing but before recording the outcome."""
        self.in_flight.pop(pick % len(self.in_flight))

    @rule(seconds=TIME_STEPS)
    def time_passes(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    @rule()
    def time_passes_until_the_share_is_due(self) -> None:
        """Jump to the next moment a delivery would act: the scheduled time, the retry
        time, or the end of an in-flight attempt's grace (so retries are reached often)."""
        state = self.log.state()
        due = {
            "planned": state.scheduled_at,
            "failed": state.next_attempt_at,
            "sending": state.attempt_started_at + GRACE if state.attempt_started_at else None,
        }.get(state.status)
        if due is not None and due > self.now:
            self.now = due

    # --- people and the reply collector --------------------------------------------------

    @rule(really=RARELY)
    def cancel(self, really: bool) -> None:
        if really:  # rarer than the rest, so that most runs get as far as sending
            self.command(lambda s: share.cancel(s, reason="changed our mind"))

    @rule(really=RARELY, seconds=st.sampled_from([0, 60, 3600]))
    def reschedule(self, really: bool, seconds: int) -> None:
        if really:
            self.command(lambda s: share.reschedule(s, scheduled_at=self.now + timedelta(seconds=seconds)))

    @rule(index=st.integers(0, 3))
    def complete_task(self, index: int) -> None:
        state = self.log.state()
        if index < len(state.tasks):
            task_id = state.tasks[index].task_id
            self.command(lambda s: share.complete_task(s, task_id=task_id, now=self.now, by="alice"))

    @rule(reply_id=st.sampled_from(["r1", "r2"]))
    def reply_arrives(self, reply_id: str) -> None:
        reply = ResponseReceived(reply_id=reply_id, author="@carol", text="Nice", received_at=self.now)
        self.command(lambda s: share.receive_replies(s, [reply]))

    # --- steps ----------------------------------------------------------------------

    def append_attempt(self, delivery: Delivery) -> None:
        # As workers/execution.py does: a ConcurrencyError, or an append that wrote fewer
        # events than decided, means another delivery owns the attempt: stop before the network.
        try:
            written = self.log.append(delivery.decision.events, expected_version=delivery.expected_version)
        except ConcurrencyError:
            written = 0
        if written != len(delivery.decision.events):
            self.in_flight.remove(delivery)
            return
        delivery.phase = "appended"

    def call_channel(self, delivery: Delivery, outcome: Outcome, retry_after: timedelta) -> None:
        # The invariant: nothing reaches the network unless the share's tasks are in the log.
        assert self.tasks_recorded(), "the channel was called before ResponseTasksRecorded was appended"
        key, attempt = delivery.decision.idempotency_key, delivery.decision.attempt
        delivery.phase = "called"
        self.channel_callers.setdefault(attempt, set()).add(delivery.number)
        if self.strict:
            assert len(self.channel_callers[attempt]) == 1, f"attempt {attempt} reached the channel twice"
        if delivery.decision.reconcile:
            if self.find_may_fail and outcome is Outcome.TRANSIENT:
                delivery.result = Failure("503 while looking for the post", retryable=True, outcome_unknown=False)
                return
            found = self.channel.find(key)
            if found is not None:
                delivery.result, delivery.reconciled = found, True
                return
        match outcome:
            case Outcome.OK:
                delivery.result = self.channel.publish(key, self.now)
            case Outcome.TRANSIENT:
                delivery.result = Failure(outcome.value, retryable=True, outcome_unknown=False)
            case Outcome.RATE_LIMITED:
                delivery.result = Failure(outcome.value, retryable=True, outcome_unknown=False, retry_after=retry_after)
            case Outcome.PERMANENT:
                delivery.result = Failure(outcome.value, retryable=False, outcome_unknown=False)
            case Outcome.TIMEOUT_POSTED:
                self.channel.publish(key, self.now)
                delivery.result = Failure(outcome.value, retryable=True, outcome_unknown=True)
            case Outcome.TIMEOUT_NOT_POSTED:
                delivery.result = Failure(outcome.value, retryable=True, outcome_unknown=True)

    def record_outcome(self, delivery: Delivery, rnd: float) -> None:
        self.in_flight.remove(delivery)
        state = self.log.state()
        result, attempt = delivery.result, delivery.decision.attempt
        if isinstance(result, Failure):
            events = share.record_failure(
                state,
                attempt=attempt,
                reason=result.reason,
                retryable=result.retryable,
                outcome_unknown=result.outcome_unknown,
                now=self.now,
                policy=POLICY,
                random=rnd,
                retry_after=result.retry_after,
            )
        else:
            assert result is not None
            events = share.record_sent(
                state, attempt=attempt, external_id=result, url=None, sent_at=self.now, reconciled=delivery.reconciled
            )
        if events:
            self.log.append(events, expected_version=state.version)

    def command(self, decide: Callable[[share.ShareState], tuple[NewEvent, ...]]) -> None:
        """An API command or the reply collector: decide on the current stream, append."""
        state = self.log.state()
        try:
            events = decide(state)
        except (ConflictError, NotFoundError):
            return
        if events:
            self.log.append(events, expected_version=state.version)

    # --- what must hold ---------------------------------------------------------------

    def tasks_recorded(self) -> bool:
        return any(isinstance(e, ResponseTasksRecorded) for e in self.log.events)

    def channel_holds_unrecorded_post(self) -> bool:
        return bool(self.channel.created) and not any(isinstance(e, ShareSent) for e in self.log.events)

    def check_decision(self, decision: share.Publish, state: share.ShareState) -> None:
        """A Publish decision carries the tasks when none are recorded, and reconciles when the
        previous attempt's outcome is unknown (its worker died, or it timed out after sending)."""
        names = [e.event.type_name for e in decision.events]
        assert names[0] == "ShareAttemptStarted", names
        assert ("ResponseTasksRecorded" in names) == (not self.tasks_recorded()), "tasks missing or recorded twice"
        assert decision.idempotency_key == share.idempotency_key(SHARE_ID), "the idempotency key changed"
        if previous_outcome_unknown(self.log.events):
            assert decision.reconcile, "a delivery after a crash or an unknown outcome must look for the post first"
        assert state.version == self.log.version, "decided on a stale fold"

    @invariant()
    def the_channel_never_holds_two_posts_for_one_share(self) -> None:
        assert len(self.channel.created) <= 1, f"the channel holds two posts for one share: {self.channel.created}"

    @invariant()
    def the_log_records_the_plans_tasks_once_and_at_most_one_send_after_them(self) -> None:
        events = self.log.events
        names = [e.type_name for e in events]
        assert names.count("ShareSent") <= 1, "ShareSent recorded twice"
        if "ShareSent" in names:
            assert "ResponseTasksRecorded" in names[: names.index("ShareSent")], "sent before its tasks"
        plan = events[0]
        assert isinstance(plan, SharePlanned)
        recorded = [(i, e) for i, e in enumerate(events) if isinstance(e, ResponseTasksRecorded)]
        for n, (i, e) in enumerate(recorded):
            assert e.tasks == tasks_for(SHARE_ID, plan.response_plan), "recorded tasks differ from the plan's"
            # Recorded again only to revive tasks cancelled in between (a post that landed after a give-up).
            if n:
                assert "ResponseTasksCancelled" in names[recorded[n - 1][0] : i], "tasks recorded twice"

    @invariant()
    def a_sent_share_points_at_the_post_the_channel_holds(self) -> None:
        state = self.log.state()
        sent = [e for e in self.log.events if isinstance(e, ShareSent)]
        assert (state.status == "sent") == bool(sent), f"status {state.status} disagrees with the log's ShareSent"
        if sent:
            assert sent[0].external_id in self.channel.created, "ShareSent names a post the channel does not hold"

    @invariant()
    def tasks_are_cancelled_once_the_share_is_abandoned_or_failed_permanently(self) -> None:
        # Judged on the share as it stands: a stalled attempt's post may still land after a
        # give-up, and then the share is sent (see the strict guarantee below).
        state = self.log.state()
        given_up = state.status == "abandoned" or (state.status == "failed" and not state.retryable)
        if given_up:
            assert any(isinstance(e, ShareAbandoned | ShareFailed) for e in self.log.events)
            assert all(t.cancelled for t in state.tasks), "a share was given up but its tasks stay open"

    @invariant()
    def a_share_that_went_out_keeps_its_response_tasks(self) -> None:
        if self.strict:
            state = self.log.state()
            if state.status == "sent":
                assert not any(t.cancelled for t in state.tasks), "a sent share's response tasks were cancelled"

    @invariant()
    def the_folded_version_is_the_stream_version(self) -> None:
        assert self.log.state().version == self.log.version, "fold lost or invented an event"


def previous_outcome_unknown(events: list[Event]) -> bool:
    """From the log alone: the latest attempt recorded no outcome, or failed with an unknown one."""
    starts = [i for i, e in enumerate(events) if isinstance(e, ShareAttemptStarted)]
    if not starts:
        return False
    outcomes = [e for e in events[starts[-1] + 1 :] if isinstance(e, ShareSent | ShareFailed)]
    if not outcomes:
        return True
    last = outcomes[-1]
    return isinstance(last, ShareFailed) and last.outcome_unknown
