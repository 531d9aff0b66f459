"""The `followthrough` command: every process role, and the operator's tools."""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from scheduler.errors import SchedulerError
from scheduler.settings import Settings


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "home", None):
        overrides["home"] = Path(args.home)
    if getattr(args, "port", None):
        overrides["api_port"] = args.port
    if getattr(args, "host", None):
        overrides["api_host"] = args.host
    return Settings(**overrides)


def _logging(settings: Settings, role: str) -> None:
    from scheduler.logs import configure_logging

    configure_logging(role=role, level=settings.log_level, fmt=settings.log_format)


# --- roles ---------------------------------------------------------------------------


def cmd_migrate(args: argparse.Namespace) -> int:
    from workers import bootstrap

    settings = _settings(args)
    _logging(settings, "migrate")
    with bootstrap.resolved(settings) as ready:
        bootstrap.migrate(ready)
    print("database migrated to the latest revision", file=sys.stderr)
    return 0


def cmd_api(args: argparse.Namespace) -> int:
    import uvicorn

    from workers import bootstrap

    settings = _settings(args)
    _logging(settings, "api")
    with bootstrap.resolved(settings) as ready:
        bootstrap.wait_for_schema(ready)
        app = bootstrap.build_api(ready)
        uvicorn.run(app, host=ready.api_host, port=ready.api_port, log_config=None, access_log=False)
    return 0


def cmd_dispatcher(args: argparse.Namespace) -> int:
    from workers import bootstrap

    settings = _settings(args)
    _logging(settings, "dispatcher")
    stop = threading.Event()
    with bootstrap.resolved(settings) as ready:
        bootstrap.run_dispatcher(ready, stop)
    return 0


def cmd_projector(args: argparse.Namespace) -> int:
    from workers import bootstrap

    settings = _settings(args)
    _logging(settings, "projector")
    stop = threading.Event()
    bootstrap.stop_on_signals(stop)
    with bootstrap.resolved(settings) as ready:
        bootstrap.run_projector(ready, stop)
    return 0


def worker_argv(settings: Settings, *, processes: int | None, threads: int | None) -> list[str]:
    return [
        sys.executable,
        "-m",
        "dramatiq",
        "workers.main",
        "--processes",
        str(processes or settings.worker_processes),
        "--threads",
        str(threads or settings.worker_threads),
        "--skip-logging",
        "--worker-shutdown-timeout",
        str(settings.worker_shutdown_seconds * 1000),
    ]


def cmd_worker(args: argparse.Namespace) -> int:
    import subprocess

    settings = _settings(args)
    if settings.database_url and settings.broker_url:
        # Nothing of ours to start or stop: become the Dramatiq CLI at once (a restarted
        # worker is back sooner). Each worker process waits for the schema at boot.
        argv = worker_argv(settings, processes=args.processes, threads=args.threads)
        os.execve(sys.executable, argv, child_env(settings))

    from workers import bootstrap

    _logging(settings, "worker")
    with bootstrap.resolved(settings) as ready:
        env = child_env(ready)
        argv = worker_argv(ready, processes=args.processes, threads=args.threads)
        proc = subprocess.Popen(argv, env=env)
        try:
            return proc.wait()
        except KeyboardInterrupt:
            return proc.wait()


def child_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env["DATABASE_URL"] = settings.database_url or ""
    env["BROKER_URL"] = settings.broker_url or ""
    env["FOLLOWTHROUGH_HOME"] = str(settings.home.resolve())
    env["FOLLOWTHROUGH_API_PORT"] = str(settings.api_port)
    env["FOLLOWTHROUGH_API_HOST"] = settings.api_host
    env["dramatiq_worker_timeout"] = str(settings.worker_poll_ms)
    return env


