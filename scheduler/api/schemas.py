"""Request bodies. Unknown fields are refused, so a typo is an error, not a silent default.

Every string is bounded and storable (no NUL, no unpaired surrogate: ``scheduler.domain.inputs``);
every time carries an offset and converts to UTC without overflowing.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from scheduler.domain import inputs


def _storable(value: str) -> str:
    problem = inputs.text_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _looks_like_a_time(value: Any) -> Any:
    """A time is written as RFC 3339 text, not as a number of seconds (pydantic would take both)."""
    if isinstance(value, str) and not RFC3339.match(value):
        raise ValueError("must be RFC 3339 with a time-zone offset, e.g. 2026-11-25T18:00:00+01:00")
    if isinstance(value, int | float):
        raise ValueError("must be RFC 3339 text with a time-zone offset, not a number")
    return value


def _in_range(moment: datetime) -> datetime:
    try:
        moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range (converting it to UTC overflows)") from None
    return moment


def _not_negative(span: timedelta) -> timedelta:
    if span <= timedelta(0):
        raise ValueError("must be a positive duration")
    if span > timedelta(days=366):
        raise ValueError("must be at most P366D")
    return span


Moment = Annotated[AwareDatetime, BeforeValidator(_looks_like_a_time), AfterValidator(_in_range)]
PositiveSpan = Annotated[timedelta, AfterValidator(_not_negative)]

Storable = AfterValidator(_storable)
Word = Annotated[str, Field(max_length=64), Storable]
Name = Annotated[str, Field(max_length=200), Storable]
ShareText = Annotated[str, Field(max_length=20_000), Storable]
Note = Annotated[str, Field(max_length=4_000), Storable]
Reason = Annotated[str, Field(max_length=1_000), Storable]
Url = Annotated[str, Field(min_length=1, max_length=2_000, pattern=r"^https?://\S+$"), Storable]
ExternalId = Annotated[str, Field(max_length=500), Storable]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlanStepIn(Body):
    kind: Word = Field(examples=["check_replies"])
    after: timedelta = Field(description="ISO 8601 duration after publishing, e.g. PT1H", examples=["PT1H"])
    owner: Name = Field(examples=["alice"])


class AccountIn(Body):
    name: Word = Field(examples=["demo"])
    channel: Word = Field(examples=["console"])
    config: dict[str, Any] = Field(default_factory=dict, description="channel settings; never credentials "
                                   "(keys like token, secret, password, api_key are refused at any depth)")
    default_response_plan: list[PlanStepIn] | None = Field(default=None, max_length=20)
    late_policy: Literal["send", "hold"] = "send"
    max_lateness: PositiveSpan | None = Field(default=None, description="with late_policy=hold: how late is too late")


class ShareIn(Body):
    account_id: UUID
    text: ShareText = Field(examples=["We launched!"])
    scheduled_at: Moment | None = Field(default=None, description="RFC 3339 with an offset; omitted = now")
    response_plan: list[PlanStepIn] | None = Field(default=None, max_length=20)


class RescheduleIn(Body):
    scheduled_at: Moment


class RetryIn(Body):
    scheduled_at: Moment | None = Field(default=None, description="when to try again (default: now)")


class MarkSentIn(Body):
    url: Url = Field(examples=["https://mastodon.social/@team/113456789012345678"])
    external_id: ExternalId | None = Field(default=None, description="the network's id of the post (default: the url)")
    sent_at: Moment | None = Field(
        default=None, description="the post's creation time (default: when the last attempt started)")


class CancelIn(Body):
    reason: Reason = ""


class CompleteIn(Body):
    note: Note = ""
    completed_by: Name | None = None
