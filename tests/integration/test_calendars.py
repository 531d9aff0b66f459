"""Calendars, owners and the business clock through the HTTP API, against a real PostgreSQL:
changes are events, bad input is a problem naming the field, a business step's due time
comes from the owner's calendar as it stood at the send and never moves afterwards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx
import pytest
from psycopg_pool import ConnectionPool

from events.store import EventStore
from followthrough.settings import Settings
from tests.support.api import assert_problem, bearer
from tests.support.fake_channel import FakeChannel
from tests.support.shares import Clock, runtime
from workers.execution import execute_share

BERLIN = ZoneInfo("Europe/Berlin")
OFFICE = {"time_zone": "Europe/Berlin", "week": {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
          "holidays": ["2026-12-25"]}


@pytest.fixture
def auth(database_url: str) -> dict[str, str]:
    return bearer(database_url)


@pytest.fixture
def account(client: httpx.Client, auth: dict[str, str]) -> dict[str, Any]:
    response = client.post("/v1/accounts", json={"name": "main", "channel": "console"}, headers=auth)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def plan(client: httpx.Client, auth: dict[str, str], account: dict[str, Any], steps: list[dict[str, Any]]) -> Any:
    return client.post("/v1/shares", headers=auth, json={"account_id": account["id"], "text": "hello",
                                                          "response_plan": steps})


def test_a_calendar_is_put_read_listed_and_deleted_and_each_change_is_an_event(
    client: httpx.Client, auth: dict[str, str], store: EventStore
) -> None:
    # Given no calendar yet
    assert client.get("/v1/calendars", headers=auth).json() == {"calendars": []}
    # When the workspace's calendar is put, then replaced
    created = client.put("/v1/calendars/default", headers=auth, json=OFFICE)
    assert created.status_code == 201, created.text
    replaced = client.put("/v1/calendars/default", headers=auth,
                          json={**OFFICE, "week": {"mon": [["13:00", "24:00"], ["08:00", "12:00"]]}})
    # Then the second answer is 200 with the intervals in order, and reads agree
    assert replaced.status_code == 200
    assert replaced.json()["week"]["mon"] == [["08:00", "12:00"], ["13:00", "24:00"]]
    assert replaced.json()["week"]["tue"] == []
    got = client.get("/v1/calendars/default", headers=auth).json()
    assert got == {**replaced.json(), "owners": []}
    assert [c["name"] for c in client.get("/v1/calendars", headers=auth).json()["calendars"]] == ["default"]
    # And every change is in the log, on the workspace's calendars stream
    assert [r.type_name for r in store.read_stream("calendars-acme")] == ["CalendarSet", "CalendarSet"]
    # When it is deleted, it is gone (and a second delete is a 404)
    assert client.delete("/v1/calendars/default", headers=auth).status_code == 204
    assert_problem(client.get("/v1/calendars/default", headers=auth), 404, None)
    assert_problem(client.delete("/v1/calendars/default", headers=auth), 404, None)
    assert [r.type_name for r in store.read_stream("calendars-acme")][-1] == "CalendarDeleted"


@pytest.mark.parametrize(("body", "field"), [
    ({**OFFICE, "time_zone": "Mars/Olympus"}, "time_zone"),
    ({**OFFICE, "week": {"mon": [["09:00", "25:00"]]}}, "week.mon.0.1"),
    ({**OFFICE, "week": {"mon": [["17:00", "09:00"]]}}, "week.mon.0"),
    ({**OFFICE, "week": {"mon": [["09:00", "12:00"], ["11:00", "13:00"]]}}, "week.mon"),
    ({**OFFICE, "week": {"mon": [["09:00"]]}}, "week.mon.0"),
    ({**OFFICE, "week": {"someday": [["09:00", "10:00"]]}}, "week.someday"),
    ({**OFFICE, "week": {}}, "week"),
    ({**OFFICE, "holidays": ["2026-13-01"]}, "holidays.0"),
    ({"week": OFFICE["week"]}, "time_zone"),
])
def test_a_bad_calendar_is_refused_naming_the_field_and_nothing_is_written(
    client: httpx.Client, auth: dict[str, str], store: EventStore, body: dict[str, Any], field: str
) -> None:
    assert_problem(client.put("/v1/calendars/office", headers=auth, json=body), 422, field)
    assert store.read_stream("calendars-acme") == []


def test_owners_get_a_calendar_that_exists_and_a_calendar_in_use_is_not_deleted(
    client: httpx.Client, auth: dict[str, str], database_url: str
) -> None:
    assert_problem(client.put("/v1/owners/alice", headers=auth, json={"calendar": "office"}), 422, "calendar")
    assert client.put("/v1/calendars/office", headers=auth, json=OFFICE).status_code == 201
    response = client.put("/v1/owners/alice", headers=auth, json={"calendar": "office"})
    assert response.json() == {"owner": "alice", "calendar": "office", "works_by": "office"}
    assert client.get("/v1/owners", headers=auth).json() == {"owners": [response.json()], "default": None}
    assert client.get("/v1/calendars/office", headers=auth).json()["owners"] == ["alice"]
    assert_problem(client.delete("/v1/calendars/office", headers=auth), 409, "name")
    # A read token reads but does not write; another workspace sees none of it
    reader = bearer(database_url, scope="read")
    assert client.get("/v1/owners", headers=reader).status_code == 200
    assert client.put("/v1/calendars/x", headers=reader, json=OFFICE).status_code == 403
    other = bearer(database_url, workspace="globex")
    assert client.get("/v1/calendars", headers=other).json() == {"calendars": []}
    # Back to the workspace's default: then the calendar may go
    assert client.put("/v1/owners/alice", headers=auth, json={"calendar": None}).json()["calendar"] is None
    assert client.delete("/v1/calendars/office", headers=auth).status_code == 204


def test_a_business_step_without_any_calendar_is_refused_naming_the_field(
    client: httpx.Client, auth: dict[str, str], account: dict[str, Any]
) -> None:
    steps = [{"kind": "check_replies", "after": "PT1H", "owner": "alice"},
             {"kind": "answer_replies", "after": "PT1H", "owner": "bob", "clock": "business"}]
    assert_problem(plan(client, auth, account, steps), 422, "response_plan.1.clock")
    assert_problem(plan(client, auth, account, [{**steps[0], "clock": "sundial"}]), 422, "response_plan.0.clock")
    bad_account = {"name": "other", "channel": "console", "default_response_plan": steps}
    assert_problem(client.post("/v1/accounts", json=bad_account, headers=auth), 422, "default_response_plan.1.clock")
    # A calendar too sparse to hold the step's time within two years refuses it, naming its after
    sparse = {"time_zone": "UTC", "week": {"sun": [["00:00", "00:15"]]}}
    assert client.put("/v1/calendars/sparse", headers=auth, json=sparse).status_code == 201
    assert client.put("/v1/owners/bob", headers=auth, json={"calendar": "sparse"}).status_code == 200
    assert_problem(plan(client, auth, account, [{**steps[1], "after": "P30D"}]), 422, "response_plan.0.after")
    # With the owner's own calendar (no workspace default) the step is taken
    assert client.put("/v1/calendars/office", headers=auth, json=OFFICE).status_code == 201
    assert client.put("/v1/owners/bob", headers=auth, json={"calendar": "office"}).status_code == 200
    assert plan(client, auth, account, steps).status_code == 201


def test_a_business_step_sent_on_friday_afternoon_is_due_on_monday_and_never_moves_afterwards(
    client: httpx.Client, auth: dict[str, str], account: dict[str, Any], settings: Settings,
    pool: ConnectionPool[Any], store: EventStore,
) -> None:
    # Given the workspace works Monday to Friday 09:00-17:00 in Berlin
    assert client.put("/v1/calendars/default", headers=auth, json=OFFICE).status_code == 201
    # And a share with a wall step and a business step of an hour each
    response = plan(client, auth, account, [
        {"kind": "check_replies", "after": "PT1H", "owner": "alice"},
        {"kind": "answer_replies", "after": "PT1H", "owner": "alice", "clock": "business"}])
    assert response.status_code == 201, response.text
    assert [t["clock"] for t in response.json()["response_tasks"]] == ["wall", "business"]
    share_id = UUID(response.json()["id"])
    # When it goes out, the network dating the post Friday 23 October 2026 at 16:30 in Berlin
    # (the weekend the clocks go back)
    friday = datetime(2026, 10, 23, 16, 30, tzinfo=BERLIN)
    channel = FakeChannel(created_at=friday.astimezone(UTC))
    assert execute_share(runtime(pool, store, channel, clock=Clock()), share_id) == "share_sent"
    # Then the wall task is due an hour later, the business one on Monday at 09:30 Berlin time
    tasks = client.get(f"/v1/shares/{share_id}", headers=auth).json()["response_tasks"]
    due = [datetime.fromisoformat(t["due_at"]) for t in tasks]
    assert due[0] == friday + timedelta(hours=1)
    assert due[1] == datetime(2026, 10, 26, 9, 30, tzinfo=BERLIN)
    assert due[1].astimezone(UTC) == datetime(2026, 10, 26, 8, 30, tzinfo=UTC)  # CET again
    # When the calendar changes afterwards, the task keeps its due time (never backwards)
    client.put("/v1/calendars/default", headers=auth, json={**OFFICE, "week": {"mon": [["12:00", "13:00"]]}})
    again = client.get(f"/v1/shares/{share_id}", headers=auth).json()["response_tasks"]
    assert [t["due_at"] for t in again] == [t["due_at"] for t in tasks]
