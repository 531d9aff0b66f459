"""The typed catalogue of events in the log.

One class per event type, each with a schema version. Classes register
themselves by name so the store can decode a row into the right type; a row
written at an older schema version is upcast (see ``upcasting``) before it is
validated, never rewritten in place.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from events.errors import UnknownEventTypeError


class Event(BaseModel):
    """Base of every event: immutable, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type_name: ClassVar[str]
    schema_version: ClassVar[int]

    def __init_subclass__(cls, *, type_name: str | None = None, version: int = 1, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if type_name is None:
            return
        if type_name in CATALOGUE:
            raise TypeError(f"event type {type_name!r} is registered twice")
        cls.type_name = type_name
        cls.schema_version = version
        CATALOGUE[type_name] = cls


CATALOGUE: dict[str, type[Event]] = {}


def event_class(type_name: str) -> type[Event]:
    """The class registered for ``type_name``; fails loudly for a type this code does not know."""
    try:
        return CATALOGUE[type_name]
    except KeyError:
        raise UnknownEventTypeError(type_name) from None


# --- value parts carried inside events -------------------------------------------------


class ResponseStep(BaseModel):
    """One step of a response plan: what to do, how long after publishing, and who."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    after_seconds: int = Field(ge=0)
    owner: str
    # "business": ``after`` counts only the owner's business hours (their calendar at send).
    clock: Literal["wall", "business"] = "wall"


class SharedMedia(BaseModel):
    """A media item of the library attached to a post, with the alt text it is published with
    (checked at planning: empty only when ``decorative``). ``kind`` is "image", "gif" (animated)
    or "video"; the bytes stay in the library (``media_id``), which keeps them while the share is
    not sent."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    media_id: UUID
    kind: Literal["image", "gif", "video"]
    mime: str
    alt: str = ""
    decorative: bool = False


class ResponseTask(BaseModel):
    """A response task recorded before its share is published."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task_id: UUID
    kind: str
    after_seconds: int = Field(ge=0)
    owner: str
    clock: Literal["wall", "business"] = "wall"


class ReplyCadence(BaseModel):
    """How often a share's replies are looked for: ``bands`` of (until this post age, look
    this often), a look ``before_due_seconds`` ahead of each task's due time, empty looks
    stretching the interval up to ``max_backoff`` times."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bands: tuple[tuple[int, int], ...]
    before_due_seconds: int = Field(default=30, ge=0)
    max_backoff: int = Field(default=4, ge=1)


