"""Queue slots: an account's posting times in a week, in its time zone, and the instants
they stand for (pure: the time-zone database is data, not I/O).

An account's ``config.slots`` is ``{"time_zone": "Europe/Berlin", "week": {"mon": ["09:00",
"12:30"], ...}}``. A slot's instant follows the business calendars' rule
(``calendars.first_instant``): a local time the clocks skip (inside the spring-forward gap)
stands for the transition itself, and a local time the clocks repeat (the fall-back hour)
for its first occurrence. Two slots of a day that land on the same instant that way
(02:30 and 03:00 on a spring-forward night in Berlin) are one slot.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.domain.calendars import DAYS, check_zone, first_instant
from scheduler.domain.inputs import text_problem
from scheduler.errors import InvalidInputError

HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
MAX_PER_DAY = 96  # a slot every quarter of an hour
KEYS = ("time_zone", "week")


class NoSlotsError(ValueError):
    """The week has no slot at all: there is no next slot to take."""


@dataclass(frozen=True, slots=True)
class Slots:
    time_zone: str
    week: tuple[tuple[int, ...], ...]  # minutes after local midnight, ascending; Monday first, seven entries

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


def _where(field: str, key: Any) -> str:
    return f"{field}.{key}" if isinstance(key, str) and text_problem(key) is None and len(key) <= 64 else field


def parse(value: Any, *, field: str = "config.slots") -> Slots:
    """A client's slots setting, checked; each problem names its place (``config.slots.week.mon.0``)."""
    if not isinstance(value, Mapping):
        raise InvalidInputError(field, 'must be {"time_zone": "Europe/Berlin", "week": {"mon": ["09:00", ...], ...}}')
    unknown = sorted(str(k) for k in value if k not in KEYS)
    if unknown:
        raise InvalidInputError(_where(field, unknown[0]), "is not a slots setting: use time_zone and week")
    zone = check_zone(value.get("time_zone"), field=f"{field}.time_zone")
    week = value.get("week")
    where = f"{field}.week"
    if not isinstance(week, Mapping):
        raise InvalidInputError(where, 'must map mon..sun to lists of local times "HH:MM"')
    unknown = sorted(str(k) for k in week if k not in DAYS)
    if unknown:
        raise InvalidInputError(_where(where, unknown[0]), f"is not a day: use {', '.join(DAYS)}")
    days: list[tuple[int, ...]] = []
    for day in DAYS:
        given = week.get(day) or []
        if not isinstance(given, Sequence) or isinstance(given, str) or len(given) > MAX_PER_DAY:
            raise InvalidInputError(f"{where}.{day}", f'must be a list of at most {MAX_PER_DAY} local times "HH:MM"')
        minutes: list[int] = []
        for i, hhmm in enumerate(given):
            if not isinstance(hhmm, str) or not HHMM.match(hhmm):
                raise InvalidInputError(f"{where}.{day}.{i}", 'must be a local time "HH:MM" (00:00-23:59)')
            m = int(hhmm[:2]) * 60 + int(hhmm[3:])
            if m in minutes:
                raise InvalidInputError(f"{where}.{day}.{i}", f"repeats {hhmm}")
            minutes.append(m)
        days.append(tuple(sorted(minutes)))
    if not any(days):
        raise InvalidInputError(where, "must have at least one slot in the week")
    return Slots(zone, tuple(days))


def from_config(config: Mapping[str, Any]) -> Slots | None:
    """The account's slots (None when its config has no ``slots``)."""
    value = config.get("slots")
    return None if value is None else parse(value)


def view(slots: Slots) -> dict[str, Any]:
    return {"time_zone": slots.time_zone,
            "week": {day: [f"{m // 60:02d}:{m % 60:02d}" for m in minutes]
                     for day, minutes in zip(DAYS, slots.week, strict=True) if minutes}}


def between(slots: Slots, start: datetime, end: datetime) -> Iterator[datetime]:
    """The slots' instants (UTC) from ``start`` (included) to ``end`` (excluded), ascending
    and distinct. Raises ``NoSlotsError`` for a week without slots."""
    if not any(slots.week):
        raise NoSlotsError("the week has no slot: give at least one local time in slots.week")
    zone = ZoneInfo(slots.time_zone)
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    day = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date() + timedelta(days=1)
    previous: datetime | None = None
    while day <= last:
        midnight = datetime.combine(day, time(0))
        for minutes in slots.week[day.weekday()]:
            at = first_instant(midnight + timedelta(minutes=minutes), zone)
            if at == previous:
                continue  # two local times the spring-forward gap made one instant
            previous = at
            if at >= end:
                return
            if at >= start:
                yield at
        day += timedelta(days=1)
