"""The follow-through chart: rows per day (or ISO week) turned into bars of an inline SVG.

Pure: the template draws what this computes. The rows come from the report grouped by the
chart's bucket, each with the rate the database's ``followthrough_rate`` gave it (so a week's
rate is taken over its summed counts, by the one formula). A period with nothing settled
has no rate and gets no bar (a dashed mark and "no tasks due" in its tooltip), never a 0 % bar.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

Bucket = Literal["day", "week"]
WIDTH, HEIGHT = 560, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 18, 30


@dataclass(frozen=True, slots=True)
class Point:
    label: str
    start: date
    on_time: int
    late: int
    overdue: int
    open: int
    rate: float | None


@dataclass(frozen=True, slots=True)
class Bar:
    point: Point
    x: float
    width: float
    y: float
    height: float
    show_label: bool
    show_value: bool


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def points(rows: list[dict[str, Any]], first: date, last: date, bucket: Bucket) -> list[Point]:
    """One point per day or week from ``first`` to ``last`` (inclusive), empty ones included.
    ``rows`` are the report's rows grouped by ``bucket`` (a week keyed by its Monday)."""
    found = {date.fromisoformat(str(row["key"])): row for row in rows}
    step = timedelta(days=7 if bucket == "week" else 1)
    cursor = week_start(first) if bucket == "week" else first
    out = []
    while cursor <= last:
        row = found.get(cursor)
        label = f"week of {cursor:%d %b}" if bucket == "week" else f"{cursor:%a %d %b}"
        if row is None:
            out.append(Point(label, cursor, 0, 0, 0, 0, None))
        else:
            out.append(Point(label, cursor, int(row["done_on_time"]), int(row["done_late"]), int(row["overdue"]),
                             int(row["open"]), row["rate"]))
        cursor += step
    return out


def bars(series: list[Point]) -> list[Bar]:
    if not series:
        return []
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    slot = plot_w / len(series)
    width = max(2.0, slot * 0.7)
    every = max(1, round(len(series) / 8))
    out = []
    for i, point in enumerate(series):
        rate = point.rate or 0.0
        height = plot_h * rate if point.rate is not None else 0.0
        x = LEFT + i * slot + (slot - width) / 2
        out.append(Bar(point, x, width, TOP + plot_h - height, height, i % every == 0, len(series) <= 16))
    return out


def gridlines() -> list[tuple[float, str]]:
    plot_h = HEIGHT - TOP - BOTTOM
    return [(TOP + plot_h * (1 - f), f"{f:.0%}") for f in (0.0, 0.25, 0.5, 0.75, 1.0)]
