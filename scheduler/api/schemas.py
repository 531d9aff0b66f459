"""Request bodies. Unknown fields are refused, so a typo is an error, not a silent default.

Every string is bounded and storable (no NUL, no unpaired surrogate: ``scheduler.domain.inputs``);
every time carries an offset and converts to UTC without overflowing.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    create_model,
)

from scheduler.domain import content, inputs


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
NEXT_SLOT = "next_slot"
_MOMENT: TypeAdapter[datetime] = TypeAdapter(Moment)


def _moment_or_next_slot(value: Any) -> datetime | str:
    """A plan's time: a moment, or the word "next_slot" (one problem naming the field either way)."""
    if value == NEXT_SLOT:
        return NEXT_SLOT
    try:
        return _MOMENT.validate_python(value)
    except ValidationError as exc:
        raise ValueError(f'{exc.errors()[0]["msg"].removeprefix("Value error, ")}; or "next_slot"') from None


PlanTime = Annotated[
    datetime | Literal["next_slot"],
    PlainValidator(_moment_or_next_slot),
    WithJsonSchema({"anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "const": NEXT_SLOT}]}),
]

MAX_PARTS = 25
Storable = AfterValidator(_storable)
Word = Annotated[str, Field(max_length=64), Storable]
Name = Annotated[str, Field(max_length=200), Storable]
ShareText = Annotated[str, Field(max_length=20_000), Storable]
Note = Annotated[str, Field(max_length=4_000), Storable]
Reason = Annotated[str, Field(max_length=1_000), Storable]
Url = Annotated[str, Field(min_length=1, max_length=2_000, pattern=r"^https?://\S+$"), Storable]
# A post's address: its web page, or (Bluesky) its at-uri.
PostUrl = Annotated[str, Field(min_length=1, max_length=2_000, pattern=r"^(?:https?|at)://\S+$"), Storable]
ExternalId = Annotated[str, Field(max_length=500), Storable]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlanStepIn(Body):
    kind: Word = Field(examples=["check_replies"])
    after: timedelta = Field(description="ISO 8601 duration after publishing, e.g. PT1H", examples=["PT1H"])
    owner: Name = Field(examples=["alice"])
    clock: Literal["wall", "business"] = Field(
        default="wall", description="business: `after` counts only the owner's business hours (their calendar, "
        "else the workspace's `default`)")


class AccountIn(Body):
    name: Word = Field(examples=["demo"])
    channel: Word = Field(examples=["console"])
    config: dict[str, Any] = Field(default_factory=dict, description="channel settings; never credentials "
                                   "(keys like token, secret, password, api_key are refused at any depth)")
    default_response_plan: list[PlanStepIn] | None = Field(default=None, max_length=20)
    late_policy: Literal["send", "hold"] = "send"
    max_lateness: PositiveSpan | None = Field(default=None, description="with late_policy=hold: how late is too late")


def _language(tag: str) -> str:
    problem = content.language_problem(tag)
    if problem is not None:
        raise ValueError(problem)
    return content.normal_language(tag)


Language = Annotated[str, Field(max_length=64, examples=["en", "de-CH"]), Storable, AfterValidator(_language)]
WarningText = Annotated[str, Field(min_length=1, max_length=1_000), Storable]


class ContentWarningIn(Body):
    text: WarningText = Field(examples=["spoilers for the finale"],
                              description="Mastodon: the spoiler text; Bluesky: a first line `CW: <text>`")
    label: Literal["sexual", "nudity", "porn", "graphic-media"] | None = Field(
        default=None, description="Bluesky's self-label for the post (Mastodon has none: not sent there)")


class MediaIn(Body):
    id: UUID = Field(description="a media item of this workspace's library (POST /v1/media)")
    alt: Annotated[str, Field(max_length=10_000), Storable] | None = Field(
        default=None, description="the description published with it (default: the item's alt); required unless "
        'decorative, checked against the network\'s limit; "" only with decorative: true')
    decorative: bool = Field(default=False, description="a purely decorative image: published without alt")


class SharePartIn(Body):
    text: ShareText = Field(examples=["1/ We launched!"])
    content_warning: ContentWarningIn | None = Field(default=None, description="this part's own (default: the share's)")
    media: list[MediaIn] = Field(default_factory=list, max_length=20, description="this part's own, published with "
                                 "it (checked like the share's `media`, per part); the share's `media` are the first "
                                 "part's: give them there or in `parts[0].media`, not both")


class ShareIn(Body):
    account_id: UUID
    text: ShareText | None = Field(default=None, examples=["We launched!"],
                                   description="the post's text; or give `parts` for a thread")
    parts: list[SharePartIn] | None = Field(
        default=None, min_length=1, max_length=MAX_PARTS,
        description="a thread: part 2 onward each published as a reply to the one before")
    content_warning: ContentWarningIn | None = Field(default=None, description="every part's, unless it has its own")
    language: Language | None = Field(default=None, description="BCP 47 (Mastodon gets the primary subtag)")
    scheduled_at: PlanTime | None = Field(
        default=None, description='RFC 3339 with an offset; omitted = now; "next_slot" = the account\'s first free '
        "queue slot (its config.slots)")
    response_plan: list[PlanStepIn] | None = Field(default=None, max_length=20)
    media: list[MediaIn] = Field(default_factory=list, max_length=20, description="images (up to 4), or one video "
                                 "or animated GIF (Mastodon), published with the post in this order")


def _as_defaults(model: type[Body], *, without: tuple[str, ...] = ()) -> type[Body]:
    """A body whose fields are ``model``'s, each optional (given or not): a post's values and
    an account's variant are a share's content, whatever fields a share gains. Each field
    keeps its rules for a value given (``null`` too is a value: a variant may say "now"
    against the post's time)."""
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if name in without:
            continue
        kind: Any = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
        fields[name] = (kind | None, Field(default=None, description=info.description, examples=info.examples))
    derived: type[Body] = create_model(f"{model.__name__}Defaults", __base__=Body, **fields)
    return derived


class PostAccountIn(_as_defaults(ShareIn, without=("account_id",))):  # type: ignore[misc]
    """One account of a post; the share's fields given here (its variant) replace the post's."""

    account_id: UUID


class PostIn(_as_defaults(ShareIn, without=("account_id",))):  # type: ignore[misc]
    """One post to several accounts, a share each: the post's fields are every share's
    unless its account gives its own."""

    accounts: list[PostAccountIn] = Field(min_length=1, max_length=50)


class RescheduleIn(Body):
    scheduled_at: Moment


class RetryIn(Body):
    scheduled_at: Moment | None = Field(default=None, description="when to try again (default: now)")


class MarkSentIn(Body):
    url: PostUrl = Field(examples=["https://mastodon.social/@team/113456789012345678"],
                         description="the post's address (Bluesky: its bsky.app address or its at:// uri); "
                                     "the post's id is read from it when external_id is not given")
    external_id: ExternalId | None = Field(
        default=None, description="the network's id of the post (default: read from the url for the share's channel)")
    sent_at: Moment | None = Field(
        default=None, description="the post's creation time (default: when the last attempt started)")


class CancelIn(Body):
    reason: Reason = ""


class RejectIn(Body):
    reason: Reason = Field(description="why the share may not go out as it is (its author reads it)",
                           examples=["The launch date is not public yet"])


class CompleteIn(Body):
    note: Note = ""
    completed_by: Name | None = None


LocalTime = Annotated[str, Field(pattern=r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$", examples=["09:00"])]
Interval = Annotated[list[LocalTime], Field(min_length=2, max_length=2, examples=[["09:00", "17:00"]])]
Day = Annotated[list[Interval], Field(max_length=12)]
# A date as text only (a number is no date): the calendar's rules check that it exists.
IsoDate = Annotated[str, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", examples=["2026-12-25"])]


class WeekIn(Body):
    mon: Day = Field(default_factory=list)
    tue: Day = Field(default_factory=list)
    wed: Day = Field(default_factory=list)
    thu: Day = Field(default_factory=list)
    fri: Day = Field(default_factory=list)
    sat: Day = Field(default_factory=list)
    sun: Day = Field(default_factory=list)


class CalendarIn(Body):
    time_zone: Annotated[str, Field(min_length=1, max_length=64), Storable] = Field(
        description="an IANA time-zone name", examples=["Europe/Berlin"])
    week: WeekIn = Field(description='business hours by weekday: ["HH:MM", "HH:MM"] local intervals (24:00 ends '
                         "a day)")
    holidays: list[IsoDate] = Field(default_factory=list, max_length=1000,
                                    description="dates without business hours (YYYY-MM-DD, in time_zone)")


class OwnerIn(Body):
    calendar: Word | None = Field(description="the calendar this owner works by; null: the workspace's default")
