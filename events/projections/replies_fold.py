"""The replies part of the shares model as a pure fold: rows of ``rm_replies`` and the
follow-through columns of ``rm_shares`` (answered count, looks, engagement).

Pure: no I/O; rows are dicts keyed by column name. ``shares_fold`` calls these.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from events.catalogue import (
    RepliesLooked,
    ReplyAnswerAttemptStarted,
    ReplyAnswered,
    ReplyAnswerFailed,
    ReplyAnswerRequested,
    ReplyAssigned,
    ReplyDismissed,
    ResponseReceived,
)

Row = dict[str, Any]

REPLY_COLUMNS = (
    "id", "share_id", "workspace_id", "account_id", "account_name", "channel", "network_reply_id", "parent_id",
    "author", "text", "url", "received_at", "collected_at", "state", "answer_text", "answer_status",
    "answer_error", "answer_url", "answer_external_id", "answered_natively", "answered_at", "dismissed_at",
    "dismiss_reason", "handled_by", "author_name", "assignee",
)
# The share's follow-through columns, as a planned share starts them.
SHARE_REPLY_COLUMNS: Row = {"replies_answered": 0, "last_look_at": None, "next_look_at": None,
                            "replies_collected": None, "engagement_replies": None, "engagement_reposts": None,
                            "engagement_likes": None, "engagement_quotes": None, "engagement_at": None}

ReplyEvent = (ReplyAnswerRequested | ReplyAnswerAttemptStarted | ReplyAnswerFailed | ReplyAnswered | ReplyDismissed
              | ReplyAssigned)
REPLY_EVENTS = (ReplyAnswerRequested, ReplyAnswerAttemptStarted, ReplyAnswerFailed, ReplyAnswered, ReplyDismissed,
                ReplyAssigned)


def received(share: Row, reply_id: UUID, event: ResponseReceived) -> Row:
    """The row a reply collected under ``share`` starts as."""
    return {
        "id": reply_id, "share_id": share["share_id"], "workspace_id": share["workspace_id"],
        "account_id": share["account_id"], "account_name": share["account_name"], "channel": share["channel"],
        "network_reply_id": event.reply_id, "parent_id": event.parent_id, "author": event.author,
        "text": event.text, "url": event.url, "received_at": event.received_at,
        "collected_at": event.collected_at or event.received_at, "state": "unanswered", "answer_text": None,
        "answer_status": None, "answer_error": None, "answer_url": None, "answer_external_id": None,
        "answered_natively": False, "answered_at": None, "dismissed_at": None, "dismiss_reason": None,
        "handled_by": None, "author_name": event.author_name, "assignee": None,
    }


def looked(share: Row, event: RepliesLooked) -> None:
    """A recorded look at the thread (the caller sets the share's version): ``last_look_at``
    and ``next_look_at`` are those of the last look that changed something; every look,
    recorded or not, is in ``reply_looks``. The engagement columns: the counts of the last
    recorded look that read them (``engagement_at``: that look's time)."""
    share.update(last_look_at=event.looked_at, next_look_at=event.next_look_at, replies_collected=event.collected)
    counts = event.engagement
    if counts is not None:
        share.update(engagement_replies=counts.replies, engagement_reposts=counts.reposts,
                     engagement_likes=counts.likes, engagement_quotes=counts.quotes, engagement_at=event.looked_at)


def reply_event(reply: Row, event: ReplyEvent) -> bool:
    """Fold an answer, dismissal or assignment over its reply's row; True when the reply
    became answered (then the share counts it). An assignment holds in any state."""
    answered = reply["state"] == "answered"
    match event:
        case ReplyAnswerRequested():
            reply.update(answer_text=event.text, answer_status="requested", answer_error=None,
                         handled_by=event.requested_by)
        case ReplyAnswerAttemptStarted() if not answered:
            reply["answer_status"] = "sending"
        case ReplyAnswerFailed() if not answered:
            reply.update(answer_status="failed" if event.next_attempt_at is not None else "given_up",
                         answer_error=event.reason)
        case ReplyAnswered() if not answered:
            reply.update(state="answered", answer_status="answered", answer_error=None, answer_url=event.url,
                         answer_external_id=event.external_id, answered_at=event.answered_at,
                         answered_natively=event.native)
            return True
        case ReplyDismissed() if reply["state"] == "unanswered":
            reply.update(state="dismissed", dismissed_at=event.dismissed_at, dismiss_reason=event.reason,
                         handled_by=event.dismissed_by)
        case ReplyAssigned():
            reply["assignee"] = event.assignee
    return False
