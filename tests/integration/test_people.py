"""People over real HTTP: tokens that name their owner, the actor of every event a token
causes (the owner, else the label), the share page's history saying who did what, and
replies assigned to a person, with the inbox filtered by assignee and by "mine"."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest
from psycopg_pool import ConnectionPool

from events.store import EventStore
from followthrough.settings import Settings
from scheduler.services.audit import audit
from tests.support.api import api_client, assert_problem, bearer
from tests.support.database import connect
from tests.support.replies import catch_up
from tests.support.shares import WS, Clock, runtime
from workers.channels.console import ConsolePublisher
from workers.channels.console_replies import write_reply
from workers.collection import collect_one
from workers.execution import execute_share

PLAN = [{"kind": "answer_replies", "after": "PT10M", "owner": "alice"},
        {"kind": "check_replies", "after": "PT1H", "owner": "bob"}]


def later(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def run_audit(database_url: str, workspace_id: str) -> Any:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return audit(conn, workspace_id=workspace_id)


@pytest.fixture
def api(settings: Settings) -> Iterator[httpx.Client]:
    with api_client(settings) as c:
        yield c


def new_token(api: httpx.Client, admin: dict[str, str], **body: Any) -> tuple[dict[str, str], dict[str, Any]]:
    made = api.post("/v1/tokens", headers=admin, json={"scope": "write", **body})
    assert made.status_code == 201, made.text
    return {"Authorization": f"Bearer {made.json()['token']}"}, made.json()


def actors(database_url: str, share_id: str) -> list[tuple[str, str]]:
    """(type, the actor in its metadata) of a share's events, in order, as the log holds them."""
    with connect(database_url) as conn:
        rows = conn.execute("SELECT type, metadata->>'actor' FROM events WHERE stream_id = %s ORDER BY stream_version",
                            (f"share-{share_id}",)).fetchall()
    return [(t, a) for t, a in rows]


def test_every_event_a_token_causes_names_its_owner_else_its_label_and_the_share_page_shows_who(
    api: httpx.Client, database_url: str, settings: Settings,
) -> None:
    # Given tokens made through the API: one owned by ana, one labelled only, one with neither
    admin = bearer(database_url, WS)
    ana, made = new_token(api, admin, owner="ana", label="ana's laptop")
    bot, _ = new_token(api, admin, label="ci-bot")
    bare, bare_made = new_token(api, admin)
    assert made["owner"] == "ana"
    listed = {t["id"]: t for t in api.get("/v1/tokens", headers=admin).json()["tokens"]}
    assert (listed[made["id"]]["owner"], listed[bare_made["id"]]["owner"]) == ("ana", None)
    account = api.post("/v1/accounts", headers=ana, json={"name": "team", "channel": "console"}).json()
    # When each plans a share
    shares = {}
    for name, auth in (("ana", ana), ("bot", bot), ("bare", bare)):
        planned = api.post("/v1/shares", headers=auth, json={"account_id": account["id"], "text": f"by {name}",
                                                             "scheduled_at": later(1), "response_plan": PLAN})
        assert planned.status_code == 201, planned.text
        shares[name] = planned.json()["id"]
    # Then each SharePlanned names its owner, else its label, else the token
    assert actors(database_url, shares["ana"]) == [("SharePlanned", "ana")]
    assert actors(database_url, shares["bot"]) == [("SharePlanned", "ci-bot")]
    assert actors(database_url, shares["bare"]) == [("SharePlanned", f"token:{bare_made['id']}")]
    # And the events API says so too
    events = api.get(f"/v1/shares/{shares['ana']}/events", headers=bot).json()
    assert [(e["type"], e["actor"]) for e in events] == [("SharePlanned", "ana")]
    # When the bot reschedules ana's share, and ana cancels it from the dashboard
    moved = api.post(f"/v1/shares/{shares['ana']}/reschedule", headers=bot,
                     json={"scheduled_at": later(2)})
    assert moved.status_code == 200, moved.text
    with httpx.Client(base_url=str(api.base_url), timeout=10, follow_redirects=False) as browser:
        signin = browser.post("/dashboard/signin", data={"token": ana["Authorization"].removeprefix("Bearer "),
                                                         "next": "/dashboard"})
        assert signin.status_code == 303, signin.text
        page = browser.get(f"/dashboard/shares/{shares['ana']}")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        cancelled = browser.post(f"/dashboard/shares/{shares['ana']}/settle",
                                 data={"csrf": csrf.group(1), "action": "cancel", "reason": "not now"})
        assert cancelled.status_code == 303, cancelled.text
        history = browser.get(f"/dashboard/shares/{shares['ana']}").text
    # Then the log and the share page's history say who did what
    assert actors(database_url, shares["ana"]) == [("SharePlanned", "ana"), ("ShareRescheduled", "ci-bot"),
                                                   ("ShareCancelled", "ana")]
    shown = re.findall(r"<strong>(\w+)</strong> <span class=\"actor\">by ([^<]+)</span>", history)
    assert shown == [("SharePlanned", "ana"), ("ShareRescheduled", "ci-bot"), ("ShareCancelled", "ana")]


