"""The schedule as an inline projection: which due-work rows each share event implies.

Pure: the caller writes these operations in the same transaction as the events,
and the whole schedule can be rebuilt by replaying every share's events.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from events.catalogue import (
    Event,
    ShareAbandoned,
    ShareCancelled,
    ShareFailed,
    ShareHeld,
    SharePlanned,
    ShareRescheduled,
    ShareSent,
)

Kind = Literal["publish", "check_replies"]


@dataclass(frozen=True, slots=True)
class Upsert:
    """Due at ``due_at``, not handed out to anyone (a fresh lease-free row)."""

    kind: Kind
    due_at: datetime


@dataclass(frozen=True, slots=True)
class Remove:
    kind: Kind


ScheduleOp = Upsert | Remove


def ops_for(events: Iterable[Event]) -> list[ScheduleOp]:
    ops: list[ScheduleOp] = []
    for event in events:
        match event:
            case SharePlanned() | ShareRescheduled():
                ops.append(Upsert("publish", event.scheduled_at))
            # An attempt changes nothing here: the dispatcher leased the row when it handed
            # it out, and the attempt follows at once. Leaving it out keeps the attempt a
            # single-statement append.
            case ShareFailed() if event.next_attempt_at is not None:
                ops.append(Upsert("publish", event.next_attempt_at))
            case ShareSent() | ShareFailed() | ShareCancelled() | ShareAbandoned() | ShareHeld():
                ops.append(Remove("publish"))
    return ops
