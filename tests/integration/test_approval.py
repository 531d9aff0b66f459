"""Approval before publishing over real HTTP and a real worker: a share on an account that
requires approval is in review, is not published at its time (it turns review_overdue), is
approved by another approver only (403 saying why otherwise) and then published once; a
rejection stops it until a change sends it back to review, as a change after approval does."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from psycopg_pool import ConnectionPool

from events.store import EventStore
from followthrough.settings import Settings
from tests.support.api import PLAN, api_client, assert_problem, bearer
from tests.support.database import connect
from tests.support.replies import catch_up
from tests.support.shares import WS, Clock, runtime
from workers.channels.console import ConsolePublisher
from workers.execution import execute_share

APPROVAL = {"required": True, "approvers": ["ana", "ben"], "self_approval": False}


@pytest.fixture
def api(settings: Settings) -> Iterator[httpx.Client]:
    with api_client(settings) as c:
        yield c


def soon(minutes: int) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


def publish_rows(database_url: str, share_id: str) -> list[Any]:
    with connect(database_url) as conn:
        return conn.execute("SELECT due_at FROM schedule WHERE kind = 'publish' AND share_id = %s",
                            (share_id,)).fetchall()


def review_events(database_url: str, share_id: str) -> list[tuple[str, str]]:
    """(type, actor) of the share's events after its plan."""
    with connect(database_url) as conn:
        rows = conn.execute("SELECT type, metadata->>'actor' FROM events WHERE stream_id = %s AND stream_version > 1"
                            " ORDER BY stream_version", (f"share-{share_id}",)).fetchall()
    return [(t, a) for t, a in rows]


@pytest.mark.parametrize(("approval", "field"), [
    ({"required": True, "approvers": "ana"}, "config.approval.approvers"),
    ({"required": True, "approvers": []}, "config.approval.approvers"),
    ({"required": True, "approvers": ["ana", 3]}, "config.approval.approvers.1"),
    ({"required": "yes", "approvers": ["ana"]}, "config.approval.required"),
    ({"required": True, "approvers": ["ana"], "self_approval": 1}, "config.approval.self_approval"),
    ([], "config.approval"),
])
def test_a_bad_approval_setting_is_422_naming_the_field(
    api: httpx.Client, database_url: str, approval: Any, field: str,
) -> None:
    refused = api.post("/v1/accounts", headers=bearer(database_url, WS),
                       json={"name": "team", "channel": "console", "config": {"approval": approval}})
    assert_problem(refused, 422, field)


def test_a_share_in_review_waits_past_its_time_and_is_published_once_after_another_approver_approves(
    api: httpx.Client, database_url: str, settings: Settings, store: EventStore, pool: ConnectionPool[Any],
) -> None:
    # Given an account that requires approval by ana or ben, and a share ana plans for in a minute
    ana, ben, carol = (bearer(database_url, WS, owner=name) for name in ("ana", "ben", "carol"))
    account = api.post("/v1/accounts", headers=ana, json={"name": "team", "channel": "console",
                                                         "config": {"approval": APPROVAL}})
    assert account.status_code == 201, account.text
    assert account.json()["config"]["approval"] == APPROVAL
    planned = api.post("/v1/shares", headers=ana, json={"account_id": account.json()["id"], "text": "Launch day",
                                                        "scheduled_at": soon(1), "response_plan": PLAN})
    assert planned.status_code == 201, planned.text
    share_id = planned.json()["id"]
    assert planned.json()["status"] == "in_review"
    assert api.get(f"/v1/shares/{share_id}", headers=carol).json()["approval"] == {
        "state": "pending", "author": "ana", "by": None, "at": None, "reason": None}
    # When ana approves her own share, and carol (no approver) tries
    own = api.post(f"/v1/shares/{share_id}/approve", headers=ana)
    stranger = api.post(f"/v1/shares/{share_id}/approve", headers=carol)
    # Then both are 403, saying why, and nothing is recorded
    assert_problem(own, 403, None)
    assert "four eyes" in own.json()["detail"]
    assert_problem(stranger, 403, None)
    assert "carol is not an approver" in stranger.json()["detail"]
    assert_problem(api.post(f"/v1/shares/{share_id}/reject", headers=carol, json={"reason": "no"}), 403, None)
    assert review_events(database_url, share_id) == []
    # When its time comes while it is still in review
    clock = Clock()
    rt = runtime(pool, store, ConsolePublisher(settings.console_dir.resolve()), clock=clock)
    clock.offset = timedelta(minutes=2)
    assert execute_share(rt, UUID(share_id)) == "share_review_overdue"
    # Then it is not published: review_overdue, its publish row gone, in the list once projected
    assert api.get(f"/v1/shares/{share_id}", headers=ana).json()["status"] == "review_overdue"
    assert publish_rows(database_url, share_id) == []
    assert not (settings.console_dir / WS / "team.jsonl").exists()
    catch_up(store, database_url)
    listed = api.get("/v1/shares", headers=ana, params={"status": "review_overdue"}).json()["shares"]
    assert [s["id"] for s in listed] == [share_id]
    # When ben approves it (twice: the second changes nothing)
    approved = api.post(f"/v1/shares/{share_id}/approve", headers=ben)
    again = api.post(f"/v1/shares/{share_id}/approve", headers=ben)
    # Then it is planned and due again; the worker publishes it exactly once
    assert approved.status_code == 200, approved.text
    assert again.status_code == 200, again.text
    assert approved.json()["status"] == "planned"
    assert approved.json()["approval"]["state"] == "approved"
    assert approved.json()["approval"]["by"] == "ben"
    assert len(publish_rows(database_url, share_id)) == 1
    assert execute_share(rt, UUID(share_id)) == "share_sent"
    assert execute_share(rt, UUID(share_id)) == "share_skipped"
    posts = (settings.console_dir / WS / "team.jsonl").read_text().splitlines()
    assert len(posts) == 1
    assert api.get(f"/v1/shares/{share_id}", headers=ana).json()["status"] == "sent"
    assert review_events(database_url, share_id)[:2] == [("ShareReviewOverdue", "worker"), ("ShareApproved", "ben")]


