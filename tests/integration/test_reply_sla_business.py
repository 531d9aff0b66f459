"""A reply's SLA state in business time (migration 0020), against a real PostgreSQL: when
the ``answer_replies`` step a reply is due by is on the business clock, its at-risk point
is measured in its owner's business time (the calendar as it stood when the reply came),
in the replies list, ``/metrics``, the answer endpoint's view and the webhook sweep alike; the SQL function
and the API's Python agree moment by moment."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from events.catalogue import CalendarSet, ResponseReceived
from events.projections.webhooks import enqueue_reply_sla
from events.store import EventStore
from scheduler.api.config import ApiConfig
from scheduler.api.replies import reply_sla
from scheduler.domain import calendars as c
from scheduler.domain import share as lifecycle
from scheduler.domain.sla import sla_state
from scheduler.services import calendars
from scheduler.services.share_stream import ShareStreams
from tests.support.api import bearer
from tests.support.fake_channel import FakeChannel
from tests.support.replies import caught_up, metric
from tests.support.shares import Clock, runtime
from workers.execution import execute_share


@pytest.fixture
def auth(database_url: str) -> dict[str, str]:
    return bearer(database_url)


def noon_zone(now: datetime) -> str:
    """A fixed-offset zone whose wall clock reads 12:xx at ``now`` (so the test's business
    hours, a few hours either side of now, fall within one local day)."""
    k = 12 - now.hour  # hours ahead of UTC
    return "Etc/GMT" if k == 0 else f"Etc/GMT{'-' if k > 0 else '+'}{abs(k)}"


def record_calendar_earlier(database_url: str, event: CalendarSet, recorded_at: datetime) -> None:
    """The workspace's default calendar, recorded at ``recorded_at`` (two days ago): a reply
    is measured by the calendar as it stood when it came, and the log's own clock cannot
    be moved back through the API."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO events (event_id, stream_id, stream_version, type, schema_version, data, workspace_id,"
            " recorded_at) VALUES (%s, 'calendars-acme', 1, 'CalendarSet', %s, %s, 'acme', %s)",
            (uuid.uuid4(), CalendarSet.schema_version, Jsonb(event.model_dump(mode="json")), recorded_at))


def test_a_reply_due_by_a_business_step_is_at_risk_by_business_time_in_the_list_metrics_and_api(
    client: httpx.Client, auth: dict[str, str], pool: ConnectionPool[Any], store: EventStore, database_url: str
) -> None:
    now = datetime.now(UTC)
    zone = noon_zone(now)
    local = now.astimezone(ZoneInfo(zone)).replace(second=0, microsecond=0, tzinfo=None)

    def hhmm(delta: timedelta) -> str:
        return (local + delta).strftime("%H:%M")
    # Given a default calendar, recorded two days ago, open every day from 40 to 10 minutes
    # before now and from an hour to three hours after (local 12:xx: one local day)
    week = {d: [[hhmm(timedelta(minutes=-40)), hhmm(timedelta(minutes=-10))],
                [hhmm(timedelta(hours=1)), hhmm(timedelta(hours=3))]] for d in c.DAYS}
    event = c.calendar_set("default", time_zone=zone, week=week, holidays=[])
    record_calendar_earlier(database_url, event, now - timedelta(days=2))
    assert client.get("/v1/calendars/default", headers=auth).json()["time_zone"] == zone
    account = client.post("/v1/accounts", json={"name": "main", "channel": "console"}, headers=auth).json()

    def sent(after: str, posted: timedelta, clock: str) -> UUID:
        share_id = UUID(client.post("/v1/shares", headers=auth, json={
            "account_id": account["id"], "text": after, "response_plan": [
                {"kind": "answer_replies", "after": after, "owner": "alice", "clock": clock}]}).json()["id"])
        channel = FakeChannel(created_at=now - posted)
        assert execute_share(runtime(pool, store, channel, clock=Clock()), share_id) == "share_sent"
        return share_id
    # And a share posted 10 hours ago answered within a business hour: due 90 minutes from
    # now (30 business minutes before now, 30 after); its reply came 9 hours ago
    calm = sent("PT1H", timedelta(hours=10), "business")
    # And one posted 50 minutes ago answered within 35 business minutes: due 65 minutes from
    # now (30 before now, 5 after); its reply came 45 minutes ago
    pressed = sent("PT35M", timedelta(minutes=50), "business")
    # And the same as the first on the wall clock (due 10 hours after its post)
    wall = sent("PT11H", timedelta(hours=10), "wall")
    streams = ShareStreams(store, None)
    for share_id, text, ago in ((calm, "calm", timedelta(hours=9)), (pressed, "pressed", timedelta(minutes=45)),
                                (wall, "wall", timedelta(hours=9))):
        reply = ResponseReceived(reply_id=text, author="ana", text=text, received_at=now - ago)
        with pool.connection() as conn:
            streams.change(conn, share_id, lambda s, r=reply: lifecycle.receive_replies(s, [r]),  # type: ignore[misc]
                           workspace_id="acme", actor="test")
    caught_up(store, database_url, timeout=60)
    # When the replies are listed
    listed = {r["text"]: r for r in client.get("/v1/replies", headers=auth).json()["items"]}
    # Then the first, 9 of its 10.5 wall hours gone but half of its business hour, is on
    # track; the second, 45 of 115 wall minutes gone but 30 of its 35 business minutes,
    # is at risk; the wall step's reply, 9 of its 10 hours gone, is at risk
    assert {k: r["sla"] for k, r in listed.items()} == {"calm": "on_track", "pressed": "at_risk", "wall": "at_risk"}
    due = {k: datetime.fromisoformat(r["sla_due_at"]) for k, r in listed.items()}
    zoned = ZoneInfo(zone)
    assert due["calm"] == (local + timedelta(minutes=90)).replace(tzinfo=zoned)
    assert due["pressed"] == (local + timedelta(minutes=65)).replace(tzinfo=zoned)
    # (on the wall clock they would read the other way round)
    assert sla_state(now - timedelta(hours=9), due["calm"], now) == "at_risk"
    assert sla_state(now - timedelta(minutes=45), due["pressed"], now) == "on_track"
    # And /metrics counts them so
    text = client.get("/metrics").text
    assert [metric(text, "reply", s) for s in ("on_track", "at_risk", "breached")] == [1.0, 2.0, 0.0]
    # And the webhook sweep tells an endpoint of the replies at risk by the same rule (the
    # calm one, at risk on the wall clock only, is not told)
    endpoint = client.post("/v1/webhooks", headers=auth, json={"url": "https://example.com/hooks",
                                                              "events": ["reply.sla_at_risk"]})
    assert endpoint.status_code == 201, endpoint.text
    with pool.connection() as conn:
        assert enqueue_reply_sla(conn, lookback_seconds=86_400, at_risk=0.75, reply_sla_seconds=86_400) == 2
        told = conn.execute("SELECT payload->'data'->>'text', payload->'data'->>'sla' FROM webhook_deliveries"
                            " ORDER BY 1").fetchall()
        assert told == [("pressed", "at_risk"), ("wall", "at_risk")]
        assert enqueue_reply_sla(conn, lookback_seconds=86_400, at_risk=0.75, reply_sla_seconds=86_400) == 0
    # And the answer endpoint's view (built from the share's stream) says the same
    for name in ("calm", "pressed", "wall"):
        answered = client.post(f"/v1/replies/{listed[name]['id']}/answer", headers=auth, json={"text": "thanks"})
        assert answered.status_code == 202, answered.text
        view = answered.json()
        assert view["sla"] == listed[name]["sla"], name
        assert datetime.fromisoformat(view["sla_due_at"]) == due[name], name


