"""Approval in tests: an account's setting, and a publish appended by hand past the
database's approval guard (the tamper the audit must catch)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from events.catalogue import ResponseTasksRecorded, ShareAttemptStarted, ShareSent
from events.pool import make_pool
from events.records import NewEvent, metadata
from events.store import EventStore
from scheduler.domain import share
from scheduler.domain.plans import tasks_for

APPROVAL = {"required": True, "approvers": ["ana", "ben"], "self_approval": False}
# The log's guards a hand-made publish in one transaction must pass: an append after DDL is
# not its transaction's first write, and the share has no approval.
GUARDS = ("events_first_write", "events_approval_guard")


def publish_by_hand(database_url: str, share_id: UUID, *, actor: str = "mallory") -> None:
    """Append an attempt, its tasks and a ``ShareSent`` to a share that was never approved, as
    someone with DDL rights could: the guards disabled in this one transaction, enabled again
    before it commits (no other session ever sees them off)."""
    pool = make_pool(database_url, role="test", max_size=1)
    pool.open(wait=True)
    try:
        store = EventStore(pool)
        stream = share.stream_id(share_id)
        history = store.read_stream(stream)
        state = share.fold(r.event for r in history)
        assert state.planned is not None
        now = datetime.now(UTC)
        events = [
            ShareAttemptStarted(attempt=1, started_at=now, idempotency_key=share.idempotency_key(share_id)),
            ResponseTasksRecorded(tasks=tasks_for(share_id, state.planned.response_plan)),
            ShareSent(attempt=1, external_id=f"by-hand-{share_id}", url=None, scheduled_at=state.planned.scheduled_at,
                      sent_at=now, lateness_ms=0),
        ]
        workspace = history[0].workspace_id
        meta = metadata(workspace_id=workspace, actor=actor, correlation_id=str(share_id))
        with pool.connection() as conn, conn.transaction():
            for guard in GUARDS:
                conn.execute(f"ALTER TABLE events DISABLE TRIGGER {guard}")
            store.append(stream, [NewEvent(e, metadata=meta) for e in events], expected_version=state.version,
                         workspace_id=workspace, conn=conn)
            for guard in GUARDS:
                conn.execute(f"ALTER TABLE events ENABLE ALWAYS TRIGGER {guard}")
    finally:
        pool.close()
