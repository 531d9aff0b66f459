"""Response plans: what must happen after a share goes out, when, and by whom."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from events.catalogue import ResponseStep, ResponseTask
from events.ids import share_uuid

from scheduler.domain.inputs import text_problem
from scheduler.errors import InvalidInputError

KIND = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
MAX_STEPS = 20
MAX_AFTER = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class StepInput:
    """A plan step as a user wrote it (before validation)."""

    kind: str
    after: timedelta
    owner: str
    clock: str = "wall"


def validate_plan(steps: Sequence[StepInput] | None, *, field: str = "response_plan") -> tuple[ResponseStep, ...]:
    """Check a plan and turn it into the steps stored with the share.

    A share must carry response work: an empty plan is refused (the caller falls
    back to the account's default plan before calling this).
    """
    if not steps:
        raise InvalidInputError(
            field,
            'must list at least one response step (e.g. {"kind": "check_replies", '
            '"after": "PT1H", "owner": "alice"}); no account default plan applies',
        )
    if len(steps) > MAX_STEPS:
        raise InvalidInputError(field, f"has {len(steps)} steps; at most {MAX_STEPS} are allowed")
    result = []
    for i, step in enumerate(steps):
        where = f"{field}.{i}"
        if not KIND.fullmatch(step.kind):
            raise InvalidInputError(
                f"{where}.kind", "must be a lower-case word such as check_replies or answer_replies"
            )
        if step.after < timedelta(0):
            raise InvalidInputError(f"{where}.after", "must not be negative")
        if step.after > MAX_AFTER:
            raise InvalidInputError(f"{where}.after", "must be at most 30 days (P30D)")
        if step.after % timedelta(seconds=1):
            raise InvalidInputError(f"{where}.after", "must be a whole number of seconds")
        owner = step.owner.strip()
        if (problem := text_problem(owner)) is not None:
            raise InvalidInputError(f"{where}.owner", problem)
        if not owner or len(owner) > 200:
            raise InvalidInputError(f"{where}.owner", "must name who does this step (1-200 characters)")
        if step.clock not in ("wall", "business"):
            raise InvalidInputError(f"{where}.clock", "must be wall (the default) or business (the owner's hours)")
        result.append(ResponseStep(kind=step.kind, after_seconds=int(step.after.total_seconds()), owner=owner,
                                   clock="business" if step.clock == "business" else "wall"))
    return tuple(result)


def task_id(share_id: UUID, index: int) -> UUID:
    """Deterministic, so recording the tasks again (a retried append) yields the same ids."""
    return share_uuid(share_id, f"task:{index}")


def tasks_for(share_id: UUID, plan: Sequence[ResponseStep]) -> tuple[ResponseTask, ...]:
    return tuple(
        ResponseTask(task_id=task_id(share_id, i), kind=s.kind, after_seconds=s.after_seconds, owner=s.owner,
                     clock=s.clock)
        for i, s in enumerate(plan)
    )
