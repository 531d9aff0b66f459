"""The `followthrough` command: every process role, and the operator's tools.

One runner for every command: settings (from the environment and the options), logging
for the command's role, the servers (given, or embedded under ``--home``), then the
command with what it needs (``Run``).

Each command is named here as ``module:function`` and imported only when it runs: the
parser itself loads nothing but the standard library, so ``--help`` answers at once, and an
operator's command (``token list``, ``audit``) never loads what only the server roles use
(Dramatiq, httpx, FastAPI, Jinja; seconds of imports). ``tests/e2e/test_cli_imports.py``
holds that.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scheduler.errors import ConfigurationError, SchedulerError

if TYPE_CHECKING:
    from followthrough.run import Run
    from followthrough.settings import Settings

Command = Callable[["Run"], int]
SERVER_ROLES = frozenset({"api", "dispatcher", "projector", "worker"})


def command_named(target: str) -> Command:
    """The command function that ``module:function`` names, in the ``followthrough`` package."""
    module, _, name = target.partition(":")
    found: Command = getattr(importlib.import_module(f"followthrough.{module}"), name)
    return found


def settings_from(args: argparse.Namespace) -> Settings:
    from followthrough.settings import Settings

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
    from followthrough import connections
    from followthrough.logs import configure_logging
    from followthrough.run import Run

    settings = settings_from(args)
    if args.role == "worker" and settings.database_url and settings.broker_url:
        from followthrough import roles

        roles.exec_worker(settings, processes=args.processes, threads=args.threads)  # does not return
    command = command_named(args.func)
    # Servers log to stdout; a command's stdout is its output, so its logs go to stderr.
    stream = sys.stdout if args.role in SERVER_ROLES else sys.stderr
    configure_logging(role=args.role, level=settings.log_level, fmt=settings.log_format, stream=stream,
                      colors=settings.log_colors)
    if args.role == "up":
        settings.home.mkdir(parents=True, exist_ok=True)
    restore = exit_on_signals() if args.role not in SERVER_ROLES | {"up"} else {}
    try:
        if args.role == "cli" and getattr(args, "lines", None) is not None:  # `log tail --lines`: no server
            return int(command(Run(args=args, settings=settings)))
        if args.role == "cli":
            require_home(settings)
        # An operator's command needs no broker: it never starts an embedded Redis.
        with connections.resolved(settings, owner=args.role == "up", need_broker=args.role != "cli") as ready:
            return int(command(Run(args=args, settings=ready)))
    finally:
        for signum, handler in restore.items():  # run in a test's process: its own handlers come back
            signal.signal(signum, handler)


def require_home(settings: Settings) -> None:
    """An operator's command on the embedded servers uses an existing home, never makes one:
    run in another folder, it says how to point at the right one instead."""
    if settings.database_url is not None or (settings.home / "postgres" / "PG_VERSION").exists():
        return
    shown = settings.home if settings.home.is_absolute() else f"./{settings.home}"
    raise ConfigurationError(f"no Followthrough home in {shown}: pass --home or set FOLLOWTHROUGH_HOME "
                             "(or DATABASE_URL for a server of your own)")


def exit_on_signals() -> dict[signal.Signals, Any]:
    """A command killed by its terminal closing (SIGHUP) or by SIGTERM exits as from
    Ctrl-C: its ``finally`` blocks run, so it lets go of the embedded servers it holds.
    Returns the handlers it replaced (none off the main thread, where it cannot set any)."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def leave(signum: int, _: object) -> None:
        raise SystemExit(128 + signum)

    return {signum: signal.signal(signum, leave) for signum in (signal.SIGTERM, signal.SIGHUP)}


Add = Callable[[Any, str, str, str, str], argparse.ArgumentParser]


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--home",
        help="state folder for embedded servers and console output (default: ./.followthrough, or FOLLOWTHROUGH_HOME)",
    )
    p = argparse.ArgumentParser(prog="followthrough", description="Schedule posts; follow through on replies.")
    sub = p.add_subparsers(dest="command", required=True, metavar="command")

    def command(parent: Any, name: str, func: str, role: str, help_: str) -> argparse.ArgumentParser:
        cmd: argparse.ArgumentParser = parent.add_parser(name, parents=[common], help=help_)
        cmd.set_defaults(func=func, role=role)
        return cmd

    for add_commands in (_role_commands, _token_commands, _log_commands, _projection_commands, _webhook_commands,
                         _console_commands, _report_commands, _audit_commands, _share_commands):
        add_commands(sub, command)
    return p


