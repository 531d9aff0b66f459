"""A thread's parts, pure: which one an attempt resumes at, each part's idempotency key, and
the events that record a part that is out.

Exactly once per part rests on the share's rules plus one order: part k is recorded
(``SharePartSent``) before part k + 1 is sent. So an attempt that dies can only leave one
part in doubt, the first not recorded (the resume point): the next attempt looks that one
up (``start_attempt`` marks it ``reconcile``), records it if found, and sends the rest.
Parts 1..k are never sent again: they are in the log. The last part's record carries the
share's ``ShareSent`` (the first part's post and time) in the same append.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from events.catalogue import DuplicatePosted, SharePartSent
from events.records import NewEvent

from scheduler.domain.calendars import Calendars
from scheduler.domain.content import parts_of
from scheduler.domain.share.decisions import idempotency_key, record_sent
from scheduler.domain.share.state import ShareState, evolve, new_event

PartStatus = Literal["planned", "sending", "sent", "failed", "held", "abandoned", "cancelled"]


def part_key(share_id: UUID, part: int) -> str:
    """Part ``part``'s idempotency key: the share's for the first (as a single post's), its own for the rest."""
    base = idempotency_key(share_id)
    return base if part == 0 else f"{base}-part-{part}"


def resume_at(state: ShareState) -> int:
    """The first part not recorded out: where the next attempt starts (parts are recorded in order)."""
    done = {p.part for p in state.parts_sent}
    index = 0
    while index in done:
        index += 1
    return index


def part_sent(state: ShareState, part: int) -> SharePartSent | None:
    return next((p for p in state.parts_sent if p.part == part), None)


def part_status(state: ShareState, part: int) -> PartStatus:
    """What a part shows: sent once recorded; the part an attempt is at (or stopped at)
    shows the share's status; the parts after it wait (or were cancelled with the share)."""
    if state.status == "sent" or part_sent(state, part) is not None:
        return "sent"
    if part == resume_at(state) and state.status in ("sending", "failed", "held", "abandoned"):
        return state.status
    return "cancelled" if state.status in ("cancelled", "abandoned") else "planned"


def record_part_sent(
    state: ShareState,
    *,
    attempt: int,
    part: int,
    external_id: str,
    url: str | None,
    cid: str | None,
    sent_at: datetime,
    reconciled: bool,
    now: datetime,
    calendars: Calendars | None = None,
) -> tuple[NewEvent, ...]:
    """Part ``part`` is out. Recorded once (a repeat of the same post is a no-op; another post
    for a part already recorded is a duplicate, never silent); the last part also records the
    share sent, with the first part's post."""
    if state.share_id is None or state.planned is None:
        return ()
    known = part_sent(state, part)
    if known is not None or state.status == "sent":
        if (known is not None and known.external_id == external_id) or external_id in state.duplicates:
            return ()
        duplicate = DuplicatePosted(attempt=attempt, external_id=external_id, url=url, created_at=sent_at,
                                    detected_at=now)
        return (new_event(state.share_id, f"duplicate-{external_id}", duplicate),)
    event = SharePartSent(attempt=attempt, part=part, external_id=external_id, url=url, cid=cid, sent_at=sent_at,
                          reconciled=reconciled)
    recorded = (new_event(state.share_id, f"part-{part}", event),)
    after = evolve(state, event)
    first = part_sent(after, 0)
    if resume_at(after) < len(parts_of(state.planned)) or first is None:
        return recorded
    # The share's post is the thread's first: its url, its time (lateness, tasks, looks count from it).
    return (*recorded, *record_sent(after, attempt=attempt, external_id=first.external_id, url=first.url,
                                    sent_at=first.sent_at, reconciled=first.reconciled, now=now, calendars=calendars))
