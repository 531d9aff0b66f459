"""Hypothesis strategies for the business clock's tests: calendars on a quarter-hour grid in
several time zones, and moments across 2026."""

from __future__ import annotations

from datetime import UTC, date, datetime

from hypothesis import strategies as st

from scheduler.domain import calendars as c

ZONES = ("Europe/Berlin", "America/New_York", "Australia/Sydney", "UTC", "Asia/Kolkata")


def _hhmm(quarter: int) -> str:
    return f"{quarter // 4:02d}:{quarter % 4 * 15:02d}"


@st.composite
def calendars(draw: st.DrawFn) -> c.Calendar:
    """Calendars on a quarter-hour grid (so intervals start and end inside the DST gaps too)."""
    week: dict[str, list[list[str]]] = {}
    for day in c.DAYS:
        edges = sorted(draw(st.sets(st.integers(0, 96), max_size=6)))
        week[day] = [[_hhmm(a), _hhmm(b)] for a, b in zip(edges[::2], edges[1::2], strict=False) if b > a]
    if not any(week.values()):
        week["wed"] = [["10:00", "11:30"]]
    holidays = draw(st.lists(st.dates(date(2026, 1, 1), date(2027, 3, 31)), max_size=20))
    return c.from_event(c.calendar_set("x", time_zone=draw(st.sampled_from(ZONES)), week=week, holidays=holidays))


moments = st.datetimes(datetime(2026, 1, 1), datetime(2027, 1, 1), timezones=st.just(UTC))  # noqa: DTZ001 (naive bounds are what hypothesis takes)
