"""The period a dashboard page shows: whole UTC days, from a picker's query parameters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from urllib.parse import urlencode

from scheduler.api.dashboard.chart import Bucket

PRESETS = {"7d": 7, "30d": 30, "90d": 90}
DEFAULT_PRESET = "30d"
MAX_DAYS = 3660


@dataclass(frozen=True, slots=True)
class Period:
    """Tasks due (or shares scheduled) from ``first`` through ``last``, both whole UTC days."""

    first: date | None
    last: date | None
    by: Bucket
    preset: str  # "7d", "30d", "90d", "all" or "custom"
    error: str | None = None

    @property
    def start(self) -> datetime | None:
        return None if self.first is None else datetime.combine(self.first, time(), UTC)

    @property
    def end(self) -> datetime | None:
        """Exclusive: midnight after ``last``."""
        return None if self.last is None else datetime.combine(self.last + timedelta(days=1), time(), UTC)

    def query(self, **changes: str) -> str:
        params = {"preset": self.preset, "by": self.by}
        if self.preset == "custom" and self.first and self.last:
            params |= {"from": self.first.isoformat(), "to": self.last.isoformat()}
        return urlencode(params | changes)

    def describe(self) -> str:
        if self.first is None or self.last is None:
            return "all time"
        return f"{self.first:%d %b %Y} \u2013 {self.last:%d %b %Y} (UTC)"


def _bucket(value: str | None) -> Bucket:
    by: Literal["day", "week"] = "week" if value == "week" else "day"
    return by


def parse(params: dict[str, str], today: date) -> Period:
    """The period asked for; a bad date falls back to the default and says why."""
    by = _bucket(params.get("by"))
    preset = params.get("preset") or ("custom" if params.get("from") or params.get("to") else DEFAULT_PRESET)
    if preset == "all":
        return Period(None, None, by, "all")
    if preset in PRESETS:
        return Period(today - timedelta(days=PRESETS[preset] - 1), today, by, preset)
    try:
        first = date.fromisoformat(params.get("from") or "")
        last = date.fromisoformat(params.get("to") or "")
    except ValueError:
        return _default(by, "from and to must be dates (YYYY-MM-DD); showing the last 30 days", today)
    if last < first:
        return _default(by, "to must not be before from; showing the last 30 days", today)
    if (last - first).days > MAX_DAYS:
        return _default(by, "a period may span at most ten years; showing the last 30 days", today)
    return Period(first, last, by, "custom")


def _default(by: Bucket, error: str, today: date) -> Period:
    return Period(today - timedelta(days=PRESETS[DEFAULT_PRESET] - 1), today, by, DEFAULT_PRESET, error)
