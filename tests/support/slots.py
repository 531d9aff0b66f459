"""Queue slots for tests: a week of slots that starts a safe distance from now."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

BERLIN = ZoneInfo("Europe/Berlin")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
COUNT = 50


def week_from_now(count: int = COUNT) -> dict[str, Any]:
    """``count`` local times 20 minutes apart, the first 20 minutes from now, on every day: no
    slot falls within 20 minutes of now, so the test's own pace cannot move the first free one."""
    now = datetime.now(BERLIN)
    start = now.hour * 60 + now.minute + 20
    times = sorted(f"{(m % 1440) // 60:02d}:{m % 60:02d}" for m in range(start, start + count * 20, 20))
    return {"time_zone": "Europe/Berlin", "week": dict.fromkeys(DAYS, times)}
