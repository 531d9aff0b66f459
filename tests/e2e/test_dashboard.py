"""The dashboard in a real browser (Debian's chromium through Playwright) over a real run:
`followthrough up`, shares planned through the API and published by its workers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page

from tests.support import fake_mastodon
from tests.support.browser import chromium, guarded_page, screenshot
from tests.support.servers import free_port, serve
from tests.support.system import System, running, wait_until

pytestmark = pytest.mark.e2e

FIELDS = ("open", "done_on_time", "done_late", "overdue")


def _plan(api: httpx.Client, account: str, text: str, steps: list[tuple[str, str]], *, at: datetime) -> str:
    body = {"account_id": account, "text": text, "scheduled_at": at.isoformat(),
            "response_plan": [{"kind": "check_replies", "after": after, "owner": owner} for after, owner in steps]}
    response = api.post("/v1/shares", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _account(api: httpx.Client, name: str, channel: str, config: dict[str, Any] | None = None) -> str:
    response = api.post("/v1/accounts", json={"name": name, "channel": channel, "config": config or {}})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _share(api: httpx.Client, share_id: str) -> dict[str, Any]:
    body: dict[str, Any] = api.get(f"/v1/shares/{share_id}").json()
    return body


def _seed(api: httpx.Client, mastodon: str) -> dict[str, Any]:
    """Shares that end sent, failed, abandoned, held, planned and cancelled, with tasks done on
    time, done late, overdue and open."""
    launch, support = _account(api, "launch", "console"), _account(api, "support", "console")
    # followers-only posts on a server that drops the connection after each write and hides them
    team = _account(api, "team", "mastodon",
                    {"base_url": mastodon, "access_token_env": "FT_MASTODON_TOKEN", "visibility": "private"})
    broken = _account(api, "broken", "mastodon", {"base_url": "http://127.0.0.1:9", "access_token_env": "FT_UNSET"})
    offline = _account(api, "offline", "mastodon",
                       {"base_url": f"http://127.0.0.1:{free_port()}", "access_token_env": "FT_OFFLINE_TOKEN"})
    soon = datetime.now(UTC) + timedelta(seconds=1)
    sent = [_plan(api, launch, f"Launch note {i}", [("PT1S", "alice"), ("PT1H", "bob")], at=soon) for i in range(3)]
    sent.append(_plan(api, support, "Support hours changed", [("PT2S", "dave")], at=soon))
    failed = _plan(api, broken, "A post with no token", [("PT1H", "alice")], at=soon)
    abandoned = _plan(api, offline, "A post to a server that is down", [("PT1H", "alice")], at=soon)
    held = _plan(api, team, "Followers only: the doors open at nine", [("PT1H", "erin")], at=soon)
    planned = _plan(api, launch, "Next week's announcement", [("PT1H", "bob")], at=soon + timedelta(days=2))
    cancelled = _plan(api, launch, "A post we dropped", [("PT1H", "bob")], at=soon + timedelta(days=1))
    assert api.post(f"/v1/shares/{cancelled}/cancel", json={"reason": "dropped"}).status_code == 200
    wait_until(lambda: all(_share(api, s)["status"] == "sent" for s in sent), timeout=60, what="shares sent")
    wait_until(lambda: _share(api, failed)["status"] == "failed", timeout=60, what="the share to fail")
    wait_until(lambda: _share(api, abandoned)["status"] == "abandoned", timeout=60, what="the share abandoned")
    wait_until(lambda: _share(api, held)["status"] == "held", timeout=90, what="the share to be held")
    tasks = {s: _share(api, s)["response_tasks"] for s in sent}
    # bob's task of the first share done on time; alice's of the second done late (after it fell due)
    assert api.post(f"/v1/response-tasks/{tasks[sent[0]][1]['id']}/complete").status_code == 200
    wait_until(lambda: _share(api, sent[1])["response_tasks"][0]["status"] == "overdue", timeout=30,
               what="alice's task to fall due")
    assert api.post(f"/v1/response-tasks/{tasks[sent[1]][0]['id']}/complete").status_code == 200
    return {"sent": sent, "failed": failed, "abandoned": abandoned, "held": held, "planned": planned,
            "cancelled": cancelled, "server": mastodon,
            "bob_open": tasks[sent[2]][1]["id"]}


def _api_figures(api: httpx.Client, by: str, start: str, end: str) -> dict[str, Any]:
    body = api.get("/v1/followthrough", params={"by": by, "from": start, "to": end}).json()
    return {row["key"]: row for row in body["rows"]}


def _page_row(page: Page, by: str, key: str) -> dict[str, Any]:
    row = page.locator(f'#by-{by} tr[data-key="{key}"]')
    figures: dict[str, Any] = {f: int(row.locator(f'td[data-col="{f}"]').inner_text()) for f in FIELDS}
    rate = row.locator("td[data-rate]").get_attribute("data-rate")
    figures["rate"] = None if rate == "none" else float(rate or "nan")
    return figures


def _assert_page_equals_api(page: Page, api: httpx.Client, start: str, end: str) -> float | None:
    for by in ("account", "owner", "channel"):
        expected = _api_figures(api, by, start, end)
        shown = page.locator(f"#by-{by} tbody tr")
        assert shown.count() == len(expected), f"{by}: {shown.count()} rows shown, API has {len(expected)}"
        for key, row in expected.items():
            assert _page_row(page, by, key) == {**{f: row[f] for f in FIELDS}, "rate": row["rate"]}, (by, key)
    total = next(iter(_api_figures(api, "workspace", start, end).values()))
    rate = page.locator("#total-rate").get_attribute("data-rate")
    assert rate == ("none" if total["rate"] is None else f"{total['rate']:.4f}")
    return float(total["rate"]) if total["rate"] is not None else None


def _sign_in(page: Page, system: System, token: str, shots: Path | None = None) -> None:
    page.goto(f"{system.base_url}/dashboard")
    assert "/dashboard/signin" in page.url
    if shots:
        screenshot(page, shots, "signin")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{system.base_url}/dashboard")


def _walk(browser: Browser, system: System, api: httpx.Client, token: str, run: dict[str, Any], shots: Path) -> None:
    today = datetime.now(UTC).date()
    first, last = today - timedelta(days=1), today + timedelta(days=2)
    start, end = f"{first}T00:00:00+00:00", f"{last + timedelta(days=1)}T00:00:00+00:00"
    overview = f"{system.base_url}/dashboard?preset=custom&from={first}&to={last}&by=day"
    with guarded_page(browser) as (page, guard):
        _sign_in(page, system, token, shots)
        # Then the overview shows the API's figures for the same period, styled by the app's own CSS
        page.goto(overview)
        before = _assert_page_equals_api(page, api, start, end)
        assert before is not None
        assert page.locator(".chart rect").count() >= 1
        assert page.locator(".top").evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(36, 41, 47)"
        screenshot(page, shots, "overview")

        # When bob's open task is completed from the Inbox
        page.goto(f"{system.base_url}/dashboard/inbox")
        assert page.locator("li.task.overdue").count() >= 1
        screenshot(page, shots, "inbox")
        page.locator(f'li[data-task="{run["bob_open"]}"] button').click()
        page.wait_for_url("**/dashboard/inbox?done=*")
        assert page.get_by_role("status").inner_text().startswith("Task completed")
        assert page.locator(f'li[data-task="{run["bob_open"]}"]').count() == 0

        # Then the rate changes, and still equals the API's
        page.goto(overview)
        after = _assert_page_equals_api(page, api, start, end)
        assert after is not None
        assert after > before

        # And the Shares timeline shows every outcome, with the failure's last error
        page.goto(f"{system.base_url}/dashboard/shares?preset=all")
        for status in ("sent", "failed", "abandoned", "held", "planned", "cancelled"):
            assert page.locator(f"li.share.status-{status}").count() >= 1, status
        assert "FT_UNSET" in page.locator(f'li[data-share="{run["failed"]}"] .error-text').inner_text()
        screenshot(page, shots, "shares")
        _settle_held(page, api, run["held"], shots, run["server"])
        page.locator(f'li[data-share="{run["sent"][0]}"] a').first.click()
        page.wait_for_url(f"**/dashboard/shares/{run['sent'][0]}")
        history = page.locator("ol.events li strong").all_inner_texts()
        assert history[0] == "SharePlanned"
        assert "ShareSent" in history
        assert "ResponseTaskCompleted" in history
        screenshot(page, shots, "share")

        # And Health reads 0 sent without tasks
        page.goto(f"{system.base_url}/dashboard/health")
        assert page.locator("#integrity dd").inner_text() == "0"
        screenshot(page, shots, "health")

        # And no request left this machine
        assert guard.refused == []
        assert any(url.endswith("/dashboard/static/dashboard.css") for url in guard.seen)

    with guarded_page(browser, width=390, height=844) as (phone, guard):
        _sign_in(phone, system, token)
        phone.goto(overview)
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the overview scrolls sideways on a phone ({width}px)"
        screenshot(phone, shots, "overview-phone")
        assert guard.refused == []


def _settle_held(page: Page, api: httpx.Client, share_id: str, shots: Path, server: str) -> None:
    """A held share says why on the timeline, links to its page, and is settled there (with
    the post's address on the account's own server: the post's id is read from it)."""
    held = page.locator(f'li[data-share="{share_id}"] .held')
    assert "Held:" in held.inner_text()
    held.get_by_role("link", name="settle it").click()
    page.wait_for_url(f"**/dashboard/shares/{share_id}#settle")
    screenshot(page, shots, "share-held")
    page.get_by_label("The post is there: its address").fill(f"{server}/@team/1")
    page.get_by_role("button", name="Mark sent").click()
    page.wait_for_url(f"**/dashboard/shares/{share_id}?done=*")
    assert page.get_by_role("status").inner_text() == "Share marked sent."
    assert _share(api, share_id)["status"] == "sent"
    page.goto(page.url.split("/dashboard/")[0] + "/dashboard/shares?preset=all")


def test_the_dashboard_shows_a_real_run_as_the_api_does_and_completing_a_task_changes_the_rate(
    tmp_path: Path, database_url: str, broker_url: str, queue_prefix: str
) -> None:
    env = {"FOLLOWTHROUGH_MAX_ATTEMPTS": "2", "FOLLOWTHROUGH_RETRY_BASE_SECONDS": "1",
           "FOLLOWTHROUGH_CHANNEL_TIMEOUT_SECONDS": "2", "FT_OFFLINE_TOKEN": "offline-token",
           "FT_MASTODON_TOKEN": fake_mastodon.TOKEN}
    fake = fake_mastodon.FakeMastodon(fake_mastodon.Knobs(hide_non_public=True, drop_after_write_every=1))
    with serve(fake.build()) as mastodon, running(
        tmp_path, database_url=database_url, broker_url=broker_url, queue_prefix=queue_prefix, extra_env=env
    ) as system:
        # Given a run with shares sent, failed, abandoned, planned and cancelled, and tasks in every state
        token = system.cli("token", "create", "--workspace", "acme", "--scope", "write")
        with system.client(token) as api:
            run = _seed(api, mastodon)
            # When a person signs in with the write token and walks every page
            with chromium() as browser:
                _walk(browser, system, api, token, run, tmp_path / "screenshots")


def test_a_read_token_sees_the_inbox_but_cannot_complete_from_it(
    tmp_path: Path, database_url: str, broker_url: str, queue_prefix: str
) -> None:
    with running(tmp_path, database_url=database_url, broker_url=broker_url, queue_prefix=queue_prefix) as system:
        # Given a sent share with an open task, and a read token
        write = system.cli("token", "create", "--workspace", "acme", "--scope", "write")
        read = system.cli("token", "create", "--workspace", "acme", "--scope", "read")
        with system.client(write) as api:
            account = _account(api, "launch", "console")
            share = _plan(api, account, "Hello", [("PT1H", "bob")], at=datetime.now(UTC) + timedelta(seconds=1))
            wait_until(lambda: _share(api, share)["status"] == "sent", timeout=60, what="the share to be sent")
            wait_until(lambda: api.get("/v1/response-tasks").json()["tasks"], timeout=30, what="the open task")
        with chromium() as browser, guarded_page(browser) as (page, guard):
            # When the read token signs in
            _sign_in(page, system, read)
            page.goto(f"{system.base_url}/dashboard/inbox")
            # Then the task is listed without a Complete button, and the page says why
            assert page.locator("li.task").count() == 1
            assert page.get_by_role("button", name="Complete").count() == 0
            assert "read token" in page.locator("main").inner_text()
            assert guard.refused == []
