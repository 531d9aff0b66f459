"""Business time in SQL (migration 0016), against a real PostgreSQL: ``business_seconds``
counts what the domain counts (both daylight-saving transitions, holidays, gaps), a reply
answered for a business step reports its time to answer in business seconds through the
API (and the audit recounts the same), and a business task's at-risk point is measured in
business time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from events.catalogue import ReplyAnswered, ResponseReceived
from events.store import EventStore
from scheduler.domain import calendars as c
from scheduler.domain import share as lifecycle
from scheduler.domain.share.state import new_event
from scheduler.domain.sla import sla_state
from scheduler.services.audit import audit
from scheduler.services.share_stream import ShareStreams
from tests.support.api import bearer
from tests.support.calendars import calendars
from tests.support.fake_channel import FakeChannel
from tests.support.replies import catch_up
from tests.support.shares import Clock, runtime
from tests.support.system import wait_until
from workers.execution import execute_share

# Instants around both of Berlin's and New York's 2026 transitions, and any other
near_transitions = st.sampled_from([datetime(2026, 3, 8, tzinfo=UTC), datetime(2026, 3, 29, tzinfo=UTC),
                                    datetime(2026, 10, 25, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)]).flatmap(
    lambda day: st.integers(-3 * 86_400, 3 * 86_400).map(lambda s: day + timedelta(seconds=s)))
anywhere = st.datetimes(datetime(2026, 1, 1), datetime(2027, 1, 1), timezones=st.just(UTC))  # noqa: DTZ001
instants = st.one_of(near_transitions, anywhere)


def as_json(calendar: c.Calendar) -> Jsonb:
    """A calendar as its ``CalendarSet`` event stores it."""
    event = c.calendar_set("x", time_zone=calendar.time_zone, week=c.week_view(calendar),
                           holidays=sorted(calendar.holidays))
    return Jsonb(event.model_dump(mode="json"))


@pytest.fixture
def sql(database_url: str) -> Any:
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(calendars(), instants, st.integers(-86_400, 12 * 86_400))
def test_sql_business_seconds_counts_what_the_domain_counts(
    sql: psycopg.Connection[Any], calendar: c.Calendar, start: datetime, seconds: int
) -> None:
    end = start + timedelta(seconds=seconds)
    row = sql.execute("SELECT business_seconds(%s, %s, %s)", (start, end, as_json(calendar))).fetchone()
    assert row is not None
    assert row[0] == pytest.approx(c.business_seconds(calendar, start, end), abs=1e-6)


def test_sql_reads_wall_times_in_the_gap_and_the_repeated_hour_as_the_domain_does(
    sql: psycopg.Connection[Any],
) -> None:
    def instant(local: str, zone: str) -> datetime:
        row = sql.execute("SELECT calendar_instant(%s::timestamp, %s)", (local, zone)).fetchone()
        assert row is not None
        return row[0]  # type: ignore[no-any-return]
    # Spring forward: 02:30 does not exist in Berlin on 29 March; it stands for the transition
    assert instant("2026-03-29 02:30", "Europe/Berlin") == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    # Fall back: 02:30 happens twice on 25 October; its first occurrence (CEST)
    assert instant("2026-10-25 02:30", "Europe/Berlin") == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert instant("2026-11-01 01:30", "America/New_York") == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    assert sql.execute("SELECT business_seconds(now(), now() + interval '1 day', NULL)").fetchone() == (None,)


def test_a_weekend_and_a_holiday_hold_no_business_time_in_sql(sql: psycopg.Connection[Any]) -> None:
    office = c.from_event(c.calendar_set("default", time_zone="Europe/Berlin", holidays=["2026-12-24"],
                                         week={d: [["09:00", "17:00"]] for d in c.DAYS[:5]}))
    friday, monday = datetime(2026, 11, 27, 16, 0, tzinfo=UTC), datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    found = sql.execute("SELECT business_seconds(%s, %s, %s), business_seconds(%s, %s, %s)",
                        (friday, monday, as_json(office), datetime(2026, 12, 23, 23, tzinfo=UTC),
                         datetime(2026, 12, 24, 23, tzinfo=UTC), as_json(office))).fetchone()
    assert found == (0.0, 0.0)


def test_the_sql_sla_state_and_the_domain_agree_with_a_calendar(sql: psycopg.Connection[Any]) -> None:
    # A task sent Friday 15:00 UTC due after 4 business hours in a 09:00-17:00 UTC weekday
    # calendar: due Monday 11:00; early on Monday 2 of its 4 business hours are used (50 %),
    # 63 of its 68 wall hours (93 %)
    office = c.from_event(c.calendar_set("default", time_zone="UTC", holidays=[],
                                         week={d: [["09:00", "17:00"]] for d in c.DAYS[:5]}))
    sent, due = datetime(2026, 11, 27, 15, tzinfo=UTC), datetime(2026, 11, 30, 11, tzinfo=UTC)
    for at in (sent, datetime(2026, 11, 28, 12, tzinfo=UTC), datetime(2026, 11, 30, 6, tzinfo=UTC),
               datetime(2026, 11, 30, 9, 59, tzinfo=UTC),
               datetime(2026, 11, 30, 10, tzinfo=UTC), due, due + timedelta(seconds=1)):
        row = sql.execute("SELECT sla_state(%s, %s, %s, 0.75, %s), sla_state(%s, %s, %s, 0.75)",
                          (sent, due, at, as_json(office), sent, due, at)).fetchone()
        assert row is not None
        assert row[0] == sla_state(sent, due, at, 0.75, office), at
        assert row[1] == sla_state(sent, due, at, 0.75), at
    monday_early = datetime(2026, 11, 30, 6, tzinfo=UTC)
    assert sla_state(sent, due, monday_early, 0.75, office) == "on_track"  # 2 of 4 business hours used
    assert sla_state(sent, due, monday_early, 0.75) == "at_risk"  # 63 of 68 wall hours
    assert sla_state(sent, due, datetime(2026, 11, 30, 10, tzinfo=UTC), 0.75, office) == "at_risk"


@pytest.fixture
def auth(database_url: str) -> dict[str, str]:
    return bearer(database_url)


def test_time_to_answer_counts_business_seconds_for_a_business_step_through_the_api_and_the_audit(
    client: httpx.Client, auth: dict[str, str], pool: ConnectionPool[Any], store: EventStore, database_url: str
) -> None:
    # Given the workspace works 09:00-17:00 UTC every day
    day = {d: [["09:00", "17:00"]] for d in c.DAYS}
    assert client.put("/v1/calendars/default", headers=auth,
                      json={"time_zone": "UTC", "week": day, "holidays": []}).status_code in (200, 201)
    calendar = c.from_event(c.calendar_set("default", time_zone="UTC", week=day, holidays=[]))
    # And two accounts: one whose answer step is on the business clock, one on the wall clock
    shares: dict[str, UUID] = {}
    for name, clock in (("biz", "business"), ("wall", "wall")):
        account = client.post("/v1/accounts", json={"name": name, "channel": "console"}, headers=auth).json()
        shares[name] = UUID(client.post("/v1/shares", headers=auth, json={
            "account_id": account["id"], "text": name, "response_plan": [
                {"kind": "answer_replies", "after": "P2D", "owner": "alice", "clock": clock}]}).json()["id"])
        assert execute_share(runtime(pool, store, FakeChannel(created_at=datetime.now(UTC) - timedelta(minutes=5)),
                                     clock=Clock()), shares[name]) == "share_sent"
    # And under each, two replies written a minute from now, answered 3 days and 30 hours later
    written = datetime.now(UTC) + timedelta(minutes=1)
    delays = (timedelta(days=3), timedelta(hours=30))
    streams = ShareStreams(store, None)
    for name, share_id in shares.items():
        for n, delay in enumerate(delays):
            reply_id = f"{name}-{n}"
            reply = ResponseReceived(reply_id=reply_id, author="ana", text=reply_id, received_at=written)
            answer = ReplyAnswered(reply_id=reply_id, external_id=f"a-{reply_id}", answered_at=written + delay,
                                   native=True)
            with pool.connection() as conn:
                streams.change(conn, share_id, lambda s, r=reply, a=answer, i=share_id: (  # type: ignore[misc]
                    *lifecycle.receive_replies(s, [r]), new_event(i, f"answered-{a.reply_id}", a)),
                    workspace_id="acme", actor="test")

    def caught_up() -> bool:
        catch_up(store, database_url)
        rows = client.get("/v1/followthrough", params={"by": "account"}, headers=auth).json()["rows"]
        return sum(r["replies_answered"] for r in rows) == 4
    wait_until(caught_up, timeout=60, what="the read models caught up")
    # When the report is read by account
    report = client.get("/v1/followthrough", params={"by": "account"}, headers=auth).json()
    rows = {r["key"]: r for r in report["rows"]}
    # Then the business step's replies count the calendar's hours between reply and answer
    business = sorted(c.business_seconds(calendar, written, written + d) for d in delays)
    assert business[1] < 3 * 86_400  # (8 of every 24 hours)
    assert rows["biz"]["clock_to_answer"] == "business"
    assert rows["biz"]["median_seconds_to_answer"] == pytest.approx((business[0] + business[1]) / 2, abs=1e-3)
    assert rows["biz"]["p90_seconds_to_answer"] == pytest.approx(business[0] + 0.9 * (business[1] - business[0]),
                                                                 abs=1e-3)
    # And the wall step's the time as it passed
    assert rows["wall"]["clock_to_answer"] == "wall"
    assert rows["wall"]["median_seconds_to_answer"] == pytest.approx((3 * 86_400 + 30 * 3600) / 2, abs=1e-3)
    # And the report says its figures mix the clocks; by workspace too
    assert report["clock"] == "mixed"
    whole = client.get("/v1/followthrough", params={"by": "workspace"}, headers=auth).json()
    assert whole["clock"] == "mixed"
    assert whole["rows"][0]["clock_to_answer"] == "mixed"
    # And the audit, recounting by its own path (the domain's business time over the calendars
    # stream), agrees with the reported figures
    with psycopg.connect(database_url, autocommit=True) as conn:
        found = audit(conn, workspace_id="acme")
    assert found.clean, found.as_dict()
    # And the business task, sent 5 minutes ago, is on track on either clock for now
    tasks = client.get(f"/v1/shares/{shares['biz']}", headers=auth).json()["response_tasks"]
    assert [(t["clock"], t["sla"]) for t in tasks] == [("business", "on_track")]
    assert date.fromisoformat(tasks[0]["due_at"][:10]) >= datetime.now(UTC).date() + timedelta(days=5)
    inbox = {t["id"]: t["sla"] for t in client.get("/v1/response-tasks", headers=auth).json()["tasks"]}
    assert inbox[tasks[0]["id"]] == "on_track"
