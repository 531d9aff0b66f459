"""How rates, durations and times read for a person: on the dashboard (its Jinja filters)
and in ``followthrough report``. No web framework here, so the report loads none."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def percent(rate: float | None) -> str:
    """A rate as a percentage; no rate (nothing settled) is never shown as 0 % or 100 %."""
    return "no tasks due" if rate is None else f"{rate * 100:.0f} %"


def seconds(value: float | None) -> str:
    if value is None:
        return "\u2013"
    total = round(float(value))
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def millis(value: float | None) -> str:
    if value is None:
        return "\u2013"
    return f"{value:.0f} ms" if abs(value) < 1000 else seconds(value / 1000)


def when(value: Any) -> str:
    if value is None:
        return "\u2013"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.utcoffset() is None:
        return str(moment)
    if moment.year >= 1000:  # isoformat's first 19 characters: strftime's, in a third of its time
        return moment.isoformat(" ", "seconds")[:19] + " UTC"
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"
