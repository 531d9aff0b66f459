"""The operator's commands: tokens, the event log (tail, status, epoch), projections
(rebuild, status) and the report."""

from __future__ import annotations

import sys
import threading
from datetime import UTC, datetime

import orjson
from rich.console import Console
from rich.progress import MofNCompleteColumn, Progress
from rich.table import Table

from events import monitoring
from events.follow import tail
from events.projections import reports
from events.projections.rebuild import Rebuildable, RebuildBusyError, rebuild
from events.projections.rebuild import status as projection_status
from events.records import Checkpoint, RecordedEvent
from events.store import EventStore
from followthrough import bootstrap
from followthrough.run import Run
from followthrough.settings import Settings
from scheduler.services import workspaces


def _wants_json(fmt: str) -> bool:
    return fmt == "json" or (fmt == "auto" and not sys.stdout.isatty())


def token_create(run: Run) -> int:
    bootstrap.wait_for_schema(run.settings, timeout=10)
    with bootstrap.connect(run.settings) as conn:
        token = workspaces.create_token(conn, run.args.workspace, run.args.scope, label=run.args.label)
    print(token)
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


# --- projections ---------------------------------------------------------------------------


def _projections(store: EventStore, settings: Settings) -> dict[str, Rebuildable]:
    found = (runner.projection for runner in bootstrap.projection_runners(settings, store))
    return {p.name: p for p in found if isinstance(p, Rebuildable)}


def projections_rebuild(run: Run) -> int:
    """Rebuild a projection from the start of the log and swap it in; a progress bar on
    a terminal, one summary line otherwise."""
    settings, name = run.settings, run.args.name
    bootstrap.wait_for_schema(settings, timeout=10)
    store, _ = bootstrap.build_store(settings, "projections-rebuild", pool_size=2)
    projection = _projections(store, settings).get(name)
    if projection is None:
        print(f"followthrough: no projection named {name!r} (known: {', '.join(_projections(store, settings))})",
              file=sys.stderr)
        return 2
    store.pool.open(wait=True, timeout=30)
    try:
        if sys.stderr.isatty():
            with Progress(*Progress.get_default_columns(), MofNCompleteColumn(), transient=True,
                          console=Console(stderr=True)) as bar:
                task = bar.add_task(f"rebuilding {name}", total=None)
                result = rebuild(store, projection, window=run.args.window,
                                 progress=lambda done, total: bar.update(task, completed=done, total=total))
        else:
            result = rebuild(store, projection, window=run.args.window)
    except RebuildBusyError as exc:
        print(f"followthrough: {exc}", file=sys.stderr)
        return 1
    finally:
        store.pool.close()
    print(f"rebuilt {name}: {result.events:,} events in {result.seconds:.1f} s "
          f"({result.events_per_second:,.0f}/s), checkpoint {result.checkpoint}")
    return 0


def projections_status(run: Run) -> int:
    settings = run.settings
    store, _ = bootstrap.build_store(settings, "projections-status", pool_size=1)
    with bootstrap.connect(settings) as conn:
        found = projection_status(conn, _projections(store, settings).values())
    if _wants_json(run.args.format):
        print(orjson.dumps({"projections": [p.as_dict() for p in found]}).decode())
        return 0
    table = Table("projection", "checkpoint", "applied", "behind", "lag", "updated")
    for p in found:
        table.add_row(p.name, p.checkpoint, f"{p.events_applied:,}", f"{p.events_behind:,}", f"{p.lag_seconds:.1f} s",
                      p.updated_at or "never")
    Console().print(table)
    return 0
