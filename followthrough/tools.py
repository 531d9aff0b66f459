"""The operator's commands: tokens, the event log (tail, status, epoch), projections (rebuild,
status), webhook secrets (reseal) and the audit. The report: ``report.py``."""

from __future__ import annotations

import sys
import threading
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog
from rich.console import Console
from rich.progress import MofNCompleteColumn, Progress
from rich.table import Table

from events import monitoring
from events.catalogue import SharePlanned
from events.follow import tail
from events.projections.rebuild import Rebuildable, RebuildBusyError, RebuildWorkerError, default_workers, rebuild
from events.records import Checkpoint, RecordedEvent
from events.store import EventStore
from followthrough import connections
from followthrough.log_lines import Filters, tail_lines
from followthrough.projectors import live_projections, projection_runners
from followthrough.run import Run
from followthrough.settings import Settings
from scheduler.errors import ConfigurationError
from scheduler.services import audit as audit_service
from scheduler.services import webhooks, workspaces

log = structlog.get_logger("followthrough")


def _wants_json(fmt: str) -> bool:
    return fmt == "json" or (fmt == "auto" and not sys.stdout.isatty())


def token_create(run: Run) -> int:
    """Prints the token alone on stdout: ``FT=$(followthrough token create ...)``."""
    connections.wait_for_schema(run.settings, timeout=10)
    expires = run.args.expires_in
    with connections.connect(run.settings) as conn:
        token = workspaces.create_token(conn, run.args.workspace, run.args.scope, label=run.args.label,
                                        expires_at=None if expires is None else datetime.now(UTC) + expires,
                                        owner=run.args.owner)
    print(token)
    return 0


def token_list(run: Run) -> int:
    with connections.connect(run.settings) as conn:
        found = workspaces.list_tokens(conn, run.args.workspace, include_revoked=run.args.all)
    views = [_token_view(t) for t in found]
    if run.args.format == "json":
        print(orjson.dumps({"tokens": views}).decode())
        return 0
    width = max([5, *(len(v["owner"] or "-") for v in views)])
    print(f"{'id':<36}  {'scope':<5}  {'created':<16}  {'expires':<16}  {'last used':<16}  {'revoked':<16}  "
          f"{'owner':<{width}}  label")
    for v in views:
        print(f"{v['id']:<36}  {v['scope']:<5}  {_day(v['created_at'])}  {_day(v['expires_at'])}  "
              f"{_day(v['last_used_at'])}  {_day(v['revoked_at'])}  {v['owner'] or '-':<{width}}  {v['label']}")
    return 0


def _token_view(info: workspaces.TokenInfo) -> dict[str, Any]:
    def iso(moment: datetime | None) -> str | None:
        return None if moment is None else moment.isoformat()

    return {"id": str(info.id), "scope": info.scope, "label": info.label, "created_at": iso(info.created_at),
            "expires_at": iso(info.expires_at), "last_used_at": iso(info.last_used_at),
            "revoked_at": iso(info.revoked_at), "owner": info.owner}


def _day(iso: str | None) -> str:
    return f"{iso[:16]:<16}" if iso else f"{'-':<16}"


def token_revoke(run: Run) -> int:
    with connections.connect(run.settings) as conn:
        info = workspaces.revoke_token(conn, run.args.workspace, run.args.token_id)
    print(f"revoked {info.id} ({info.scope}, {info.label or 'no label'})")
    return 0


def log_tail(run: Run) -> int:
    settings, args = run.settings, run.args
    filters = Filters.from_args(args)
    if args.lines is not None:  # the roles' own log lines, not the event log: no server needed
        try:
            return tail_lines(args.lines, filters, from_start=args.from_start, follow=not args.no_follow,
                              fmt=args.format)
        except KeyboardInterrupt:
            return 0
    if filters.level is not None:
        raise ConfigurationError("--level filters the roles' log lines, and the event log has no levels: "
                                 "pass --lines FILE (or --lines - for stdin) with the roles' JSON log lines")
    use_json = _wants_json(args.format)
    store, _ = connections.build_store(settings, "log-tail", pool_size=1)
    store.pool.open(wait=True, timeout=30)
    account_of = ShareAccounts(store)
    try:
        after = Checkpoint.start()
        if not args.from_start:
            for recorded in store.read_all(after):
                after = recorded.checkpoint
        if args.no_follow:
            events = store.read_all(after)
        else:
            events = tail(store, connections.database_url(settings), after, stop=threading.Event(),
                          connect_kwargs=connections.connect_kwargs(settings, "log-tail"))
        for recorded in events:
            account_of.saw(recorded)
            if filters.any and not filters.keeps_event(recorded, account_of):
                continue
            sys.stdout.write(_tail_line(recorded, use_json=use_json))
            sys.stdout.flush()
    except KeyboardInterrupt:
        pass
    finally:
        store.pool.close()
    return 0


