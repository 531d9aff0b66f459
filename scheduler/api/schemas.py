"""Request bodies. Unknown fields are refused, so a typo is an error, not a silent default."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlanStepIn(Body):
    kind: str = Field(examples=["check_replies"])
    after: timedelta = Field(description="ISO 8601 duration after publishing, e.g. PT1H", examples=["PT1H"])
    owner: str = Field(examples=["alice"])


class AccountIn(Body):
    name: str
    channel: str = Field(examples=["console"])
    config: dict[str, Any] = Field(default_factory=dict)
    default_response_plan: list[PlanStepIn] | None = None
    late_policy: Literal["send", "hold"] = "send"
    max_lateness: timedelta | None = Field(default=None, description="with late_policy=hold: how late is too late")


class ShareIn(Body):
    account_id: UUID
    text: str
    scheduled_at: AwareDatetime | None = Field(default=None, description="RFC 3339 with an offset; omitted = now")
    response_plan: list[PlanStepIn] | None = None


class RescheduleIn(Body):
    scheduled_at: AwareDatetime


class MarkSentIn(Body):
    url: str = Field(min_length=1, max_length=2000, pattern=r"^https?://\S+$",
                     examples=["https://mastodon.social/@team/113456789012345678"])
    external_id: str | None = Field(default=None, max_length=500,
                                    description="the network's id of the post (default: the url)")
    sent_at: AwareDatetime | None = Field(
        default=None, description="the post's creation time (default: when the last attempt started)")


class CancelIn(Body):
    reason: str = ""


class CompleteIn(Body):
    note: str = ""
    completed_by: str | None = None
