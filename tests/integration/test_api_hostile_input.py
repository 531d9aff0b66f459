"""Hostile input through real HTTP: every case answered with the right 4xx problem, and
nothing written (every table the API writes counted before and after)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from tests.support.api import PLAN, assert_problem, bearer, stored

SOON = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
OVERFLOW = "9999-12-31T23:59:59-12:00"
NUL = "a\\u0000b"          # as JSON escapes: the raw body carries them
SURROGATE = "a\\ud800b"


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    body: str | bytes | None = None  # JSON text; {account}, {share} and {task} are filled in
    status: int = 422
    at: str | None = None  # the field the problem must name
    token: bool = True


def share_json(**fields: Any) -> str:
    base: dict[str, Any] = {"account_id": "{account}", "text": "hello", "response_plan": PLAN}
    return orjson.dumps({**base, **fields}).decode()


def raw(template: str, value: str) -> str:
    """JSON text with ``value`` spliced in as written (escapes kept for the server to decode)."""
    return template.replace('"@@"', f'"{value}"')


CASES = [
    Case("NUL in text", "POST", "/v1/shares", raw(share_json(text="@@"), NUL), at="text"),
    Case("surrogate in text", "POST", "/v1/shares", raw(share_json(text="@@"), SURROGATE), at="text"),
    Case("NUL in owner", "POST", "/v1/shares",
         raw(share_json(response_plan=[{**PLAN[0], "owner": "@@"}]), NUL), at="response_plan.0.owner"),
    Case("surrogate in owner", "POST", "/v1/shares",
         raw(share_json(response_plan=[{**PLAN[0], "owner": "@@"}]), SURROGATE), at="response_plan.0.owner"),
    Case("NUL in a cancel reason", "POST", "/v1/shares/{share}/cancel", raw('{"reason": "@@"}', NUL),
         at="reason"),
    Case("surrogate in a cancel reason", "POST", "/v1/shares/{share}/cancel", raw('{"reason": "@@"}', SURROGATE),
         at="reason"),
    Case("NUL in a completion note", "POST", "/v1/response-tasks/{task}/complete", raw('{"note": "@@"}', NUL),
         at="note"),
    Case("surrogate in a completion note", "POST", "/v1/response-tasks/{task}/complete",
         raw('{"note": "@@"}', SURROGATE), at="note"),
    Case("NUL in an account config value", "POST", "/v1/accounts",
         raw('{"name": "x", "channel": "console", "config": {"visibility": "@@"}}', NUL), at="config.visibility"),
    Case("surrogate deep in an account config", "POST", "/v1/accounts",
         raw('{"name": "x", "channel": "console", "config": {"a": {"b": ["@@"]}}}', SURROGATE),
         at="config.a.b.0"),
    Case("NUL in an account config key", "POST", "/v1/accounts",
         '{"name": "x", "channel": "console", "config": {"a\\u0000": 1}}', at="config.<key>"),
    Case("a nested secret in account config", "POST", "/v1/accounts",
         '{"name": "x", "channel": "console", "config": {"auth": {"token": "s3cret"}}}', at="config.auth.token"),
    Case("an api_key in account config", "POST", "/v1/accounts",
         '{"name": "x", "channel": "console", "config": {"api_key": "s3cret"}}', at="config.api_key"),
    Case("a secret in a list in account config", "POST", "/v1/accounts",
         '{"name": "x", "channel": "console", "config": {"hooks": [{"password": "p"}]}}',
         at="config.hooks.0.password"),
    Case("a 40 KiB account config", "POST", "/v1/accounts",
         orjson.dumps({"name": "x", "channel": "console",
                       "config": {f"k{i}": "v" * 1000 for i in range(40)}}).decode(), at="config"),
    Case("a config nested 20 levels", "POST", "/v1/accounts",
         '{"name": "x", "channel": "console", "config": ' + '{"a": ' * 20 + "1" + "}" * 20 + "}",
         at="config" + ".a" * 9),
    Case("a negative max_lateness", "POST", "/v1/accounts",
         '{"name": "x", "channel": "console", "late_policy": "hold", "max_lateness": "-PT5M"}',
         at="max_lateness"),
    Case("a plan with an overflowing scheduled_at", "POST", "/v1/shares", share_json(scheduled_at=OVERFLOW),
         at="scheduled_at"),
    Case("a reschedule with an overflowing scheduled_at", "POST", "/v1/shares/{share}/reschedule",
         orjson.dumps({"scheduled_at": OVERFLOW}).decode(), at="scheduled_at"),
    Case("a scheduled_at two years ahead", "POST", "/v1/shares",
         share_json(scheduled_at=(datetime.now(UTC) + timedelta(days=730)).isoformat()), at="scheduled_at"),
    Case("a reschedule two years ahead", "POST", "/v1/shares/{share}/reschedule",
         orjson.dumps({"scheduled_at": (datetime.now(UTC) + timedelta(days=730)).isoformat()}).decode(),
         at="scheduled_at"),
    Case("a text of 20,001 characters", "POST", "/v1/shares", share_json(text="x" * 20_001), at="text"),
    Case("a 10,000-character owner", "POST", "/v1/shares",
         share_json(response_plan=[{**PLAN[0], "owner": "o" * 10_000}]), at="response_plan.0.owner"),
    Case("a 1 MB note", "POST", "/v1/response-tasks/{task}/complete",
         orjson.dumps({"note": "n" * 1_000_000}).decode(), status=413, at="body"),
    Case("a 1 MB body without a token", "POST", "/v1/shares", orjson.dumps({"text": "t" * 1_000_000}).decode(),
         status=413, at="body", token=False),
    Case("a JSON syntax error", "POST", "/v1/shares", '{"account_id": "{account}", "text": ', at="body"),
    Case("an unknown share status", "GET", "/v1/shares?status=bogus", at="status"),
    Case("an unknown task status", "GET", "/v1/response-tasks?status=bogus", at="status.0"),
    Case("a NUL in the owner filter", "GET", "/v1/response-tasks?owner=a%00b", at="owner"),
    Case("from without an offset", "GET", "/v1/followthrough?from=2026-01-01T00:00:00", at="from"),
    Case("from after to", "GET",
         "/v1/followthrough?from=2026-02-01T00:00:00%2B00:00&to=2026-01-01T00:00:00%2B00:00", at="to"),
    Case("an unknown breakdown", "GET", "/v1/followthrough?by=planet", at="by"),
    Case("a limit of a million", "GET", "/v1/shares?limit=1000000", at="limit"),
]


@pytest.fixture
def ids(client: httpx.Client, database_url: str) -> dict[str, str]:
    auth = bearer(database_url)
    account = client.post("/v1/accounts", json={"name": "main", "channel": "console"}, headers=auth).json()
    share = client.post("/v1/shares", headers=auth, json={
        "account_id": account["id"], "text": "later", "scheduled_at": SOON, "response_plan": PLAN}).json()
    return {"account": account["id"], "share": share["id"], "task": share["response_tasks"][0]["id"],
            **auth}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input_is_refused_with_the_right_problem_and_nothing_is_written(
    client: httpx.Client, database_url: str, ids: dict[str, str], case: Case
) -> None:
    # Given an account and a planned share, and what the database holds
    before = stored(database_url)
    fill = {"{account}": ids["account"], "{share}": ids["share"], "{task}": ids["task"]}
    path, body = case.path, case.body
    for placeholder, value in fill.items():
        path = path.replace(placeholder, value)
        body = body.replace(placeholder, value) if isinstance(body, str) else body
    headers = {"Content-Type": "application/json"}
    if case.token:
        headers["Authorization"] = ids["Authorization"]
    # When the hostile request is sent
    response = client.request(case.method, path, content=body, headers=headers)
    # Then it gets the right problem, naming the field
    assert_problem(response, case.status, case.at)
    assert "Traceback" not in response.text
    # And nothing was written
    assert stored(database_url) == before


def test_a_huge_chunked_body_is_cut_off_while_it_is_read(client: httpx.Client, database_url: str) -> None:
    # Given a body sent in chunks, with no Content-Length to refuse it by
    def chunks() -> Iterator[bytes]:
        yield b'{"text": "'
        for _ in range(200):
            yield b"x" * 10_000
        yield b'"}'

    before = stored(database_url)
    # When it is sent without a token
    response = client.post("/v1/shares", content=chunks(), headers={"Content-Type": "application/json"})
    # Then it is refused as too large, not as unauthenticated, and nothing is written
    assert_problem(response, 413, "body")
    assert stored(database_url) == before


def test_a_client_request_id_is_echoed_and_a_bad_one_replaced(client: httpx.Client) -> None:
    good = client.get("/healthz", headers={"X-Request-ID": "trace-1234abcd"})
    assert good.headers["x-request-id"] == "trace-1234abcd"
    bad = client.get("/healthz", headers={"X-Request-ID": "<script>alert(1)</script>"})
    assert "<" not in bad.headers["x-request-id"]
    assert len(bad.headers["x-request-id"]) == 32


def test_every_answer_carries_security_headers_and_no_server_banner(
    client: httpx.Client, ids: dict[str, str]
) -> None:
    v1 = client.get("/v1/accounts", headers={"Authorization": ids["Authorization"]})
    assert v1.headers["cache-control"] == "no-store"
    assert v1.headers["x-content-type-options"] == "nosniff"
    assert "server" not in v1.headers
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "script-src 'self'" in docs.headers["content-security-policy"]
    assert "cdn" not in docs.text.lower()
    assert client.get("/static/docs/swagger-ui-bundle.js").status_code == 200
    assert client.get("/static/docs/redoc.standalone.js").status_code == 200

