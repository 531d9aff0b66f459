"""The `followthrough` command: every process role, and the operator's tools.

One runner for every command: settings (from the environment and the options), logging
for the command's role, the servers (given, or embedded under ``--home``), then the
command with what it needs (``Run``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from followthrough import roles, tools
from followthrough.run import Run
from followthrough.settings import Settings
from scheduler.errors import SchedulerError

Command = Callable[[Run], int]


def settings_from(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "home", None):
        overrides["home"] = Path(args.home)
    if getattr(args, "port", None):
        overrides["api_port"] = args.port
    if getattr(args, "host", None):
        overrides["api_host"] = args.host
    return Settings(**overrides)


def run(args: argparse.Namespace) -> int:
    """The one runner every command goes through."""
    from followthrough import bootstrap
    from followthrough.logs import configure_logging

    settings = settings_from(args)
    command: Command = args.func
    if command is roles.worker and settings.database_url and settings.broker_url:
        roles.exec_worker(settings, processes=args.processes, threads=args.threads)  # does not return
    configure_logging(role=args.role, level=settings.log_level, fmt=settings.log_format)
    if command is roles.up:
        settings.home.mkdir(parents=True, exist_ok=True)
    with bootstrap.resolved(settings) as ready:
        return int(command(Run(args=args, settings=ready)))


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--home",
        help="state folder for embedded servers and console output (default: ./.followthrough, or FOLLOWTHROUGH_HOME)",
    )
    p = argparse.ArgumentParser(prog="followthrough", description="Schedule posts; follow through on replies.")
    sub = p.add_subparsers(dest="command", required=True, metavar="command")

    def command(parent: Any, name: str, func: Command, role: str, help_: str) -> argparse.ArgumentParser:
        cmd: argparse.ArgumentParser = parent.add_parser(name, parents=[common], help=help_)
        cmd.set_defaults(func=func, role=role)
        return cmd

    up = command(sub, "up", roles.up, "up", "run every role on this machine (embedded servers by default)")
    up.add_argument("--port", type=int, help="API port (default 8000)")
    command(sub, "migrate", roles.migrate, "migrate", "apply database migrations")
    api = command(sub, "api", roles.api, "api", "run the HTTP API")
    api.add_argument("--port", type=int)
    api.add_argument("--host")
    command(sub, "dispatcher", roles.dispatcher, "dispatcher", "run the dispatcher")
    command(sub, "projector", roles.projector, "projector", "run the projections")
    worker = command(sub, "worker", roles.worker, "worker", "run Dramatiq workers")
    worker.add_argument("--processes", type=int)
    worker.add_argument("--threads", type=int)

    token = sub.add_parser("token", help="API tokens").add_subparsers(dest="token_command", required=True)
    create = command(token, "create", tools.token_create, "cli", "create a token; prints only the token")
    create.add_argument("--workspace", required=True)
    create.add_argument("--scope", required=True, choices=("write", "read"))
    create.add_argument("--label", default="")

    log = sub.add_parser("log", help="the event log").add_subparsers(dest="log_command", required=True)
    tail = command(log, "tail", tools.log_tail, "cli", "follow the log, one line per event")
    tail.add_argument("--from-start", action="store_true", help="replay the whole log first")
    tail.add_argument("--no-follow", action="store_true", help="print what is there and stop")
    tail.add_argument("--format", choices=("auto", "json", "console"), default="auto")
    status = command(log, "status", tools.log_status, "cli", "horizon age and follower lags")
    status.add_argument("--format", choices=("auto", "json", "console"), default="auto")
    bump = command(log, "bump-epoch", tools.log_bump_epoch, "cli", "after a restore or logical migration")
    bump.add_argument("--reason", required=True)

    projections = sub.add_parser("projections", help="the read models").add_subparsers(
        dest="projections_command", required=True)
    rebuild = command(projections, "rebuild", tools.projections_rebuild, "cli",
                      "rebuild a projection from the start of the log and swap it in")
    rebuild.add_argument("name", help="the projection (see `projections status`)")
    rebuild.add_argument("--window", type=int, default=5000, help="events folded and written at a time (5000)")
    pstatus = command(projections, "status", tools.projections_status, "cli", "each projection's checkpoint and lag")
    pstatus.add_argument("--format", choices=("auto", "json", "console"), default="auto")

    report = command(sub, "report", tools.report, "cli", "follow-through report")
    report.add_argument("--workspace", default="default")
    report.add_argument("--by", choices=("account", "owner", "channel", "day", "workspace"), default="account")
    report.add_argument("--format", choices=("table", "json"), default="table")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return run(args)
    except SchedulerError as exc:
        print(f"followthrough: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
