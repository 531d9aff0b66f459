"""Queue slots through the HTTP API, against a real PostgreSQL: ``"scheduled_at": "next_slot"``
takes the account's first free slot, the listing shows slots free and taken, a cancel or a
reschedule gives a slot back, a retried request (same Idempotency-Key) gets the same share
and slot, and 50 requests at once get 50 distinct slots in order."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from events.catalogue import SharePlanned
from events.store import EventStore
from scheduler.domain import share as lifecycle
from scheduler.services.slots import held_by
from tests.support.api import assert_problem, bearer, stored
from tests.support.database import connect
from tests.support.slots import COUNT, week_from_now

PLAN = [{"kind": "check_replies", "after": "PT1H", "owner": "alice"}]


@pytest.fixture
def auth(database_url: str) -> dict[str, str]:
    return bearer(database_url)


def make_account(client: httpx.Client, auth: dict[str, str], name: str, config: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/accounts", json={"name": name, "channel": "console", "config": config}, headers=auth)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def account(client: httpx.Client, auth: dict[str, str]) -> dict[str, Any]:
    return make_account(client, auth, "queue", {"slots": week_from_now()})


def next_slot(client: httpx.Client, auth: dict[str, str], account: dict[str, Any], text: str = "hello",
              key: str | None = None) -> httpx.Response:
    headers = auth if key is None else {**auth, "Idempotency-Key": key}
    return client.post("/v1/shares", headers=headers,
                       json={"account_id": account["id"], "text": text, "scheduled_at": "next_slot",
                             "response_plan": PLAN})


def listing(client: httpx.Client, auth: dict[str, str], account: dict[str, Any], **query: str) -> list[dict[str, Any]]:
    response = client.get(f"/v1/accounts/{account['id']}/slots", headers=auth, params=query)
    assert response.status_code == 200, response.text
    slots: list[dict[str, Any]] = response.json()["slots"]
    return slots


def at(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


def claims(database_url: str) -> list[tuple[datetime, str]]:
    with connect(database_url) as conn:
        rows = conn.execute("SELECT slot_at, share_id::text FROM slot_claims ORDER BY slot_at").fetchall()
    return [(r[0], r[1]) for r in rows]


def test_next_slot_takes_the_first_free_slot_and_the_listing_shows_it_taken(
    client: httpx.Client, auth: dict[str, str], account: dict[str, Any], store: EventStore
) -> None:
    # Given the account's slots, all free
    before = listing(client, auth, account)
    assert len(before) >= 3
    assert all(s["free"] and s["share_id"] is None for s in before)
    assert [at(s["at"]) for s in before] == sorted(at(s["at"]) for s in before)
    assert all(s["local"].endswith(("+01:00", "+02:00")) for s in before)
    # When two shares ask for the next slot, one after the other
    first = next_slot(client, auth, account)
    second = next_slot(client, auth, account)
    # Then each takes the first slot free at its time
    assert first.status_code == second.status_code == 201, (first.text, second.text)
    assert at(first.json()["scheduled_at"]) == at(before[0]["at"])
    assert at(second.json()["scheduled_at"]) == at(before[1]["at"])
    # And the listing says which share holds which slot
    after = listing(client, auth, account)
    assert [(s["free"], s["share_id"]) for s in after[:3]] == [
        (False, first.json()["id"]), (False, second.json()["id"]), (True, None)]
    # And the log records the slot time and that it was taken from the queue
    (recorded,) = store.read_stream(lifecycle.stream_id(first.json()["id"]))
    assert isinstance(recorded.event, SharePlanned)
    assert recorded.event.slot is True
    assert recorded.event.scheduled_at == at(before[0]["at"])


def test_a_cancelled_or_rescheduled_share_gives_its_slot_back(
    client: httpx.Client, auth: dict[str, str], account: dict[str, Any], database_url: str, store: EventStore
) -> None:
    slots = listing(client, auth, account)
    a, b, c = (next_slot(client, auth, account, text=t).json() for t in ("a", "b", "c"))
    assert [at(s["scheduled_at"]) for s in (a, b, c)] == [at(s["at"]) for s in slots[:3]]
    # When the first is cancelled and the second rescheduled away from its slot, and the
    # third rescheduled to its own slot's time
    assert client.post(f"/v1/shares/{a['id']}/cancel", headers=auth).json()["status"] == "cancelled"
    later = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    moved = client.post(f"/v1/shares/{b['id']}/reschedule", headers=auth, json={"scheduled_at": later})
    assert moved.status_code == 200, moved.text
    kept = client.post(f"/v1/shares/{c['id']}/reschedule", headers=auth, json={"scheduled_at": c["scheduled_at"]})
    assert kept.status_code == 200, kept.text
    # Then the first two slots are free again and the third still held
    now = listing(client, auth, account)
    assert [(s["free"], s["share_id"]) for s in now[:3]] == [(True, None), (True, None), (False, c["id"])]
    assert claims(database_url) == [(at(slots[2]["at"]), c["id"])]
    # And the next next_slot takes the first slot again
    again = next_slot(client, auth, account, text="d").json()
    assert at(again["scheduled_at"]) == at(slots[0]["at"])
    # And the claims are what the log says each share holds
    from_log = sorted((held, s["id"]) for s in (a, b, c, again)
                      if (held := held_by(r.event for r in store.read_stream(lifecycle.stream_id(s["id"])))))
    assert claims(database_url) == from_log


def test_a_retried_request_gets_the_same_share_and_slot(
    client: httpx.Client, auth: dict[str, str], account: dict[str, Any], database_url: str
) -> None:
    first = next_slot(client, auth, account, key="slot-1")
    again = next_slot(client, auth, account, key="slot-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    other = next_slot(client, auth, account, key="slot-2")
    assert other.json()["id"] != first.json()["id"]
    assert at(other.json()["scheduled_at"]) > at(first.json()["scheduled_at"])
    assert [share for _, share in claims(database_url)] == [first.json()["id"], other.json()["id"]]


def test_next_slot_on_an_account_without_slots_is_refused_naming_scheduled_at_and_writes_nothing(
    client: httpx.Client, auth: dict[str, str], database_url: str
) -> None:
    plain = make_account(client, auth, "plain", {})
    before = stored(database_url)
    refused = next_slot(client, auth, plain)
    assert_problem(refused, 422, "scheduled_at")
    assert "config.slots" in refused.json()["detail"]
    assert stored(database_url) == before
    assert_problem(client.get(f"/v1/accounts/{plain['id']}/slots", headers=auth), 422, "account_id")
    # And an unknown word is refused as a time, naming the field
    wrong = client.post("/v1/shares", headers=auth,
                        json={"account_id": plain["id"], "text": "x", "scheduled_at": "next_slots",
                              "response_plan": PLAN})
    assert_problem(wrong, 422, "scheduled_at")


@pytest.mark.parametrize(("slots", "field"), [
    ({"time_zone": "Europe/Berlin", "week": {"mon": ["25:00"]}}, "config.slots.week.mon.0"),
    ({"time_zone": "Europe/Berlin", "week": {"mon": ["09:00", "09:00"]}}, "config.slots.week.mon.1"),
    ({"time_zone": "Europe/Berlin", "week": {}}, "config.slots.week"),
    ({"time_zone": "Moon/Base", "week": {"mon": ["09:00"]}}, "config.slots.time_zone"),
])
def test_bad_slots_are_refused_naming_the_field(
    client: httpx.Client, auth: dict[str, str], slots: dict[str, Any], field: str
) -> None:
    response = client.post("/v1/accounts", headers=auth,
                           json={"name": "bad", "channel": "console", "config": {"slots": slots}})
    assert_problem(response, 422, field)


def test_the_listing_window_is_checked_and_another_workspace_gets_a_404(
    client: httpx.Client, auth: dict[str, str], account: dict[str, Any], database_url: str
) -> None:
    url = f"/v1/accounts/{account['id']}/slots"
    now = datetime.now(UTC)
    backwards = {"from": now.isoformat(), "to": (now - timedelta(days=1)).isoformat()}
    assert_problem(client.get(url, headers=auth, params=backwards), 422, "to")
    too_long = {"from": now.isoformat(), "to": (now + timedelta(days=93)).isoformat()}
    assert_problem(client.get(url, headers=auth, params=too_long), 422, "to")
    far = {"from": "9999-12-31T23:00:00+00:00"}
    assert_problem(client.get(url, headers=auth, params=far), 422, "from")
    # A day's window: the day's slots (50 times a day, every day), each inside it
    day = listing(client, auth, account, **{"from": now.isoformat(), "to": (now + timedelta(days=1)).isoformat()})
    assert len(day) == COUNT
    assert all(now <= at(s["at"]) < now + timedelta(days=1) for s in day)
    assert_problem(client.get(url, headers=bearer(database_url, workspace="other")), 404, None)


def test_fifty_next_slot_requests_at_once_get_fifty_distinct_slots_in_order(
    client: httpx.Client, auth: dict[str, str], account: dict[str, Any], store: EventStore, database_url: str
) -> None:
    # Given the account's first 50 slots, all free
    expected = [at(s["at"]) for s in listing(client, auth, account)][:COUNT]
    assert len(expected) == COUNT
    # When 50 requests ask for the next slot at once, over real HTTP
    with ThreadPoolExecutor(COUNT) as pool:
        responses = list(pool.map(lambda i: next_slot(client, auth, account, text=f"share {i}"), range(COUNT)))
    assert [r.status_code for r in responses] == [201] * COUNT, [r.text for r in responses if r.status_code != 201]
    # Then they hold the first 50 slots, one each
    shares = [r.json() for r in responses]
    assert sorted(at(s["scheduled_at"]) for s in shares) == expected
    assert len({s["id"] for s in shares}) == COUNT
    # And in order: the earlier a share's plan is in the log, the earlier its slot
    positions = {s["id"]: store.read_stream(lifecycle.stream_id(s["id"]))[0].position for s in shares}
    by_log = sorted(shares, key=lambda s: positions[s["id"]])
    assert [at(s["scheduled_at"]) for s in by_log] == expected
    # And the database agrees: 50 claims, the listing shows those 50 taken by those shares
    assert [slot for slot, _ in claims(database_url)] == expected
    taken = {at(s["at"]): s["share_id"] for s in listing(client, auth, account)[:COUNT]}
    assert taken == {at(s["scheduled_at"]): s["id"] for s in shares}
