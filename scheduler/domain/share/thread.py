"""The thread under a sent share, folded: its replies, their answers, and the looks.

Pure, like the rest of the share's state: ``evolve_thread`` applies one event, and
replaying any prefix then the rest equals replaying all.

The looks folded from the log are the recorded ones (a look is an event only when it
changed something); every look is counted beside the log (``reply_looks``, a
:class:`LookLedger`), and ``with_looks`` lays that count over the folded thread.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from events.catalogue import (
    Engagement,
    Event,
    RepliesLooked,
    ReplyAnswerAttemptStarted,
    ReplyAnswered,
    ReplyAnswerFailed,
    ReplyAnswerRequested,
    ReplyAssigned,
    ReplyDismissed,
    ResponseReceived,
)

AnswerStatus = Literal["none", "requested", "sending", "failed", "answered"]
ReplyInboxState = Literal["unanswered", "answered", "dismissed"]


@dataclass(frozen=True, slots=True)
class ReplyState:
    reply_id: str
    author: str
    text: str
    url: str | None
    received_at: datetime
    collected_at: datetime
    parent_id: str | None = None
    answer_text: str | None = None
    answer_requested_at: datetime | None = None
    answer_status: AnswerStatus = "none"
    answer_attempt: int = 0  # the share-wide attempt number of this answer's latest call
    answer_started_at: datetime | None = None
    answer_failures: int = 0
    answer_next_at: datetime | None = None
    answer_retryable: bool = True
    answer_outcome_unknown: bool = False
    answer_error: str | None = None
    answered_at: datetime | None = None
    answer_external_id: str | None = None
    answer_url: str | None = None
    answer_native: bool = False
    dismissed_at: datetime | None = None
    dismiss_reason: str | None = None
    assignee: str | None = None  # assigned to (ReplyAssigned); None: the share's current task's owner

    @property
    def handled_at(self) -> datetime | None:
        """When it stopped needing an answer: answered (on the network) or dismissed."""
        return self.answered_at or self.dismissed_at

    @property
    def inbox_state(self) -> ReplyInboxState:
        if self.answered_at is not None:
            return "answered"
        return "dismissed" if self.dismissed_at is not None else "unanswered"

    @property
    def answer_pending(self) -> bool:
        """An answer asked for and not yet on the network (nor given up)."""
        return self.answer_status in ("requested", "sending") or (
            self.answer_status == "failed" and self.answer_retryable and self.answer_next_at is not None)


@dataclass(frozen=True, slots=True)
class ThreadState:
    replies: tuple[ReplyState, ...] = ()
    looks: int = 0
    last_look_at: datetime | None = None
    next_look_at: datetime | None = None
    empty_looks: int = 0
    collected: bool | None = None  # None: not looked yet; False: the channel cannot read replies
    last_error: str | None = None
    answer_attempts: int = 0
    # The post's counts at the last recorded look that read them, and when; ``engagement_seen_at``:
    # the last look known to have read them unchanged (a look without an error since then).
    engagement: Engagement | None = None
    engagement_at: datetime | None = None
    engagement_seen_at: datetime | None = None

    def reply(self, reply_id: str) -> ReplyState | None:
        return next((r for r in self.replies if r.reply_id == reply_id), None)

    def with_reply(self, reply_id: str, **changes: object) -> ThreadState:
        return replace(self, replies=tuple(replace(r, **changes) if r.reply_id == reply_id else r  # type: ignore[arg-type]
                                           for r in self.replies))


@dataclass(frozen=True, slots=True)
class LookLedger:
    """Every look at the thread, recorded or not, as the worker counts them beside the log:
    how many, the last, the next (None: no more looks), the empty looks in a row (the
    cadence's back-off) and the last look's error."""

    looks: int
    last_look_at: datetime
    next_look_at: datetime | None
    empty_looks: int
    last_error: str | None = None


def with_looks(thread: ThreadState, ledger: LookLedger | None) -> ThreadState:
    """The thread with every look counted: the ledger's figures where it is at least as
    new as the last recorded look (a share looked at before the ledger existed has none)."""
    if ledger is None or (thread.last_look_at is not None and ledger.last_look_at < thread.last_look_at):
        return thread
    seen = thread.engagement_seen_at
    if thread.engagement is not None and ledger.last_error is None and (seen is None or ledger.last_look_at > seen):
        seen = ledger.last_look_at  # a look that read the post without an error, and changed nothing
    return replace(thread, looks=max(ledger.looks, thread.looks), last_look_at=ledger.last_look_at,
                   next_look_at=ledger.next_look_at, empty_looks=ledger.empty_looks,
                   collected=True if thread.collected is None else thread.collected, engagement_seen_at=seen)


def evolve_thread(thread: ThreadState, event: Event) -> ThreadState:
    """Apply one event of the thread; any other event leaves it as it is."""
    match event:
        case ResponseReceived():
            if thread.reply(event.reply_id) is not None:
                return thread
            reply = ReplyState(reply_id=event.reply_id, author=event.author, text=event.text, url=event.url,
                               received_at=event.received_at, collected_at=event.collected_at or event.received_at,
                               parent_id=event.parent_id)
            return replace(thread, replies=(*thread.replies, reply))
        case RepliesLooked():
            looked = replace(thread, looks=thread.looks + 1, last_look_at=event.looked_at,
                             next_look_at=event.next_look_at, empty_looks=event.empty_looks,
                             collected=event.collected, last_error=event.error)
            if event.engagement is None:
                return looked
            return replace(looked, engagement=event.engagement, engagement_at=event.looked_at,
                           engagement_seen_at=event.looked_at)
        case ReplyAnswerRequested():
            return thread.with_reply(event.reply_id, answer_text=event.text, answer_requested_at=event.requested_at,
                                     answer_status="requested", answer_next_at=event.requested_at,
                                     answer_retryable=True, answer_error=None)
        case ReplyAnswerAttemptStarted():
            was = thread.reply(event.reply_id)
            unknown = was is not None and (was.answer_outcome_unknown or was.answer_status == "sending")
            return replace(thread.with_reply(event.reply_id, answer_status="sending", answer_attempt=event.attempt,
                                             answer_started_at=event.started_at, answer_next_at=None,
                                             answer_outcome_unknown=unknown),
                           answer_attempts=max(thread.answer_attempts, event.attempt))
        case ReplyAnswered():
            return replace(thread.with_reply(event.reply_id, answer_status="answered", answered_at=event.answered_at,
                                             answer_external_id=event.external_id, answer_url=event.url,
                                             answer_native=event.native, answer_next_at=None,
                                             answer_outcome_unknown=False, answer_error=None),
                           answer_attempts=max(thread.answer_attempts, event.attempt or 0))
        case ReplyAnswerFailed():
            was = thread.reply(event.reply_id)
            return thread.with_reply(event.reply_id, answer_status="failed", answer_error=event.reason,
                                     answer_failures=(was.answer_failures if was else 0) + 1,
                                     answer_retryable=event.retryable and event.next_attempt_at is not None,
                                     answer_next_at=event.next_attempt_at,
                                     answer_outcome_unknown=(was is not None and was.answer_outcome_unknown)
                                     or event.outcome_unknown)
        case ReplyDismissed():
            return thread.with_reply(event.reply_id, dismissed_at=event.dismissed_at, dismiss_reason=event.reason)
        case ReplyAssigned():
            return thread.with_reply(event.reply_id, assignee=event.assignee)
    return thread
