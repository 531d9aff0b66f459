"""The follow-through report's times and its hours filter, against a real PostgreSQL: the
SQL reading of business hours agrees with the domain's, a calendar applies from when it
was recorded, and ``hours=business|off`` splits the replies by their own time."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx
import pytest
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from events.catalogue import ReplyAnswered, ResponseReceived
from events.store import EventStore
from scheduler.domain import calendars as c
from scheduler.domain import share as lifecycle
from scheduler.domain.share.state import new_event
from scheduler.services.share_stream import ShareStreams
from tests.support.api import bearer
from tests.support.fake_channel import FakeChannel
from tests.support.replies import catch_up
from tests.support.shares import Clock, runtime
from tests.support.system import wait_until
from workers.execution import execute_share

BERLIN = ZoneInfo("Europe/Berlin")
OFFICE = {"time_zone": "Europe/Berlin", "week": {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
          "holidays": ["2026-10-26"]}


@pytest.fixture
def auth(database_url: str) -> dict[str, str]:
    return bearer(database_url)


def test_the_sql_reading_of_business_hours_agrees_with_the_domain_across_both_transitions(
    pool: ConnectionPool[Any],
) -> None:
    event = c.calendar_set("default", **OFFICE)
    calendar = c.from_event(event)
    data = Jsonb(event.model_dump(mode="json"))
    moments = [datetime(2026, month, day, tzinfo=UTC) + timedelta(minutes=30 * k)
               for month, day in ((3, 26), (10, 22)) for k in range(6 * 48)]
    with pool.connection() as conn:
        found = [r[0] for r in conn.execute(
            "SELECT in_business_hours(m, %s) FROM unnest(%s::timestamptz[]) AS m ORDER BY m", (data, moments))]
        assert conn.execute("SELECT in_business_hours(now(), NULL)").fetchone() == (None,)
    assert found == [c.is_business(calendar, m) for m in sorted(moments)]
    assert any(found)
    assert not all(found)


def test_a_calendar_applies_in_sql_from_when_it_was_recorded_and_the_owner_s_wins(
    client: httpx.Client, auth: dict[str, str], pool: ConnectionPool[Any]
) -> None:
    client.put("/v1/calendars/default", headers=auth, json=OFFICE)
    client.put("/v1/calendars/nights", headers=auth, json={**OFFICE, "week": {"sun": [["22:00", "23:00"]]}})
    with pool.connection() as conn:
        (before,) = conn.execute("SELECT now()").fetchone() or (None,)
    time.sleep(0.05)
    client.put("/v1/owners/alice", headers=auth, json={"calendar": "nights"})
    client.put("/v1/calendars/default", headers=auth, json={**OFFICE, "time_zone": "UTC"})
    with pool.connection() as conn:
        def zone(owner: str, at: Any) -> Any:
            return conn.execute("SELECT calendar_at('acme', %s, %s)->>'time_zone', "
                                "calendar_at('acme', %s, %s)->'week' ? 'sun'", (owner, at, owner, at)).fetchone()
        # As it stood before: both on the first default; now alice works nights, bob by the new default
        assert zone("alice", before) == ("Europe/Berlin", False)
        assert zone("bob", before) == ("Europe/Berlin", False)
        assert zone("alice", datetime.now(UTC)) == ("Europe/Berlin", True)
        assert zone("bob", datetime.now(UTC)) == ("UTC", False)
        assert conn.execute("SELECT calendar_at('globex', 'bob', now())").fetchone() == (None,)


def test_the_report_gives_times_to_answer_and_first_look_on_the_wall_clock_and_splits_replies_by_hours(
    client: httpx.Client, auth: dict[str, str], pool: ConnectionPool[Any], store: EventStore, database_url: str
) -> None:
    # Given a calendar for today only (UTC), from an hour ago to midnight
    now = datetime.now(UTC)
    start = max(now - timedelta(hours=1), now.replace(hour=0, minute=0))
    today = c.DAYS[now.weekday()]
    client.put("/v1/calendars/default", headers=auth,
               json={"time_zone": "UTC", "week": {today: [[start.strftime("%H:%M"), "24:00"]]}, "holidays": []})
    # And a share sent ten minutes ago with a check and an answer task
    account = client.post("/v1/accounts", json={"name": "main", "channel": "console"}, headers=auth).json()
    share_id = UUID(client.post("/v1/shares", headers=auth, json={
        "account_id": account["id"], "text": "hi", "response_plan": [
            {"kind": "check_replies", "after": "PT1H", "owner": "alice"},
            {"kind": "answer_replies", "after": "P2D", "owner": "alice"}]}).json()["id"])
    sent_at = now - timedelta(minutes=10)
    assert execute_share(runtime(pool, store, FakeChannel(created_at=sent_at), clock=Clock()),
                         share_id) == "share_sent"
    # And two replies written after the calendar: one in its hours, one tomorrow (off hours),
    # each answered (natively) 30 and 90 seconds later
    later = datetime.now(UTC) + timedelta(seconds=1)
    written = {"in": later, "off": later + timedelta(days=1)}
    streams = ShareStreams(store, None)
    for (name, at), delay in zip(written.items(), (30, 90), strict=True):
        reply = ResponseReceived(reply_id=name, author="ana", text=name, received_at=at)
        answer = ReplyAnswered(reply_id=name, external_id=f"a-{name}", answered_at=at + timedelta(seconds=delay),
                               native=True)
        with pool.connection() as conn:
            streams.change(conn, share_id, lambda s, r=reply, a=answer: (  # type: ignore[misc]
                *lifecycle.receive_replies(s, [r]), new_event(share_id, f"answered-{a.reply_id}", a)),
                workspace_id="acme", actor="test")
    # And alice looks at the replies 4 minutes after the post (completing the check)
    tasks = client.get(f"/v1/shares/{share_id}", headers=auth).json()["response_tasks"]
    client.post(f"/v1/response-tasks/{tasks[0]['id']}/complete", headers=auth, json={})
    def caught_up() -> bool:
        catch_up(store, database_url)  # another session's open transaction may hold the horizon a moment
        rows = client.get("/v1/followthrough", params={"by": "workspace"}, headers=auth).json()["rows"]
        return bool(rows) and rows[0]["replies_received"] == 2 and rows[0]["median_seconds_to_first_look"] is not None
    wait_until(caught_up, timeout=60, what="the read models caught up")
    # When the report is read for all hours, business hours and off hours
    report = {h: client.get("/v1/followthrough", params={"by": "workspace", "hours": h}, headers=auth).json()
              for h in ("all", "business", "off")}
    row = report["all"]["rows"][0]
    # Then its times are on the wall clock
    assert report["all"]["clock"] == "wall"
    assert report["all"]["hours"] == "all"
    assert (row["replies_received"], row["replies_answered"]) == (2, 2)
    assert row["median_seconds_to_answer"] == pytest.approx(60)
    assert row["p90_seconds_to_answer"] == pytest.approx(84)
    completed = datetime.fromisoformat(client.get(f"/v1/shares/{share_id}", headers=auth).json()[
        "response_tasks"][0]["completed_at"])
    assert row["median_seconds_to_first_look"] == pytest.approx((completed - sent_at).total_seconds(), abs=0.01)
    # And the hours split the replies by their own time (the tasks stay as they are)
    business, off = report["business"]["rows"][0], report["off"]["rows"][0]
    assert (business["replies_received"], business["median_seconds_to_answer"]) == (1, pytest.approx(30))
    assert (off["replies_received"], off["median_seconds_to_answer"]) == (1, pytest.approx(90))
    assert business["done_on_time"] + business["open"] == row["done_on_time"] + row["open"]