def _role_commands(sub: Any, command: Add) -> None:
    up = command(sub, "up", "roles:up", "up", "run every role on this machine (embedded servers by default)")
    up.add_argument("--port", type=int, help="API port (default 8000)")
    command(sub, "migrate", "roles:migrate", "migrate", "apply database migrations")
    api = command(sub, "api", "roles:api", "api", "run the HTTP API")
    api.add_argument("--port", type=int)
    api.add_argument("--host")
    command(sub, "dispatcher", "roles:dispatcher", "dispatcher", "run the dispatcher")
    command(sub, "projector", "roles:projector", "projector", "run the projections")
    worker = command(sub, "worker", "roles:worker", "worker", "run Dramatiq workers")
    worker.add_argument("--processes", type=int)
    worker.add_argument("--threads", type=int)


def _token_commands(sub: Any, command: Add) -> None:
    token = sub.add_parser("token", help="API tokens").add_subparsers(dest="token_command", required=True)
    create = command(token, "create", "tools:token_create", "cli", "create a token; prints only the token")
    create.add_argument("--workspace", required=True)
    create.add_argument("--scope", required=True, choices=("write", "read"))
    create.add_argument("--label", default="")
    create.add_argument("--owner", help="the person the token belongs to: the actor of the events it causes "
                                        "(default: none, the label is)")
    create.add_argument("--expires-in", type=duration_arg, metavar="DURATION",
                        help="the token stops working after this (ISO 8601, e.g. P90D or PT12H; default: never)")
    listing = command(token, "list", "tools:token_list", "cli", "a workspace's tokens (never the tokens themselves)")
    listing.add_argument("--workspace", required=True)
    listing.add_argument("--all", action="store_true", help="include revoked tokens")
    listing.add_argument("--format", choices=("table", "json"), default="table")
    revoke = command(token, "revoke", "tools:token_revoke", "cli", "revoke a token by its id")
    revoke.add_argument("--workspace", required=True)
    revoke.add_argument("token_id", type=uuid.UUID, metavar="TOKEN_ID")


def _log_commands(sub: Any, command: Add) -> None:
    log = sub.add_parser("log", help="the event log").add_subparsers(dest="log_command", required=True)
    tail = command(log, "tail", "tools:log_tail", "cli", "follow the log, one line per event")
    tail.add_argument("--from-start", action="store_true", help="replay the whole log first")
    tail.add_argument("--no-follow", action="store_true", help="print what is there and stop")
    tail.add_argument("--format", choices=("auto", "json", "console"), default="auto")
    tail.add_argument("--lines", metavar="FILE",
                      help="the roles' JSON log lines in FILE (- for stdin) instead of the event log")
    tail.add_argument("--share", metavar="SHARE_ID", help="only this share's events or lines")
    tail.add_argument("--account", metavar="ID_OR_NAME", help="only the events or lines of this account's shares")
    tail.add_argument("--workspace", help="only this workspace's events or lines")
    tail.add_argument("--level", type=_level, metavar="LEVEL",
                      help="with --lines: only lines at this level and above (debug, info, warning, error, critical)")
    status = command(log, "status", "tools:log_status", "cli", "horizon age and follower lags")
    status.add_argument("--format", choices=("auto", "json", "console"), default="auto")
    bump = command(log, "bump-epoch", "tools:log_bump_epoch", "cli", "after a restore or logical migration")
    bump.add_argument("--reason", required=True)


def _level(text: str) -> str:
    from followthrough.log_lines import level_arg

    return level_arg(text)


def duration_arg(text: str) -> timedelta:
    """An ISO 8601 duration option (P90D, PT12H), as argparse's ``type``."""
    from pydantic import TypeAdapter, ValidationError

    try:
        span = TypeAdapter(timedelta).validate_python(text)
    except ValidationError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 duration such as P90D or PT12H") from None
    if span <= timedelta(0):
        raise argparse.ArgumentTypeError("must be positive")
    return span


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return value


