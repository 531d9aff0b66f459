"""What the API answers, as models for the OpenAPI document (the views themselves are
built in ``views`` and the routes; these describe them for clients and for Schemathesis)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

Moment = str  # RFC 3339, UTC


class Out(BaseModel):
    model_config = ConfigDict(extra="allow")  # fields may be added; clients ignore what they do not know


class TaskOut(Out):
    id: str = Field(examples=["6f2e6c1e-6a53-5b8e-9d1c-2b1f3e4d5a6b"])
    share_id: str
    kind: str = Field(examples=["check_replies"])
    after: str = Field(examples=["PT1H"])
    owner: str = Field(examples=["alice"])
    due_at: Moment | None
    status: str = Field(examples=["open"], description="pending, open, overdue, done or cancelled")
    completed_at: Moment | None
    clock: str = Field(examples=["wall"], description="wall, or business: `after` counted in the owner's hours")
    sla: str | None = Field(examples=["on_track"], description="of an open or overdue task: on_track, at_risk, "
                            "breached")


class SharedMediaOut(Out):
    id: str
    kind: str = Field(examples=["image"], description="image, gif (animated) or video")
    mime: str = Field(examples=["image/png"])
    alt: str = Field(description="published with the post (empty only when decorative)")
    decorative: bool
    content: str = Field(examples=["/v1/media/6f2e6c1e-6a53-4b8e-9d1c-2b1f3e4d5a6b/content"])


class MediaOut(Out):
    id: str
    kind: str = Field(examples=["image"], description="image, gif (animated) or video")
    mime: str = Field(examples=["image/jpeg"], description="read from the content, never from the name")
    bytes: int
    width: int
    height: int
    alt: str
    focus: str | None = Field(examples=["0,0.5"], description='"x,y" in -1..1')
    sha256: str = Field(description="of the stored bytes (after location metadata was removed); the ETag")
    created_at: Moment


class MediaList(Out):
    items: list[MediaOut]
    next_cursor: str | None


class ShareOut(Out):
    id: str
    workspace_id: str | None
    account_id: str
    post_id: str | None = Field(description="the post (POST /v1/posts) this share is one account's part of")
    account_name: str
    channel: str = Field(examples=["console"])
    text: str = Field(examples=["We launched!"])
    media: list[SharedMediaOut] = Field(default_factory=list, description="published with the post, in order")
    status: str = Field(examples=["planned"], description="planned, sending, sent, failed, abandoned, cancelled, held")
    scheduled_at: Moment | None
    sent_at: Moment | None
    lateness_ms: int | None
    url: str | None
    external_id: str | None
    attempts: int
    next_attempt_at: Moment | None
    last_error: str | None
    replies_received: int
    held: dict[str, Any] | None
    duplicate_posts: list[dict[str, Any]]
    created_at: Moment | None
    version: int
    response_tasks: list[TaskOut]


class PostOut(Out):
    id: str
    created_at: Moment
    shares: list[ShareOut] = Field(description="a share per account, in the request's order")


class ShareRow(Out):
    id: str
    account_name: str
    channel: str
    status: str
    scheduled_at: Moment
    sent_at: Moment | None
    lateness_ms: int | None
    attempts: int
    url: str | None


class ShareList(Out):
    shares: list[ShareRow]


class EventOut(Out):
    type: str = Field(examples=["SharePlanned"])
    version: int
    recorded_at: Moment
    actor: str | None = Field(description="who caused it: a token's owner (else its label), or a worker",
                              examples=["ana"])
    data: dict[str, Any]


class StepOut(Out):
    kind: str
    after: str
    owner: str
    clock: str = Field(examples=["wall"])


class AccountOut(Out):
    id: str
    name: str = Field(examples=["demo"])
    channel: str = Field(examples=["console"])
    config: dict[str, Any] = Field(description="secret-looking values are shown as [redacted]")
    default_response_plan: list[StepOut] | None
    late_policy: str = Field(examples=["send"])
    max_lateness: str | None
    created_at: Moment


class AccountList(Out):
    accounts: list[AccountOut]


class InboxRow(Out):
    id: str
    share_id: str
    account_name: str
    channel: str
    kind: str
    owner: str
    due_at: Moment | None
    status: str
    completed_at: Moment | None
    sla: str | None = Field(examples=["at_risk"], description="on_track, at_risk or breached")


class Inbox(Out):
    tasks: list[InboxRow]


class FollowthroughRow(Out):
    key: str | int | float | None
    open: int
    done_on_time: int
    done_late: int
    overdue: int
    rate: float | None
    median_seconds_to_complete: float | None
    p90_seconds_to_complete: float | None
    median_seconds_to_first_look: float | None
    replies_received: int
    replies_answered: int
    median_seconds_to_answer: float | None
    p90_seconds_to_answer: float | None


class FollowthroughOut(Out):
    by: str
    from_: Moment | None = Field(alias="from")
    to: Moment | None
    hours: str = Field(examples=["all"], description="all, business or off: which replies the reply figures count")
    clock: str = Field(examples=["wall"], description="the clock every reported time is measured on")
    rows: list[FollowthroughRow]
    sent_shares_without_response_tasks: int


class CalendarOut(Out):
    name: str = Field(examples=["default"])
    time_zone: str = Field(examples=["Europe/Berlin"])
    week: dict[str, list[list[str]]] = Field(examples=[{"mon": [["09:00", "17:00"]]}])
    holidays: list[str] = Field(examples=[["2026-12-25"]])


class CalendarList(Out):
    calendars: list[CalendarOut]


class OwnerOut(Out):
    owner: str = Field(examples=["alice"])
    calendar: str | None = Field(description="the calendar given to this owner (null: none)")
    works_by: str | None = Field(description="the calendar their business steps use now: theirs, else default")


class OwnerList(Out):
    owners: list[OwnerOut]
    default: str | None


class TokenOut(Out):
    id: str
    scope: str = Field(examples=["read"])
    label: str
    created_at: Moment
    expires_at: Moment | None
    last_used_at: Moment | None
    revoked_at: Moment | None
    owner: str | None = Field(description="the person it belongs to (null: none; its label is then the actor)",
                              examples=["ana"])


class TokenCreated(TokenOut):
    token: str = Field(description="shown only in this answer", examples=["ft_..."])


class TokenList(Out):
    tokens: list[TokenOut]


class Health(Out):
    status: str = Field(examples=["ok"])


class Readiness(Out):
    status: str = Field(examples=["ready"])
    checks: dict[str, str]


# (method, path) -> (status, model, description): the success answer of every operation.
SUCCESS: dict[tuple[str, str], tuple[str, type[BaseModel] | None, str]] = {
    ("post", "/v1/accounts"): ("201", AccountOut, "the account"),
    ("get", "/v1/accounts"): ("200", AccountList, "the workspace's accounts"),
    ("get", "/v1/accounts/{account_id}"): ("200", AccountOut, "the account"),
    ("post", "/v1/shares"): ("201", ShareOut, "the share, planned (or the first answer to this Idempotency-Key)"),
    ("get", "/v1/shares"): ("200", ShareList, "shares, newest first"),
    ("post", "/v1/posts"): ("201", PostOut, "the post and its shares, planned (or the first answer to this "
                            "Idempotency-Key)"),
    ("get", "/v1/posts/{post_id}"): ("200", PostOut, "the post's shares now"),
    ("get", "/v1/shares/{share_id}"): ("200", ShareOut, "the share"),
    ("get", "/v1/shares/{share_id}/events"): ("200", None, "the share's events in order"),
    ("post", "/v1/shares/{share_id}/reschedule"): ("200", ShareOut, "the share"),
    ("post", "/v1/shares/{share_id}/mark-sent"): ("200", ShareOut, "the share"),
    ("post", "/v1/shares/{share_id}/cancel"): ("200", ShareOut, "the share"),
    ("post", "/v1/response-tasks/{task_id}/complete"): ("200", TaskOut, "the task"),
    ("post", "/v1/media"): ("201", MediaOut, "the item, stored"),
    ("get", "/v1/media"): ("200", MediaList, "the workspace's media, newest first"),
    ("get", "/v1/media/{media_id}"): ("200", MediaOut, "the item"),
    ("patch", "/v1/media/{media_id}"): ("200", MediaOut, "the item"),
    ("delete", "/v1/media/{media_id}"): ("204", None, "deleted (its bytes too, unless another item has them)"),
    ("get", "/v1/response-tasks"): ("200", Inbox, "the response inbox"),
    ("get", "/v1/followthrough"): ("200", FollowthroughOut, "the follow-through rate by the chosen key"),
    ("put", "/v1/calendars/{name}"): ("200", CalendarOut, "the calendar (201 when it is new)"),
    ("get", "/v1/calendars"): ("200", CalendarList, "the workspace's calendars"),
    ("get", "/v1/calendars/{name}"): ("200", CalendarOut, "the calendar and the owners who work by it"),
    ("delete", "/v1/calendars/{name}"): ("204", None, "deleted"),
    ("put", "/v1/owners/{owner}"): ("200", OwnerOut, "the owner's calendar"),
    ("get", "/v1/owners"): ("200", OwnerList, "the owners given a calendar"),
    ("post", "/v1/tokens"): ("201", TokenCreated, "the token; `token` is never shown again"),
    ("get", "/v1/tokens"): ("200", TokenList, "the workspace's tokens (never the tokens themselves)"),
    ("delete", "/v1/tokens/{token_id}"): ("204", None, "revoked"),
    ("get", "/healthz"): ("200", Health, "the process is up"),
    ("get", "/readyz"): ("200", Readiness, "the database and the broker answer"),
}
EVENT_LIST = "EventList"