@pytest.mark.parametrize(("owner", "why"), [("", "must name a person"), ("   ", "must name a person"),
                                            ("ana\x00", None), ("a" * 201, None)])
def test_a_token_owner_that_names_no_one_is_422_naming_owner(
    api: httpx.Client, database_url: str, owner: str, why: str | None,
) -> None:
    admin = bearer(database_url, WS)
    refused = api.post("/v1/tokens", headers=admin, json={"scope": "write", "owner": owner})
    assert_problem(refused, 422, "owner")
    if why is not None:
        assert why in refused.text
    with connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM api_tokens WHERE owner IS NOT NULL").fetchone() == (0,)


# --- assignment ------------------------------------------------------------------------


def replies_of(api: httpx.Client, auth: dict[str, str], **params: str) -> list[tuple[str, str, bool]]:
    """(author, assignee, assigned) of the inbox's replies, by author."""
    answer = api.get("/v1/replies", headers=auth, params=params)
    assert answer.status_code == 200, answer.text
    return sorted((r["author"], r["assignee"], r["assigned"]) for r in answer.json()["items"])


def assigned_events(database_url: str) -> list[tuple[str, str, str]]:
    with connect(database_url) as conn:
        rows = conn.execute("SELECT data->>'assignee', data->>'assigned_by', metadata->>'actor' FROM events"
                            " WHERE type = 'ReplyAssigned' ORDER BY position").fetchall()
    return [(a, b, c) for a, b, c in rows]


