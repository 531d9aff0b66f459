"""Calendars and owners: a workspace's business hours, kept as events on its own stream
(``calendars-<workspace>``) and folded when read; the stream is small (one event per change).

A change applies from the moment it is recorded: a task's due time is worked out once,
when its share is sent, with the calendars as they stood then (``ShareSent.business_due_at``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import psycopg
import structlog

from events.catalogue import CalendarDeleted, CalendarSet, Event, OwnerCalendarSet, ResponseStep
from events.errors import ConcurrencyError
from events.records import NewEvent, RecordedEvent, metadata
from events.store import EventStore
from scheduler.domain import calendars as domain
from scheduler.domain.calendars import Calendar, Calendars
from scheduler.domain.inputs import text_problem
from scheduler.domain.share import ShareState
from scheduler.errors import ConflictError, InvalidInputError, NotFoundError

log = structlog.get_logger("scheduler.services.calendars")

Conn = psycopg.Connection[Any]
STREAM_PREFIX = "calendars-"
WRITE_TRIES = 5


def stream_id(workspace_id: str) -> str:
    return f"{STREAM_PREFIX}{workspace_id}"


def load(store: EventStore, workspace_id: str, *, conn: Conn | None = None) -> Calendars:
    history = store.read_stream(stream_id(workspace_id), conn=conn)
    return domain.fold((r.event, r.stream_version) for r in history)


def as_of(store: EventStore, workspace_id: str, moment: datetime, *, conn: Conn | None = None) -> Calendars:
    """The workspace's calendars as they stood at ``moment`` (the events recorded by then)."""
    return _as_of(store.read_stream(stream_id(workspace_id), conn=conn), moment)


def _as_of(history: Sequence[RecordedEvent], moment: datetime) -> Calendars:
    return domain.fold((r.event, r.stream_version) for r in history if r.recorded_at <= moment)


def calendar_at_send(store: EventStore, workspace_id: str, state: ShareState) -> Callable[[str], Calendar | None]:
    """Owner -> the calendar a business task's due time was worked out in (as it stood when
    the share was sent; the stream is read once, and only if a task is on the business clock)."""
    sent = state.sent
    if sent is None or not sent.business_due_at:
        return lambda _owner: None
    found = as_of(store, workspace_id, sent.sent_at)
    return found.for_owner


# (owner, moment) -> the calendar that owner worked by at that moment (theirs, else default).
CalendarAt = Callable[[str, datetime], Calendar | None]


def calendar_as_of(store: EventStore, workspace_id: str) -> CalendarAt:
    """Owner and moment -> the calendar the owner worked by then (SQL's ``calendar_at``); the
    stream is read once, when first asked."""
    history: list[RecordedEvent] = []
    read = False

    def calendar(owner: str, moment: datetime) -> Calendar | None:
        nonlocal read
        if not read:
            history.extend(store.read_stream(stream_id(workspace_id)))
            read = True
        return _as_of(history, moment).for_owner(owner)

    return calendar


def for_share(store: EventStore, conn: Conn | None, workspace_id: str, state: ShareState) -> Calendars | None:
    """The calendars a send needs: only read when the share has a task on the business clock."""
    if not any(t.clock == "business" for t in state.tasks) and not (
        state.planned is not None and any(s.clock == "business" for s in state.planned.response_plan)
    ):
        return None
    found = load(store, workspace_id, conn=conn)
    for owner in {t.owner for t in state.tasks if t.clock == "business"}:
        if found.for_owner(owner) is None:
            # Planning refuses such a step; the calendar went away before the send.
            log.warning("business_clock_without_calendar", owner=owner, workspace_id=workspace_id)
    return found


def check_owner(owner: str, *, field: str = "owner") -> str:
    owner = owner.strip()
    if (problem := text_problem(owner)) is not None:
        raise InvalidInputError(field, problem)
    if not owner or len(owner) > 200:
        raise InvalidInputError(field, "must name an owner (1-200 characters)")
    return owner