def _projection_commands(sub: Any, command: Add) -> None:
    projections = sub.add_parser("projections", help="the read models").add_subparsers(
        dest="projections_command", required=True)
    rebuild = command(projections, "rebuild", "tools:projections_rebuild", "cli",
                      "rebuild a projection from the start of the log and swap it in")
    rebuild.add_argument("name", help="the projection (see `projections status`)")
    rebuild.add_argument("--window", type=int, default=5000, help="events folded and written at a time (5000)")
    rebuild.add_argument("--workers", type=_positive,
                         help="processes a large rebuild is split over (default: one per core, up to a cap); "
                              "1 keeps it in this process")
    pstatus = command(projections, "status", "tools:projections_status", "cli", "each projection's checkpoint and lag")
    pstatus.add_argument("--format", choices=("auto", "json", "console"), default="auto")


def _webhook_commands(sub: Any, command: Add) -> None:
    hooks = sub.add_parser("webhooks", help="webhooks out").add_subparsers(dest="webhooks_command", required=True)
    command(hooks, "reseal", "tools:webhooks_reseal", "cli",
            "seal every endpoint's signing secret under the first key of FOLLOWTHROUGH_WEBHOOK_SECRET_KEYS "
            "(after adding a new key in front), so the old keys can be removed")


def _console_commands(sub: Any, command: Add) -> None:
    console = sub.add_parser("console", help="the console channel").add_subparsers(dest="console_command",
                                                                                   required=True)
    reply = command(console, "reply", "console_replies:reply", "cli",
                    "write a reply under a console share (prints the reply's id)")
    reply.add_argument("share_id")
    reply.add_argument("text")
    reply.add_argument("--author", required=True, help="who replies, e.g. ana@example.social")
    reply.add_argument("--name", help="the name the author shows, e.g. 'Ana Lima' (default: none)")
    reply.add_argument("--to", help="the id of the reply this one answers (default: the post itself)")


def _share_commands(sub: Any, command: Add) -> None:
    shares = sub.add_parser("shares", help="shares").add_subparsers(dest="shares_command", required=True)
    mark = command(shares, "mark-sent", "shares_cli:mark_sent", "cli",
                   "record a held share sent: its post is at --url (prints the share as JSON)")
    mark.add_argument("share_id")
    mark.add_argument("--url", required=True, help="the post's address, e.g. https://mastodon.social/@team/1134")
    mark.add_argument("--external-id", help="the network's id of the post (default: read from the url)")
    mark.add_argument("--sent-at", help="the post's creation time, RFC 3339 (default: when the last attempt started)")


def _report_commands(sub: Any, command: Add) -> None:
    report = command(sub, "report", "report:report", "cli", "follow-through report")
    report.add_argument("--workspace", default="default")
    report.add_argument("--by", choices=("account", "owner", "channel", "day", "workspace"), default="account")
    report.add_argument("--from", dest="start", metavar="YYYY-MM-DD", help="tasks due from this UTC day")
    report.add_argument("--to", dest="end", metavar="YYYY-MM-DD", help="through this UTC day")
    report.add_argument("--hours", choices=("all", "business", "off"), default="all",
                        help="reply figures of the replies written in (business) or out of (off) their owner's "
                             "business hours, by the reply's own time (default: all)")
    report.add_argument("--format", choices=("table", "json", "csv"), default="table")


def _audit_commands(sub: Any, command: Add) -> None:
    audit = command(sub, "audit", "tools:audit", "cli", "recount every figure from the log; exit 1 on any difference")
    audit.add_argument("--workspace", help="one workspace (default: every workspace)")
    audit.add_argument("--format", choices=("auto", "table", "json"), default="auto")
    audit.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                       help="first wait up to this long for the projector to apply the whole log")


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return run(args)
    except SchedulerError as exc:
        print(f"followthrough: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        import psycopg  # loaded already by any command that got this far

        if isinstance(exc, psycopg.errors.UndefinedTable):  # a database never migrated: say so, no traceback
            print(f"followthrough: the database has no Followthrough schema ({str(exc).splitlines()[0]}): "
                  "run `followthrough migrate`, or pass --home for the right home", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