def test_a_reply_is_assigned_once_filtered_by_assignee_and_mine_and_the_audit_recounts_it(
    api: httpx.Client, database_url: str, settings: Settings, store: EventStore, pool: ConnectionPool[Any],
) -> None:
    # Given ben's write token, a token without an owner, ben's read token, and a share sent
    # by ben on the console with two replies (alice owns its current task)
    admin = bearer(database_url, WS)
    ben, _ = new_token(api, admin, owner="ben")
    nobody, _ = new_token(api, admin, label="script")
    ben_reads, _ = new_token(api, admin, owner="ben", scope="read")
    account = api.post("/v1/accounts", headers=ben, json={"name": "team", "channel": "console"}).json()
    planned = api.post("/v1/shares", headers=ben, json={"account_id": account["id"], "text": "We launched!",
                                                        "response_plan": PLAN})
    assert planned.status_code == 201, planned.text
    share_id = UUID(planned.json()["id"])
    rt = runtime(pool, store, ConsolePublisher(settings.console_dir.resolve()), clock=Clock())
    assert execute_share(rt, share_id) == "share_sent"
    for author in ("ana", "bo"):
        write_reply(settings.console_dir, WS, "team", share_id=str(share_id), text="When?", author=author)
    assert collect_one(rt, share_id) == "replies_collected"
    catch_up(store, database_url)
    ids = {r["author"]: r["id"] for r in api.get("/v1/replies", headers=ben).json()["items"]}
    assert replies_of(api, ben) == [("ana", "alice", False), ("bo", "alice", False)]  # the task's owner
    # When ben assigns ana's reply to himself, twice
    first = api.post(f"/v1/replies/{ids['ana']}/assign", headers=ben, json={"owner": "ben"})
    again = api.post(f"/v1/replies/{ids['ana']}/assign", headers=ben, json={"owner": " ben "})
    # Then one event records it, ben its actor, and both answers show the reply his
    assert first.status_code == 200, first.text
    assert again.status_code == 200, again.text
    assert [(a.json()["assignee"], a.json()["assigned"], a.json()["owner"]) for a in (first, again)] == [
        ("ben", True, "alice")] * 2
    assert assigned_events(database_url) == [("ben", "ben", "ben")]
    # And once projected, the inbox holds it: the row's assignee, the filters, "mine"
    catch_up(store, database_url)
    with connect(database_url) as conn:
        rows = dict(conn.execute("SELECT author, assignee FROM rm_replies WHERE share_id = %s", (share_id,)))
    assert rows == {"ana": "ben", "bo": None}
    assert replies_of(api, ben) == [("ana", "ben", True), ("bo", "alice", False)]
    assert replies_of(api, ben, assignee="ben") == [("ana", "ben", True)]
    assert replies_of(api, ben, assignee="alice") == [("bo", "alice", False)]  # unassigned: the task's owner
    assert replies_of(api, ben, owner="alice") == [("ana", "ben", True), ("bo", "alice", False)]
    assert replies_of(api, ben_reads, mine="true") == [("ana", "ben", True)]
    assert replies_of(api, ben_reads, mine="true", state="answered") == []
    assert replies_of(api, nobody, assignee="carol") == []
    # And a token without an owner has no "mine"; a filter naming no one is refused
    no_mine = api.get("/v1/replies", headers=nobody, params={"mine": "true"})
    assert_problem(no_mine, 422, "mine")
    assert "--owner" in no_mine.text
    assert_problem(api.get("/v1/replies", headers=ben, params={"mine": "true", "assignee": "alice"}), 422, "mine")
    assert_problem(api.get("/v1/replies", headers=ben, params={"assignee": " "}), 422, "assignee")
    # When it is given on to carol by the ownerless token
    given = api.post(f"/v1/replies/{ids['ana']}/assign", headers=nobody, json={"owner": "carol"})
    assert given.status_code == 200, given.text
    catch_up(store, database_url)
    # Then it is carol's, the event's actor is the token's label
    assert assigned_events(database_url) == [("ben", "ben", "ben"), ("carol", "script", "script")]
    assert replies_of(api, ben, mine="true") == []
    assert replies_of(api, ben, assignee="carol") == [("ana", "carol", True)]
    # And bad assignments are refused, writing nothing: no one named, a read token, an unknown reply
    for body in ({"owner": ""}, {"owner": "\t"}, {"owner": "ca\x07rol"}, {}):
        assert_problem(api.post(f"/v1/replies/{ids['bo']}/assign", headers=ben, json=body), 422, "owner")
    assert_problem(api.post(f"/v1/replies/{ids['bo']}/assign", headers=ben_reads, json={"owner": "ben"}), 403, None)
    assert_problem(api.post("/v1/replies/00000000-0000-4000-8000-00000000beef/assign", headers=ben,
                            json={"owner": "ben"}), 404, None)
    assert len(assigned_events(database_url)) == 2
    # And the audit recounts the assignments from the log and finds the read model faithful
    found = run_audit(database_url, WS)
    assert found.clean, found.as_dict()
    assert found.workspaces[WS].replies == 2


def test_assigning_an_answered_reply_still_gives_it_on(
    api: httpx.Client, database_url: str, settings: Settings, store: EventStore, pool: ConnectionPool[Any],
) -> None:
    # Given a reply dismissed by ben
    admin = bearer(database_url, WS)
    ben, _ = new_token(api, admin, owner="ben")
    account = api.post("/v1/accounts", headers=ben, json={"name": "team", "channel": "console"}).json()
    share_id = UUID(api.post("/v1/shares", headers=ben, json={"account_id": account["id"], "text": "Hi",
                                                              "response_plan": PLAN}).json()["id"])
    rt = runtime(pool, store, ConsolePublisher(settings.console_dir.resolve()), clock=Clock())
    assert execute_share(rt, share_id) == "share_sent"
    write_reply(settings.console_dir, WS, "team", share_id=str(share_id), text="spam", author="cy")
    assert collect_one(rt, share_id) == "replies_collected"
    catch_up(store, database_url)
    [reply] = api.get("/v1/replies", headers=ben).json()["items"]
    dismissed = api.post(f"/v1/replies/{reply['id']}/dismiss", headers=ben, json={"reason": "spam"})
    assert dismissed.status_code == 200, dismissed.text
    # When it is assigned to carol
    given = api.post(f"/v1/replies/{reply['id']}/assign", headers=ben, json={"owner": "carol"})
    # Then it is carol's and stays dismissed, in the log, the read model and the audit alike
    assert given.status_code == 200, given.text
    assert (given.json()["assignee"], given.json()["state"]) == ("carol", "dismissed")
    catch_up(store, database_url)
    assert replies_of(api, ben, assignee="carol", state="dismissed") == [("cy", "carol", True)]
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert conn.execute("SELECT metadata->>'actor' FROM events WHERE type = 'ReplyDismissed'").fetchone() == (
            "ben",)
    assert run_audit(database_url, WS).clean
