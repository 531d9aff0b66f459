"""`followthrough log tail`'s filters: which events of the log, and which of the roles'
own log lines (``--lines``), an operator asked for.

The roles write one JSON object a line when their output is not a terminal (a file, the
platform's collector): ``followthrough log tail --lines FILE`` (or ``-`` for stdin, e.g.
``kubectl logs -f deploy/followthrough-worker | followthrough log tail --lines - ...``)
keeps the lines of one share, account or workspace, at a level and above, and renders them
like the rest of the product's lines in a terminal. The field names are the ones the
worker binds around each share's lines (``workers/context.py``): ``share_id``,
``workspace_id``, ``account_id``, ``account_name`` (and the API's ``account``); the level
is structlog's ``level``.

Nothing here needs a server: with ``--lines`` the command starts no database.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

import orjson

from scheduler.errors import ConfigurationError

LEVELS = ("debug", "info", "warning", "error", "critical")
# Names that structlog and the standard library also write for these levels.
_LEVEL_RANK = {**{name: rank for rank, name in enumerate(LEVELS)}, "warn": 2, "exception": 3, "fatal": 4}
FOLLOW_POLL_SECONDS = 0.25


@dataclass(frozen=True, slots=True)
class Filters:
    """What the operator asked for; every filter given must hold (AND)."""

    share: str | None = None
    account: str | None = None
    workspace: str | None = None
    level: str | None = None

    @classmethod
    def from_args(cls, args: Any) -> Filters:
        share = getattr(args, "share", None)
        if share is not None:
            try:
                share = str(uuid.UUID(share))
            except ValueError:
                raise ConfigurationError(f"--share {share!r} is not a share id: pass the share's UUID, "
                                         "e.g. --share 0b6f0f2e-3c1a-4c55-9a57-6d2a4f1e9b10") from None
        account = getattr(args, "account", None)
        if account is not None and not account.strip():
            raise ConfigurationError("--account is empty: pass the account's id or its name, "
                                     "e.g. --account launch-team")
        workspace = getattr(args, "workspace", None)
        if workspace is not None and not workspace.strip():
            raise ConfigurationError("--workspace is empty: pass the workspace's name, e.g. --workspace acme")
        return cls(share=share, account=account, workspace=workspace, level=getattr(args, "level", None))

    @property
    def any(self) -> bool:
        return any(value is not None for value in (self.share, self.account, self.workspace, self.level))

    def keeps_line(self, line: Mapping[str, Any]) -> bool:
        """Whether a role's log line (its JSON object) passes every filter given."""
        if self.level is not None and level_rank(line.get("level")) < _LEVEL_RANK[self.level]:
            return False
        if self.share is not None and str(line.get("share_id")) != self.share:
            return False
        if self.workspace is not None and line.get("workspace_id") != self.workspace:
            return False
        # (the API's share_planned line names the account as ``account``)
        return self.account is None or self.account in (line.get("account_id"), line.get("account_name"),
                                                        line.get("account"))

    def keeps_event(self, recorded: Any, account_of: Callable[[str], tuple[str, str] | None]) -> bool:
        """Whether an event of the log passes every filter given (``--level`` is for lines:
        the event log has none). ``account_of`` names a share stream's account (id, name)."""
        if self.workspace is not None and recorded.workspace_id != self.workspace:
            return False
        if self.share is not None and recorded.stream_id != f"share-{self.share}":
            return False
        if self.account is None:
            return True
        account = account_of(recorded.stream_id) if recorded.stream_id.startswith("share-") else None
        return account is not None and self.account in account


def level_rank(level: Any) -> int:
    """A line's level as a rank (a line without one counts as info)."""
    return _LEVEL_RANK.get(str(level).lower(), _LEVEL_RANK["info"]) if level is not None else _LEVEL_RANK["info"]


def level_arg(text: str) -> str:
    """``--level``'s value, as argparse's ``type``: any case, and ``warn`` for warning."""
    import argparse

    name = text.strip().lower()
    name = {"warn": "warning", "fatal": "critical"}.get(name, name)
    if name not in LEVELS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a level: pass one of {', '.join(LEVELS)} "
                                         "(the lines at that level and above are kept)")
    return name


def tail_lines(source: str, filters: Filters, *, from_start: bool, follow: bool, fmt: str,
               out: TextIO | None = None, stop: Callable[[], bool] = lambda: False) -> int:
    """Print the roles' log lines from ``source`` (a file, or ``-`` for stdin) that pass ``filters``."""
    out = out or sys.stdout
    render = _renderer(fmt, out)
    skipped = 0
    for raw in _read(source, from_start=from_start, follow=follow, stop=stop):
        text = raw.rstrip("\r\n")
        if not text.strip():
            continue
        line = _parsed(text)
        if line is None:
            if filters.any:
                skipped += 1
                if skipped == 1:
                    sys.stderr.write("followthrough: skipping lines that are not JSON log lines (they cannot be "
                                     "filtered): run the roles with FOLLOWTHROUGH_LOG_FORMAT=json, or write their "
                                     "output to a file or pipe (JSON when not a terminal)\n")
                continue
            out.write(text + "\n")
        elif filters.keeps_line(line):
            out.write(render(text, line))
        out.flush()
    return 0


def _parsed(text: str) -> dict[str, Any] | None:
    if not text.lstrip().startswith("{"):
        return None
    try:
        found = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return found if isinstance(found, dict) else None


def _renderer(fmt: str, out: TextIO) -> Callable[[str, dict[str, Any]], str]:
    """JSON lines stay as written (for a pipeline); in a terminal they read like the rest."""
    if fmt == "json" or (fmt == "auto" and not out.isatty()):
        return lambda text, _: text + "\n"
    import structlog

    console = structlog.dev.ConsoleRenderer(colors=out.isatty())
    return lambda _, line: str(console(None, "", dict(line))) + "\n"


def _read(source: str, *, from_start: bool, follow: bool, stop: Callable[[], bool]) -> Iterator[str]:
    if source == "-":
        yield from sys.stdin  # a pipe: every line as it comes, until it closes
        return
    try:
        handle = open(source, encoding="utf-8", errors="replace")  # noqa: SIM115 (held while following)
    except FileNotFoundError:
        raise ConfigurationError(f"--lines {source}: no such file: pass the file the roles' JSON log lines "
                                 "are written to, or - to read them from stdin") from None
    except IsADirectoryError:
        raise ConfigurationError(f"--lines {source}: is a folder: pass the log file itself, or - for stdin") from None
    with handle:
        if not from_start:
            handle.seek(0, os.SEEK_END)
        pending = ""
        while True:
            chunk = handle.readline()
            if chunk:
                pending += chunk
                if pending.endswith("\n"):  # a line still being written waits for its end
                    yield pending
                    pending = ""
                continue
            if not follow or stop():
                if pending:
                    yield pending
                return
            if _size(source) < handle.tell():  # truncated (or rotated by copytruncate): start over
                handle.seek(0)
                pending = ""
                continue
            time.sleep(FOLLOW_POLL_SECONDS)


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:  # moved away by a rotation: the open handle still reads the old file
        return sys.maxsize
