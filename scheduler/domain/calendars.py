"""Business hours: a workspace's calendars, whose calendar each owner works by, and the
business clock's arithmetic (pure: the time-zone database is data, not I/O).

A calendar's interval on a date covers the instants from the first moment its start time
is reached there to the first moment its end time is reached, in real (UTC) time: a day
of 00:00-24:00 lasts 23 hours on the spring-forward date and 25 on the fall-back date,
and a time inside the spring-forward gap stands for the transition itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from events.catalogue import CalendarDeleted, CalendarSet, Event, OwnerCalendarSet

from scheduler.domain.inputs import text_problem
from scheduler.errors import InvalidInputError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")
DEFAULT = "default"
MAX_INTERVALS = 12
MAX_HOLIDAYS = 1000
# Business time is counted day by day, up to two years ahead: a step that needs more of a
# calendar's hours than that (30 days of business time in a few minutes a week) is refused
# when it is planned (``BeyondHorizonError``).
MAX_DAYS = 2 * 366

Interval = tuple[int, int]  # minutes after local midnight, start < end <= 1440


class BeyondHorizonError(ValueError):
    """The calendar does not hold that much business time within ``MAX_DAYS``."""


@dataclass(frozen=True, slots=True)
class Calendar:
    time_zone: str
    week: tuple[tuple[Interval, ...], ...]  # Monday first, seven entries
    holidays: frozenset[date] = frozenset()

    @property
    def zone(self) -> tzinfo:
        return ZoneInfo(self.time_zone)


# --- reading what a client (or an event) says ---------------------------------------


def _minutes(value: Any, where: str) -> int:
    if not isinstance(value, str) or not HHMM.match(value):
        raise InvalidInputError(where, 'must be a local time "HH:MM" (00:00-24:00)')
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def check_name(name: str, *, field: str = "name") -> str:
    if not NAME.match(name):
        raise InvalidInputError(field, "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    return name


def check_zone(time_zone: Any, *, field: str = "time_zone") -> str:
    if not isinstance(time_zone, str) or text_problem(time_zone) is not None or not 0 < len(time_zone) <= 64:
        raise InvalidInputError(field, "must be an IANA time-zone name such as Europe/Berlin")
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInputError(field, f"{time_zone!r} is not an IANA time-zone name (e.g. Europe/Berlin)") from None
    return time_zone


def parse_week(week: Any, *, field: str = "week") -> tuple[tuple[Interval, ...], ...]:
    if not isinstance(week, Mapping):
        raise InvalidInputError(field, 'must map mon..sun to lists of ["HH:MM", "HH:MM"] intervals')
    unknown = sorted(str(k) for k in week if k not in DAYS)
    if unknown:
        raise InvalidInputError(f"{field}.{unknown[0]}" if text_problem(unknown[0]) is None else field,
                                f"is not a day: use {', '.join(DAYS)}")
    days: list[tuple[Interval, ...]] = []
    for day in DAYS:
        given = week.get(day) or []
        if not isinstance(given, Sequence) or isinstance(given, str) or len(given) > MAX_INTERVALS:
            raise InvalidInputError(f"{field}.{day}", f"must be a list of at most {MAX_INTERVALS} intervals")
        intervals = []
        for i, pair in enumerate(given):
            where = f"{field}.{day}.{i}"
            if not isinstance(pair, Sequence) or isinstance(pair, str) or len(pair) != 2:
                raise InvalidInputError(where, 'must be a pair ["HH:MM", "HH:MM"]')
            start, end = _minutes(pair[0], f"{where}.0"), _minutes(pair[1], f"{where}.1")
            if end <= start:
                raise InvalidInputError(where, "must end after it starts (an end of 24:00 is midnight)")
            intervals.append((start, end))
        intervals.sort()
        for (_, end), (start, _) in pairwise(intervals):
            if start < end:
                raise InvalidInputError(f"{field}.{day}", "has overlapping intervals")
        days.append(tuple(intervals))
    if not any(days):
        raise InvalidInputError(field, "must have at least one interval of business hours in the week")
    return tuple(days)


def parse_holidays(holidays: Any, *, field: str = "holidays") -> frozenset[date]:
    if not isinstance(holidays, Sequence) or isinstance(holidays, str) or len(holidays) > MAX_HOLIDAYS:
        raise InvalidInputError(field, f"must be a list of at most {MAX_HOLIDAYS} dates (YYYY-MM-DD)")
    result = set()
    for i, value in enumerate(holidays):
        try:
            result.add(value if isinstance(value, date) else date.fromisoformat(str(value)))
        except ValueError:
            raise InvalidInputError(f"{field}.{i}", "must be a date YYYY-MM-DD") from None
    return frozenset(result)


def calendar_set(name: str, *, time_zone: Any, week: Any, holidays: Any) -> CalendarSet:
    """A client's calendar, checked, as the event that records it."""
    check_name(name)
    zone = check_zone(time_zone)
    days = parse_week(week)
    dates = parse_holidays(holidays)
    return CalendarSet(
        name=name, time_zone=zone,
        week={day: tuple((_hhmm(s), _hhmm(e)) for s, e in intervals) for day, intervals in zip(DAYS, days, strict=True)
              if intervals},
        holidays=tuple(d.isoformat() for d in sorted(dates)),
    )


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def from_event(event: CalendarSet) -> Calendar:
    return Calendar(event.time_zone, parse_week(event.week), parse_holidays(event.holidays))