def _append(store: EventStore, workspace_id: str, actor: str,
            decide: Any) -> tuple[Calendars, Sequence[Event]]:
    """Decide on the latest calendars and append, deciding again when another writer won."""
    for _ in range(WRITE_TRIES):
        state = load(store, workspace_id)
        events: Sequence[Event] = decide(state)
        if not events:
            return state, events
        meta = metadata(workspace_id=workspace_id, actor=actor, correlation_id=stream_id(workspace_id),
                        causation_id=None)
        try:
            store.append(stream_id(workspace_id), [NewEvent(e, metadata=meta) for e in events],
                         expected_version=state.version, workspace_id=workspace_id)
        except ConcurrencyError:
            continue
        for e in events:
            log.info("calendar_changed", change=e.type_name, workspace_id=workspace_id, actor=actor,
                     **e.model_dump(include={"name", "owner", "calendar"}))
        after = state
        for i, e in enumerate(events, start=1):
            after = domain.evolve(after, e, state.version + i)
        return after, events
    raise ConcurrencyError(stream_id(workspace_id), None, 0)


def put(store: EventStore, workspace_id: str, name: str, *, time_zone: Any, week: Any, holidays: Any,
        actor: str) -> tuple[domain.Calendar, bool]:
    """Set (or replace) a calendar; whether it is new."""
    event = domain.calendar_set(name, time_zone=time_zone, week=week, holidays=holidays)
    created: list[bool] = []

    def decide(state: Calendars) -> Sequence[Event]:
        created[:] = [name not in state.calendars]
        return [event]

    after, _ = _append(store, workspace_id, actor, decide)
    return after.calendars[name], created[0]


def get(store: EventStore, workspace_id: str, name: str) -> domain.Calendar:
    found = load(store, workspace_id).calendars.get(name)
    if found is None:
        raise NotFoundError("calendar", name)
    return found


def delete(store: EventStore, workspace_id: str, name: str, *, actor: str) -> None:
    """Delete a calendar that no owner works by (their tasks would lose their hours)."""
    def decide(state: Calendars) -> Sequence[Event]:
        if name not in state.calendars:
            raise NotFoundError("calendar", name)
        users = state.users_of(name)
        if users:
            raise ConflictError(f"owners work by this calendar: {', '.join(users[:10])}; give them another first",
                                field="name")
        return [CalendarDeleted(name=name)]

    _append(store, workspace_id, actor, decide)


def set_owner(store: EventStore, workspace_id: str, owner: str, calendar: str | None, *, actor: str) -> Calendars:
    """Give an owner a calendar (None: the workspace's ``default``)."""
    owner = check_owner(owner)
    if calendar is not None:
        domain.check_name(calendar, field="calendar")

    def decide(state: Calendars) -> Sequence[Event]:
        if calendar is not None and calendar not in state.calendars:
            raise InvalidInputError("calendar", f"no calendar {calendar!r} in this workspace (PUT it first)")
        if state.owners.get(owner) == calendar:
            return []
        return [OwnerCalendarSet(owner=owner, calendar=calendar)]

    after, _ = _append(store, workspace_id, actor, decide)
    return after


def check_plan_clocks(calendars: Calendars, steps: Sequence[ResponseStep], *, field: str, now: datetime) -> None:
    """A business step needs a calendar for its owner (the owner's, else ``default``) that
    holds its time within two years."""
    for i, step in enumerate(steps):
        if step.clock != "business":
            continue
        calendar = calendars.for_owner(step.owner)
        if calendar is None:
            raise InvalidInputError(
                f"{field}.{i}.clock",
                f"is business, but neither the owner {step.owner!r} nor the workspace has a calendar "
                "(PUT /v1/calendars/default, or give the owner one with PUT /v1/owners/{owner})",
            )
        try:
            domain.add_business(calendar, now, step.after_seconds)
        except domain.BeyondHorizonError:
            raise InvalidInputError(f"{field}.{i}.after", "needs more business hours than the owner's calendar "
                                    f"holds in {domain.MAX_DAYS} days") from None


__all__ = ["CalendarSet", "check_plan_clocks", "delete", "for_share", "get", "load", "put", "set_owner"]
