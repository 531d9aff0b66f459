"""Share use cases behind the API: plan, read, reschedule, cancel, complete a task.

Each write is one unit of work: the events are appended first (the first write
of the transaction), then the schedule and the idempotency record, then commit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import orjson
import psycopg
import structlog
from psycopg import errors as pg_errors
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from events.catalogue import SharePlanned
from events.errors import ConcurrencyError
from events.notifier import Notifier
from events.records import NewEvent, RecordedEvent, metadata
from events.store import EventStore
from scheduler import accounts, schedule, views
from scheduler.domain import share as lifecycle
from scheduler.domain.limits import check_text
from scheduler.domain.plans import StepInput, validate_plan
from scheduler.domain.schedule import ops_for
from scheduler.domain.share import ShareState
from scheduler.errors import IdempotencyKeyReusedError, InvalidInputError, NotFoundError

log = structlog.get_logger("scheduler.shares")

PAST_TOLERANCE = timedelta(minutes=5)
WRITE_TRIES = 3


_EVENT_LOG_NAMES = {
    "ShareCancelled": "share_cancelled",
    "ShareRescheduled": "share_rescheduled",
    "ResponseTasksCancelled": "response_tasks_cancelled",
    "ResponseTaskCompleted": "response_task_completed",
}


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class PlanShare:
    account_id: UUID
    text: str
    scheduled_at: datetime | None
    response_plan: Sequence[StepInput] | None


@dataclass
class ShareService:
    pool: ConnectionPool[Any]
    store: EventStore
    notifier: Notifier | None
    lease_seconds: float
    clock: Callable[[], datetime] = utc_now

    # --- reading ------------------------------------------------------------------

    def load(self, workspace_id: str, share_id: UUID) -> tuple[ShareState, list[RecordedEvent]]:
        history = self.store.read_stream(lifecycle.stream_id(share_id))
        if not history or history[0].workspace_id != workspace_id:
            raise NotFoundError("share", str(share_id))
        return lifecycle.fold(r.event for r in history), history

    def get(self, workspace_id: str, share_id: UUID) -> dict[str, Any]:
        state, history = self.load(workspace_id, share_id)
        return views.share_view(state, history, self.clock())

    def events(self, workspace_id: str, share_id: UUID) -> list[dict[str, Any]]:
        _, history = self.load(workspace_id, share_id)
        return [views.event_view(r) for r in history]

    # --- planning -----------------------------------------------------------------

    def plan(
        self,
        workspace_id: str,
        command: PlanShare,
        *,
        actor: str,
        idempotency_key: str | None = None,
        request_body: Any = None,
    ) -> tuple[int, dict[str, Any]]:
        """Validate and plan a share; returns (HTTP-ish status, share view).

        With an idempotency key, a repeat of the same request returns the first
        answer; the same key with a different body is refused.
        """
        request_hash = hashlib.sha256(orjson.dumps(request_body, option=orjson.OPT_SORT_KEYS)).hexdigest()
        now = self.clock()
        for _ in range(WRITE_TRIES):
            with self.pool.connection() as conn:
                if idempotency_key is not None:
                    replay = self._replay(conn, workspace_id, idempotency_key, request_hash)
                    if replay is not None:
                        return replay
                planned = self._validate(conn, workspace_id, command, now)
                share_id = planned.share_id
                new = [
                    NewEvent(
                        event=planned,
                        event_id=lifecycle.event_id(share_id, "planned"),
                        metadata=metadata(workspace_id=workspace_id, actor=actor, correlation_id=str(share_id)),
                    )
                ]
                state = lifecycle.fold([planned])
                body = views.share_view(state, [], now)
                try:
                    with conn.transaction():
                        result = self.store.append(
                            lifecycle.stream_id(share_id),
                            new,
                            expected_version=0,
                            workspace_id=workspace_id,
                            conn=conn,
                        )
                        schedule.apply(
                            conn,
                            share_id=share_id,
                            workspace_id=workspace_id,
                            ops=ops_for([planned]))
                        body["created_at"] = now.isoformat()
                        body["workspace_id"] = workspace_id
                        body["version"] = result.version
                        if idempotency_key is not None:
                            conn.execute(
                                "INSERT INTO idempotency_keys (workspace_id, key, request_hash, status_code, response)"
                                " VALUES (%s, %s, %s, %s, %s)",
                                (workspace_id, idempotency_key, request_hash, 201, Jsonb(body)),
                            )
                except pg_errors.UniqueViolation:
                    continue  # a concurrent request with the same key won: replay its answer
                self._after_commit()
                log.info(
                    "share_planned",
                    share_id=str(share_id),
                    workspace_id=workspace_id,
                    account=planned.account_name,
                    channel=planned.channel,
                    scheduled_at=planned.scheduled_at.isoformat(),
                    tasks=len(planned.response_plan),
                )
                return 201, body
        raise ConcurrencyError("idempotency", None, 0)

    def _replay(
        self, conn: psycopg.Connection[Any], workspace_id: str, key: str, request_hash: str
    ) -> tuple[int, dict[str, Any]] | None:
        row = conn.execute(
            "SELECT request_hash, status_code, response FROM idempotency_keys WHERE workspace_id = %s AND key = %s",
            (workspace_id, key),
        ).fetchone()
        if row is None:
            return None
        if row[0] != request_hash:
            raise IdempotencyKeyReusedError(key)
        return int(row[1]), dict(row[2])

    def _validate(
        self, conn: psycopg.Connection[Any], workspace_id: str, command: PlanShare, now: datetime
    ) -> SharePlanned:
        account = accounts.get(conn, workspace_id, command.account_id)
        check_text(account.channel, account.config, command.text)
        scheduled_at = command.scheduled_at or now
        if scheduled_at.tzinfo is None:
            raise InvalidInputError("scheduled_at", "must carry a time-zone offset (RFC 3339)")
        if scheduled_at < now - PAST_TOLERANCE:
            raise InvalidInputError("scheduled_at", "is more than 5 minutes in the past")
        if command.response_plan:
            plan = validate_plan(command.response_plan)
        elif account.default_response_plan:
            plan = account.default_response_plan
        else:
            plan = validate_plan(None)
        return SharePlanned(
            share_id=uuid4(),
            account_id=account.id,
            account_name=account.name,
            channel=account.channel,
            text=command.text,
            scheduled_at=scheduled_at.astimezone(UTC),
            response_plan=plan,
            late_policy=account.late_policy,
            max_lateness_seconds=account.max_lateness_seconds,
        )

    # --- changing -----------------------------------------------------------------

    def reschedule(self, workspace_id: str, share_id: UUID, scheduled_at: datetime, *, actor: str) -> dict[str, Any]:
        if scheduled_at < self.clock() - PAST_TOLERANCE:
            raise InvalidInputError("scheduled_at", "is more than 5 minutes in the past")
        return self._change(
            workspace_id, share_id, actor, lambda s: lifecycle.reschedule(s, scheduled_at=scheduled_at.astimezone(UTC))
        )

    def cancel(self, workspace_id: str, share_id: UUID, *, reason: str, actor: str) -> dict[str, Any]:
        return self._change(workspace_id, share_id, actor, lambda s: lifecycle.cancel(s, reason=reason))

    def complete_task(self, workspace_id: str, task_id: UUID, *, by: str, note: str) -> dict[str, Any]:
        share_id = self._share_of_task(workspace_id, task_id)
        now = self.clock()
        view = self._change(
            workspace_id, share_id, by, lambda s: lifecycle.complete_task(s, task_id=task_id, now=now, by=by, note=note)
        )
        return next(t for t in view["response_tasks"] if t["id"] == str(task_id))

    def _change(
        self,
        workspace_id: str,
        share_id: UUID,
        actor: str,
        decide: Callable[[ShareState], tuple[NewEvent, ...]],
    ) -> dict[str, Any]:
        for _ in range(WRITE_TRIES):
            state, history = self.load(workspace_id, share_id)
            new = decide(state)
            if not new:
                return views.share_view(state, history, self.clock())
            meta = metadata(workspace_id=workspace_id, actor=actor, correlation_id=str(share_id))
            stamped = [replace(e, metadata=meta) for e in new]
            try:
                with self.pool.connection() as conn, conn.transaction():
                    self.store.append(
                        lifecycle.stream_id(share_id),
                        stamped,
                        expected_version=state.version,
                        workspace_id=workspace_id,
                        conn=conn,
                    )
                    schedule.apply(
                        conn,
                        share_id=share_id,
                        workspace_id=workspace_id,
                        ops=ops_for(e.event for e in new))
            except ConcurrencyError:
                continue  # the share moved on meanwhile: decide again on the new state
            self._after_commit()
            for e in new:
                log.info(
                    _EVENT_LOG_NAMES.get(e.event.type_name, e.event.type_name),
                    share_id=str(share_id),
                    workspace_id=workspace_id,
                    actor=actor,
                )
            state, history = self.load(workspace_id, share_id)
            return views.share_view(state, history, self.clock())
        raise ConcurrencyError(lifecycle.stream_id(share_id), None, -1)

    def _share_of_task(self, workspace_id: str, task_id: UUID) -> UUID:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT share_id FROM rm_response_tasks WHERE task_id = %s AND workspace_id = %s",
                (task_id, workspace_id),
            ).fetchone()
            if row is None:
                # The inbox may lag the log by a moment: look in the log itself.
                row = conn.execute(
                    "SELECT stream_id FROM events WHERE type = 'ResponseTasksRecorded' AND workspace_id = %s"
                    " AND data @> %s",
                    (workspace_id, Jsonb({"tasks": [{"task_id": str(task_id)}]})),
                ).fetchone()
                if row is not None:
                    return UUID(str(row[0]).removeprefix("share-"))
        if row is None:
            raise NotFoundError("response task", str(task_id))
        return UUID(str(row[0]))

    def _after_commit(self) -> None:
        self.store.appended()
        schedule.wake_dispatcher(self.notifier)
