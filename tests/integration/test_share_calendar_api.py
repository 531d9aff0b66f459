"""GET /v1/calendar over real HTTP and a real PostgreSQL: a workspace's shares scheduled in
[from, to), earliest first, placed by their scheduled time even once sent; one account's
only; this week when no window is given; bounded by ``limit``; each refusal a 422
problem naming its field; another workspace sees nothing of them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from psycopg_pool import ConnectionPool

from events.projections import planner as planner_sql
from events.store import EventStore
from tests.support.api import PLAN, assert_problem, bearer
from tests.support.planner import publish_at
from tests.support.replies import caught_up

# Early March 2027: after today, and around no change of the clocks.
MON = datetime(2027, 3, 1, tzinfo=UTC)


@pytest.fixture
def auth(database_url: str) -> dict[str, str]:
    return bearer(database_url, "acme")


def account(client: httpx.Client, auth: dict[str, str], name: str, channel: str = "console") -> str:
    config = {"base_url": "http://127.0.0.1:9", "access_token_env": "FT_UNSET"} if channel == "mastodon" else {}
    response = client.post("/v1/accounts", headers=auth, json={"name": name, "channel": channel, "config": config})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def plan(client: httpx.Client, auth: dict[str, str], account_id: str, text: str, at: datetime) -> str:
    response = client.post("/v1/shares", headers=auth, json={
        "account_id": account_id, "text": text, "scheduled_at": at.isoformat(), "response_plan": PLAN})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture
def seeded(client: httpx.Client, auth: dict[str, str], store: EventStore, pool: ConnectionPool[Any],
           database_url: str) -> dict[str, str]:
    """Two accounts' shares in the week of Monday 1 March 2027 and just outside it; one sent late."""
    launch, team = account(client, auth, "launch"), account(client, auth, "team", "mastodon")
    ids = {
        "before": plan(client, auth, launch, "The Sunday before", MON - timedelta(seconds=1)),
        "first": plan(client, auth, launch, "Monday at midnight, the window's first instant", MON),
        "team": plan(client, auth, team, "Wednesday noon on the team account " + "and more words " * 20,
                     MON + timedelta(days=2, hours=12)),
        "sent": plan(client, auth, launch, "Friday's post, sent late", MON + timedelta(days=4, hours=9)),
        "after": plan(client, auth, launch, "Monday after, the window's end", MON + timedelta(days=7)),
        "launch": launch, "team_account": team,
    }
    # published half an hour late
    assert publish_at(pool, store, ids["sent"], MON + timedelta(days=4, hours=9, minutes=30)) == "share_sent"
    caught_up(store, database_url)
    return ids


