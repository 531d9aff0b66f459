"""The posting planner: the days a week or month view of the shares calendar shows, and the
UTC instants that bound them in a display time zone. Pure date arithmetic.

Named "planner", not "calendar": ``calendars.py`` beside it is the business-hours calendar
(when a team works), a different thing. Weeks start on Monday (ISO 8601); a month view is
always six whole weeks (42 days) starting on the Monday on or before the 1st, so its
height never jumps from month to month. A day is local midnight to the next local midnight,
23 or 25 hours long on the days the clocks change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Literal, TypeVar

View = Literal["week", "month"]
VIEWS: tuple[View, ...] = ("week", "month")
WEEKS_IN_MONTH_VIEW = 6
EXCERPT = 120
# The years a view or a window may be asked for: a month's neighbours always exist.
FIRST_YEAR, LAST_YEAR = 1000, 9000
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Grid:
    """The days one view shows, in weeks of seven (one week for the week view, six for the month)."""

    view: View
    anchor: date  # the day asked for; the month view's month is the anchor's
    weeks: tuple[tuple[date, ...], ...]
    start: datetime  # UTC, local midnight of the first day
    end: datetime  # UTC, exclusive: local midnight after the last day

    @property
    def days(self) -> tuple[date, ...]:
        return tuple(d for week in self.weeks for d in week)

    @property
    def previous(self) -> date:
        return self.anchor - timedelta(days=7) if self.view == "week" else _add_months(self.anchor, -1)

    @property
    def next(self) -> date:
        return self.anchor + timedelta(days=7) if self.view == "week" else _add_months(self.anchor, 1)

    def in_month(self, day: date) -> bool:
        return (day.year, day.month) == (self.anchor.year, self.anchor.month)


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _add_months(day: date, months: int) -> date:
    """The 1st of the month ``months`` away (the month view is anchored on its month, not a day)."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def midnight(day: date, zone: tzinfo) -> datetime:
    """The UTC instant a local day starts. A midnight the clocks skip (some zones change at
    00:00) is read with the offset before the change: the instant of the change itself."""
    return datetime.combine(day, time(), zone).astimezone(UTC)


def local_day(moment: datetime, zone: tzinfo) -> date:
    return moment.astimezone(zone).date()


def grid(view: View, anchor: date, zone: tzinfo) -> Grid:
    if view == "week":
        first = monday_of(anchor)
        weeks = 1
    else:
        first = monday_of(anchor.replace(day=1))
        weeks = WEEKS_IN_MONTH_VIEW
    rows = tuple(tuple(first + timedelta(days=7 * w + d) for d in range(7)) for w in range(weeks))
    return Grid(view, anchor, rows, midnight(first, zone), midnight(rows[-1][-1] + timedelta(days=1), zone))


def by_day(items: Iterable[T], moment: Callable[[T], datetime], zone: tzinfo) -> dict[date, list[T]]:
    """Items keyed by the local day their moment falls on, in the order given."""
    days: dict[date, list[T]] = {}
    for item in items:
        days.setdefault(local_day(moment(item), zone), []).append(item)
    return days


def excerpt(text: str, limit: int = EXCERPT) -> str:
    """The text on one line, cut at a word before ``limit`` characters with an ellipsis."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ,.;:") + "\u2026"


def content_mark(parts: int, images: int, videos: int) -> str:
    """What an excerpt cannot show of a share: "thread of 3 · 2 images" (empty: one post, text only)."""
    said = [f"thread of {parts}"] if parts > 1 else []
    said += [f"{n} {word}{'s' if n != 1 else ''}" for n, word in ((images, "image"), (videos, "video")) if n]
    return " · ".join(said)
