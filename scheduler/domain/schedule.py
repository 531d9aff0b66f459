"""The schedule as an inline projection: which due-work rows each share event implies.

Pure: the caller writes these operations in the same transaction as the events,
and the whole schedule can be rebuilt by replaying every share's events.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from events.catalogue import (
    Event,
    RepliesLooked,
    ReplyAnswerRequested,
    ResponseTasksRecorded,
    ShareAbandoned,
    ShareApproved,
    ShareAttemptStarted,
    ShareCancelled,
    ShareFailed,
    ShareHeld,
    SharePlanned,
    ShareRejected,
    ShareRescheduled,
    ShareReviewOverdue,
    ShareSent,
)

Kind = Literal["publish", "check_replies", "answer"]


@dataclass(frozen=True, slots=True)
class Upsert:
    """Due at ``due_at``, not handed out to anyone (a fresh lease-free row)."""

    kind: Kind
    due_at: datetime


@dataclass(frozen=True, slots=True)
class Wake:
    """Due no later than ``due_at``, leaving a lease that is held as it is: a worker may be
    calling the network for this row (its answers), and it looks again before it lets go."""

    kind: Kind
    due_at: datetime


@dataclass(frozen=True, slots=True)
class Remove:
    kind: Kind


ScheduleOp = Upsert | Wake | Remove

# The dispatcher looks at the schedule at least this often, and hands posts out at most this
# far ahead of their time (``dispatch_lead_seconds``): a row written due later than both from
# now is found by a look it makes anyway, without waking it.
DISPATCHER_MAX_SLEEP = timedelta(seconds=5)
MAX_DISPATCH_LEAD = timedelta(seconds=5)
WAKE_HORIZON = DISPATCHER_MAX_SLEEP + MAX_DISPATCH_LEAD


def wakes_dispatcher(ops: Iterable[ScheduleOp], now: datetime) -> bool:
    """Whether writing ``ops`` must wake the dispatcher: a row due before its next look may be.
    (Each post sent writes its first look for replies, an hour on: under a burst, waking the
    dispatcher for each batch of those split its groups into small ones.)"""
    return any(isinstance(op, Upsert | Wake) and op.due_at < now + WAKE_HORIZON for op in ops)


# Events that never change the schedule, and are written with every attempt.
_NO_SCHEDULE = frozenset({ShareAttemptStarted, ResponseTasksRecorded})


def ops_for(events: Iterable[Event]) -> list[ScheduleOp]:
    ops: list[ScheduleOp] = []
    for event in events:
        if type(event) in _NO_SCHEDULE:
            continue  # the commonest events of a publish, tested once instead of against every case
        match event:
            case SharePlanned() | ShareRescheduled():
                ops.append(Upsert("publish", event.scheduled_at))
            # An attempt changes nothing here: the dispatcher leased the row when it handed
            # it out, and the attempt follows at once. Leaving it out keeps the attempt a
            # single-statement append.
            case ShareFailed() if event.next_attempt_at is not None:
                ops.append(Upsert("publish", event.next_attempt_at))
            case ShareSent():
                ops.append(Remove("publish"))
                if event.replies_first_look_at is not None:
                    ops.append(Upsert("check_replies", event.replies_first_look_at))
            # Approved: due at its time, or at once when approved past it.
            case ShareApproved():
                ops.append(Upsert("publish", event.publish_at))
            case ShareFailed() | ShareCancelled() | ShareAbandoned() | ShareHeld() | ShareRejected() \
                    | ShareReviewOverdue():
                ops.append(Remove("publish"))
            # The looks for replies: a recorded look writes the next (or ends them); a look
            # that changed nothing is no event, and moves the row itself (services.looks).
            case RepliesLooked():
                ops.append(Upsert("check_replies", event.next_look_at) if event.next_look_at is not None
                           else Remove("check_replies"))
            case ReplyAnswerRequested():
                ops.append(Wake("answer", event.requested_at))
    return ops