def week_view(calendar: Calendar) -> dict[str, list[list[str]]]:
    return {day: [[_hhmm(s), _hhmm(e)] for s, e in intervals] for day, intervals in zip(DAYS, calendar.week,
                                                                                       strict=True)}


# --- a workspace's calendars, folded from its stream --------------------------------


@dataclass(frozen=True, slots=True)
class Calendars:
    """A workspace's calendars by name and its owners' choices (``owners``: owner -> name)."""

    calendars: Mapping[str, Calendar] = field(default_factory=dict)
    owners: Mapping[str, str] = field(default_factory=dict)
    version: int = 0

    def for_owner(self, owner: str) -> Calendar | None:
        """The owner's calendar, else the workspace's ``default``, else None."""
        name = self.owners.get(owner)
        if name is not None and name in self.calendars:
            return self.calendars[name]
        return self.calendars.get(DEFAULT)

    def users_of(self, name: str) -> list[str]:
        return sorted(owner for owner, chosen in self.owners.items() if chosen == name)


def evolve(state: Calendars, event: Event, version: int) -> Calendars:
    match event:
        case CalendarSet():
            return replace(state, calendars={**state.calendars, event.name: from_event(event)}, version=version)
        case CalendarDeleted():
            return replace(state, calendars={k: v for k, v in state.calendars.items() if k != event.name},
                           version=version)
        case OwnerCalendarSet():
            owners = {k: v for k, v in state.owners.items() if k != event.owner}
            if event.calendar is not None:
                owners[event.owner] = event.calendar
            return replace(state, owners=owners, version=version)
    return replace(state, version=version)


def fold(events: Iterable[tuple[Event, int]]) -> Calendars:
    state = Calendars()
    for event, version in events:
        state = evolve(state, event, version)
    return state


# --- the business clock -------------------------------------------------------------


def _first_instant(local: datetime, zone: tzinfo) -> datetime:
    """The first instant whose wall time in ``zone`` is at or after the naive ``local``: the
    time itself, its first occurrence when the clocks fall back, the transition when it
    falls in the spring-forward gap."""
    early = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if early.astimezone(zone).replace(tzinfo=None) == local:
        return early
    # In a gap: fold=1 reads it with the later offset (an instant before the transition),
    # fold=0 with the earlier one (after it). The transition lies between; find it.
    lo, hi = local.replace(tzinfo=zone, fold=1).astimezone(UTC), early
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        mid = mid.replace(microsecond=0)
        if mid.astimezone(zone).replace(tzinfo=None) >= local:
            hi = mid
        else:
            lo = mid
    return hi


# The rule for a local time the clocks skip or repeat, shared with queue slots (``slots``).
first_instant = _first_instant


def intervals_on(calendar: Calendar, day: date) -> list[tuple[datetime, datetime]]:
    """The business intervals of a local date, as UTC instants (none on a holiday)."""
    if day in calendar.holidays:
        return []
    zone = calendar.zone
    midnight = datetime.combine(day, time(0))
    result = []
    for start, end in calendar.week[day.weekday()]:
        a = _first_instant(midnight + timedelta(minutes=start), zone)
        b = _first_instant(midnight + timedelta(minutes=end), zone)
        if b > a:
            result.append((a, b))
    return result


def _intervals_from(calendar: Calendar, moment: datetime, days: int = MAX_DAYS) -> Iterator[tuple[datetime, datetime]]:
    day = moment.astimezone(calendar.zone).date() - timedelta(days=1)  # an interval may run past midnight UTC
    for _ in range(days):
        for a, b in intervals_on(calendar, day):
            if b > moment:
                yield max(a, moment), b
        day += timedelta(days=1)
    raise BeyondHorizonError(f"the calendar has not that much business time in {days} days")


def add_business(calendar: Calendar, start: datetime, seconds: int) -> datetime:
    """The instant after ``seconds`` of business time from ``start``: inside business hours,
    or at the end of an interval when the time runs out exactly there."""
    remaining = timedelta(seconds=seconds)
    cursor = start.astimezone(UTC)
    for start_at, b in _intervals_from(calendar, cursor):
        a = max(start_at, cursor)
        if b <= a:
            continue
        if remaining <= b - a:
            return a + remaining
        remaining -= b - a
        cursor = b
    raise AssertionError("unreachable: _intervals_from ends by raising")


def business_seconds(calendar: Calendar, start: datetime, end: datetime) -> float:
    """Business time between two instants (0 when ``end`` is not after ``start``)."""
    total = timedelta(0)
    cursor = start.astimezone(UTC)
    end = end.astimezone(UTC)
    if end <= cursor:
        return 0.0
    # Every day from the start's to the end's (and one either side): a span of any length
    # is counted whole, the calendar sparse or not.
    days = (end.astimezone(calendar.zone).date() - cursor.astimezone(calendar.zone).date()).days + 3
    with suppress(BeyondHorizonError):
        for start_at, b in _intervals_from(calendar, cursor, days):
            a = max(start_at, cursor)
            if a >= end:
                break
            if b > a:
                total += min(b, end) - a
                cursor = max(cursor, b)
    return total.total_seconds()


def is_business(calendar: Calendar, moment: datetime) -> bool:
    """Whether ``moment`` falls in business hours (its local date's intervals)."""
    moment = moment.astimezone(UTC)
    day = moment.astimezone(calendar.zone).date()
    return any(a <= moment < b for d in (day - timedelta(days=1), day) for a, b in intervals_on(calendar, d))
