"""The HTTP API against a real PostgreSQL: auth, validation as problem+json, idempotency.
The API client: ``client`` in ``tests/integration/conftest.py``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support.api import bearer
from tests.support.database import connect

PLAN = [{"kind": "check_replies", "after": "PT1H", "owner": "alice"}]


@pytest.fixture
def auth(database_url: str) -> dict[str, str]:
    return bearer(database_url)


@pytest.fixture
def account(client: httpx.Client, auth: dict[str, str]) -> dict[str, Any]:
    response = client.post("/v1/accounts", json={"name": "main", "channel": "console"}, headers=auth)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def event_count(database_url: str) -> int:
    with connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM events").fetchone()
    assert row is not None
    return int(row[0])


def assert_problem(response: Any, status: int, field: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= body.keys()
    assert field in [e["field"] for e in body.get("errors", [])] or body.get("field") == field, body
    assert field in body["detail"] or body.get("field") == field


def test_requests_without_a_valid_token_get_401_problems(client: httpx.Client) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        response = client.get("/v1/accounts", headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_read_token_can_read_but_not_write(client: httpx.Client, database_url: str) -> None:
    reader = bearer(database_url, scope="read")
    assert client.get("/v1/accounts", headers=reader).status_code == 200
    response = client.post("/v1/accounts", json={"name": "x", "channel": "console"}, headers=reader)
    assert response.status_code == 403
    assert response.json()["status"] == 403


def test_planning_a_share_returns_it_planned_with_pending_tasks(
    client: httpx.Client, auth: dict[str, str], account: dict[str, Any]
) -> None:
    due = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    response = client.post("/v1/shares", headers=auth, json={
        "account_id": account["id"], "text": "Launch day!", "scheduled_at": due, "response_plan": [
            {"kind": "check_replies", "after": "PT1H", "owner": "alice"},
            {"kind": "check_replies", "after": "P1D", "owner": "bob"},
        ]})
    assert response.status_code == 201, response.text
    share = response.json()
    assert share["status"] == "planned"
    assert datetime.fromisoformat(share["scheduled_at"]) == datetime.fromisoformat(due)
    assert [(t["after"], t["owner"], t["status"]) for t in share["response_tasks"]] == [
        ("PT1H", "alice", "pending"), ("P1D", "bob", "pending")]
    fetched = client.get(f"/v1/shares/{share['id']}", headers=auth).json()
    assert fetched["id"] == share["id"]
    assert [t["id"] for t in fetched["response_tasks"]] == [t["id"] for t in share["response_tasks"]]
    events = client.get(f"/v1/shares/{share['id']}/events", headers=auth).json()
    assert [(e["type"], e["version"]) for e in events] == [("SharePlanned", 1)]
    assert events[0]["data"]["text"] == "Launch day!"


@pytest.mark.parametrize(("change", "field"), [
    ({"response_plan": None}, "response_plan"),
    ({"response_plan": []}, "response_plan"),
    ({"text": "x" * 5001}, "text"),
    ({"text": "   "}, "text"),
    ({"scheduled_at": "2026-11-25T18:00:00"}, "scheduled_at"),
    ({"scheduled_at": "2020-01-01T00:00:00+00:00"}, "scheduled_at"),
    ({"account_id": "00000000-0000-0000-0000-000000000000"}, "account_id"),
    ({"account_id": "not-a-uuid"}, "account_id"),
    ({"response_plan": [{"kind": "check_replies", "after": "1 hour", "owner": "a"}]}, "response_plan.0.after"),
    ({"response_plan": [{"kind": "Check Replies", "after": "PT1H", "owner": "a"}]}, "response_plan.0.kind"),
    ({"response_plan": [{"kind": "check_replies", "after": "PT1H", "owner": " "}]}, "response_plan.0.owner"),
    ({"response_plan": [{"kind": "check_replies", "after": "PT1H"}]}, "response_plan.0.owner"),
    ({"colour": "blue"}, "colour"),
])
def test_bad_share_input_gets_a_422_problem_naming_the_field_and_writes_nothing(
    client: httpx.Client, auth: dict[str, str], account: dict[str, Any], database_url: str,
    change: dict[str, Any], field: str,
) -> None:
    body = {"account_id": account["id"], "text": "hello", "response_plan": PLAN, **change}
    before = event_count(database_url)
    response = client.post("/v1/shares", headers=auth, json=body)
    assert_problem(response, 422, field)
    assert event_count(database_url) == before


def test_an_account_default_plan_fills_a_share_without_one(
    client: httpx.Client, auth: dict[str, str]
) -> None:
    account = client.post("/v1/accounts", headers=auth, json={
        "name": "with-default", "channel": "console",
        "default_response_plan": [{"kind": "answer_replies", "after": "PT30M", "owner": "carol"}]}).json()
    share = client.post("/v1/shares", headers=auth, json={"account_id": account["id"], "text": "hi"}).json()
    assert [(t["kind"], t["after"], t["owner"]) for t in share["response_tasks"]] == [
        ("answer_replies", "PT30M", "carol")]


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "bad name!", "channel": "console"}, "name"),
    ({"name": "ok", "channel": "myspace"}, "channel"),
    ({"name": "ok", "channel": "mastodon", "config": {"access_token": "s3cret"}}, "config.access_token"),
    ({"name": "ok", "channel": "console", "late_policy": "hold"}, "max_lateness"),
])
def test_bad_account_input_gets_a_422_problem_naming_the_field(
    client: httpx.Client, auth: dict[str, str], body: dict[str, Any], field: str
) -> None:
    assert_problem(client.post("/v1/accounts", headers=auth, json=body), 422, field)


def test_a_duplicate_account_name_is_a_409_conflict(client: httpx.Client, auth: dict[str, str]) -> None:
    assert client.post("/v1/accounts", headers=auth, json={"name": "dup", "channel": "console"}).status_code == 201
    response = client.post("/v1/accounts", headers=auth, json={"name": "dup", "channel": "console"})
    assert response.status_code == 409
    assert response.json()["field"] == "name"


def test_an_idempotency_key_returns_the_first_answer_and_refuses_a_different_body(
    client: httpx.Client, auth: dict[str, str], account: dict[str, Any], database_url: str
) -> None:
    body = {"account_id": account["id"], "text": "once", "response_plan": PLAN}
    headers = {**auth, "Idempotency-Key": "plan-42"}
    first = client.post("/v1/shares", headers=headers, json=body)
    again = client.post("/v1/shares", headers=headers, json=body)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert event_count(database_url) == 1
    other = client.post("/v1/shares", headers=headers, json={**body, "text": "twice"})
    assert_problem(other, 422, "Idempotency-Key")
    assert event_count(database_url) == 1


def test_an_empty_idempotency_key_is_refused_naming_the_header_and_nothing_is_written(
    client: httpx.Client, auth: dict[str, str], account: dict[str, Any], database_url: str
) -> None:
    body = {"account_id": account["id"], "text": "keyless", "response_plan": PLAN}
    refused = client.post("/v1/shares", headers={**auth, "Idempotency-Key": ""}, json=body)
    assert_problem(refused, 422, "Idempotency-Key")
    assert event_count(database_url) == 0


def test_a_repeat_gets_the_first_answer_whole_even_after_the_share_changed_and_from_old_records(
    client: httpx.Client, auth: dict[str, str], account: dict[str, Any], database_url: str
) -> None:
    # Given a share planned under a key, then cancelled
    body = {"account_id": account["id"], "text": "once", "response_plan": PLAN}
    headers = {**auth, "Idempotency-Key": "plan-43"}
    first = client.post("/v1/shares", headers=headers, json=body).json()
    assert client.post(f"/v1/shares/{first['id']}/cancel", headers=auth).json()["status"] == "cancelled"
    # When the plan is repeated
    again = client.post("/v1/shares", headers=headers, json=body)
    # Then the answer is the first one, field for field (planned, version 1), and nothing is written
    assert again.status_code == 201
    assert again.json() == first
    assert (first["status"], first["version"]) == ("planned", 1)
    # And a key stored before the record kept only the share, time and version (the whole
    # answer) replays the same way
    with connect(database_url) as conn:
        conn.execute("UPDATE idempotency_keys SET response = %s::jsonb WHERE key = 'plan-43'",
                     (json.dumps(first),))
    assert client.post("/v1/shares", headers=headers, json=body).json() == first


def test_a_workspace_cannot_see_another_workspaces_share(
    client: httpx.Client, auth: dict[str, str], account: dict[str, Any], database_url: str
) -> None:
    share = client.post("/v1/shares", headers=auth,
                        json={"account_id": account["id"], "text": "private", "response_plan": PLAN}).json()
    stranger = bearer(database_url, workspace="other")
    assert client.get(f"/v1/shares/{share['id']}", headers=stranger).status_code == 404
    response = client.post("/v1/shares", headers=stranger,
                           json={"account_id": account["id"], "text": "x", "response_plan": PLAN})
    assert_problem(response, 422, "account_id")


def test_cancelling_a_planned_share_cancels_its_tasks_and_its_schedule(
    client: httpx.Client, auth: dict[str, str], account: dict[str, Any], database_url: str
) -> None:
    due = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    share = client.post("/v1/shares", headers=auth, json={
        "account_id": account["id"], "text": "maybe", "scheduled_at": due, "response_plan": PLAN}).json()
    with connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM schedule").fetchone() == (1,)
    cancelled = client.post(f"/v1/shares/{share['id']}/cancel", headers=auth, json={"reason": "changed plans"})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert [t["status"] for t in cancelled.json()["response_tasks"]] == ["cancelled"]
    with connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM schedule").fetchone() == (0,)


def test_completing_a_task_of_a_share_not_sent_yet_is_a_409_saying_why(
    client: httpx.Client, auth: dict[str, str], account: dict[str, Any]
) -> None:
    # Given a share planned for an hour from now (its tasks pending)
    due = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    share = client.post("/v1/shares", headers=auth, json={
        "account_id": account["id"], "text": "later", "scheduled_at": due, "response_plan": PLAN}).json()
    task_id = share["response_tasks"][0]["id"]
    # When one of its tasks is completed
    response = client.post(f"/v1/response-tasks/{task_id}/complete", headers=auth)
    # Then the answer is a conflict that says the share is not sent yet
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "only after its share is sent" in response.json()["detail"]
    # And once the share is cancelled, it says so
    client.post(f"/v1/shares/{share['id']}/cancel", headers=auth, json={"reason": "changed plans"})
    response = client.post(f"/v1/response-tasks/{task_id}/complete", headers=auth)
    assert response.status_code == 409
    assert "cancelled" in response.json()["detail"]


def test_completing_an_unknown_task_is_a_404(client: httpx.Client, auth: dict[str, str]) -> None:
    response = client.post("/v1/response-tasks/00000000-0000-4000-8000-000000000000/complete", headers=auth)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


def test_followthrough_shows_no_rate_when_no_task_is_settled(client: httpx.Client, auth: dict[str, str]) -> None:
    response = client.get("/v1/followthrough?by=account", headers=auth)
    assert response.status_code == 200
    assert response.json()["rows"] == []
    assert_problem(client.get("/v1/followthrough?by=planet", headers=auth), 422, "by")


def test_metrics_expose_the_integrity_count_and_read_model_figures(
    client: httpx.Client, auth: dict[str, str], account: dict[str, Any]
) -> None:
    client.post("/v1/shares", headers=auth, json={"account_id": account["id"], "text": "hi", "response_plan": PLAN})
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.text
    assert "followthrough_sent_shares_without_response_tasks 0.0" in text
    assert 'followthrough_schedule_items{kind="publish",state="total"} 1.0' in text
    assert "followthrough_log_horizon_held_seconds" in text


def test_health_and_readiness(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}
