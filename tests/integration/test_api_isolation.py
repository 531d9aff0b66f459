"""Workspace isolation: for every endpoint, another workspace's token gets 404 or an empty
list, never this workspace's data; /metrics does not open to workspace tokens; console
files are kept apart per workspace."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest

from followthrough.settings import Settings
from tests.support.api import PLAN, api_client, bearer
from tests.support.media import uploaded
from workers.channels import Post
from workers.channels.console import ConsolePublisher

Probe = Callable[[httpx.Client, dict[str, str], dict[str, str]], httpx.Response]


@pytest.fixture
def client(settings: Settings) -> Iterator[httpx.Client]:
    with api_client(settings.model_copy(update={"metrics_token": "metrics-only-0001"})) as c:
        yield c


@pytest.fixture
def acme(client: httpx.Client, database_url: str) -> dict[str, Any]:
    """Workspace acme: an account, a share with a task, a second token."""
    auth = bearer(database_url, "acme")
    account = client.post("/v1/accounts", headers=auth, json={"name": "demo", "channel": "console"}).json()
    share = client.post("/v1/shares", headers=auth, json={
        "account_id": account["id"], "text": "acme's secret plans", "response_plan": PLAN,
        "scheduled_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}).json()
    post = client.post("/v1/posts", headers=auth, json={
        "text": "acme's secret plans", "response_plan": PLAN, "accounts": [{"account_id": account["id"]}]}).json()
    token = client.post("/v1/tokens", headers=auth, json={"scope": "read", "label": "acme-dash"}).json()
    hook = client.post("/v1/webhooks", headers=auth, json={
        "url": "http://127.0.0.1:9/acme-hooks", "events": ["share.sent"], "description": "acme-dash"}).json()
    assert client.put("/v1/calendars/acme-support", headers=auth, json=ACME_CALENDAR).status_code == 201
    assert client.put("/v1/owners/acme-ana", headers=auth, json={"calendar": "acme-support"}).status_code == 200
    media = uploaded(client, auth, alt="acme-dash")
    saved = client.post("/v1/saved-replies", headers=auth, json={"name": "acme-dash", "text": "acme-thanks"}).json()
    # A reply id of acme's kind (replies are derived from the share and the network's reply id);
    # none exists for globex either way, so the probe shows no reply is reachable across workspaces.
    return {"auth": auth, "account": account["id"], "share": share["id"],
            "task": share["response_tasks"][0]["id"], "token": token["id"], "webhook": hook["id"],
            "reply": str(uuid4()), "calendar": "acme-support", "media": media["id"],
            "saved_reply": saved["id"], "post": post["id"]}


ACME_CALENDAR = {"time_zone": "Europe/Berlin", "week": {"mon": [["09:00", "17:00"]]}, "holidays": []}
GLOBEX_CALENDAR = {"time_zone": "UTC", "week": {"tue": [["08:00", "12:00"]]}, "holidays": []}


def _fmt(path: str, ids: dict[str, str]) -> str:
    return path.format(**ids)


def _filled(value: Any, ids: dict[str, str]) -> Any:
    """A probe's body with acme's ids in it, at any depth."""
    if isinstance(value, str):
        return _fmt(value, ids)
    if isinstance(value, list):
        return [_filled(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _filled(v, ids) for k, v in value.items()}
    return value


# (method, path template) -> what another workspace's token must get: 404, or 200 with nothing of acme's.
PROBES: dict[tuple[str, str], tuple[str, str, dict[str, Any] | None, int]] = {
    ("post", "/v1/accounts"): ("POST", "/v1/accounts", {"name": "demo", "channel": "console"}, 201),
    ("get", "/v1/accounts"): ("GET", "/v1/accounts", None, 200),
    ("get", "/v1/accounts/{account_id}"): ("GET", "/v1/accounts/{account}", None, 404),
    ("get", "/v1/accounts/{account_id}/slots"): ("GET", "/v1/accounts/{account}/slots", None, 404),
    ("post", "/v1/shares"): ("POST", "/v1/shares", {"account_id": "{account}", "text": "x", "response_plan": PLAN},
                             422),
    ("get", "/v1/shares"): ("GET", "/v1/shares", None, 200),
    ("post", "/v1/posts"): ("POST", "/v1/posts", {"text": "x", "response_plan": PLAN,
                                                   "accounts": [{"account_id": "{account}"}]}, 422),
    ("get", "/v1/posts/{post_id}"): ("GET", "/v1/posts/{post}", None, 404),
    ("get", "/v1/shares/{share_id}"): ("GET", "/v1/shares/{share}", None, 404),
    ("get", "/v1/shares/{share_id}/events"): ("GET", "/v1/shares/{share}/events", None, 404),
    ("post", "/v1/shares/{share_id}/reschedule"): (
        "POST", "/v1/shares/{share}/reschedule",
        {"scheduled_at": (datetime.now(UTC) + timedelta(hours=2)).isoformat()}, 404),
    ("post", "/v1/shares/{share_id}/mark-sent"): (
        "POST", "/v1/shares/{share}/mark-sent", {"url": "https://example.org/p/1"}, 404),
    ("post", "/v1/shares/{share_id}/cancel"): ("POST", "/v1/shares/{share}/cancel", {"reason": "x"}, 404),
    ("post", "/v1/shares/{share_id}/approve"): ("POST", "/v1/shares/{share}/approve", None, 404),
    ("post", "/v1/shares/{share_id}/reject"): ("POST", "/v1/shares/{share}/reject", {"reason": "x"}, 404),
    ("post", "/v1/shares/{share_id}/retry"): ("POST", "/v1/shares/{share}/retry", {}, 404),
    ("post", "/v1/response-tasks/{task_id}/complete"): ("POST", "/v1/response-tasks/{task}/complete", {}, 404),
    ("get", "/v1/response-tasks"): ("GET", "/v1/response-tasks?status=pending&status=open", None, 200),
    ("get", "/v1/followthrough"): ("GET", "/v1/followthrough?by=account", None, 200),
    ("post", "/v1/tokens"): ("POST", "/v1/tokens", {"scope": "read"}, 201),
    ("get", "/v1/tokens"): ("GET", "/v1/tokens", None, 200),
    ("delete", "/v1/tokens/{token_id}"): ("DELETE", "/v1/tokens/{token}", None, 404),
    ("get", "/v1/replies"): ("GET", "/v1/replies?share_id={share}", None, 200),
    ("get", "/v1/audit"): ("GET", "/v1/audit", None, 200),
    ("post", "/v1/replies/{reply_id}/answer"): ("POST", "/v1/replies/{reply}/answer", {"text": "hi"}, 404),
    ("post", "/v1/replies/{reply_id}/dismiss"): ("POST", "/v1/replies/{reply}/dismiss", {"reason": "x"}, 404),
    ("post", "/v1/replies/{reply_id}/assign"): ("POST", "/v1/replies/{reply}/assign", {"owner": "x"}, 404),
    ("post", "/v1/webhooks"): ("POST", "/v1/webhooks",
                               {"url": "http://127.0.0.1:9/globex", "events": ["share.sent"]}, 201),
    ("get", "/v1/webhooks"): ("GET", "/v1/webhooks", None, 200),
    ("get", "/v1/webhooks/{endpoint_id}"): ("GET", "/v1/webhooks/{webhook}", None, 404),
    ("delete", "/v1/webhooks/{endpoint_id}"): ("DELETE", "/v1/webhooks/{webhook}", None, 404),
    ("post", "/v1/webhooks/{endpoint_id}/enable"): ("POST", "/v1/webhooks/{webhook}/enable", None, 404),
    ("get", "/v1/webhooks/{endpoint_id}/deliveries"): ("GET", "/v1/webhooks/{webhook}/deliveries", None, 404),
    ("get", "/v1/calendars"): ("GET", "/v1/calendars", None, 200),
    # A window around acme's share (planned an hour from now): globex sees none of it.
    ("get", "/v1/calendar"): ("GET", f"/v1/calendar?from={datetime.now(UTC).date() - timedelta(days=1)}"
                                     f"&to={datetime.now(UTC).date() + timedelta(days=3)}", None, 200),
    ("get", "/v1/calendars/{name}"): ("GET", "/v1/calendars/{calendar}", None, 404),
    ("delete", "/v1/calendars/{name}"): ("DELETE", "/v1/calendars/{calendar}", None, 404),
    # A calendar of the same name is globex's own: acme's is not touched (checked below).
    ("put", "/v1/calendars/{name}"): ("PUT", "/v1/calendars/{calendar}", GLOBEX_CALENDAR, 201),
    ("get", "/v1/owners"): ("GET", "/v1/owners", None, 200),
    ("put", "/v1/owners/{owner}"): ("PUT", "/v1/owners/globex-bo", {"calendar": "{calendar}"}, 200),
    # (An upload is multipart: the JSON body of these probes is refused as such.)
    ("post", "/v1/media"): ("POST", "/v1/media", {"file": "x"}, 415),
    ("get", "/v1/media"): ("GET", "/v1/media", None, 200),
    ("get", "/v1/media/{media_id}"): ("GET", "/v1/media/{media}", None, 404),
    ("get", "/v1/media/{media_id}/content"): ("GET", "/v1/media/{media}/content", None, 404),
    ("patch", "/v1/media/{media_id}"): ("PATCH", "/v1/media/{media}", {"alt": "mine"}, 404),
    ("delete", "/v1/media/{media_id}"): ("DELETE", "/v1/media/{media}", None, 404),
    # globex saves its own (acme's is not touched: checked below).
    ("post", "/v1/saved-replies"): ("POST", "/v1/saved-replies", {"name": "globex-thanks", "text": "theirs"}, 201),
    ("get", "/v1/saved-replies"): ("GET", "/v1/saved-replies", None, 200),
    ("delete", "/v1/saved-replies/{saved_reply_id}"): ("DELETE", "/v1/saved-replies/{saved_reply}", None, 404),
}


def test_another_workspace_gets_404_or_nothing_of_ours_from_every_endpoint(
    client: httpx.Client, database_url: str, acme: dict[str, Any]
) -> None:
    # Given every /v1 operation the API documents is probed here
    documented = {(m, p) for p, item in client.get("/openapi.json").json()["paths"].items() for m in item
                  if p.startswith("/v1")}
    assert documented == set(PROBES), f"probe these endpoints too: {documented - set(PROBES)}"
    globex = bearer(database_url, "globex")
    ids = {k: str(v) for k, v in acme.items() if k != "auth"}
    # (A 404 may repeat the id it was asked for; an answer with content must hold none of acme's.)
    acme_ids = [ids["account"], ids["share"], ids["task"], ids["token"], ids["webhook"], ids["media"],
                ids["saved_reply"], ids["post"]]
    acme_data = ["acme's secret plans", "acme-dash", "acme-ana", "Europe/Berlin", "acme-thanks"]
    for method, path, body, status in PROBES.values():
        # When globex's token calls it with acme's ids
        json_body = _filled(body, ids)
        response = client.request(method, _fmt(path, ids), headers=globex, json=json_body)
        # Then it gets 404 (or its own, empty answer), and nothing of acme's
        assert response.status_code == status, (method, path, response.text)
        for secret in acme_data + (acme_ids if response.status_code < 300 else []):
            assert secret not in response.text, (method, path, secret)
    # And acme's share is untouched
    share = client.get(f"/v1/shares/{ids['share']}", headers=acme["auth"]).json()
    assert share["status"] == "planned"
    assert client.get("/v1/accounts", headers=acme["auth"]).status_code == 200
    assert client.get(f"/v1/webhooks/{ids['webhook']}", headers=acme["auth"]).json()["state"] == "enabled"
    calendar = client.get(f"/v1/calendars/{ids['calendar']}", headers=acme["auth"]).json()
    assert (calendar["time_zone"], calendar["owners"]) == ("Europe/Berlin", ["acme-ana"])
    assert client.get(f"/v1/media/{ids['media']}", headers=acme["auth"]).json()["alt"] == "acme-dash"
    saved = client.get("/v1/saved-replies", headers=acme["auth"]).json()["items"]
    assert [(r["name"], r["text"]) for r in saved] == [("acme-dash", "acme-thanks")]


def test_metrics_do_not_open_to_a_workspace_token(client: httpx.Client, database_url: str,
                                                   acme: dict[str, Any]) -> None:
    assert client.get("/metrics", headers=bearer(database_url, "globex")).status_code == 404
    assert client.get("/metrics", headers=acme["auth"]).status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer metrics-only-0001"}).status_code == 200


def test_two_workspaces_accounts_of_one_name_write_separate_console_files(tmp_path: Path) -> None:
    # Given accounts named demo in two workspaces
    publisher = ConsolePublisher(tmp_path)

    def post(workspace: str, text: str) -> Post:
        return Post(share_id=uuid4(), workspace_id=workspace, account_name="demo", account_config={}, text=text,
                    scheduled_at=datetime.now(UTC), idempotency_key=str(uuid4()), attempt=1)

    # When each publishes
    publisher.publish(post("acme", "for acme"))
    publisher.publish(post("globex", "for globex"))
    # Then each post is in its own workspace's file only
    assert [line["text"] for line in publisher.lines_for("acme", "demo")] == ["for acme"]
    assert [line["text"] for line in publisher.lines_for("globex", "demo")] == ["for globex"]
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.jsonl")) == [
        "acme/demo.jsonl", "globex/demo.jsonl"]
