"""Actor declarations. Messages carry ids only; the database holds the rest.

Actors are declared on a given broker by ``declare`` (not at import), so each
process role builds its own broker from settings. No Dramatiq retries or
delays: retries are rescheduled in the database, and a lost message comes back
through the dispatcher's lease.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import dramatiq
from dramatiq.middleware import CurrentMessage

from workers import answering, collection, execution, runtime

TIME_LIMIT_MS = 5 * 60 * 1000


def _message_id() -> str | None:
    message = CurrentMessage.get_current_message()
    return message.message_id if message else None


def execute_share(share_id: str) -> None:
    execution.execute_share(runtime.current(), UUID(share_id), message_id=_message_id())


def execute_shares(share_ids: list[str]) -> None:
    """Several shares due together, in one message (the dispatcher groups them)."""
    execution.execute_shares(runtime.current(), [UUID(s) for s in share_ids], message_id=_message_id())


def collect_replies(share_ids: list[str]) -> None:
    """One look at the thread under each share (due together)."""
    collection.collect_replies(runtime.current(), [UUID(s) for s in share_ids], message_id=_message_id())


def publish_answers(share_id: str) -> None:
    """The answers due on one share, one after the other under its answer lease."""
    answering.publish_answers(runtime.current(), UUID(share_id), message_id=_message_id())


@dataclass(frozen=True)
class Actors:
    execute_share: dramatiq.Actor[Any, Any]
    execute_shares: dramatiq.Actor[Any, Any]
    collect_replies: dramatiq.Actor[Any, Any]
    publish_answers: dramatiq.Actor[Any, Any]

    def send_for(self, kind: str, share_ids: Sequence[UUID]) -> list[str]:
        """Send the work; the ids of the messages sent: one for the group, or one a share (answers)."""
        if kind == "check_replies":
            return [self.collect_replies.send([str(s) for s in share_ids]).message_id]
        if kind == "answer":
            return [self.publish_answers.send(str(share_id)).message_id for share_id in share_ids]
        if kind != "publish":
            raise ValueError(f"no actor handles schedule kind {kind!r}")
        if len(share_ids) == 1:
            return [self.execute_share.send(str(share_ids[0])).message_id]
        return [self.execute_shares.send([str(s) for s in share_ids]).message_id]


def queue_names(prefix: str) -> dict[str, str]:
    # Replies on their own queue: looks never wait behind a burst of posts, nor these behind them.
    return {"publish": f"{prefix}.publish", "replies": f"{prefix}.replies"}


def declare(broker: dramatiq.Broker, *, queue_prefix: str) -> Actors:
    queues = queue_names(queue_prefix)

    def declare_one(fn: Any, name: str, queue: str = "publish") -> dramatiq.Actor[Any, Any]:
        return dramatiq.actor(actor_name=name, queue_name=queues[queue], broker=broker, max_retries=0,
                              time_limit=TIME_LIMIT_MS)(fn)

    return Actors(
        execute_share=declare_one(execute_share, "execute_share"),
        execute_shares=declare_one(execute_shares, "execute_shares"),
        collect_replies=declare_one(collect_replies, "collect_replies", "replies"),
        publish_answers=declare_one(publish_answers, "publish_answers", "replies"),
    )