def cmd_up(args: argparse.Namespace) -> int:
    import signal

    import psycopg

    from scheduler import workspaces
    from scheduler.supervisor import Supervisor
    from workers import bootstrap

    settings = _settings(args)
    _logging(settings, "up")
    settings.home.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()

    def on_signal(_signum: int, _: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    with bootstrap.resolved(settings) as ready:
        bootstrap.migrate(ready)
        with psycopg.connect(bootstrap.database_url(ready), autocommit=True) as conn:
            token = _default_token(conn, ready.home, workspaces)
        env = child_env(ready)
        supervisor = Supervisor(
            env=env, backoff_max=ready.restart_backoff_max_seconds, grace_seconds=ready.worker_shutdown_seconds + 10
        )
        me = [sys.executable, "-m", "scheduler.cli"]
        for role in ("api", "dispatcher", "projector"):
            supervisor.add(role, [*me, role])
        # One supervised Dramatiq process per worker role: when one dies (Dramatiq's master
        # stops all its processes if one does), the others keep working while it restarts.
        for i in range(ready.worker_processes):
            supervisor.add(f"worker-{i + 1}", [*me, "worker", "--processes", "1"])
        supervisor.start_all()
        base = f"http://{ready.api_host}:{ready.api_port}"
        _banner(base, token, ready)
        try:
            while not stop.is_set():
                supervisor.poll()
                stop.wait(0.5)
        finally:
            print("\nstopping Followthrough...", file=sys.stderr)
            supervisor.stop_all()
    print("stopped.", file=sys.stderr)
    return 0


def _default_token(conn: Any, home: Path, workspaces: Any) -> str:
    """The write token `up` prints: kept (mode 0600) under home so it survives restarts."""
    path = home / "default-write-token"
    if path.exists():
        token = path.read_text().strip()
        if workspaces.token_is_valid(conn, token, "default", "write"):
            return token
    token = str(workspaces.create_token(conn, "default", "write", label="followthrough up"))
    path.write_text(token + "\n")
    path.chmod(0o600)
    return token


def _banner(base: str, token: str, settings: Settings) -> None:
    lines = [
        "",
        "Followthrough is running.",
        f"  API:            {base}   (docs: {base}/docs)",
        f"  write token:    {token}   (workspace: default)",
        f"  state:          {settings.home.resolve()}",
        f"  console posts:  {settings.console_dir.resolve()}/<account>.jsonl",
        "",
        "Try:",
        f"  export FT={token}",
        f'  curl -s -H "Authorization: Bearer $FT" {base}/v1/accounts '
        '-H \'Content-Type: application/json\' -d \'{"name": "demo", "channel": "console"}\'',
        "",
        "Ctrl-C stops everything.",
        "",
    ]
    print("\n".join(lines), flush=True)


# --- tools ---------------------------------------------------------------------------


def cmd_token_create(args: argparse.Namespace) -> int:
    import psycopg

    from scheduler import workspaces
    from workers import bootstrap

    settings = _settings(args)
    _logging(settings, "cli")
    with bootstrap.resolved(settings) as ready:
        bootstrap.wait_for_schema(ready, timeout=10)
        with psycopg.connect(bootstrap.database_url(ready), autocommit=True) as conn:
            token = workspaces.create_token(conn, args.workspace, args.scope, label=args.label)
    print(token)
    return 0


def cmd_log_tail(args: argparse.Namespace) -> int:
    from events.follow import tail
    from events.records import Checkpoint
    from scheduler.db import connect_kwargs
    from workers import bootstrap

    settings = _settings(args)
    _logging(settings, "cli")
    use_json = args.format == "json" or (args.format == "auto" and not sys.stdout.isatty())
    with bootstrap.resolved(settings) as ready:
        store, _ = bootstrap.build_store(ready, "log-tail", pool_size=1)
        store.pool.open(wait=True, timeout=30)
        try:
            after = Checkpoint.start()
            if not args.from_start:
                for recorded in store.read_all(after):
                    after = recorded.checkpoint
            stop = threading.Event()
            if args.no_follow:
                events = store.read_all(after)
            else:
                events = tail(
                    store,
                    bootstrap.database_url(ready),
                    after,
                    stop=stop,
                    connect_kwargs=connect_kwargs(ready, "log-tail"),
                )
            for recorded in events:
                line = {
                    "position": recorded.position,
                    "checkpoint": str(recorded.checkpoint),
                    "recorded_at": recorded.recorded_at.isoformat(),
                    "stream_id": recorded.stream_id,
                    "version": recorded.stream_version,
                    "type": recorded.type_name,
                    "workspace_id": recorded.workspace_id,
                    "data": recorded.event.model_dump(mode="json"),
                }
                if use_json:
                    sys.stdout.write(orjson.dumps(line).decode() + "\n")
                else:
                    data = orjson.dumps(line["data"]).decode()
                    sys.stdout.write(
                        f"{recorded.recorded_at:%Y-%m-%d %H:%M:%S.%f}  {recorded.position:>8}  "
                        f"{recorded.stream_id}@{recorded.stream_version}  {recorded.type_name}  {data}\n"
                    )
                sys.stdout.flush()
        except KeyboardInterrupt:
            pass
        finally:
            store.pool.close()
    return 0


def cmd_log_status(args: argparse.Namespace) -> int:
    import psycopg

    from events import monitoring
    from workers import bootstrap

    settings = _settings(args)
    _logging(settings, "cli")
    with bootstrap.resolved(settings) as ready, psycopg.connect(bootstrap.database_url(ready)) as conn:
        horizon = monitoring.horizon(conn)
        lags = monitoring.follower_lags(conn)
    report = {"horizon": horizon.as_dict(), "followers": [lag.as_dict() for lag in lags]}
    if args.format == "json" or (args.format == "auto" and not sys.stdout.isatty()):
        print(orjson.dumps(report).decode())
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


def cmd_log_bump_epoch(args: argparse.Namespace) -> int:
    import psycopg

    from events import monitoring
    from workers import bootstrap

    settings = _settings(args)
    _logging(settings, "cli")
    with bootstrap.resolved(settings) as ready, psycopg.connect(bootstrap.database_url(ready)) as conn:
        epoch = monitoring.bump_epoch(conn, args.reason)
        conn.commit()
    print(f"log epoch is now {epoch}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    import psycopg

    from scheduler import reports
    from workers import bootstrap

    settings = _settings(args)
    _logging(settings, "cli")
    with bootstrap.resolved(settings) as ready, psycopg.connect(bootstrap.database_url(ready)) as conn:
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


# --- parser --------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--home",
        help="state folder for embedded servers and console output (default: ./.followthrough, or FOLLOWTHROUGH_HOME)",
    )
    p = argparse.ArgumentParser(prog="followthrough", description="Schedule posts; follow through on replies.")
    sub = p.add_subparsers(dest="command", required=True, metavar="command")

    up = sub.add_parser("up", parents=[common], help="run every role on this machine (embedded servers by default)")
    up.add_argument("--port", type=int, help="API port (default 8000)")
    up.set_defaults(func=cmd_up)

    sub.add_parser("migrate", parents=[common], help="apply database migrations").set_defaults(func=cmd_migrate)

    api = sub.add_parser("api", parents=[common], help="run the HTTP API")
    api.add_argument("--port", type=int)
    api.add_argument("--host")
    api.set_defaults(func=cmd_api)

    sub.add_parser("dispatcher", parents=[common], help="run the dispatcher").set_defaults(func=cmd_dispatcher)
    sub.add_parser("projector", parents=[common], help="run the projections").set_defaults(func=cmd_projector)

    worker = sub.add_parser("worker", parents=[common], help="run Dramatiq workers")
    worker.add_argument("--processes", type=int)
    worker.add_argument("--threads", type=int)
    worker.set_defaults(func=cmd_worker)

    token = sub.add_parser("token", help="API tokens").add_subparsers(dest="token_command", required=True)
    create = token.add_parser("create", parents=[common], help="create a token; prints only the token")
    create.add_argument("--workspace", required=True)
    create.add_argument("--scope", required=True, choices=("write", "read"))
    create.add_argument("--label", default="")
    create.set_defaults(func=cmd_token_create)

    log = sub.add_parser("log", help="the event log").add_subparsers(dest="log_command", required=True)
    tail = log.add_parser("tail", parents=[common], help="follow the log, one line per event")
    tail.add_argument("--from-start", action="store_true", help="replay the whole log first")
    tail.add_argument("--no-follow", action="store_true", help="print what is there and stop")
    tail.add_argument("--format", choices=("auto", "json", "console"), default="auto")
    tail.set_defaults(func=cmd_log_tail)
    status = log.add_parser("status", parents=[common], help="horizon age and follower lags")
    status.add_argument("--format", choices=("auto", "json", "console"), default="auto")
    status.set_defaults(func=cmd_log_status)
    bump = log.add_parser("bump-epoch", parents=[common], help="after a restore or logical migration")
    bump.add_argument("--reason", required=True)
    bump.set_defaults(func=cmd_log_bump_epoch)

    report = sub.add_parser("report", parents=[common], help="follow-through report")
    report.add_argument("--workspace", default="default")
    report.add_argument("--by", choices=("account", "owner", "channel", "day", "workspace"), default="account")
    report.add_argument("--format", choices=("table", "json"), default="table")
    report.set_defaults(func=cmd_report)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SchedulerError as exc:
        print(f"followthrough: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
