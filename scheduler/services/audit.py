"""The audit: recount every share, task, reply and follow-through figure from the log
alone (``recount``, ``recount_replies``, ``recount_figures``: its own counting, not the
projections' code) and compare the result with the read models (``rm_shares``,
``rm_response_tasks``, ``rm_replies``, ``followthrough_daily``, ``integrity``) and with
the figures the read side reports (``GET /v1/followthrough`` for the workspace: the rate
through the database's ``followthrough_rate()``, times to respond and to answer); check
the invariant on the log itself.

Every event of every share stream is read, whatever its type (a whitelist would leave
out the looks and answers, or a type added later, and see a healthy stream's versions
jump).

The projector applies events asynchronously, so the audit compares at one consistent
point: inside one REPEATABLE READ snapshot it reads the shares projection's checkpoint,
the log up to that checkpoint (in log order, gap-safe: every event at or before it is
committed and was applied) and the rows the projector committed with that checkpoint.
Events after it are counted as not yet projected and left to the next run.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID

import orjson
import psycopg

from events import sqlfiles
from events.projections import reports
from events.projections.shares import SharesProjection
from events.records import Checkpoint
from scheduler.services.recount import (
    SHARE_FIELDS,
    TASK_FIELDS,
    Recount,
    StoredEvent,
    Violation,
    daily_counts,
    recounted_rate,
    share_row,
    task_row,
)
from scheduler.services.recount_figures import CalendarLog, Figures, differing, workspace_figures
from scheduler.services.recount_replies import REPLY_FIELDS, reply_key, reply_row

Q = sqlfiles.load("scheduler.services", "audit.sql")

PROJECTION = SharesProjection.name
# The types the shares projection applies (None: all): its checkpoint moves past these.
PROJECTED_TYPES = SharesProjection.types
DAILY_FIELDS = ("open", "done_on_time", "done_late", "overdue")
# Differences listed per workspace; the rest are counted.
LISTED = 100


def plain(value: Any) -> Any:
    """A value as JSON shows it."""
    if isinstance(value, datetime | date | UUID):
        return value.isoformat() if not isinstance(value, UUID) else str(value)
    return value


@dataclass(frozen=True, slots=True)
class Difference:
    relation: str
    key: str
    field: str
    log: Any
    read_model: Any

    def as_dict(self) -> dict[str, Any]:
        return {"relation": self.relation, "key": self.key, "field": self.field,
                "log": plain(self.log), "read_model": plain(self.read_model)}


@dataclass(slots=True)
class WorkspaceAudit:
    workspace_id: str
    shares: int = 0
    tasks: int = 0
    replies: int = 0
    differences: list[Difference] = field(default_factory=list)
    differences_total: int = 0
    violations: list[Violation] = field(default_factory=list)

    def note(self, difference: Difference) -> None:
        self.differences_total += 1
        if len(self.differences) < LISTED:
            self.differences.append(difference)

    @property
    def clean(self) -> bool:
        return self.differences_total == 0 and not self.violations

    def as_dict(self) -> dict[str, Any]:
        return {
            "workspace_id": self.workspace_id, "clean": self.clean, "shares": self.shares, "tasks": self.tasks,
            "replies": self.replies,
            "differences_total": self.differences_total,
            "differences": [d.as_dict() for d in self.differences],
            "violations": [{"share_id": v.share_id, "rule": v.rule, "position": v.position} for v in self.violations],
        }


@dataclass(slots=True)
class AuditReport:
    checkpoint: Checkpoint
    as_of: datetime
    events_read: int = 0
    unprojected_events: int = 0
    seconds: float = 0.0
    workspaces: dict[str, WorkspaceAudit] = field(default_factory=dict)

    def of(self, workspace_id: str) -> WorkspaceAudit:
        found = self.workspaces.get(workspace_id)
        if found is None:
            found = self.workspaces[workspace_id] = WorkspaceAudit(workspace_id)
        return found

    @property
    def clean(self) -> bool:
        return all(w.clean for w in self.workspaces.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "clean": self.clean, "checkpoint": str(self.checkpoint), "as_of": self.as_of.isoformat(),
            "events_read": self.events_read, "unprojected_events": self.unprojected_events,
            "seconds": round(self.seconds, 3),
            "workspaces": [self.workspaces[k].as_dict() for k in sorted(self.workspaces)],
        }


def audit(conn: psycopg.Connection[Any], *, workspace_id: str | None = None, batch_size: int = 5000) -> AuditReport:
    """Audit every workspace (or one) on ``conn`` (an autocommit connection of its own)."""
    started = time.perf_counter()
    conn.execute(Q["begin_snapshot"])
    try:
        conn.execute(Q["no_jit"])
        checkpoint, as_of = _checkpoint(conn)
        scope = {"workspace_id": workspace_id}
        recount = Recount()
        # The database reads (the log, then the read models) run on a thread of their own
        # while this one recounts: the server's work and the recount overlap.
        with _Reads(conn, checkpoint, scope, batch_size) as reads:
            recount.add_all(reads.log())
            stored = reads.read_models()
        report = AuditReport(checkpoint, as_of, events_read=recount.events)
        for violation in recount.violations:
            report.of(violation.workspace_id).violations.append(violation)
        _compare_shares(stored["shares"], recount, report, scope)
        _compare_tasks(stored["tasks"], recount, report, scope)
        _compare_replies(stored["replies"], recount, report, scope)
        _compare_daily(stored["daily"], recount, report, scope, as_of)
        _compare_figures(conn, recount, report, workspace_id, as_of)
        if workspace_id is None:
            _compare_integrity(stored["integrity"], recount, report)
        report.unprojected_events = unprojected(conn, checkpoint, workspace_id)
    finally:
        if not conn.closed:
            conn.execute(Q["end_snapshot"])
    report.seconds = time.perf_counter() - started
    return report


def unprojected(conn: psycopg.Connection[Any], checkpoint: Checkpoint, workspace_id: str | None = None) -> int:
    """Share events the shares projection applies, in the log after ``checkpoint`` (the
    projector's lag, in events)."""
    row = conn.execute(Q["unprojected"], {
        "workspace_id": workspace_id, "types": None if PROJECTED_TYPES is None else sorted(PROJECTED_TYPES),
        "epoch": checkpoint.epoch, "tx_id": str(checkpoint.tx_id), "position": checkpoint.position,
    }).fetchone()
    return int(row[0]) if row else 0


def wait_for_projection(conn: psycopg.Connection[Any], *, timeout: float, poll: float = 0.2) -> int:
    """Wait until the shares projection has applied every share event in the log, or
    ``timeout`` passes; returns the events still not applied (0: caught up)."""
    deadline = time.monotonic() + timeout
    while True:
        left = unprojected(conn, _checkpoint(conn)[0])
        if left == 0 or time.monotonic() >= deadline:
            return left
        time.sleep(poll)


def _checkpoint(conn: psycopg.Connection[Any]) -> tuple[Checkpoint, datetime]:
    row = conn.execute(Q["checkpoint"], {"name": PROJECTION}).fetchone()
    if row is None:
        now = conn.execute(Q["now"]).fetchone()
        assert now is not None
        return Checkpoint.start(), now[0]
    return Checkpoint(int(row[0]), int(row[1]), int(row[2])), row[3]


def _log_upto(
    conn: psycopg.Connection[Any], upto: Checkpoint, workspace_id: str | None, batch_size: int
) -> Iterator[list[StoredEvent]]:
    """The log streamed once through a server-side cursor, batch by batch: memory stays
    bounded by the batches in flight."""
    params = {"epoch": upto.epoch, "tx_id": str(upto.tx_id), "position": upto.position,
              "workspace_id": workspace_id}
    with conn.cursor(name="audit_log") as cur:
        cur.execute(Q["log_upto"], params)
        while batch := cur.fetchmany(batch_size):
            yield batch


Rows = dict[str, tuple[str, tuple[Any, ...]]]


def _stored(conn: psycopg.Connection[Any], query: str, scope: dict[str, Any]) -> Rows:
    """Read-model rows by key: (workspace, the checked columns)."""
    return {row[0]: (row[1], tuple(row[2:])) for row in conn.execute(query, scope).fetchall()}


# Batches of the log read ahead of the recount (bounds the memory the reads may run ahead by).
READ_AHEAD = 4


class _Reads:
    """The audit's database reads on a thread of their own, in the snapshot ``conn`` holds:
    the log up to the checkpoint, batch by batch (at most ``READ_AHEAD`` ahead of the
    recount), then the read-model rows to compare. ``conn`` is this thread's alone until
    the block ends (the thread has then finished or been stopped)."""

    def __init__(self, conn: psycopg.Connection[Any], upto: Checkpoint, scope: dict[str, Any],
                 batch_size: int) -> None:
        self._conn, self._upto, self._scope, self._batch_size = conn, upto, scope, batch_size
        self._batches: queue.Queue[list[StoredEvent] | None] = queue.Queue(READ_AHEAD)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._stored: dict[str, Any] = {}
        self._thread = threading.Thread(target=self._run, name="audit-reads", daemon=True)

    def __enter__(self) -> _Reads:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        while self._thread.is_alive():  # unblock a put on a full queue
            with suppress(queue.Empty):
                self._batches.get(timeout=0.05)
        self._thread.join()

    def _put(self, item: list[StoredEvent] | None) -> bool:
        while not self._stop.is_set():
            with suppress(queue.Full):
                self._batches.put(item, timeout=0.05)
                return True
        return False

    def _run(self) -> None:
        try:
            for batch in _log_upto(self._conn, self._upto, self._scope["workspace_id"], self._batch_size):
                if not self._put(batch):
                    return
            self._put(None)
            conn, scope = self._conn, self._scope
            self._stored = {name: _stored(conn, Q[name], scope) for name in ("shares", "tasks", "replies")}
            self._stored["daily"] = conn.execute(Q["daily"], scope).fetchall()
            if scope["workspace_id"] is None:
                row = conn.execute(Q["integrity"]).fetchone()
                self._stored["integrity"] = int(row[0] or 0) if row else 0
        except BaseException as exc:  # noqa: BLE001 (whatever it is, the auditing thread raises it)
            self._error = exc
            self._put(None)

    def log(self) -> Iterator[StoredEvent]:
        while (batch := self._batches.get()) is not None:
            yield from batch
        if self._error is not None:
            raise self._error

    def read_models(self) -> dict[str, Any]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._stored


def _compare_rows(report: AuditReport, relation: str, fields: tuple[str, ...], expected: Rows, stored: Rows) -> None:
    """Compare rows keyed by id, each with its workspace; missing and extra rows included.
    Equal rows cost one tuple comparison; only a differing row is compared field by field."""
    for key, (workspace_id, want) in expected.items():
        found = stored.get(key)
        if found is None:
            report.of(workspace_id).note(Difference(relation, key, "row", "present", "missing"))
        elif found[1] != want:
            for name, w, got in zip(fields, want, found[1], strict=True):
                if w != got:
                    report.of(workspace_id).note(Difference(relation, key, name, w, got))
    for key, (workspace_id, _) in stored.items():
        if key not in expected:
            report.of(workspace_id).note(Difference(relation, key, "row", "missing", "present"))


def _compare_shares(stored: Rows, recount: Recount, report: AuditReport, scope: dict[str, Any]) -> None:
    expected: Rows = {}
    for share_id, share in recount.in_workspace(scope["workspace_id"]):
        if not share.planned:
            continue
        report.of(share.workspace_id).shares += 1
        expected[share_id] = (share.workspace_id, share_row(share))
    _compare_rows(report, "rm_shares", SHARE_FIELDS, expected, stored)


def _compare_tasks(stored: Rows, recount: Recount, report: AuditReport, scope: dict[str, Any]) -> None:
    expected: Rows = {}
    for share_id, share in recount.in_workspace(scope["workspace_id"]):
        report.of(share.workspace_id).tasks += len(share.tasks)
        for task_id, task in share.tasks.items():
            expected[task_id] = (share.workspace_id, task_row(share_id, task))
    _compare_rows(report, "rm_response_tasks", TASK_FIELDS, expected, stored)


def _compare_replies(stored: Rows, recount: Recount, report: AuditReport, scope: dict[str, Any]) -> None:
    expected: Rows = {}
    for share_id, share in recount.in_workspace(scope["workspace_id"]):
        if not share.planned:
            continue  # the read model keeps no reply of a share it never saw planned
        report.of(share.workspace_id).replies += len(share.thread.replies)
        for network_id, reply in share.thread.replies.items():
            expected[reply_key(share_id, network_id)] = (share.workspace_id, reply_row(share_id, reply))
    _compare_rows(report, "rm_replies", REPLY_FIELDS, expected, stored)


def _compare_figures(
    conn: psycopg.Connection[Any], recount: Recount, report: AuditReport, workspace_id: str | None, as_of: datetime
) -> None:
    """Each workspace's figures as the read side reports them (``GET /v1/followthrough?by=workspace``,
    all time) against the recount's: the rate, times to respond and to answer, replies."""
    workspaces = {share.workspace_id for _, share in recount.in_workspace(workspace_id)}
    expected = workspace_figures(recount, workspace_id, as_of, _calendars(conn, workspaces))
    names = set(expected) | {w for w in report.workspaces if w != "*"}
    if workspace_id is not None:
        names = {workspace_id}
    for name in sorted(names):
        rows = reports.followthrough(conn, name, by="workspace")
        reported = next((r for r in rows if str(r["key"]) == name), Figures().row())
        for field_name, want, got in differing(expected.get(name, Figures()).row(), reported):
            report.of(name).note(Difference("followthrough", name, field_name, want, got))


def _calendars(conn: psycopg.Connection[Any], workspaces: set[str]) -> dict[str, CalendarLog]:
    """Each workspace's calendars stream, as stored (a handful of events a workspace)."""
    found: dict[str, CalendarLog] = {}
    streams = [f"calendars-{name}" for name in sorted(workspaces)]
    for stream_id, recorded_at, type_name, data in conn.execute(Q["calendars"], {"streams": streams}):
        found.setdefault(stream_id.removeprefix("calendars-"), CalendarLog()).events.append(
            (recorded_at, type_name, orjson.loads(data)))
    return found


def _compare_daily(
    rows: list[tuple[Any, ...]], recount: Recount, report: AuditReport, scope: dict[str, Any], as_of: datetime
) -> None:
    expected = daily_counts(recount, scope["workspace_id"], as_of)
    stored: dict[Any, tuple[Any, ...]] = {}
    for workspace_id, account_id, owner, day, *counts in rows:
        if any(counts[:-1]):
            stored[(workspace_id, account_id, owner, day)] = tuple(counts)
    for key in expected.keys() | stored.keys():
        want = expected.get(key, (0, 0, 0, 0))
        got = stored.get(key, (0, 0, 0, 0, None))
        label = f"account={key[1]} owner={key[2]} day={plain(key[3])}"
        # The rate: the database's followthrough_rate() against the recount's own formula.
        pairs = [*zip(DAILY_FIELDS, want, got[:-1], strict=True), ("rate", recounted_rate(want), got[-1])]
        for name, w, g in pairs:
            if w != g:
                report.of(key[0]).note(Difference("followthrough_daily", label, name, w, g))


def _compare_integrity(stored: int, recount: Recount, report: AuditReport) -> None:
    counted = sum(1 for share in recount.shares.values() if share.sent_without_tasks)
    if stored != counted:
        report.of("*").note(Difference("integrity", "sent_shares_without_response_tasks", "count", counted, stored))
