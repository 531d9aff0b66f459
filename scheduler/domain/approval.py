"""Approval before publishing: an account's ``config.approval`` and who may approve (pure).

``{"required": true, "approvers": ["ana", "ben"], "self_approval": false}``: a share planned
on the account is in review until one of the approvers approves it. Four eyes: the share's
author (who planned it) may not approve their own share unless ``self_approval`` is true.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scheduler.domain.inputs import check_person
from scheduler.errors import ForbiddenError, InvalidInputError

FIELD = "config.approval"
KEYS = ("required", "approvers", "self_approval")
MAX_APPROVERS = 100


@dataclass(frozen=True, slots=True)
class Approval:
    required: bool
    approvers: tuple[str, ...]
    self_approval: bool = False


NOT_REQUIRED = Approval(required=False, approvers=())


def parse(value: Any, *, field: str = FIELD) -> Approval:
    """A client's approval setting, checked; each problem names its place
    (``config.approval.approvers.1``)."""
    if not isinstance(value, Mapping):
        raise InvalidInputError(field, 'must be {"required": true, "approvers": ["ana", "ben"], '
                                       '"self_approval": false}')
    unknown = sorted(str(k) for k in value if k not in KEYS)
    if unknown:
        raise InvalidInputError(field, f"has no setting {unknown[0][:64]!r}: use required, approvers, self_approval")
    required = value.get("required", False)
    if not isinstance(required, bool):
        raise InvalidInputError(f"{field}.required", "must be true or false")
    self_approval = value.get("self_approval", False)
    if not isinstance(self_approval, bool):
        raise InvalidInputError(f"{field}.self_approval", "must be true or false")
    given = value.get("approvers", [])
    if not isinstance(given, list) or len(given) > MAX_APPROVERS:
        raise InvalidInputError(f"{field}.approvers", f"must be a list of at most {MAX_APPROVERS} people's names")
    approvers: list[str] = []
    for i, name in enumerate(given):
        if not isinstance(name, str):
            raise InvalidInputError(f"{field}.approvers.{i}", "must be a person's name (a token's owner)")
        person = check_person(name, field=f"{field}.approvers.{i}")
        if person in approvers:
            raise InvalidInputError(f"{field}.approvers.{i}", f"repeats {person!r}")
        approvers.append(person)
    if required and not approvers:
        raise InvalidInputError(f"{field}.approvers", "must name at least one approver when approval is required")
    return Approval(required=required, approvers=tuple(approvers), self_approval=self_approval)


def from_config(config: Mapping[str, Any]) -> Approval:
    """The account's approval setting (not required when it has none)."""
    value = config.get("approval")
    return NOT_REQUIRED if value is None else parse(value)


def check_reviewer(approval: Approval, *, person: str, author: str | None, account: str) -> None:
    """Raise ``ForbiddenError`` unless ``person`` may approve or reject a share by ``author``."""
    if person not in approval.approvers:
        names = ", ".join(approval.approvers) or "none"
        raise ForbiddenError(f"{person} is not an approver of account {account!r} (its approvers: {names})")
    if person == author and not approval.self_approval:
        raise ForbiddenError(f"four eyes: {person} planned this share, so another approver must review it "
                              f"(account {account!r} does not allow self-approval)")
