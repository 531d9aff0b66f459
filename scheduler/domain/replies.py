"""When to look for a share's replies, pure: the cadence banded by the post's age, a
look just before each task's due time (and at the due time of an ``answer_replies``
task, which settles then), backing off on empty looks, and the account's settings.

Account config, key ``replies`` (every field optional)::

    {"cadence": [{"until": "PT1H", "every": "PT2M"}, {"until": "P1D", "every": "PT15M"},
                 {"until": "P7D", "every": "PT2H"}],
     "before_due": "PT30S", "max_backoff": 4, "budget_per_hour": 600}

Past the last band no look is made but those for tasks still due.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from events.catalogue import ReplyCadence
from pydantic import TypeAdapter, ValidationError

from scheduler.errors import InvalidInputError

ANSWER_REPLIES = "answer_replies"
DEFAULT_CADENCE = ReplyCadence(bands=((3600, 120), (86400, 900), (7 * 86400, 7200)), before_due_seconds=30,
                               max_backoff=4)
DEFAULT_BUDGET_PER_HOUR = 600
MIN_EVERY_SECONDS = 1
MAX_BANDS = 10
_DURATION = TypeAdapter(timedelta)


@dataclass(frozen=True, slots=True)
class TaskDue:
    """What the looks must serve of one open task: its due time and whether it settles by itself."""

    due_at: datetime
    settles_itself: bool


def _seconds(value: Any, field: str) -> int:
    try:
        parsed = _DURATION.validate_python(value)
    except ValidationError:
        raise InvalidInputError(field, "must be an ISO 8601 duration such as PT2M") from None
    if parsed.total_seconds() < 0 or parsed % timedelta(seconds=1):
        raise InvalidInputError(field, "must be a whole, positive number of seconds")
    return int(parsed.total_seconds())


def cadence_from_config(config: Mapping[str, Any]) -> ReplyCadence:
    """The account's cadence (``config["replies"]``), the default where it says nothing;
    ``InvalidInputError`` naming the field for a setting that makes no sense."""
    raw = config.get("replies")
    if raw is None:
        return DEFAULT_CADENCE
    if not isinstance(raw, Mapping):
        raise InvalidInputError("config.replies", "must be an object")
    bands = DEFAULT_CADENCE.bands
    if "cadence" in raw:
        steps = raw["cadence"]
        if not isinstance(steps, list) or not steps or len(steps) > MAX_BANDS:
            raise InvalidInputError("config.replies.cadence", f"must list 1 to {MAX_BANDS} bands")
        parsed: list[tuple[int, int]] = []
        for i, step in enumerate(steps):
            where = f"config.replies.cadence.{i}"
            if not isinstance(step, Mapping):
                raise InvalidInputError(where, 'must be {"until": "PT1H", "every": "PT2M"}')
            until, every = _seconds(step.get("until"), f"{where}.until"), _seconds(step.get("every"), f"{where}.every")
            if every < MIN_EVERY_SECONDS:
                raise InvalidInputError(f"{where}.every", "must be at least one second")
            if parsed and until <= parsed[-1][0]:
                raise InvalidInputError(f"{where}.until", "must grow from one band to the next")
            parsed.append((until, every))
        bands = tuple(parsed)
    before_due = (_seconds(raw["before_due"], "config.replies.before_due") if "before_due" in raw
                  else DEFAULT_CADENCE.before_due_seconds)
    backoff = raw.get("max_backoff", DEFAULT_CADENCE.max_backoff)
    if not isinstance(backoff, int) or isinstance(backoff, bool) or not 1 <= backoff <= 64:
        raise InvalidInputError("config.replies.max_backoff", "must be a whole number from 1 to 64")
    budget_per_hour(config)
    return ReplyCadence(bands=bands, before_due_seconds=before_due, max_backoff=backoff)


def budget_per_hour(config: Mapping[str, Any]) -> int:
    """Looks an account may make per hour, over all its shares."""
    raw = config.get("replies")
    value = raw.get("budget_per_hour", DEFAULT_BUDGET_PER_HOUR) if isinstance(raw, Mapping) else DEFAULT_BUDGET_PER_HOUR
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidInputError("config.replies.budget_per_hour", "must be a whole number of at least 1")
    return value


def next_look(
    cadence: ReplyCadence,
    *,
    sent_at: datetime,
    now: datetime,
    empty_looks: int,
    tasks: tuple[TaskDue, ...],
    retry_after: timedelta | None = None,
) -> datetime | None:
    """When to look next, after a look at ``now`` (None: never again).

    The cadence's interval for the post's age, times 2 per empty look in a row (at most
    ``max_backoff`` times), ending with the last band; a look ``before_due_seconds`` ahead
    of each open task's due time, and one at the due time of a task that settles itself.
    A network's Retry-After pushes the next look past it.
    """
    age = (now - sent_at).total_seconds()
    candidates: list[datetime] = []
    band = next((every for until, every in cadence.bands if age < until), None)
    if band is not None:
        factor = min(2 ** min(empty_looks, 16), cadence.max_backoff)
        at = now + timedelta(seconds=band * factor)
        if at <= sent_at + timedelta(seconds=cadence.bands[-1][0]):
            candidates.append(at)
    before = timedelta(seconds=cadence.before_due_seconds)
    for task in tasks:
        if task.due_at - before > now:
            candidates.append(task.due_at - before)
        elif task.settles_itself and task.due_at > now:
            candidates.append(task.due_at)
    if not candidates:
        return None
    nearest = min(candidates)
    if retry_after is not None and nearest < now + retry_after:
        return now + retry_after
    return nearest
