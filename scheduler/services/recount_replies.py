"""The audit's recount of the thread under a share: the replies collected, their answers
and dismissals, and the looks; what ``rm_replies`` and the follow-through columns of
``rm_shares`` should hold, by the audit's own counting over the stored JSON (never the
projections' ``replies_fold``).

The rules, as the read models document them: a reply is recorded once per network reply
id (a repeat changes nothing); it is ``answered`` from its first answer on (ours, or one
the account wrote in the network's own app), ``dismissed`` when dismissed while still
unanswered; its assignee is that of its last assignment, in any state; time to answer
runs from the reply's own time on the network to the answer's publish time. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# The types whose fields the thread's recount reads (others only count and step the version).
THREAD_TYPES = frozenset(("ResponseReceived", "ReplyAnswered", "ReplyDismissed", "RepliesLooked", "ReplyAssigned"))
# The columns of ``rm_replies`` the audit checks, in the order ``audit.sql`` selects them.
REPLY_FIELDS = ("share_id", "state", "received_at", "collected_at", "answered_at", "dismissed_at",
                "answered_natively", "assignee")
# The follow-through columns of ``rm_shares`` the audit checks (after ``recount.SHARE_FIELDS``'s own).
THREAD_SHARE_FIELDS = ("replies_answered", "last_look_at", "next_look_at", "replies_collected", "engagement_replies",
                       "engagement_reposts", "engagement_likes", "engagement_quotes", "engagement_at")


def _at(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


@dataclass(slots=True)
class ReplyTally:
    received_at: datetime
    collected_at: datetime
    answered_at: datetime | None = None
    native: bool = False
    dismissed_at: datetime | None = None
    assignee: str | None = None  # the last assignment's, whatever the reply's state

    @property
    def state(self) -> str:
        if self.answered_at is not None:
            return "answered"
        return "dismissed" if self.dismissed_at is not None else "unanswered"

    @property
    def seconds_to_answer(self) -> float | None:
        """From the reply's own time to the answer's publish time (both the network's)."""
        return None if self.answered_at is None else (self.answered_at - self.received_at).total_seconds()


@dataclass(slots=True)
class ThreadTally:
    replies: dict[str, ReplyTally] = field(default_factory=dict)
    answered: int = 0
    last_look_at: datetime | None = None
    next_look_at: datetime | None = None
    collected: bool | None = None
    # The post's counts at the last recorded look that read them (``ENGAGEMENT``'s order), and when.
    engagement: tuple[int | None, ...] = (None, None, None, None)
    engagement_at: datetime | None = None

    def apply(self, type_name: str, data: dict[str, Any]) -> None:
        """One event of the thread (``THREAD_TYPES``), as stored."""
        if type_name == "ResponseReceived":
            if data["reply_id"] not in self.replies:
                received = _at(data["received_at"])
                assert received is not None
                self.replies[data["reply_id"]] = ReplyTally(received, _at(data.get("collected_at")) or received)
        elif type_name == "RepliesLooked":
            self.last_look_at, self.next_look_at = _at(data["looked_at"]), _at(data.get("next_look_at"))
            self.collected = data.get("collected", True)
            counts = data.get("engagement")
            if counts is not None:
                self.engagement = tuple(counts.get(k) for k in ("replies", "reposts", "likes", "quotes"))
                self.engagement_at = self.last_look_at
        elif type_name == "ReplyAssigned":
            if (assigned := self.replies.get(data["reply_id"])) is not None:
                assigned.assignee = data["assignee"]
        else:
            reply = self.replies.get(data["reply_id"])
            if reply is None or reply.answered_at is not None:
                return
            if type_name == "ReplyAnswered":
                reply.answered_at, reply.native = _at(data["answered_at"]), bool(data.get("native", False))
                self.answered += 1
            elif reply.dismissed_at is None:  # ReplyDismissed, while unanswered
                reply.dismissed_at = _at(data["dismissed_at"])

    def share_columns(self) -> tuple[Any, ...]:
        """``THREAD_SHARE_FIELDS``, as ``rm_shares`` should hold them."""
        return (self.answered, self.last_look_at, self.next_look_at, self.collected, *self.engagement,
                self.engagement_at)


def reply_key(share_id: str, network_reply_id: str) -> str:
    """How the audit names a reply: its share, then the network's id of it."""
    return f"{share_id}/{network_reply_id}"


def reply_row(share_id: str, reply: ReplyTally) -> tuple[Any, ...]:
    """A reply as ``rm_replies`` should hold it (``REPLY_FIELDS``)."""
    return (share_id, reply.state, reply.received_at, reply.collected_at, reply.answered_at, reply.dismissed_at,
            reply.native, reply.assignee)
