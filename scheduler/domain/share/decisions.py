"""The share's decisions as pure functions: from a state and a command, the events to append.

The invariant lives here: an attempt's events always carry the response tasks
when none are recorded yet, and nothing may be published (``Publish``) unless
the decision that allows it has recorded them first.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from events.catalogue import (
    DuplicatePosted,
    DuplicateRemoved,
    ResponseTasksRecorded,
    ShareAbandoned,
    ShareAttemptStarted,
    ShareFailed,
    ShareHeld,
    ShareReviewOverdue,
    ShareSent,
)
from events.records import NewEvent

from scheduler.domain.calendars import BeyondHorizonError, Calendars, add_business
from scheduler.domain.plans import tasks_for
from scheduler.domain.retry import GiveUp, RetryPolicy
from scheduler.domain.share.answers import first_look
from scheduler.domain.share.changes import cancel_tasks
from scheduler.domain.share.state import IN_REVIEW, ShareState, fold, new_event, tasks_at_send
from scheduler.errors import ConflictError, NotFoundError


@dataclass(frozen=True, slots=True)
class Skip:
    """Nothing to do for this delivery; ``reason`` is logged."""

    reason: str


@dataclass(frozen=True, slots=True)
class Publish:
    """Append ``events`` (attempt + response tasks), and only after that commit, publish."""

    events: tuple[NewEvent, ...]
    attempt: int
    idempotency_key: str
    reconcile: bool


@dataclass(frozen=True, slots=True)
class Wait:
    """Delivered a moment early (the dispatcher's lead): wait until ``until``, then decide again."""

    until: datetime


@dataclass(frozen=True, slots=True)
class Hold:
    events: tuple[NewEvent, ...]


@dataclass(frozen=True, slots=True)
class ReviewOverdue:
    """Due while still in review: record it (``ShareReviewOverdue``) and publish nothing."""

    events: tuple[NewEvent, ...]


AttemptDecision = Skip | Wait | Publish | Hold | ReviewOverdue


def idempotency_key(share_id: UUID) -> str:
    """The key the channel sees on every attempt of this share, so a retry after a
    crash finds or returns the same post instead of making a second one."""
    return f"followthrough-{share_id}"


@dataclass(frozen=True, slots=True)
class Lookup:
    """What the channel can do about an earlier attempt whose outcome is unknown.

    ``can_look_up``: whether it can find this account's earlier post (a server hiding
    non-public posts from the account's own timeline cannot). ``resend_unknown``: the
    account chose to post again anyway (``on_unknown_outcome: "resend"``).
    ``candidate_url``: where a person can look for the post.
    """

    can_look_up: bool = True
    resend_unknown: bool = False
    candidate_url: str | None = None


def start_attempt(
    state: ShareState,
    *,
    now: datetime,
    in_flight_grace: timedelta,
    early_window: timedelta = timedelta(0),
    lookup: Lookup = Lookup(),
) -> AttemptDecision:
    """Decide what a "publish this share now" delivery does.

    ``early_window`` is how early a delivery may come (the dispatcher hands work out
    slightly ahead so the worker is ready at the due time): within it, wait.
    """
    if not state.exists or state.share_id is None or state.planned is None:
        return Skip("unknown share")
    share_id = state.share_id
    if state.status in ("sent", "cancelled", "abandoned", "held", "rejected", "review_overdue"):
        return Skip(f"share is {state.status}")
    if state.status == "failed" and not state.retryable:
        return Skip("share failed permanently")
    due = state.next_attempt_at if state.status == "failed" else state.scheduled_at
    if due is not None and now < due:
        return Wait(due) if due - now <= early_window else Skip("not due yet")
    if state.status == "sending":
        started = state.attempt_started_at
        if started is not None and now - started < in_flight_grace:
            return Skip("an attempt is in flight")
    if state.planned.approval_required and state.review != "approved":
        # Never published without approval where the account requires it (the database's
        # guard refuses the attempt too, and the audit recounts it).
        if state.status != "in_review":
            return Skip(f"share is {state.status}, not approved")
        overdue = ShareReviewOverdue(due_at=due or now, detected_at=now)
        return ReviewOverdue((new_event(share_id, f"review-overdue-{state.version}", overdue),))
    if (late := _late_hold(state, now)) is not None:
        return late
    attempt = state.attempts + 1
    # An attempt that never recorded an outcome (worker died, timeout after the
    # request left) may have published: the next one must look before it posts.
    reconcile = state.status == "sending" or state.outcome_unknown
    if reconcile and not lookup.can_look_up:
        if not lookup.resend_unknown:
            return _unknown_outcome_hold(state, now, lookup)
        reconcile = False  # the account chose to post again rather than wait for a person
    key = idempotency_key(share_id)
    # Fresh event ids, unlike other decisions: two deliveries racing for the same attempt
    # must not pass for an idempotent retry of one another. The loser's append fails
    # on the expected version and it stops before the network call.
    new = [
        NewEvent(event=ShareAttemptStarted(attempt=attempt, started_at=now, idempotency_key=key, reconcile=reconcile))
    ]
    if not state.tasks_recorded:
        # The task ids inside stay deterministic (plans.task_id); only the event id is fresh.
        new.append(NewEvent(event=ResponseTasksRecorded(tasks=tasks_for(share_id, state.planned.response_plan))))
    return Publish(tuple(new), attempt, key, reconcile)


def _lateness_ms(state: ShareState, now: datetime) -> int:
    assert state.planned is not None
    return int((now - (state.scheduled_at or state.planned.scheduled_at)) / timedelta(milliseconds=1))


def _late_hold(state: ShareState, now: datetime) -> Hold | None:
    """The account's late policy: a first attempt found too far past due waits for a person."""
    planned = state.planned
    assert planned is not None
    assert state.share_id is not None
    if planned.late_policy != "hold" or planned.max_lateness_seconds is None or state.attempts != 0:
        return None
    ms = _lateness_ms(state, now)
    if ms <= planned.max_lateness_seconds * 1000:
        return None
    reason = (f"{ms} ms past due, over the account's limit of {planned.max_lateness_seconds} s: "
              "held for a person to send or cancel")
    return Hold((new_event(state.share_id, f"held-{state.version}",
                      ShareHeld(held_at=now, lateness_ms=ms, reason=reason)),))


def _unknown_outcome_hold(state: ShareState, now: datetime, lookup: Lookup) -> Hold:
    """An earlier attempt may have posted and the channel cannot look: a person decides."""
    assert state.planned is not None
    assert state.share_id is not None
    where = f" (look at {lookup.candidate_url})" if lookup.candidate_url else ""
    reason = (f"attempt {state.attempts} may have posted, and {state.planned.channel} cannot show this account's "
              f"earlier posts{where}: if the post is there, mark the share sent with its url; if not, "
              "reschedule it; or cancel it")
    held = ShareHeld(held_at=now, lateness_ms=_lateness_ms(state, now), reason=reason, outcome_unknown=True,
                     candidate_url=lookup.candidate_url)
    return Hold((new_event(state.share_id, f"held-{state.version}", held),))


def record_sent(
    state: ShareState,
    *,
    attempt: int,
    external_id: str,
    url: str | None,
    sent_at: datetime,
    reconciled: bool,
    now: datetime | None = None,
    calendars: Calendars | None = None,
) -> tuple[NewEvent, ...]:
    """The channel accepted the post (or reconciliation found it); ``sent_at`` is the
    post's own creation time as the network reports it. Tasks on the business clock get
    their due times here, from their owners' ``calendars`` as they stand at the send.

    A post for a share already recorded sent with another post is a duplicate: it is
    recorded as such (``DuplicatePosted``), never dropped in silence.
    """
    if state.share_id is None:
        return ()
    if state.status == "sent":
        known = {state.sent.external_id if state.sent else None, *state.duplicates}
        if external_id in known:
            return ()
        duplicate = DuplicatePosted(attempt=attempt, external_id=external_id, url=url, created_at=sent_at,
                                    detected_at=now or sent_at)
        return (new_event(state.share_id, f"duplicate-{external_id}", duplicate),)
    if not state.tasks_recorded:
        # Unreachable through start_attempt; refusing here keeps the invariant explicit.
        raise ConflictError("a share cannot be recorded as sent before its response tasks")
    scheduled = state.scheduled_at or sent_at
    lateness_ms = int((sent_at - scheduled) / timedelta(milliseconds=1))
    revived: tuple[NewEvent, ...] = ()
    if state.planned is not None and any(t.cancelled for t in state.tasks):
        # A stalled attempt's post landed after the share was given up or cancelled: the
        # post is out, so its response work is owed after all. Same task ids, recorded anew.
        revived = (
            new_event(state.share_id, f"tasks-revived-{state.version}",
                 ResponseTasksRecorded(tasks=tasks_for(state.share_id, state.planned.response_plan))),
        )
    before = fold((e.event for e in revived), state)
    business = _business_due(before, sent_at, calendars)
    # The first look is the sent share's: its tasks as the send makes them, without folding it in.
    first = first_look(before, sent_at, tasks_at_send(before.tasks, sent_at, business))
    sent = ShareSent(attempt=attempt, external_id=external_id, url=url, scheduled_at=scheduled, sent_at=sent_at,
                     lateness_ms=lateness_ms, reconciled=reconciled, business_due_at=business,
                     replies_first_look_at=first)
    return (*revived, new_event(state.share_id, f"sent-{attempt}", sent))


def needs_marking(state: ShareState, url: str) -> bool:
    """Whether marking the share sent with ``url`` records anything: False when it is already
    sent with that url; refused when it cannot be marked (never attempted, or sent elsewhere)."""
    if state.share_id is None or state.planned is None:
        raise NotFoundError("share", "?")
    if state.status == "sent":
        if state.sent is not None and state.sent.url == url:
            return False
        raise ConflictError("this share is already sent, with another post", field="url")
    if state.status in (*IN_REVIEW, "rejected"):
        raise ConflictError(f"a share that is {state.status} cannot be marked sent: it needs an approval first")
    if state.status == "planned" or (state.status == "cancelled" and state.attempts == 0):
        raise ConflictError(f"a share that is {state.status} and was never attempted cannot be marked sent; "
                            "cancel it, or let it publish")
    return True


def _business_due(state: ShareState, sent_at: datetime, calendars: Calendars | None) -> dict[UUID, datetime] | None:
    """The due times of the tasks on the business clock. A task counts wall time when its
    owner has no calendar left, or when the calendar no longer holds its time within two
    years: planning refuses both, so the calendars changed since."""
    due = {}
    for task in state.tasks:
        calendar = None if calendars is None or task.clock != "business" else calendars.for_owner(task.owner)
        if calendar is not None:
            with suppress(BeyondHorizonError):
                due[task.task_id] = add_business(calendar, sent_at, task.after_seconds)
    return due or None


def mark_sent(
    state: ShareState, *, url: str, external_id: str | None, sent_at: datetime | None, now: datetime,
    calendars: Calendars | None = None,
) -> tuple[NewEvent, ...]:
    """A person found the post (a share held for an unknown outcome, or one they posted by
    hand): record it sent at the post's time (``sent_at``, else when the last attempt
    started), so its tasks count from there. Marking it again with the same url is a no-op."""
    if not needs_marking(state, url):
        return ()
    assert state.share_id is not None
    assert state.planned is not None
    first: tuple[NewEvent, ...] = ()
    if not state.tasks_recorded:
        # Posted by hand before any attempt (a share held as too late): its tasks go first.
        first = (new_event(state.share_id, "tasks-marked", ResponseTasksRecorded(
            tasks=tasks_for(state.share_id, state.planned.response_plan))),)
    after = fold((e.event for e in first), state)
    when = sent_at or state.attempt_started_at or now
    return (*first, *record_sent(after, attempt=max(state.attempts, 1), external_id=external_id or url, url=url,
                                 sent_at=when, reconciled=True, now=now, calendars=calendars))


def duplicate_removed(state: ShareState, *, external_id: str, now: datetime) -> tuple[NewEvent, ...]:
    """The extra post was deleted through the channel."""
    if state.share_id is None or external_id not in state.duplicates or external_id in state.duplicates_removed:
        return ()
    return (new_event(state.share_id, f"duplicate-removed-{external_id}",
                 DuplicateRemoved(external_id=external_id, removed_at=now)),)


def record_failure(
    state: ShareState,
    *,
    attempt: int,
    reason: str,
    retryable: bool,
    outcome_unknown: bool,
    now: datetime,
    policy: RetryPolicy,
    random: float,
    retry_after: timedelta | None = None,
) -> tuple[NewEvent, ...]:
    """An attempt failed: schedule a retry, or give up and cancel the share's tasks.

    Only the latest attempt's failure counts: a superseded attempt that reports late
    must not mark as failed a share whose newer attempt is in flight.
    """
    if state.share_id is None or state.status != "sending" or attempt != state.attempts:
        return ()
    share_id = state.share_id
    decision = policy.decide(attempt=attempt, retryable=retryable, now=now, random=random, retry_after=retry_after)
    if not isinstance(decision, GiveUp):
        return (
            new_event(
                share_id,
                f"failed-{attempt}",
                ShareFailed(
                    attempt=attempt,
                    failed_at=now,
                    reason=reason,
                    retryable=True,
                    outcome_unknown=outcome_unknown,
                    next_attempt_at=decision.at,
                ),
            ),
        )
    events = [
        new_event(
            share_id,
            f"failed-{attempt}",
            ShareFailed(
                attempt=attempt, failed_at=now, reason=reason, retryable=retryable, outcome_unknown=outcome_unknown
            ),
        )
    ]
    if retryable:
        events.append(
            new_event(
                share_id,
                "abandoned",
                ShareAbandoned(attempts=attempt, abandoned_at=now, reason=f"{decision.reason}; last error: {reason}"),
            )
        )
    events.extend(cancel_tasks(state, "share was not published"))
    return tuple(events)