def test_a_rejected_share_is_not_published_until_a_change_sends_it_back_to_review(
    api: httpx.Client, database_url: str, settings: Settings, store: EventStore, pool: ConnectionPool[Any],
) -> None:
    # Given ana's share in review, which ben rejects, saying why
    ana, ben = (bearer(database_url, WS, owner=name) for name in ("ana", "ben"))
    account = api.post("/v1/accounts", headers=ana, json={"name": "team", "channel": "console",
                                                         "config": {"approval": APPROVAL}}).json()
    share_id = api.post("/v1/shares", headers=ana, json={"account_id": account["id"], "text": "Early news",
                                                         "scheduled_at": soon(1), "response_plan": PLAN}).json()["id"]
    assert_problem(api.post(f"/v1/shares/{share_id}/reject", headers=ben, json={"reason": " "}), 422, "reason")
    assert_problem(api.post(f"/v1/shares/{share_id}/reject", headers=ben, json={}), 422, "reason")
    rejected = api.post(f"/v1/shares/{share_id}/reject", headers=ben, json={"reason": "Not before the press release"})
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected"
    assert rejected.json()["approval"]["reason"] == "Not before the press release"
    # Then at its time nothing is published, and it cannot be approved as it is
    clock = Clock()
    clock.offset = timedelta(minutes=2)
    rt = runtime(pool, store, ConsolePublisher(settings.console_dir.resolve()), clock=clock)
    assert execute_share(rt, UUID(share_id)) == "share_skipped"
    assert publish_rows(database_url, share_id) == []
    assert_problem(api.post(f"/v1/shares/{share_id}/approve", headers=ben), 409, None)
    # When ana moves it to another time
    moved = api.post(f"/v1/shares/{share_id}/reschedule", headers=ana, json={"scheduled_at": soon(60)})
    # Then it is in review again, for its new time
    assert moved.status_code == 200, moved.text
    assert moved.json()["status"] == "in_review"
    assert moved.json()["approval"]["state"] == "pending"
    assert review_events(database_url, share_id) == [("ShareRejected", "ben"), ("ShareRescheduled", "ana"),
                                                     ("ShareReviewRequested", "ana")]
    catch_up(store, database_url)
    assert [s["status"] for s in api.get("/v1/shares", headers=ana).json()["shares"]] == ["in_review"]


def test_a_change_of_time_after_approval_sends_the_share_back_to_review(
    api: httpx.Client, database_url: str, settings: Settings, store: EventStore, pool: ConnectionPool[Any],
) -> None:
    # Given ana's share approved by ben
    ana, ben = (bearer(database_url, WS, owner=name) for name in ("ana", "ben"))
    account = api.post("/v1/accounts", headers=ana, json={"name": "team", "channel": "console",
                                                         "config": {"approval": APPROVAL}}).json()
    share_id = api.post("/v1/shares", headers=ana, json={"account_id": account["id"], "text": "Tomorrow",
                                                         "scheduled_at": soon(1), "response_plan": PLAN}).json()["id"]
    assert api.post(f"/v1/shares/{share_id}/approve", headers=ben).json()["status"] == "planned"
    # When ben himself moves it
    moved = api.post(f"/v1/shares/{share_id}/reschedule", headers=ben, json={"scheduled_at": soon(2)})
    # Then it waits for a review again, and at its time it is not published
    assert moved.json()["status"] == "in_review"
    clock = Clock()
    clock.offset = timedelta(minutes=3)
    rt = runtime(pool, store, ConsolePublisher(settings.console_dir.resolve()), clock=clock)
    assert execute_share(rt, UUID(share_id)) == "share_review_overdue"
    assert not (settings.console_dir / WS / "team.jsonl").exists()
    catch_up(store, database_url)
    assert [s["status"] for s in api.get("/v1/shares", headers=ana).json()["shares"]] == ["review_overdue"]