class ShareAccounts:
    """Each share stream's account (id, name), for ``log tail --account``: from the
    SharePlanned the tail passes, or else read from the stream once (a tail that starts
    after the plan)."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.known: dict[str, tuple[str, str] | None] = {}

    def saw(self, recorded: RecordedEvent) -> None:
        if isinstance(recorded.event, SharePlanned):
            self.known[recorded.stream_id] = (str(recorded.event.account_id), recorded.event.account_name)

    def __call__(self, stream_id: str) -> tuple[str, str] | None:
        if stream_id not in self.known:
            first = self.store.read_stream(stream_id)[:1]
            planned = first[0].event if first else None
            self.known[stream_id] = ((str(planned.account_id), planned.account_name)
                                     if isinstance(planned, SharePlanned) else None)
        return self.known[stream_id]


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
    with connections.connect(run.settings) as conn:
        horizon = monitoring.horizon(conn)
        lags = monitoring.follower_lags(conn, names=())  # the followers that have run
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
    with connections.connect(run.settings) as conn, conn.transaction():
        epoch = monitoring.bump_epoch(conn, run.args.reason)
    print(f"log epoch is now {epoch}")
    return 0


def audit(run: Run) -> int:
    """Recount every figure from the log and compare it with the read models: exit 1 on any difference."""
    args = run.args
    with connections.connect(run.settings, role="audit") as conn:
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
    header = f"{'workspace':<28} {'shares':>8} {'tasks':>8} {'replies':>8} {'differences':>12} {'violations':>11}"
    print(header)
    print("-" * len(header))
    for ws in sorted(found.workspaces.values(), key=lambda w: w.workspace_id):
        print(f"{ws.workspace_id:<28} {ws.shares:>8} {ws.tasks:>8} {ws.replies:>8} {ws.differences_total:>12} "
              f"{len(ws.violations):>11}")
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


def _projections(store: EventStore, settings: Settings) -> dict[str, Rebuildable]:
    found = (runner.projection for runner in projection_runners(settings, store))
    return {p.name: p for p in found if isinstance(p, Rebuildable)}


def projections_rebuild(run: Run) -> int:
    """Rebuild a projection from the start of the log and swap it in; a progress bar on
    a terminal, one summary line otherwise."""
    settings, name = run.settings, run.args.name
    connections.wait_for_schema(settings, timeout=10)
    store, _ = connections.build_store(settings, "projections-rebuild", pool_size=2)
    projection = _projections(store, settings).get(name)
    if projection is None:
        print(f"followthrough: no projection named {name!r} (known: {', '.join(_projections(store, settings))})",
              file=sys.stderr)
        return 2
    workers = run.args.workers or default_workers()
    store.pool.open(wait=True, timeout=30)
    try:
        if sys.stderr.isatty():
            with Progress(*Progress.get_default_columns(), MofNCompleteColumn(), transient=True,
                          console=Console(stderr=True)) as bar:
                task = bar.add_task(f"rebuilding {name}", total=None)
                result = rebuild(store, projection, window=run.args.window, workers=workers,
                                 progress=lambda done, total: bar.update(task, completed=done, total=total))
        else:
            result = rebuild(store, projection, window=run.args.window, workers=workers)
    except (RebuildBusyError, RebuildWorkerError) as exc:
        print(f"followthrough: {exc}", file=sys.stderr)
        return 1
    finally:
        store.pool.close()
    processes = f", {result.workers} processes" if result.workers > 1 else ""
    print(f"rebuilt {name}: {result.events:,} events in {result.seconds:.1f} s "
          f"({result.events_per_second:,.0f}/s{processes}), checkpoint {result.checkpoint}")
    return 0


def projections_status(run: Run) -> int:
    """Every projection (each one the projector runs, and any other checkpoint in the
    database), as `/metrics` and the Health page list them."""
    settings = run.settings
    names = [projection.name for projection in live_projections()]
    with connections.connect(settings) as conn:
        found = monitoring.follower_lags(conn, names)
    if _wants_json(run.args.format):
        print(orjson.dumps({"projections": [p.as_dict() for p in found]}).decode())
        return 0
    table = Table("projection", "checkpoint", "applied", "behind", "lag", "updated")
    for p in found:
        table.add_row(p.name, p.checkpoint, f"{p.events_applied:,}", f"{p.events_behind:,}", f"{p.lag_seconds:.1f} s",
                      p.updated_at or "never")
    Console().print(table)
    return 0


def webhooks_reseal(run: Run) -> int:
    """Seal every endpoint's signing secret under the first sealing key, so the keys after
    it can be removed; exit 1 naming any endpoint whose secret no key opens."""
    from followthrough import webhooks as webhooks_config  # the deliverer's module: httpx, only here

    settings = run.settings
    box = webhooks_config.secrets(settings)
    with connections.connect(settings) as conn:
        done = webhooks.reseal_secrets(conn, box)
    (log.warning if done.unreadable else log.info)(
        "webhook_secrets_resealed", resealed=done.resealed, unreadable=len(done.unreadable))
    key = ("the first key of FOLLOWTHROUGH_WEBHOOK_SECRET_KEYS" if settings.webhook_secret_keys is not None
           else f"the key in {settings.home / 'webhook-secret.key'}")
    print(f"resealed {done.resealed} webhook signing secret{'' if done.resealed == 1 else 's'} under {key}")
    if not done.unreadable:
        return 0
    for endpoint_id, workspace_id in done.unreadable:
        print(f"followthrough: webhook endpoint {endpoint_id} (workspace {workspace_id}): no configured key opens "
              "its secret", file=sys.stderr)
    print("followthrough: keep listing the key that sealed them in FOLLOWTHROUGH_WEBHOOK_SECRET_KEYS, or delete "
          "those endpoints (DELETE /v1/webhooks/{id}) and register them again", file=sys.stderr)
    return 1
