"""The shares read model (``rm_shares``) and the response inbox (``rm_response_tasks``).

Documented read API: dashboards read these tables and the views over them
(``response_inbox``, ``followthrough_daily``, ``integrity``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from events import sqlfiles
from events.catalogue import (
    DuplicatePosted,
    DuplicateRemoved,
    ResponseReceived,
    ResponseTaskCompleted,
    ResponseTasksCancelled,
    ResponseTasksRecorded,
    ShareAbandoned,
    ShareAttemptStarted,
    ShareCancelled,
    ShareFailed,
    ShareHeld,
    SharePlanned,
    ShareRescheduled,
    ShareSent,
)
from events.projections.shares_fold import SHARE_COLUMNS, TASK_COLUMNS, Row, SharesFold, share_id_of
from events.records import RecordedEvent

Q = sqlfiles.load("events.projections.sql", "shares.sql")

__all__ = ["SharesProjection", "share_id_of"]


class SharesProjection:
    name = "shares"
    types: frozenset[str] | None = frozenset(
        cls.type_name
        for cls in (
            SharePlanned,
            ShareRescheduled,
            ShareCancelled,
            ShareAttemptStarted,
            ResponseTasksRecorded,
            ShareSent,
            ShareFailed,
            ShareHeld,
            ShareAbandoned,
            ResponseTasksCancelled,
            ResponseTaskCompleted,
            ResponseReceived,
            DuplicatePosted,
            DuplicateRemoved,
        )
    )
    # The tables it owns, in the order a rebuild builds and swaps them.
    tables = ("rm_shares", "rm_response_tasks")

    def apply(self, conn: psycopg.Connection[Any], events: Sequence[RecordedEvent]) -> None:
        # One cursor for the batch: a fresh one per statement costs more than the
        # statement's own client work.
        cur = conn.cursor()
        for recorded in events:
            self._apply_one(cur, recorded)

    def _apply_one(self, cur: psycopg.Cursor[Any], r: RecordedEvent) -> None:
        base = {"share_id": share_id_of(r.stream_id), "version": r.stream_version, "at": r.recorded_at}
        event = r.event
        match event:
            case SharePlanned():
                cur.execute(Q["planned"], {
                    **base, "workspace_id": r.workspace_id, "account_id": event.account_id,
                    "account_name": event.account_name, "channel": event.channel, "text": event.text,
                    "scheduled_at": event.scheduled_at,
                })
            case ShareRescheduled():
                cur.execute(Q["rescheduled"], {**base, "scheduled_at": event.scheduled_at})
            case ShareCancelled():
                cur.execute(Q["status"], {**base, "status": "cancelled", "error": None})
            case ShareHeld():
                cur.execute(Q["status"], {**base, "status": "held", "error": event.reason})
            case ShareAbandoned():
                cur.execute(Q["status"], {**base, "status": "abandoned", "error": event.reason})
            case ShareAttemptStarted():
                cur.execute(Q["attempt_started"], {**base, "attempt": event.attempt})
            case ResponseTasksRecorded():
                cur.execute(Q["tasks_recorded"], base)
                for task in event.tasks:
                    cur.execute(Q["task_insert"], {**base, "task_id": task.task_id, "kind": task.kind,
                                                   "owner": task.owner, "after_seconds": task.after_seconds})
            case ShareSent():
                cur.execute(Q["sent"], {**base, "sent_at": event.sent_at, "lateness_ms": event.lateness_ms,
                                        "url": event.url, "external_id": event.external_id, "attempt": event.attempt})
                cur.execute(Q["tasks_open"], {**base, "sent_at": event.sent_at})
            case ShareFailed():
                cur.execute(Q["failed"], {**base, "reason": event.reason, "next_attempt_at": event.next_attempt_at})
            case ResponseTasksCancelled():
                cur.execute(Q["tasks_cancelled"], {"task_ids": list(event.task_ids)})
                cur.execute(Q["touch"], base)
            case ResponseTaskCompleted():
                cur.execute(Q["task_completed"], {"task_id": event.task_id, "completed_at": event.completed_at,
                                                  "completed_by": event.completed_by})
                cur.execute(Q["touch"], base)
            case ResponseReceived():
                cur.execute(Q["reply"], base)
            case DuplicatePosted():
                cur.execute(Q["duplicate_posted"], base)
            case DuplicateRemoved():
                cur.execute(Q["duplicate_removed"], base)

    # --- rebuilding ---------------------------------------------------------------

    def rebuild_window(
        self, conn: psycopg.Connection[Any], events: Sequence[RecordedEvent], tables: Mapping[str, str]
    ) -> None:
        """Apply ``events`` to the tables named in ``tables`` (live name -> table being
        built) in bulk: read the rows they touch, fold the events over them in memory
        (``SharesFold``, equal in effect to the statements above), and write the rows
        back (delete, then COPY)."""
        shares, tasks = sql.Identifier(tables["rm_shares"]), sql.Identifier(tables["rm_response_tasks"])
        touched = list({share_id_of(r.stream_id) for r in events})
        fold = SharesFold(
            _rows(conn, shares, SHARE_COLUMNS, touched), _rows(conn, tasks, TASK_COLUMNS, touched)
        )
        fold.apply(events)
        with conn.cursor() as cur:
            for table, rows, columns in (
                (shares, fold.shares.values(), SHARE_COLUMNS), (tasks, fold.tasks.values(), TASK_COLUMNS)
            ):
                cur.execute(sql.SQL("DELETE FROM {} WHERE share_id = ANY(%s)").format(table), (touched,))
                names = sql.SQL(", ").join(map(sql.Identifier, columns))
                with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(table, names)) as copy:
                    for row in rows:
                        copy.write_row([row[c] for c in columns])


def _rows(
    conn: psycopg.Connection[Any], table: sql.Identifier, columns: Sequence[str], share_ids: list[UUID]
) -> list[Row]:
    query = sql.SQL("SELECT {} FROM {} WHERE share_id = ANY(%s)").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)), table
    )
    return [dict(zip(columns, row, strict=True)) for row in conn.execute(query, (share_ids,))]