class ContentWarning(BaseModel):
    """A post's content warning: the warning ``text`` (Mastodon's ``spoiler_text``, a line
    above the post on Bluesky) and, for Bluesky, the self-``label`` readers' apps act on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str
    label: Literal["sexual", "nudity", "porn", "graphic-media"] | None = None


class SharePart(BaseModel):
    """One post of a thread: part 2 onward each answers the one before. ``media``: the part's
    own attachments (the share's ``media``, if any, go on the first part as well)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str
    content_warning: ContentWarning | None = None
    media: tuple[SharedMedia, ...] = ()


# --- the share lifecycle (stream ``share-<uuid>``) --------------------------------------


class SharePlanned(Event, type_name="SharePlanned", version=2):
    """A team planned a post. Version 2 carries plan offsets in seconds (v1: minutes)."""

    share_id: UUID
    account_id: UUID
    account_name: str
    channel: str
    text: str
    scheduled_at: AwareDatetime
    response_plan: tuple[ResponseStep, ...]
    late_policy: str = "send"
    max_lateness_seconds: int | None = None
    # The account's reply cadence when the share was planned (None: the default).
    reply_cadence: ReplyCadence | None = None
    # True when the share took its account's next free queue slot ("scheduled_at": "next_slot"):
    # it holds that slot until it is cancelled or rescheduled to another time.
    slot: bool = False
    # Every part's content warning unless the part has its own (``parts``), and the language
    # (BCP 47) of every part.
    content_warning: ContentWarning | None = None
    language: str | None = None
    # A thread: its posts in order (``text`` is the first one's); empty for a single post.
    parts: tuple[SharePart, ...] = ()
    # The library's media published with the post, in order (empty: text only).
    media: tuple[SharedMedia, ...] = ()
    # The post this share is one account's part of (POST /v1/posts); None: planned alone.
    post_id: UUID | None = None
    # The account required approval when the share was planned (``config.approval``): it is
    # in review until an approver approves it, and never published before.
    approval_required: bool = False


class ShareRescheduled(Event, type_name="ShareRescheduled"):
    scheduled_at: AwareDatetime


class ShareCancelled(Event, type_name="ShareCancelled"):
    reason: str = ""


class ShareApproved(Event, type_name="ShareApproved"):
    """An approver let a share in review go out: at ``publish_at``, its time, or at once when
    it was approved past it (it is then a late share, under the account's late policy)."""

    approved_by: str
    approved_at: AwareDatetime
    publish_at: AwareDatetime


class ShareRejected(Event, type_name="ShareRejected"):
    """An approver refused a share in review: it is not published; a change to it sends it
    back to review."""

    rejected_by: str
    rejected_at: AwareDatetime
    reason: str


class ShareReviewOverdue(Event, type_name="ShareReviewOverdue"):
    """The share's time came while it was still in review: it waits, unpublished, for an
    approver (then goes out late) or a change."""

    due_at: AwareDatetime
    detected_at: AwareDatetime


class ShareReviewRequested(Event, type_name="ShareReviewRequested"):
    """An approved or rejected share changed (its text, media or time): in review again
    (when: the event's recorded time; who: its actor)."""

    reason: str


class ShareAttemptStarted(Event, type_name="ShareAttemptStarted"):
    """A worker is about to call the network. ``reconcile`` marks an attempt that must
    first look for the post, because an earlier attempt's outcome is unknown."""

    attempt: int = Field(ge=1)
    started_at: AwareDatetime
    idempotency_key: str
    reconcile: bool = False


class ResponseTasksRecorded(Event, type_name="ResponseTasksRecorded"):
    """The share's response work, recorded in the same append as its first attempt."""

    tasks: tuple[ResponseTask, ...]


class ShareSent(Event, type_name="ShareSent"):
    attempt: int = Field(ge=1)
    external_id: str
    url: str | None
    scheduled_at: AwareDatetime
    sent_at: AwareDatetime
    lateness_ms: int
    reconciled: bool = False
    # The first look for replies (a schedule row), from the share's cadence and tasks.
    replies_first_look_at: AwareDatetime | None = None
    # The due times of the tasks on the business clock, worked out at the send with each
    # owner's calendar as it stood then (later calendar changes never move them). Other
    # tasks are due ``after_seconds`` after ``sent_at``.
    business_due_at: dict[UUID, AwareDatetime] | None = None


class SharePartSent(Event, type_name="SharePartSent"):
    """One post of a thread is out (recorded before the next part is sent, so an attempt
    resumes after the last part recorded). ``cid``: the record's content id (Bluesky, where
    a reply names its root and parent by uri and cid)."""

    attempt: int = Field(ge=1)
    part: int = Field(ge=0)
    external_id: str
    url: str | None
    cid: str | None = None
    sent_at: AwareDatetime
    reconciled: bool = False


class ShareFailed(Event, type_name="ShareFailed"):
    """An attempt failed. ``next_attempt_at`` is set when a retry is scheduled."""

    attempt: int = Field(ge=1)
    failed_at: AwareDatetime
    reason: str
    retryable: bool
    outcome_unknown: bool = False
    next_attempt_at: AwareDatetime | None = None


class ShareHeld(Event, type_name="ShareHeld"):
    """Held for a person to decide: found too far past due (the account's late policy), or
    an earlier attempt's outcome is unknown and the channel cannot look for its post
    (``outcome_unknown``; ``candidate_url`` is where a person can look)."""

    held_at: AwareDatetime
    lateness_ms: int
    reason: str
    outcome_unknown: bool = False
    candidate_url: str | None = None


class ShareAbandoned(Event, type_name="ShareAbandoned"):
    attempts: int
    abandoned_at: AwareDatetime
    reason: str


class DuplicatePosted(Event, type_name="DuplicatePosted"):
    """An attempt's post went out although the share was already recorded sent: the
    extra post, never silent (counted in the read model and in /metrics)."""

    attempt: int = Field(ge=1)
    external_id: str
    url: str | None = None
    created_at: AwareDatetime | None = None
    detected_at: AwareDatetime


class DuplicateRemoved(Event, type_name="DuplicateRemoved"):
    """The extra post was deleted through the channel (account option ``remove_duplicates``)."""

    external_id: str
    removed_at: AwareDatetime


class ResponseTasksCancelled(Event, type_name="ResponseTasksCancelled"):
    task_ids: tuple[UUID, ...]
    reason: str


class ResponseReceived(Event, type_name="ResponseReceived"):
    """A reply in the thread under the post (``received_at``: the network's time;
    ``collected_at``: when a look found it; ``parent_id``: the reply it answers, None for
    the post itself; ``author``: the author's handle, ``author_name`` the name they show,
    None where the network gave none)."""

    reply_id: str
    author: str
    author_name: str | None = None
    text: str
    url: str | None = None
    received_at: AwareDatetime
    parent_id: str | None = None
    collected_at: AwareDatetime | None = None


class ResponseTaskCompleted(Event, type_name="ResponseTaskCompleted"):
    task_id: UUID
    completed_at: AwareDatetime
    completed_by: str
    note: str = ""
    reply_external_id: str | None = None


# --- the replies under a sent share, and their answers ------------------------------


class Engagement(BaseModel):
    """A post's counts as the network shows them at a look: replies, reposts (Mastodon's
    boosts), likes (favourites) and quotes (None where the network does not count them)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    replies: int = Field(ge=0)
    reposts: int = Field(ge=0)
    likes: int = Field(ge=0)
    quotes: int | None = Field(default=None, ge=0)


class RepliesLooked(Event, type_name="RepliesLooked"):
    """A look at the thread under the post that changed something: it found new replies
    (recorded with it), the account's own answers or tasks it settled, or its error
    appeared, changed or cleared (``error``). A look that changed nothing is no event: it is
    counted beside the log (``reply_looks``) and its next look written to the schedule.
    ``next_look_at`` None: no more looks. ``collected`` False: the channel cannot read
    replies (its tasks stay manual). ``empty_looks``: empty looks in a row, this one included.
    ``engagement``: the post's counts this look read (None: not read); counts that differ
    from the last recorded ones make the look one that changed something."""

    looked_at: AwareDatetime
    found: int = Field(ge=0)
    new: int = Field(ge=0)
    empty_looks: int = Field(ge=0)
    next_look_at: AwareDatetime | None = None
    collected: bool = True
    error: str | None = None
    engagement: Engagement | None = None


class ReplyAnswerRequested(Event, type_name="ReplyAnswerRequested"):
    """A person wrote an answer to a reply; it is published through the channel."""

    reply_id: str
    text: str
    requested_by: str
    requested_at: AwareDatetime


class ReplyAnswerAttemptStarted(Event, type_name="ReplyAnswerAttemptStarted"):
    """Recorded before the network call. ``attempt`` counts the share's answer calls (all
    replies together): it names the holder of the share's answer lease."""

    reply_id: str
    attempt: int = Field(ge=1)
    started_at: AwareDatetime
    idempotency_key: str
    reconcile: bool = False


