"""Channels: one ``Publisher`` protocol here, one module per network beside it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from events.catalogue import ContentWarning, Engagement
from scheduler.domain.share import ThreadPost


@dataclass(frozen=True, slots=True)
class PostRef:
    """A post already out that a thread's part answers: its id, and (Bluesky) its record's cid."""

    external_id: str
    cid: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ReplyTo:
    """Where a thread's part goes: under ``parent`` (the part before), in the thread of ``root`` (the first)."""

    root: PostRef
    parent: PostRef


@dataclass(frozen=True, slots=True)
class Attachment:
    """A library item a post carries: its bytes (read by the worker from the database right
    before the call, never carried in a message) and how it is described on the post."""

    media_id: UUID
    kind: str  # "image", "gif" (animated) or "video"
    mime: str
    data: bytes = field(repr=False)
    width: int
    height: int
    alt: str  # as planned ("" only for a decorative image)
    focus: tuple[float, float] | None  # Mastodon's focal point, each in -1..1
    sha256: str


# Not slotted: the worker copies a post through its dict (``scheduler.domain.frozen``).
@dataclass(frozen=True)
class Post:
    """What a publisher needs to publish one share (one part of a thread), on one attempt."""

    share_id: UUID
    workspace_id: str
    account_name: str
    account_config: Mapping[str, Any]
    text: str
    scheduled_at: datetime
    idempotency_key: str
    attempt: int
    # Called right before every request that may publish: the worker extends its lease on
    # the share there, and raises ``LeaseLost`` when another attempt has taken it over.
    before_write: Callable[[], None] | None = field(default=None, compare=False)
    content_warning: ContentWarning | None = None
    language: str | None = None  # BCP 47
    # A thread's part: its index, and for part 1 onward the posts it answers.
    part: int = 0
    reply_to: ReplyTo | None = None
    # The share's media, in order (a thread's: on its first part only).
    media: tuple[Attachment, ...] = field(default=(), compare=False)
    # Whether a post (by its id on the network) is recorded for another share or an answer:
    # a look-up that matches by text passes over those (two shares may say the same thing).
    taken: Callable[[str], bool] | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Published:
    """A post on the network. ``created_at`` is its creation time as the network reports it
    (the share's ``sent_at``); None when the network does not say."""

    external_id: str
    url: str | None
    created_at: datetime | None = None
    # Bluesky: the record's content id (a reply names its parent by it); the post is its id, not this.
    cid: str | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class SharePost:
    """A share's post on the network, whose thread is read and answered in."""

    share_id: UUID
    workspace_id: str
    account_name: str
    account_config: Mapping[str, Any]
    external_id: str
    url: str | None
    sent_at: datetime


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer to one reply in a share's thread, on one attempt. ``requested_at``: a
    look-up for it considers only posts from then on (less the clocks' skew)."""

    post: SharePost
    reply_id: str
    text: str
    idempotency_key: str
    attempt: int
    requested_at: datetime
    # As ``Post.before_write``: the worker's lease on the share's answers must cover the request.
    before_write: Callable[[], None] | None = field(default=None, compare=False)


class LeaseLost(Exception):
    """The worker no longer holds the share's lease: another attempt took it over, so this
    one must not send. Not a ``ChannelError``: channel code lets it through untouched."""


class ChannelError(Exception):
    """Base class of a publisher's failures; ``reason`` is safe to record and show; ``hint``,
    where the product knows the fix, says what an operator does about it (logged as ``hint``)."""

    def __init__(self, reason: str, *, hint: str | None = None) -> None:
        self.reason = reason
        self.hint = hint
        super().__init__(reason)


class PermanentChannelError(ChannelError):
    """Retrying cannot help: bad credentials, content the network rejects."""


class TransientChannelError(ChannelError):
    """Worth retrying: timeouts, 5xx, rate limits (with the network's Retry-After).

    ``outcome_unknown`` marks a failure after the request may have reached the
    network (a read timeout): the next attempt must look for the post first.
    """

    def __init__(self, reason: str, *, retry_after: timedelta | None = None, outcome_unknown: bool = False) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.outcome_unknown = outcome_unknown


class Publisher(Protocol):
    """One network. Every method raises only ``ChannelError`` subclasses for the network's failures.

    Exactly once rests on two methods: ``publish`` dedupes by the idempotency key while the
    network remembers it, and ``find`` looks for the post an earlier attempt may have made
    when that attempt's outcome is unknown. ``find`` means something only where
    ``can_find`` says so: a server that hides an account's non-public posts from its own
    listing (Mastodon's ``private`` and ``direct`` visibilities on several servers) would
    answer "not found" for a post that exists, so a share on such an account is held for a
    person instead of being sent again. A duplicate that happens anyway can be removed with
    ``delete``.
    """

    channel: str

    def publish(self, post: Post) -> Published:
        """Publish once per ``post.idempotency_key``: a repeat returns the same post."""
        ...

    def find(self, post: Post) -> Published | None:
        """Look for a post an earlier attempt may have made (reconciliation)."""
        ...

    def can_find(self, post: Post) -> bool:
        """Whether ``find`` can see an earlier post of this account (from its config; no I/O)."""
        ...

    def delete(self, post: Post, external_id: str) -> None:
        """Remove the post ``external_id`` (a duplicate) of ``post``'s account; one already gone is no error."""
        ...


@runtime_checkable
class ThreadReader(Protocol):
    """A channel that reads the replies under a post and answers them (beside ``Publisher``).
    A channel without these methods cannot collect replies: its tasks stay manual.

    Exactly once for answers rests on the same two legs as for posts: ``answer`` dedupes by
    the answer's idempotency key while the network remembers it, and ``find_answer`` looks
    for an answer an earlier attempt may have made."""

    def read_thread(self, post: SharePost) -> list[ThreadPost]:
        """Every post in the thread under ``post`` (replies of replies too), oldest first."""
        ...

    def answer(self, answer: Answer) -> Published:
        """Publish ``answer`` as a reply to ``answer.reply_id``, once per idempotency key."""
        ...

    def find_answer(self, answer: Answer) -> Published | None:
        """The answer an earlier attempt may have made, or None."""
        ...


@dataclass(frozen=True, slots=True)
class ThreadLook:
    """What one look reads under a post: the thread's posts, and the post's own counts
    (None: the channel does not read them)."""

    posts: list[ThreadPost]
    engagement: Engagement | None = None


@runtime_checkable
class EngagementReader(Protocol):
    """A ``ThreadReader`` that also reads the post's counts at each look."""

    def read_look(self, post: SharePost) -> ThreadLook:
        """The thread under ``post`` (as ``read_thread``) and the post's counts."""
        ...


@dataclass
class Publishers:
    """The publishers a worker knows, by channel name."""

    by_channel: dict[str, Publisher] = field(default_factory=dict)

    def register(self, publisher: Publisher) -> None:
        self.by_channel[publisher.channel] = publisher

    def for_channel(self, channel: str) -> Publisher:
        try:
            return self.by_channel[channel]
        except KeyError:
            raise PermanentChannelError(f"no publisher for channel {channel!r} in this worker") from None