def test_the_sql_reply_sla_state_and_the_api_agree_moment_by_moment(
    client: httpx.Client, auth: dict[str, str], pool: ConnectionPool[Any], store: EventStore, database_url: str
) -> None:
    # Given a weekday 09:00-17:00 Berlin calendar recorded two days ago, and a share posted
    # 8 hours ago answered within 4 business hours, with replies written since
    now = datetime.now(UTC)
    office = c.calendar_set("default", time_zone="Europe/Berlin", holidays=[],
                            week={d: [["09:00", "17:00"]] for d in c.DAYS[:5]})
    record_calendar_earlier(database_url, office, now - timedelta(days=2))
    account = client.post("/v1/accounts", json={"name": "main", "channel": "console"}, headers=auth).json()
    share_id = UUID(client.post("/v1/shares", headers=auth, json={
        "account_id": account["id"], "text": "hi", "response_plan": [
            {"kind": "answer_replies", "after": "PT4H", "owner": "alice", "clock": "business"}]}).json()["id"])
    channel = FakeChannel(created_at=now - timedelta(hours=8))
    assert execute_share(runtime(pool, store, channel, clock=Clock()), share_id) == "share_sent"
    streams = ShareStreams(store, None)
    for n, ago in enumerate((timedelta(hours=7), timedelta(hours=1), timedelta(minutes=1))):
        reply = ResponseReceived(reply_id=f"r{n}", author="ana", text=f"r{n}", received_at=now - ago)
        with pool.connection() as conn:
            streams.change(conn, share_id, lambda s, r=reply: lifecycle.receive_replies(s, [r]),  # type: ignore[misc]
                           workspace_id="acme", actor="test")
    caught_up(store, database_url, timeout=60)
    state, _ = streams.load(share_id)
    config = ApiConfig()
    calendar_of = calendars.calendar_as_of(store, "acme")
    task = state.tasks[0]
    assert task.due_at is not None
    states = set()
    with pool.connection() as conn:
        for reply in state.thread.replies:
            # every half hour from the reply to a day past the task's due time, and around it
            moments = [reply.received_at + timedelta(minutes=30 * k) for k in range(200)]
            moments += [task.due_at + timedelta(seconds=s) for s in (-1, 0, 1)]
            for at in moments:
                row = conn.execute(
                    "SELECT reply_sla_state('acme', %s, %s, reply_sla_due_at(%s, %s, %s), %s, 0.75)",
                    (share_id, reply.received_at, share_id, reply.received_at, config.reply_sla_seconds, at),
                ).fetchone()
                assert row is not None
                assert row[0] == reply_sla(state, reply, at, config, calendar_of)[0], (reply.reply_id, at)
                states.add(row[0])
    assert states == {"on_track", "at_risk", "breached"}
