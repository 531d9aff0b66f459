"""The follow-through rate is one SQL function, ``followthrough_rate`` (migration 0011):
done on time / (done on time + done late + overdue), no rate when nothing is settled; the
reports, the view and /metrics' query all give what it gives."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest

from events import sqlfiles
from events.projections import reports
from tests.support.database import connect
from tests.support.observability import GRAFANA

NOW = datetime.now(UTC).replace(microsecond=0)
ACCOUNT = UUID(int=10)  # one account: the view groups by account
METRICS = sqlfiles.load("events.projections.sql", "metrics.sql")


def definition(on_time: int, late: int, overdue: int) -> float | None:
    settled = on_time + late + overdue
    return None if settled == 0 else on_time / settled


def task(conn: psycopg.Connection[Any], *, due: datetime, completed: datetime | None = None,
         status: str = "open", owner: str = "alice") -> None:
    conn.execute(
        "INSERT INTO rm_response_tasks (task_id, share_id, workspace_id, account_id, account_name, channel,"
        " kind, owner, after_seconds, status, recorded_at, due_at, completed_at)"
        " VALUES (gen_random_uuid(), gen_random_uuid(), 'acme', %s, 'launch', 'console',"
        " 'check_replies', %s, 3600, %s, now(), %s, %s)",
        (ACCOUNT, owner, "done" if completed else status, due, completed))


@pytest.fixture
def conn(database_url: str) -> Any:
    with connect(database_url) as c:
        yield c


def test_no_settled_task_is_no_rate_never_zero_or_one(conn: psycopg.Connection[Any]) -> None:
    # Given nothing settled
    # When the function is asked
    # Then it has no rate; settled counts give done on time over settled, 0 and 1 included
    def rate(*counts: int) -> Any:
        row = conn.execute("SELECT followthrough_rate(%s, %s, %s)", counts).fetchone()
        assert row is not None
        return row[0]

    assert reports.RATE_FUNCTION == "followthrough_rate"
    assert rate(0, 0, 0) is None
    assert (rate(1, 1, 2), rate(0, 0, 3), rate(3, 0, 0)) == (0.25, 0.0, 1.0)


def test_the_function_is_the_definition_for_any_counts(conn: psycopg.Connection[Any]) -> None:
    # Given counts from none to large, each alone and together
    values = (0, 1, 2, 3, 7, 1000, 2**31 + 5, 10**12)
    triples = [(a, b, c) for a in values for b in values for c in values]
    # When the database computes the rate of each
    got = conn.execute(
        "SELECT followthrough_rate(a, b, c) FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[])"
        " WITH ORDINALITY AS t(a, b, c, i) ORDER BY i",
        ([t[0] for t in triples], [t[1] for t in triples], [t[2] for t in triples])).fetchall()
    # Then each is done on time over settled, exactly, and no rate when none is settled
    assert [r[0] for r in got] == [definition(*t) for t in triples]


def test_every_reader_gives_the_functions_rate(conn: psycopg.Connection[Any]) -> None:
    # Given, due yesterday: one task done on time, one done late, two overdue and one open
    # (open tasks count nowhere until settled); and, due in another week, one done on time
    yesterday = NOW - timedelta(days=1)
    task(conn, due=yesterday, completed=yesterday - timedelta(minutes=5))
    task(conn, due=yesterday, completed=yesterday + timedelta(minutes=5))
    task(conn, due=yesterday)
    task(conn, due=yesterday)
    task(conn, due=NOW + timedelta(hours=1))
    task(conn, due=NOW - timedelta(days=14), completed=NOW - timedelta(days=15))
    # When each reader is asked for the rate of the day, the week and the workspace
    day = yesterday.date().isoformat()
    by_day = {r["key"]: r["rate"] for r in reports.followthrough(conn, "acme", by="day")}
    view = conn.execute("SELECT rate FROM followthrough_daily WHERE day = %s", (yesterday.date(),)).fetchone()
    metrics = [r for r in conn.execute(METRICS["followthrough_by_workspace"]) if r[0] == "acme"]
    # Then each gives the function's rate: 1 / (1 + 1 + 2)
    assert by_day[day] == 0.25
    assert view == (0.25,)
    # /metrics' 30 days: the day above and the task due two weeks ago: 2 / 5
    assert metrics[0][1:] == (1, 2, 1, 2, 0.4)


def test_a_day_with_only_open_tasks_has_no_rate_in_the_view_and_the_report(conn: psycopg.Connection[Any]) -> None:
    # Given only a task that is not yet due
    task(conn, due=NOW + timedelta(hours=2))
    # When the report and the view are read
    rows = reports.followthrough(conn, "acme", by="workspace")
    view = conn.execute("SELECT open, rate FROM followthrough_daily").fetchall()
    # Then there is a row, with an open task and no rate
    assert [(r["open"], r["rate"]) for r in rows] == [(1, None)]
    assert view == [(1, None)]


def test_a_weeks_rate_is_over_its_summed_counts_not_a_mean_of_its_days(conn: psycopg.Connection[Any]) -> None:
    # Given days of two ISO weeks (Mon 23 Nov and Mon 30 Nov 2026): on the 23rd one task done
    # on time, on the 27th three overdue; on the 30th two done on time
    for day, on_time, overdue in (("2026-11-23", 1, 0), ("2026-11-27", 0, 3), ("2026-11-30", 2, 0)):
        due = datetime.fromisoformat(f"{day}T12:00:00+00:00")
        for _ in range(on_time):
            task(conn, due=due, completed=due - timedelta(minutes=1))
        for _ in range(overdue):
            task(conn, due=due)
    # When the report is grouped by week (as the dashboard's weekly chart asks)
    rows = reports.followthrough(conn, "acme", by="week")
    # Then each week is keyed by its Monday, its rate its on-time count over its settled count
    assert [(r["key"], r["done_on_time"], r["overdue"], r["rate"]) for r in rows] == [
        ("2026-11-23", 1, 3, 0.25), ("2026-11-30", 2, 0, 1.0)]


def test_every_reader_calls_the_function_and_none_divides_by_itself(conn: psycopg.Connection[Any]) -> None:
    # Given every reader of the rate: the reports, /metrics, the view, the audit's read, Grafana
    readers = {
        "reports.sql": reports.Q["followthrough"],
        "metrics.sql": METRICS["followthrough_by_workspace"],
        "audit.sql": sqlfiles.load("scheduler.services", "audit.sql")["daily"],
        "followthrough_daily": str(conn.execute("SELECT pg_get_viewdef('followthrough_daily')").fetchone()),
    }
    for name in ("followthrough-read-models.json",):
        panels = json.loads((GRAFANA / name).read_text())["panels"]
        readers |= {f"{name}: {p['title']}": target["rawSql"] for p in panels for target in p.get("targets", [])
                    if "rate" in target.get("rawSql", "")}
    # When their SQL is read
    # Then each computes its rate through followthrough_rate(), never with a division of its own
    assert len(readers) > 4
    for name, text in readers.items():
        assert f"{reports.RATE_FUNCTION}(" in text, name
        assert "nullif" not in text.lower(), name
