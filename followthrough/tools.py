"""The operator's commands: tokens, the event log (tail, status, epoch), the report and the audit."""

from __future__ import annotations

import sys
import threading
from datetime import UTC, datetime

import orjson

from events import monitoring
from events.follow import tail
from events.projections import reports
from events.records import Checkpoint, RecordedEvent
from followthrough import bootstrap
from followthrough.run import Run
from scheduler.services import audit as audit_service
from scheduler.services import token_admin, workspaces


def _wants_json(fmt: str) -> bool:
    return fmt == "json" or (fmt == "auto" and not sys.stdout.isatty())


def token_create(run: Run) -> int:
    bootstrap.wait_for_schema(run.settings, timeout=10)
    with bootstrap.connect(run.settings) as conn:
        token = workspaces.create_token(conn, run.args.workspace, run.args.scope, label=run.args.label)
    print(token)
    return 0


def token_list(run: Run) -> int:
    with bootstrap.connect(run.settings) as conn:
        tokens = token_admin.list_tokens(conn, run.args.workspace)
    if _wants_json(run.args.format):
        print(orjson.dumps([t.as_dict() for t in tokens]).decode())
        return 0
    for t in tokens:
        state = "active" if t.revoked_at is None else f"revoked {t.revoked_at:%Y-%m-%d %H:%M}"
        print(f"{t.id}  {t.scope:<5}  {t.created_at:%Y-%m-%d %H:%M}  {state:<24}  {t.label}")
    return 0


def token_revoke(run: Run) -> int:
    with bootstrap.connect(run.settings) as conn:
        revoked = token_admin.revoke(conn, run.args.token)
    print(f"revoked {revoked.id} ({revoked.scope}, workspace {revoked.workspace_id})")
    return 0


def log_tail(run: Run) -> int:
    settings, args = run.settings, run.args
    use_json = _wants_json(args.format)
    store, _ = bootstrap.build_store(settings, "log-tail", pool_size=1)
    store.pool.open(wait=True, timeout=30)
    try:
        after = Checkpoint.start()
        if not args.from_start:
            for recorded in store.read_all(after):
                after = recorded.checkpoint
        if args.no_follow:
            events = store.read_all(after)
        else:
            events = tail(store, bootstrap.database_url(settings), after, stop=threading.Event(),
                          connect_kwargs=bootstrap.connect_kwargs(settings, "log-tail"))
        for recorded in events:
            sys.stdout.write(_tail_line(recorded, use_json=use_json))
            sys.stdout.flush()
    except KeyboardInterrupt:
        pass
    finally:
        store.pool.close()
    return 0


def _tail_line(recorded: RecordedEvent, *, use_json: bool) -> str:
    data = recorded.event.model_dump(mode="json")
    if not use_json:
        return (
            f"{recorded.recorded_at:%Y-%m-%d %H:%M:%S.%f}  {recorded.position:>8}  "
            f"{recorded.stream_id}@{recorded.stream_version}  {recorded.type_name}  {orjson.dumps(data).decode()}\n"
        )
    line = {
        "position": recorded.position,
        "checkpoint": str(recorded.checkpoint),
        "recorded_at": recorded.recorded_at.isoformat(),
        "stream_id": recorded.stream_id,
        "version": recorded.stream_version,
        "type": recorded.type_name,
        "workspace_id": recorded.workspace_id,
        "data": data,
    }
    return orjson.dumps(line).decode() + "\n"


def log_status(run: Run) -> int:
    with bootstrap.connect(run.settings) as conn:
        horizon = monitoring.horizon(conn)
        lags = monitoring.follower_lags(conn)
    if _wants_json(run.args.format):
        print(orjson.dumps({"horizon": horizon.as_dict(), "followers": [lag.as_dict() for lag in lags]}).decode())
        return 0
    print(f"log epoch {horizon.epoch}, horizon xmin {horizon.xmin}")
    print(f"oldest running transaction: {_secs(horizon.oldest_transaction_seconds)}")
    print(f"committed events held behind the horizon for: {_secs(horizon.held_seconds)}")
    for lag in lags:
        print(
            f"follower {lag.name}: checkpoint {lag.checkpoint}, applied {lag.events_applied}, "
            f"lag {lag.lag_seconds:.3f} s"
        )
    return 0


def _secs(value: float | None) -> str:
    return "none" if value is None else f"{value:.3f} s"


def log_bump_epoch(run: Run) -> int:
    with bootstrap.connect(run.settings) as conn, conn.transaction():
        epoch = monitoring.bump_epoch(conn, run.args.reason)
    print(f"log epoch is now {epoch}")
    return 0


def report(run: Run) -> int:
    args = run.args
    with bootstrap.connect(run.settings) as conn:
        rows = reports.followthrough(conn, args.workspace, by=args.by)
        integrity = reports.sent_without_tasks(conn, args.workspace)
    if args.format == "json":
        print(orjson.dumps({"rows": rows, "sent_shares_without_response_tasks": integrity}).decode())
        return 0
    header = f"{args.by:<24} {'open':>6} {'on time':>8} {'late':>6} {'overdue':>8} {'rate':>7}"
    print(header)
    print("-" * len(header))
    for row in rows:
        rate = "-" if row["rate"] is None else f"{row['rate']:.0%}"
        print(
            f"{row['key']!s:<24} {row['open']:>6} {row['done_on_time']:>8} {row['done_late']:>6} "
            f"{row['overdue']:>8} {rate:>7}"
        )
    print(f"\nsent shares without response tasks: {integrity}")
    print(f"as of {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC")
    return 0


def audit(run: Run) -> int:
    """Recount every figure from the log and compare it with the read models: exit 1 on any difference."""
    args = run.args
    with bootstrap.connect(run.settings, role="audit") as conn:
        if args.wait:
            left = audit_service.wait_for_projection(conn, timeout=args.wait)
            if left:
                print(f"the projector has {left} events left after {args.wait:g} s; auditing at its checkpoint",
                      file=sys.stderr)
        found = audit_service.audit(conn, workspace_id=args.workspace)
    if _wants_json(args.format):
        print(orjson.dumps(found.as_dict()).decode())
        return 0 if found.clean else 1
    print(f"audit at checkpoint {found.checkpoint}: {found.events_read} events recounted in {found.seconds:.2f} s; "
          f"{found.unprojected_events} not projected yet (left to the next run)")
    header = f"{'workspace':<28} {'shares':>8} {'tasks':>8} {'differences':>12} {'violations':>11}"
    print(header)
    print("-" * len(header))
    for ws in sorted(found.workspaces.values(), key=lambda w: w.workspace_id):
        print(f"{ws.workspace_id:<28} {ws.shares:>8} {ws.tasks:>8} {ws.differences_total:>12} {len(ws.violations):>11}")
    for ws in sorted(found.workspaces.values(), key=lambda w: w.workspace_id):
        for d in ws.differences:
            print(f"  {ws.workspace_id}: {d.relation} {d.key} {d.field}: log {audit_service.plain(d.log)!r}, "
                  f"read model {audit_service.plain(d.read_model)!r}")
        if ws.differences_total > len(ws.differences):
            print(f"  {ws.workspace_id}: … and {ws.differences_total - len(ws.differences)} more")
        for v in ws.violations:
            print(f"  {ws.workspace_id}: invariant broken by share {v.share_id} at position {v.position}: {v.rule}")
    print("clean" if found.clean else "DIFFERENCES FOUND")
    return 0 if found.clean else 1
