"""The review page in a real browser (Debian's chromium through Playwright) over a real run:
`followthrough up` on the console channel, an account that requires approval, and what waits
for the signed-in approver approved and rejected from the page; a read session sees no forms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.support.approval import APPROVAL
from tests.support.browser import chromium, guarded_page, screenshot
from tests.support.dashboard import csrf_of, signed_in
from tests.support.system import System, running, wait_until

pytestmark = pytest.mark.e2e

PLAN = [{"kind": "answer_replies", "after": "PT2H", "owner": "alice"}]


def in_seconds(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def sign_in(page: Page, system: System, token: str) -> None:
    page.goto(f"{system.base_url}/dashboard/review")
    assert "/dashboard/signin" in page.url
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{system.base_url}/dashboard/review")


def test_an_approver_approves_and_rejects_what_waits_for_them_from_the_review_page(
    tmp_path: Path, database_url: str, broker_url: str, queue_prefix: str
) -> None:
    shots = tmp_path / "screenshots"
    with running(tmp_path, database_url=database_url, broker_url=broker_url, queue_prefix=queue_prefix) as system:
        token = {name: system.cli("token", "create", "--workspace", "default", "--scope", "write", "--owner", name)
                 for name in ("ana", "ben")}
        ana_reads = system.cli("token", "create", "--workspace", "default", "--scope", "read", "--owner", "ana")
        with system.client(token["ana"]) as ana, system.client(token["ben"]) as ben:
            # Given an account that requires approval, ana's share due in 5 s, her share for
            # tomorrow, and ben's own share
            account = ana.post("/v1/accounts", json={"name": "launch", "channel": "console",
                                                     "config": {"approval": APPROVAL}}).json()

            def plan(client: object, text: str, seconds: float) -> str:
                assert hasattr(client, "post")
                answer = client.post("/v1/shares", json={"account_id": account["id"], "text": text,
                                                         "scheduled_at": in_seconds(seconds), "response_plan": PLAN})
                assert answer.status_code == 201, answer.text
                return str(answer.json()["id"])

            due = plan(ana, "Version 2.0 is out: faster sync, offline drafts and a new calendar.", 5)
            tomorrow = plan(ana, "Join our launch webinar tomorrow at 17:00 CET; questions welcome.", 86_400)
            own = plan(ben, "Ben's note: the changelog is on the blog.", 7200)
            wait_until(lambda: ana.get(f"/v1/shares/{due}").json()["status"] == "review_overdue", timeout=60,
                       what="the share due in 5 s to turn review_overdue")
            wait_until(lambda: len(ana.get("/v1/shares", params={"status": "in_review"}).json()["shares"]) == 2,
                       timeout=30, what="the shares in review projected")
        with chromium() as browser:
            with guarded_page(browser) as (page, guard):
                # When ben signs in and opens the review page
                sign_in(page, system, token["ben"])
                # Then ana's two shares wait for him, overdue first, with their text, account and time;
                # his own waits for another approver, without forms
                cards = page.locator("li.review")
                assert [c.get_attribute("data-share") for c in cards.all()] == [due, tomorrow]
                overdue = page.locator(f'li.review[data-share="{due}"]')
                assert "review overdue" in overdue.inner_text()
                assert "Version 2.0 is out" in overdue.locator("blockquote").inner_text()
                assert "launch" in overdue.inner_text()
                assert "ana" in overdue.inner_text()
                assert page.locator(f'[data-own="{own}"]').count() == 1
                assert page.locator(f'[data-own="{own}"] form').count() == 0
                assert page.get_by_role("link", name="Review").get_attribute("aria-current") == "page"
                screenshot(page, shots, "review")
                # And the shares list flags the overdue share, linking here
                page.goto(f"{system.base_url}/dashboard/shares")
                flag = page.locator(f'li.share[data-share="{due}"] [data-flag="review_overdue"]')
                assert "Review overdue" in flag.inner_text()
                assert flag.get_by_role("link").get_attribute("href") == "/dashboard/review"
                screenshot(page, shots, "shares-review")
                page.goto(f"{system.base_url}/dashboard/review")
                # When he rejects tomorrow's share, saying why
                later = page.locator(f'li.review[data-share="{tomorrow}"]')
                later.get_by_label("Reason to reject").fill("Say CET and UTC: half the audience is abroad")
                later.get_by_role("button", name="Reject").click()
                page.wait_for_url("**/dashboard/review?done=rejected")
                assert "Rejected" in page.get_by_role("status").inner_text()
                # And approves the overdue one
                page.locator(f'li.review[data-share="{due}"]').get_by_role("button", name="Approve").click()
                page.wait_for_url("**/dashboard/review?done=approved")
                assert page.locator("li.review").count() == 0
                screenshot(page, shots, "review-done")
                assert guard.refused == []
            # Then the overdue share is published once, late; the rejected one not at all
            wait_until(lambda: len(system.console_lines("launch")) == 1, timeout=60, what="the approved share sent")
            assert [line["share_id"] for line in system.console_lines("launch")] == [due]
            with system.client(token["ana"]) as ana:
                rejected = ana.get(f"/v1/shares/{tomorrow}").json()
                assert rejected["status"] == "rejected"
                assert rejected["approval"] == {"state": "rejected", "author": "ana", "by": "ben",
                                                "at": rejected["approval"]["at"],
                                                "reason": "Say CET and UTC: half the audience is abroad"}
            with guarded_page(browser) as (page, _):
                # And ana (an approver too) finds ben's share waiting for her, and hers not
                sign_in(page, system, token["ana"])
                assert [c.get_attribute("data-share") for c in page.locator("li.review").all()] == [own]
            with guarded_page(browser) as (page, _):
                # And ana's read session sees what waits for her, without forms
                sign_in(page, system, ana_reads)
                assert page.locator("li.review").count() == 1
                assert page.locator('form[action^="/dashboard/review/"]').count() == 0
                assert "read token" in page.locator("main").inner_text()
            with guarded_page(browser, width=390, height=844) as (phone, _):
                # And on a phone the page does not scroll sideways
                sign_in(phone, system, token["ana"])
                width = phone.evaluate("document.documentElement.scrollWidth")
                assert width <= 390, f"the review page scrolls sideways on a phone ({width}px)"
                screenshot(phone, shots, "review-phone")
        # And a form without the session's CSRF value is refused, writing nothing
        with signed_in(system.base_url, token["ana"]) as client:
            assert csrf_of(client.get("/dashboard/review").text)
            refused = client.post(f"/dashboard/review/{own}/approve", data={"csrf": "forged"})
            assert refused.status_code == 403, refused.text
        with system.client(token["ben"]) as ben:
            assert ben.get(f"/v1/shares/{own}").json()["status"] == "in_review"
