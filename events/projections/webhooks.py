"""The webhooks projection: log events -> an outbox of deliveries (``webhook_deliveries``).

Each batch's outbox rows commit with the runner's checkpoint (exactly-once effect): a
delivery is enqueued once per (endpoint, event) whatever the runner's restarts (a reply's
``reply.answered`` once per (endpoint, reply)). The deliverer's sweeps add the time-based
ones from the read models: ``task.overdue`` once per task, ``reply.sla_at_risk`` and
``reply.sla_breached`` once per reply. Payloads follow the Standard Webhooks shape:
``{"type", "timestamp", "data"}``. ``reply.assigned`` is one per ``ReplyAssigned`` event (assigning
a reply again to the same person writes none).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
import psycopg

from events import sqlfiles
from events.catalogue import (
    Event,
    ReplyAnswered,
    ReplyAssigned,
    ResponseReceived,
    ShareAbandoned,
    ShareFailed,
    ShareHeld,
    ShareReviewOverdue,
    ShareSent,
)
from events.ids import STREAM_PREFIX, reply_uuid
from events.records import RecordedEvent

Q = sqlfiles.load("events.projections.sql", "webhooks.sql")

WAKE_CHANNEL = "followthrough_webhooks"
TASK_OVERDUE = "task.overdue"
REPLY_SLA_AT_RISK = "reply.sla_at_risk"
REPLY_SLA_BREACHED = "reply.sla_breached"

# The log's event types a receiver can ask for, by their webhook names.
FROM_LOG: dict[str, str] = {
    ShareSent.type_name: "share.sent",
    ShareFailed.type_name: "share.failed",
    ShareAbandoned.type_name: "share.abandoned",
    ShareHeld.type_name: "share.held",
    ShareReviewOverdue.type_name: "share.review_overdue",
    ResponseReceived.type_name: "reply.received",
    ReplyAnswered.type_name: "reply.answered",
    ReplyAssigned.type_name: "reply.assigned",
}
# Every event type an endpoint may subscribe to, in the order the docs list them.
EVENT_TYPES: tuple[str, ...] = (*FROM_LOG.values(), TASK_OVERDUE, REPLY_SLA_AT_RISK, REPLY_SLA_BREACHED)


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def event_data(event: Event, share_id: str) -> dict[str, Any]:
    """What a receiver learns from each event beyond the share it concerns (a reply's
    ``id`` is the API's, ``reply_id`` the network's)."""
    match event:
        case ShareSent():
            return {"attempt": event.attempt, "external_id": event.external_id, "url": event.url,
                    "sent_at": iso(event.sent_at), "lateness_ms": event.lateness_ms}
        case ShareFailed():
            return {"attempt": event.attempt, "reason": event.reason, "retryable": event.retryable,
                    "failed_at": iso(event.failed_at), "next_attempt_at": iso(event.next_attempt_at)}
        case ShareAbandoned():
            return {"attempts": event.attempts, "reason": event.reason, "abandoned_at": iso(event.abandoned_at)}
        case ShareHeld():
            return {"reason": event.reason, "lateness_ms": event.lateness_ms, "held_at": iso(event.held_at),
                    "outcome_unknown": event.outcome_unknown, "candidate_url": event.candidate_url}
        case ShareReviewOverdue():
            return {"due_at": iso(event.due_at), "detected_at": iso(event.detected_at)}
        case ResponseReceived():
            return {"id": str(reply_uuid(UUID(share_id), event.reply_id)), "reply_id": event.reply_id,
                    "author": event.author, "text": event.text, "url": event.url,
                    "received_at": iso(event.received_at)}
        case ReplyAnswered():
            return {"id": str(reply_uuid(UUID(share_id), event.reply_id)), "reply_id": event.reply_id,
                    "answered_at": iso(event.answered_at),
                    "answer": {"external_id": event.external_id, "url": event.url, "native": event.native}}
        case ReplyAssigned():
            return {"id": str(reply_uuid(UUID(share_id), event.reply_id)), "reply_id": event.reply_id,
                    "assignee": event.assignee, "by": event.assigned_by, "assigned_at": iso(event.assigned_at)}
    return {}


def event_key(recorded: RecordedEvent, share_id: str) -> str:
    """What a delivery is unique by, per endpoint: the log event, or for ``reply.answered``
    the reply (answered once, however many events say so)."""
    event = recorded.event
    if isinstance(event, ReplyAnswered):
        return f"reply.answered:{reply_uuid(UUID(share_id), event.reply_id)}"
    return str(recorded.event_id)


class WebhooksProjection:
    name = "webhooks"
    types: frozenset[str] | None = frozenset(FROM_LOG)

    def apply(self, conn: psycopg.Connection[Any], events: Sequence[RecordedEvent]) -> None:
        cur = conn.cursor()
        wanted = {(str(ws), str(kind)) for ws, kind in cur.execute(Q["subscriptions"]).fetchall()}
        if not wanted:
            return
        enqueued = 0
        for recorded in events:
            event_type = FROM_LOG.get(recorded.type_name)
            if event_type is None or (recorded.workspace_id, event_type) not in wanted:
                continue
            share = self._share(cur, recorded)
            data = {**share, **event_data(recorded.event, share["share_id"])}
            if isinstance(recorded.event, ReplyAnswered | ReplyAssigned):
                data.update(self._reply(cur, recorded.stream_id, recorded.event.reply_id))
            payload = {"type": event_type, "timestamp": iso(recorded.recorded_at), "data": data}
            cur.execute(Q["enqueue"], {
                "event_key": event_key(recorded, share["share_id"]), "event_type": event_type,
                "workspace_id": recorded.workspace_id, "recorded_at": recorded.recorded_at,
                "payload": orjson.dumps(payload).decode(),
            })
            enqueued += cur.rowcount
        if enqueued:
            cur.execute(Q["wake"])

    @staticmethod
    def _share(cur: psycopg.Cursor[Any], recorded: RecordedEvent) -> dict[str, Any]:
        share: dict[str, Any] = {"share_id": recorded.stream_id.removeprefix(STREAM_PREFIX)}
        row = cur.execute(Q["share_context"], {"stream_id": recorded.stream_id}).fetchone()
        if row is not None:
            share.update(account_id=row[0], account_name=row[1], channel=row[2], scheduled_at=row[3])
        return share

    @staticmethod
    def _reply(cur: psycopg.Cursor[Any], stream_id: str, reply_id: str) -> dict[str, Any]:
        """The reply an answer answers: who wrote what, where and when."""
        row = cur.execute(Q["reply_context"], {"stream_id": stream_id, "reply_id": reply_id}).fetchone()
        if row is None:
            return {}
        return {"author": row[0], "text": row[1], "url": row[2], "received_at": row[3]}


def enqueue_overdue(conn: psycopg.Connection[Any], *, lookback_seconds: float) -> int:
    """Add a ``task.overdue`` delivery for each task that passed its due time undone; returns
    how many were added (0 on a second sweep)."""
    with conn.transaction():
        added = conn.execute(Q["enqueue_overdue"], {"lookback_seconds": lookback_seconds}).rowcount
        if added:
            conn.execute(Q["wake"])
    return added


def enqueue_reply_sla(conn: psycopg.Connection[Any], *, lookback_seconds: float, at_risk: float,
                      reply_sla_seconds: float) -> int:
    """Add a ``reply.sla_at_risk`` or ``reply.sla_breached`` delivery for each unanswered
    reply found in that state (once per reply, kind and endpoint); returns how many were
    added (0 on a second sweep)."""
    with conn.transaction():
        added = conn.execute(Q["enqueue_reply_sla"], {
            "lookback_seconds": lookback_seconds, "at_risk": at_risk, "reply_sla_seconds": reply_sla_seconds,
        }).rowcount
        if added:
            conn.execute(Q["wake"])
    return added


@dataclass(frozen=True, slots=True)
class OutboxFigures:
    """Operators' view of webhooks out (all workspaces), read when Prometheus scrapes."""

    deliveries_by_status: dict[str, int]
    due: int
    oldest_due_seconds: float
    endpoints_by_state: dict[str, int]


def figures(conn: psycopg.Connection[Any]) -> OutboxFigures:
    due, oldest = conn.execute(Q["backlog"]).fetchone() or (0, 0)
    return OutboxFigures(
        deliveries_by_status={str(k): int(v) for k, v in conn.execute(Q["delivery_counts"])},
        due=int(due),
        oldest_due_seconds=float(oldest),
        endpoints_by_state={str(k): int(v) for k, v in conn.execute(Q["endpoint_counts"])},
    )