class ReplyAnswered(Event, type_name="ReplyAnswered"):
    """The reply has its answer on the network: ours (``attempt``), or one the account wrote
    in the network's own app (``native``)."""

    reply_id: str
    external_id: str
    url: str | None = None
    answered_at: AwareDatetime
    attempt: int | None = None
    native: bool = False
    reconciled: bool = False


class ReplyAnswerFailed(Event, type_name="ReplyAnswerFailed"):
    reply_id: str
    attempt: int = Field(ge=1)
    failed_at: AwareDatetime
    reason: str
    retryable: bool
    outcome_unknown: bool = False
    next_attempt_at: AwareDatetime | None = None


class ReplyDismissed(Event, type_name="ReplyDismissed"):
    reply_id: str
    reason: str = ""
    dismissed_by: str
    dismissed_at: AwareDatetime


class ReplyAssigned(Event, type_name="ReplyAssigned"):
    """A reply given to a person to answer (``assignee``: an owner's name); until then its
    owner is that of the share's current task."""

    reply_id: str
    assignee: str
    assigned_by: str
    assigned_at: AwareDatetime


# --- a workspace's calendars (stream ``calendars-<workspace>``) -----------------------


class CalendarSet(Event, type_name="CalendarSet"):
    """A calendar's business hours, set or replaced, applying from when it was recorded:
    ``week`` maps ``mon``..``sun`` to ``[start, end]`` local times ("HH:MM", an end of
    "24:00" is midnight), ``holidays`` are dates in ``time_zone`` (an IANA name)."""

    name: str
    time_zone: str
    week: dict[str, tuple[tuple[str, str], ...]]
    holidays: tuple[str, ...] = ()


class CalendarDeleted(Event, type_name="CalendarDeleted"):
    name: str


class OwnerCalendarSet(Event, type_name="OwnerCalendarSet"):
    """An owner works by ``calendar`` from now on (None: by the workspace's ``default``)."""

    owner: str
    calendar: str | None
