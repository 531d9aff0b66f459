"""The replies page in a real browser (Debian's chromium through Playwright) over a real run:
`followthrough up` on the console channel, replies written with `followthrough console reply`,
one answered from the page and published by the run's workers, one assigned, and one answered
with a saved reply picked in its form."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from playwright.sync_api import Page

from tests.support.browser import chromium, guarded_page, screenshot
from tests.support.system import System, running, wait_until

pytestmark = pytest.mark.e2e

FAST_LOOKS = {"replies": {"cadence": [{"until": "PT1H", "every": "PT2S"}], "max_backoff": 1}}
QUESTION = ("Does the desk work offline? The guide at "
            "https://docs.example.org/followthrough/desk/answering-replies-from-the-dashboard-without-curl "
            "says <em>yes</em>")


def _sign_in(page: Page, system: System, token: str) -> None:
    page.goto(f"{system.base_url}/dashboard/replies")
    assert "/dashboard/signin" in page.url
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{system.base_url}/dashboard/replies")


def _replies_lines(system: System) -> list[dict[str, Any]]:
    path = system.home / "console" / "default" / "launch.replies.jsonl"
    return [orjson.loads(x) for x in path.read_bytes().splitlines()]


def _seed(api: httpx.Client, system: System) -> dict[str, str]:
    """A sent console share whose thread has a question, a reply to it, and a cheer."""
    account = api.post("/v1/accounts", json={"name": "launch", "channel": "console", "config": FAST_LOOKS})
    assert account.status_code == 201, account.text
    planned = api.post("/v1/shares", json={
        "account_id": account.json()["id"],
        "text": "The follow-through desk is out: answer replies from the dashboard.",
        "response_plan": [{"kind": "answer_replies", "after": "PT2M", "owner": "alice"},
                          {"kind": "check_replies", "after": "PT1H", "owner": "bob"}]})
    assert planned.status_code == 201, planned.text
    share_id = str(planned.json()["id"])
    wait_until(lambda: api.get(f"/v1/shares/{share_id}").json()["status"] == "sent", timeout=60,
               what="the share to be sent")
    question = system.cli("console", "reply", share_id, QUESTION, "--author", "ana@example.social",
                          "--name", "Ana Lima").strip().splitlines()[-1]
    system.cli("console", "reply", share_id, "Same question here, and does it work on a phone?",
               "--author", "bo", "--to", question)
    system.cli("console", "reply", share_id, "Congratulations to the whole team!", "--author", "cy")

    def collected() -> list[dict[str, Any]] | None:
        items: list[dict[str, Any]] = api.get("/v1/replies", params={"share_id": share_id}).json()["items"]
        return items if len(items) == 3 else None

    found = wait_until(collected, timeout=30, what="the three replies collected")
    items = {r["author"].split("@")[0]: r for r in found}
    return {"share": share_id, **{name: str(r["id"]) for name, r in items.items()}}


def test_the_desk_answers_a_console_reply_from_the_replies_page_once(
    tmp_path: Path, database_url: str, broker_url: str, queue_prefix: str
) -> None:
    shots = tmp_path / "screenshots"
    with running(tmp_path, database_url=database_url, broker_url=broker_url, queue_prefix=queue_prefix) as system:
        write = system.cli("token", "create", "--workspace", "default", "--scope", "write", "--owner", "dana")
        read = system.cli("token", "create", "--workspace", "default", "--scope", "read")
        with system.client(write) as api:
            # Given a sent console share with three replies written on the console, one answering another
            run = _seed(api, system)
            # And a saved reply thanking the author in the account's name
            saved = api.post("/v1/saved-replies", json={"name": "thanks",
                                                        "text": "Thank you, {author}! The {account} team"})
            assert saved.status_code == 201, saved.text
        with chromium() as browser:
            with guarded_page(browser) as (page, guard):
                # When a person signs in with a write token and opens the replies page
                _sign_in(page, system, write)
                # Then each reply is there, bo's with the thread above it: the post, then ana's question
                for name in ("ana", "bo", "cy"):
                    assert page.locator(f'article[data-reply-id="{run[name]}"]').count() == 1, name
                bo = page.locator(f'article[data-reply-id="{run["bo"]}"]')
                above = bo.locator("ol.above li").all_inner_texts()
                assert "The follow-through desk is out" in above[0]
                assert "Does the desk work offline?" in above[1]
                assert "Ana Lima (ana@example.social)" in above[1]
                # And the text is plain: the link clickable, the markup shown as written
                ana = page.locator(f'article[data-reply-id="{run["ana"]}"]')
                assert ana.locator(".reply-text a").get_attribute("href", timeout=5000) is not None
                assert "<em>yes</em>" in ana.locator(".reply-text").inner_text()
                assert ana.locator(".reply-text em").count() == 0
                # And the page counts the characters left while typing (the server said 5000)
                box = bo.get_by_label("Answer bo")
                assert bo.locator(".left .n").inner_text() == "5000"
                text = "Yes, and yes: it is usable at 390 px wide."
                box.fill(text)
                assert bo.locator(".left .n").inner_text() == str(5000 - len(text))
                screenshot(page, shots, "replies")
                # When bo's reply is answered from the page
                bo.get_by_role("button", name="Answer").click()
                page.wait_for_url("**/dashboard/replies?done=answered*")
                assert "on its way" in page.get_by_role("status").inner_text()

                # Then after a reload it shows answered, with the answer's url
                def answered() -> bool:
                    page.reload()
                    state = page.locator(f'article[data-reply-id="{run["bo"]}"] [data-answer]').first
                    return state.get_attribute("data-answer") == "answered"

                wait_until(answered, timeout=30, interval=0.5, what="the answer published")
                url = page.locator(f'article[data-reply-id="{run["bo"]}"] a.answer-url').get_attribute("href")
                assert url is not None
                # And the console replies file holds the answer exactly once
                ours = [x for x in _replies_lines(system) if x["by_account"]]
                assert [x["text"] for x in ours] == ["Yes, and yes: it is usable at 390 px wide."]
                assert url.endswith(ours[0]["reply_id"])
                # And the share page shows its thread with the answer, linking to the page filtered by it
                page.goto(f"{system.base_url}/dashboard/shares/{run['share']}")
                assert page.locator("#thread li.reply-line").count() == 3
                assert page.locator('#thread [data-answer="answered"]').count() == 1
                page.get_by_role("link", name="Answer them on the Replies page →").click()
                page.wait_for_url(f"**/dashboard/replies?share_id={run['share']}")

                # When ana's reply is given to dana (the signed-in token's owner) with its Assign form
                page.goto(f"{system.base_url}/dashboard/replies")
                ana = page.locator(f'article[data-reply-id="{run["ana"]}"]')
                assert ana.locator(".assignee").inner_text() == "owner alice"
                ana.get_by_label("Give it to").fill("dana")
                ana.get_by_role("button", name="Assign").click()
                page.wait_for_url("**/dashboard/replies?done=assigned*")
                # Then it shows assigned to her, and "mine" shows it alone
                assert ana.locator(".assignee").inner_text() == "assigned to dana"
                page.get_by_label("Mine (dana)").check()
                page.get_by_role("button", name="Show").click()
                page.wait_for_url(lambda address: "mine=true" in address)
                assert page.locator("article[data-reply-id]").evaluate_all(
                    "all => all.map(a => a.dataset.replyId)") == [run["ana"]]

                # When cy's reply is answered with the saved reply picked in its form
                page.goto(f"{system.base_url}/dashboard/replies")
                cy = page.locator(f'article[data-reply-id="{run["cy"]}"]')
                cy.get_by_label("Saved reply").select_option(label="thanks")
                # Then the answer box holds it with its placeholders filled, to edit before sending
                thanks = "Thank you, cy! The launch team"
                assert cy.get_by_label("Answer cy").input_value() == thanks
                assert cy.locator(".left .n").inner_text() == str(5000 - len(thanks))
                cy.get_by_role("button", name="Answer").click()
                page.wait_for_url("**/dashboard/replies?done=answered*")

                def cy_answered() -> bool:
                    page.reload()
                    state = page.locator(f'article[data-reply-id="{run["cy"]}"] [data-answer]').first
                    return state.get_attribute("data-answer") == "answered"

                wait_until(cy_answered, timeout=30, interval=0.5, what="the saved reply published")
                # And the console thread holds each answer once, the saved reply filled
                ours = [x["text"] for x in _replies_lines(system) if x["by_account"]]
                assert ours == ["Yes, and yes: it is usable at 390 px wide.", thanks]
                page.goto(f"{system.base_url}/dashboard/replies?state=unanswered")
                screenshot(page, shots, "replies-assigned")
                page.goto(f"{system.base_url}/dashboard/shares/{run['share']}")
                assert page.locator('#thread [data-answer="answered"]').count() == 2
                assert page.locator(f'#thread [data-reply-id="{run["ana"]}"] .assignee').inner_text() == (
                    "assigned to dana")
                assert "Engagement" in page.locator("dl.facts").inner_text()
                screenshot(page, shots, "share-thread")
                assert guard.refused == []

            with guarded_page(browser, width=390, height=844) as (phone, guard):
                # And on a phone the pages do not scroll sideways, and the form is usable
                _sign_in(phone, system, write)
                for path, name in (("/dashboard/replies", "replies-phone"),
                                   (f"/dashboard/shares/{run['share']}", "share-thread-phone")):
                    phone.goto(f"{system.base_url}{path}")
                    width = phone.evaluate("document.documentElement.scrollWidth")
                    assert width <= 390, f"{path} scrolls sideways on a phone ({width}px)"
                    screenshot(phone, shots, name)
                    if name == "replies-phone":  # the answer box takes the phone's width
                        box = phone.locator(f'article[data-reply-id="{run["ana"]}"] textarea').bounding_box()
                        assert box is not None
                        assert box["width"] >= 300, box
                assert guard.refused == []

            with guarded_page(browser) as (page, guard):
                # And a read token sees the replies without any form
                _sign_in(page, system, read)
                assert page.locator("article[data-reply-id]").count() == 3
                assert page.locator("textarea").count() == 0
                assert page.get_by_role("button", name="Answer").count() == 0
                assert page.get_by_role("button", name="Dismiss").count() == 0
                assert "read token" in page.locator("main").inner_text()
                assert guard.refused == []
