"""Builders and Hypothesis strategies shared by the unit tests (pure values, no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from hypothesis import strategies as st

from events.catalogue import Event, ResponseReceived, ResponseStep, SharePlanned
from events.records import NewEvent
from scheduler.domain import share
from scheduler.domain.retry import RetryPolicy
from scheduler.errors import ConflictError, NotFoundError

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
SHARE_ID = UUID("00000000-0000-4000-8000-000000000001")
ACCOUNT_ID = UUID("00000000-0000-4000-8000-0000000000a1")
GRACE = timedelta(minutes=5)
POLICY = RetryPolicy()
SHORT_POLICY = RetryPolicy(max_attempts=3)  # generated histories reach abandonment more often

PLAN = (
    ResponseStep(kind="check_replies", after_seconds=3600, owner="alice"),
    ResponseStep(kind="check_again", after_seconds=86_400, owner="bob"),
)


def planned(
    *,
    share_id: UUID = SHARE_ID,
    scheduled_at: datetime = T0,
    plan: Sequence[ResponseStep] = PLAN,
    late_policy: str = "send",
    max_lateness_seconds: int | None = None,
    channel: str = "mastodon",
    approval_required: bool = False,
) -> SharePlanned:
    return SharePlanned(
        share_id=share_id,
        account_id=ACCOUNT_ID,
        account_name="team",
        channel=channel,
        text="Our spring release is out",
        scheduled_at=scheduled_at,
        response_plan=tuple(plan),
        late_policy=late_policy,
        max_lateness_seconds=max_lateness_seconds,
        approval_required=approval_required,
    )


def reply(reply_id: str, *, at: datetime = T0) -> ResponseReceived:
    return ResponseReceived(reply_id=reply_id, author="@carol", text="Nice!", received_at=at)


def appended(history: Sequence[Event], new: Sequence[NewEvent] | share.AttemptDecision) -> list[Event]:
    """``history`` followed by the events a decision or command appends."""
    if isinstance(new, share.Skip | share.Wait):
        batch: Sequence[NewEvent] = ()
    elif isinstance(new, share.Publish | share.Hold | share.ReviewOverdue):
        batch = new.events
    else:
        batch = new
    return [*history, *(e.event for e in batch)]


def publish_decision(state: share.ShareState, now: datetime) -> share.Publish:
    decision = share.start_attempt(state, now=now, in_flight_grace=GRACE)
    assert isinstance(decision, share.Publish), decision
    return decision


def sent_history(*, sent_at: datetime = T0, plan: Sequence[ResponseStep] = PLAN) -> list[Event]:
    """A share planned for ``T0`` and published at ``sent_at`` on its first attempt."""
    events: list[Event] = [planned(plan=plan)]
    decision = publish_decision(share.fold(events), sent_at)
    events += [e.event for e in decision.events]
    sent = share.record_sent(
        share.fold(events),
        attempt=1,
        external_id="109",
        url="https://example.social/@team/109",
        sent_at=sent_at,
        reconciled=False,
    )
    events += [e.event for e in sent]
    return events


# --- strategies -------------------------------------------------------------------------

kinds = st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True)
owners = st.sampled_from(["alice", "bob", "carol", "support team"])
response_steps = st.builds(ResponseStep, kind=kinds, after_seconds=st.integers(0, 30 * 86_400), owner=owners)
plans = st.lists(response_steps, min_size=1, max_size=4).map(tuple)
share_ids = st.uuids(version=4)


@st.composite
def planned_events(draw: st.DrawFn) -> SharePlanned:
    hold = draw(st.booleans())
    return planned(
        share_id=draw(share_ids),
        scheduled_at=T0 + timedelta(seconds=draw(st.integers(0, 7 * 86_400))),
        plan=draw(plans),
        late_policy="hold" if hold else "send",
        max_lateness_seconds=draw(st.integers(0, 3600)) if hold else None,
    )


_command_args: dict[str, st.SearchStrategy[tuple[Any, ...]]] = {
    "wait": st.tuples(st.sampled_from([1, 30, 300, 3600, 86_400])),
    "wait_until_due": st.tuples(),
    "deliver": st.tuples(),
    "sent": st.tuples(),
    "fail": st.tuples(st.sampled_from([True, True, True, False]), st.booleans(), st.floats(0, 0.999)),
    "cancel": st.tuples(st.sampled_from([False] * 5 + [True])),
    "reschedule": st.tuples(st.integers(-3600, 86_400)),
    "complete": st.tuples(st.integers(0, 3)),
    "reply": st.tuples(st.sampled_from(["r1", "r2", "r3"])),
    "assign": st.tuples(st.sampled_from(["r1", "r2", "r4"]), st.sampled_from(["ana", "ben"])),
}
# Repeated names weigh the choice towards progress through the lifecycle.
_weighted = [
    "deliver", "deliver", "deliver", "wait_until_due", "wait_until_due", "sent", "sent", "fail", "fail",
    "complete", "complete", "wait", "cancel", "reschedule", "reply", "assign",
]  # fmt: skip
_commands = st.sampled_from(_weighted).flatmap(lambda name: _command_args[name].map(lambda args: (name, *args)))


@st.composite
def share_histories(draw: st.DrawFn, max_commands: int = 30) -> list[Event]:
    """A valid stream: a SharePlanned, then whatever the decisions produce for random commands."""
    first = draw(planned_events())
    events: list[Event] = [first]
    now = first.scheduled_at
    for command in draw(st.lists(_commands, min_size=max_commands // 3, max_size=max_commands)):
        state = share.fold(events)
        if command[0] == "wait":
            now += timedelta(seconds=command[1])
        elif command[0] == "wait_until_due":
            due = state.next_attempt_at if state.status == "failed" else state.scheduled_at
            if state.status == "sending" and state.attempt_started_at is not None:
                due = state.attempt_started_at + GRACE
            if state.status == "sent" and state.tasks and state.tasks[0].due_at is not None:
                due = state.tasks[0].due_at
            now = max(now, due or now)
        else:
            events += [e.event for e in _apply(command, state, now)]
    return events


def _apply(command: tuple[Any, ...], state: share.ShareState, now: datetime) -> Sequence[NewEvent]:
    try:
        match command:
            case ("deliver",):
                decision = share.start_attempt(state, now=now, in_flight_grace=GRACE)
                return decision.events if isinstance(decision, share.Publish | share.Hold) else ()
            case ("sent",) if state.status == "sending":
                return share.record_sent(
                    state, attempt=state.attempts, external_id="1", url=None, sent_at=now, reconciled=False
                )
            case ("fail", retryable, unknown, rnd):
                return share.record_failure(
                    state,
                    attempt=state.attempts,
                    reason="503",
                    retryable=retryable,
                    outcome_unknown=unknown,
                    now=now,
                    policy=SHORT_POLICY,
                    random=rnd,
                )
            case ("cancel", True):
                return share.cancel(state, reason="changed our mind")
            case ("reschedule", seconds):
                return share.reschedule(state, scheduled_at=now + timedelta(seconds=seconds))
            case ("complete", index) if index < len(state.tasks):
                return share.complete_task(state, task_id=state.tasks[index].task_id, now=now, by="alice")
            case ("reply", reply_id):
                return share.receive_replies(state, [reply(reply_id, at=now)])
            case ("assign", reply_id, person):
                return share.assign(state, reply_id=reply_id, assignee=person, by="alice", now=now)
    except (ConflictError, NotFoundError):
        pass
    return ()