def calendar(client: httpx.Client, auth: dict[str, str], **params: Any) -> dict[str, Any]:
    response = client.get("/v1/calendar", headers=auth, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_window_holds_the_shares_scheduled_from_its_start_up_to_its_end_earliest_first(
    client: httpx.Client, auth: dict[str, str], seeded: dict[str, str]
) -> None:
    # When a client asks for the week of Monday 1 March, its start given in Berlin's offset
    body = calendar(client, auth, **{"from": "2027-03-01T01:00:00+01:00", "to": "2027-03-08"})
    # Then it gets the shares from Monday 00:00 UTC (inclusive) to the next Monday (exclusive), in time order
    assert [s["id"] for s in body["shares"]] == [seeded["first"], seeded["team"], seeded["sent"]]
    assert (body["from"], body["to"]) == ("2027-03-01T00:00:00+00:00", "2027-03-08T00:00:00+00:00")
    assert body["truncated"] is False
    assert body["placed_by"] == "scheduled_at"
    team = body["shares"][1]
    assert team["account"] == {"id": seeded["team_account"], "name": "team", "channel": "mastodon"}
    assert (team["status"], team["scheduled_at"], team["sent_at"], team["url"]) == (
        "planned", "2027-03-03T12:00:00+00:00", None, None)
    assert team["excerpt"].startswith("Wednesday noon on the team account and more words")
    assert team["excerpt"].endswith("\u2026")
    assert len(team["excerpt"]) <= 120
    # And a share sent late is still placed at its scheduled time, with when it went out and where
    sent = body["shares"][2]
    assert (sent["status"], sent["scheduled_at"]) == ("sent", "2027-03-05T09:00:00+00:00")
    assert sent["sent_at"].startswith("2027-03-05T09:30")
    assert sent["url"]


def test_one_accounts_shares_and_a_bounded_answer(
    client: httpx.Client, auth: dict[str, str], seeded: dict[str, str]
) -> None:
    week = {"from": "2027-03-01", "to": "2027-03-08"}
    only = calendar(client, auth, **week, account_id=seeded["team_account"])
    assert [s["id"] for s in only["shares"]] == [seeded["team"]]
    assert only["account_id"] == seeded["team_account"]
    first_two = calendar(client, auth, **week, limit=2)
    assert [s["id"] for s in first_two["shares"]] == [seeded["first"], seeded["team"]]
    assert first_two["truncated"] is True


def test_with_no_window_it_is_this_week_from_monday_utc(client: httpx.Client, auth: dict[str, str]) -> None:
    body = calendar(client, auth)
    start = datetime.fromisoformat(body["from"])
    assert start.weekday() == 0
    assert (start.hour, start.minute, start.utcoffset()) == (0, 0, timedelta(0))
    assert start <= datetime.now(UTC) < start + timedelta(days=7)
    assert datetime.fromisoformat(body["to"]) - start == timedelta(days=7)
    assert body["shares"] == []
    # one edge given: a week from it
    assert calendar(client, auth, to="2027-03-08")["from"] == "2027-03-01T00:00:00+00:00"
    assert calendar(client, auth, **{"from": "2027-03-01"})["to"] == "2027-03-08T00:00:00+00:00"


@pytest.mark.parametrize(("params", "field"), [
    ({"from": "next tuesday"}, "from"),
    ({"from": "2027-03-01T00:00:00"}, "from"),  # no time zone: which midnight?
    ({"from": "2027-02-30"}, "from"),
    ({"to": "2027-13-01T00:00:00Z"}, "to"),
    ({"from": "2027-03-08", "to": "2027-03-01"}, "to"),
    ({"from": "2027-03-01", "to": "2027-03-01T00:00:00+00:00"}, "to"),  # empty window
    ({"from": "2027-03-01", "to": "2027-06-02"}, "to"),  # 93 days
    ({"from": "9999-12-31"}, "from"),  # a week after it is past the calendar's end
    ({"to": "0001-01-01T00:00:00Z"}, "to"),
    ({"account_id": "launch"}, "account_id"),
    ({"limit": "0"}, "limit"),
    ({"limit": "1001"}, "limit"),
])
def test_each_refusal_is_a_422_problem_naming_its_field(
    client: httpx.Client, auth: dict[str, str], params: dict[str, str], field: str
) -> None:
    assert_problem(client.get("/v1/calendar", headers=auth, params=params), 422, field)


def test_a_quarter_is_the_longest_window(client: httpx.Client, auth: dict[str, str]) -> None:
    body = calendar(client, auth, **{"from": "2027-03-01", "to": "2027-06-01"})
    assert body["to"] == "2027-06-01T00:00:00+00:00"


def test_another_workspace_sees_none_of_the_shares_nor_filters_by_the_account(
    client: httpx.Client, auth: dict[str, str], seeded: dict[str, str], database_url: str
) -> None:
    globex = bearer(database_url, "globex")
    week = {"from": "2027-03-01", "to": "2027-03-08"}
    body = client.get("/v1/calendar", headers=globex, params=week)
    assert body.status_code == 200
    assert body.json()["shares"] == []
    assert "Wednesday noon" not in body.text
    by_account = client.get("/v1/calendar", headers=globex, params={**week, "account_id": seeded["launch"]})
    assert by_account.status_code == 404, by_account.text
    assert len(calendar(client, auth, **week)["shares"]) == 3


def test_the_window_is_read_through_the_workspace_and_time_index(database_url: str) -> None:
    # (sequential scans off: on a near-empty table the planner would rightly prefer one). The
    # index bounds the rows read to the window's; the tie-break by id sorts only those rows.
    params = {"workspace_id": "acme", "from": MON, "to": MON + timedelta(days=92), "account_id": None,
              "limit": 501}
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SET enable_seqscan = off")
        cur = psycopg.ClientCursor(conn)
        plan = "\n".join(str(r[0]) for r in cur.execute("EXPLAIN " + planner_sql.Q["window"], params))
    assert "Index Scan using rm_shares_workspace_idx" in plan, plan
    assert "scheduled_at >=" in plan, plan
    assert "scheduled_at <" in plan, plan
