"""`followthrough report`: the follow-through figures in the terminal (a rich table), or as
JSON or CSV for scripts."""

from __future__ import annotations

import csv
import io
import os
import sys
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table
from rich.text import Text

from events.projections import reports
from followthrough import connections
from followthrough.run import Run
from scheduler.api.figures import percent, seconds
from scheduler.errors import InvalidInputError

COLUMNS = ("key", "open", "done_on_time", "done_late", "overdue", "rate", "median_seconds_to_complete",
           "p90_seconds_to_complete", "median_seconds_to_first_look", "replies_received", "replies_answered",
           "median_seconds_to_answer", "p90_seconds_to_answer", "clock_to_answer", "engagement_replies",
           "engagement_reposts", "engagement_likes", "engagement_quotes")


def _day(value: str | None, field: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.combine(date.fromisoformat(value), time(), UTC)
    except ValueError as exc:
        raise InvalidInputError(field, "must be a date, YYYY-MM-DD") from exc


def report(run: Run) -> int:
    args = run.args
    start = _day(args.start, "--from")
    last = _day(args.end, "--to")
    end = None if last is None else last + timedelta(days=1)
    with connections.connect(run.settings) as conn:
        rows = reports.followthrough(conn, args.workspace, by=args.by, start=start, end=end, hours=args.hours)
        integrity = reports.sent_without_tasks(conn, args.workspace)
    clock = reports.clock(rows)
    if args.format == "json":
        print(orjson.dumps({"by": args.by, "hours": args.hours, "clock": clock, "rows": rows,
                            "sent_shares_without_response_tasks": integrity}).decode())
    elif args.format == "csv":
        sys.stdout.write(as_csv(rows))
    else:
        period = "all time" if start is None and end is None else f"{args.start or '…'} to {args.end or '…'} (UTC)"
        _console().print(as_table(rows, by=args.by, period=period, integrity=integrity, hours=args.hours,
                                  clock=clock))
    return 0


def as_csv(rows: list[dict[str, Any]]) -> str:
    """One line per row; an empty rate when nothing is settled (never 0)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(["" if row[c] is None else row[c] for c in COLUMNS])
    return out.getvalue()


HEADINGS = ("open", "on time", "late", "overdue", "rate", "median to respond", "p90 to respond",
            "median to first look", "replies", "answered", "median to answer", "p90 to answer", "answer clock")


def as_table(rows: list[dict[str, Any]], *, by: str, period: str, integrity: int, hours: str = "all",
             clock: str = reports.WALL) -> Table:
    replies = "" if hours == "all" else f", replies in {hours} hours"
    table = Table(title=f"Follow-through by {by}, {period}{replies}", title_justify="left",
                  caption=_caption(integrity, clock), caption_justify="left")
    table.add_column(by, style="bold")
    for name in HEADINGS:
        table.add_column(name, justify="right")
    for row in rows:
        rate = Text("no tasks due", style="dim italic") if row["rate"] is None else Text(percent(row["rate"]))
        table.add_row(str(row["key"]), str(row["open"]), str(row["done_on_time"]), str(row["done_late"]),
                      str(row["overdue"]), rate, seconds(row["median_seconds_to_complete"]),
                      seconds(row["p90_seconds_to_complete"]), seconds(row["median_seconds_to_first_look"]),
                      str(row["replies_received"]), str(row["replies_answered"]),
                      seconds(row["median_seconds_to_answer"]), seconds(row["p90_seconds_to_answer"]),
                      row["clock_to_answer"] or "\u2013")
    if not rows:
        table.add_row(Text("no response tasks due", style="dim italic"), *[""] * len(HEADINGS))
    return table


def _caption(integrity: int, clock: str = reports.WALL) -> str:
    mark = "[green]0[/]" if integrity == 0 else f"[bold red]{integrity}[/]"
    measured = ("times on the wall clock" if clock == reports.WALL else
                "times on the wall clock; time to answer in business time for business steps (answer clock)")
    return (f"{measured} · sent shares without response tasks: {mark} · "
            f"as of {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC")


def _console() -> Console:
    """Full width on a terminal; wide enough for every column when piped."""
    width = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "240"))
    return Console(width=width, highlight=False)
