"""Reply use cases behind the API: answer a reply through the channel, dismiss it, or
assign it to a person.

Each is events on the share's stream, through the one unit of work (an answer asked
for also wakes the share's ``answer`` schedule row: a worker publishes it). A reply is
found by its id in the inbox read model, which it reached before anyone could see it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import structlog
from psycopg_pool import ConnectionPool

from events.projections import replies as inbox
from events.records import NewEvent
from scheduler.domain import share as lifecycle
from scheduler.domain.limits import InstanceLimits, check_text, no_instance_limit
from scheduler.domain.share import ShareState
from scheduler.domain.share.thread import ReplyState
from scheduler.errors import ConflictError, NotFoundError
from scheduler.services import accounts
from scheduler.services.share_stream import ShareStreams

log = structlog.get_logger("scheduler.services.replies")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ReplyService:
    pool: ConnectionPool[Any]
    streams: ShareStreams
    clock: Callable[[], datetime] = utc_now
    # What an account's server says of its text limit: the same one planning applies.
    instance_limit: InstanceLimits = no_instance_limit

    def answer(self, workspace_id: str, reply_id: UUID, *, text: str, by: str,
               unless_dismissed: bool = False) -> tuple[ShareState, ReplyState]:
        """Ask for ``text`` to be published as the answer. ``unless_dismissed``: refuse a reply
        dismissed meanwhile (the dashboard's form was filled in before someone dismissed it),
        decided on the stream's state as the answer is written."""
        share_id, network_id = self._locate(workspace_id, reply_id)

        def decide(s: ShareState) -> Sequence[NewEvent]:
            reply = s.thread.reply(network_id)
            if unless_dismissed and reply is not None and reply.inbox_state == "dismissed":
                why = f" ({reply.dismiss_reason})" if reply.dismiss_reason else ""
                raise ConflictError(f"this reply was dismissed{why}; the answer was not sent", field="text")
            return lifecycle.request_answer(s, reply_id=network_id, text=text, by=by, now=now)

        now = self.clock()
        with self.pool.connection() as conn:
            state, _ = self.streams.load(share_id, conn=conn)
            if state.planned is not None:
                account = accounts.get(conn, workspace_id, state.planned.account_id)
                check_text(state.planned.channel, account.config, text,
                           self.instance_limit(state.planned.channel, account.config))
            state, written = self._change(conn, workspace_id, share_id, by, decide)
        if written:
            log.info("reply_answer_requested", share_id=str(share_id), reply_id=str(reply_id), actor=by)
        return state, self._reply(state, network_id)

    def dismiss(self, workspace_id: str, reply_id: UUID, *, reason: str, by: str) -> tuple[ShareState, ReplyState]:
        share_id, network_id = self._locate(workspace_id, reply_id)
        now = self.clock()
        with self.pool.connection() as conn:
            state, written = self._change(conn, workspace_id, share_id, by, lambda s: lifecycle.dismiss(
                s, reply_id=network_id, reason=reason, by=by, now=now))
        if written:
            log.info("reply_dismissed", share_id=str(share_id), reply_id=str(reply_id), actor=by, reason=reason,
                     tasks_settled=sum(1 for e in written if e.event.type_name == "ResponseTaskCompleted"))
        return state, self._reply(state, network_id)

    def assign(self, workspace_id: str, reply_id: UUID, *, assignee: str, by: str) -> tuple[ShareState, ReplyState]:
        """Give the reply to ``assignee`` to answer (assigning it again to them writes nothing)."""
        share_id, network_id = self._locate(workspace_id, reply_id)
        now = self.clock()
        with self.pool.connection() as conn:
            state, written = self._change(conn, workspace_id, share_id, by, lambda s: lifecycle.assign(
                s, reply_id=network_id, assignee=assignee, by=by, now=now))
        if written:
            log.info("reply_assigned", share_id=str(share_id), reply_id=str(reply_id), actor=by, assignee=assignee)
        return state, self._reply(state, network_id)

    def _change(self, conn: Any, workspace_id: str, share_id: UUID, by: str,
                decide: Callable[[ShareState], Sequence[NewEvent]]) -> tuple[ShareState, tuple[NewEvent, ...]]:
        return self.streams.change(conn, share_id, decide, workspace_id=workspace_id, actor=by)

    def _locate(self, workspace_id: str, reply_id: UUID) -> tuple[UUID, str]:
        with self.pool.connection() as conn:
            found = inbox.share_of_reply(conn, workspace_id, reply_id)
        if found is None:
            raise NotFoundError("reply", str(reply_id))
        return found

    @staticmethod
    def _reply(state: ShareState, network_id: str) -> ReplyState:
        reply = state.thread.reply(network_id)
        if reply is None:
            raise NotFoundError("reply", network_id)
        return reply
