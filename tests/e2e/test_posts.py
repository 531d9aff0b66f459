"""End to end: one post to three accounts on three channels through `followthrough up`: the
console, the fake Mastodon (in its own process) and the Bluesky development network, with a
text of its own on Bluesky. Each share is published exactly once with its own text, as each
network shows it when asked."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.browser import chromium, guarded_page, screenshot, sign_in
from tests.support.devnet import Devnet, devnet_network, get_record, post_records  # noqa: F401 (the fixture)
from tests.support.fake_mastodon import TOKEN, visible
from tests.support.fake_mastodon_process import fake_mastodon
from tests.support.servers import free_port
from tests.support.system import running, wait_until

pytestmark = pytest.mark.e2e

MASTODON_TOKEN_ENV = "FAKE_MASTODON_TOKEN"
BLUESKY_PASSWORD_ENV = "DEVNET_ALICE_PASSWORD"
PLAN = [{"kind": "check_replies", "after": "PT1H", "owner": "alice"}]


def test_a_post_to_console_mastodon_and_bluesky_publishes_each_share_once_with_its_own_text(
    tmp_path: Path, database_url: str, broker_url: str, queue_prefix: str, devnet: Devnet
) -> None:
    tag = uuid.uuid4().hex[:8]
    text, short = f"We launched the new release today: faster, smaller, yours. [{tag}]", f"We launched! [{tag}]"
    env = {MASTODON_TOKEN_ENV: TOKEN, BLUESKY_PASSWORD_ENV: devnet.account("alice.test").password}
    with fake_mastodon(free_port()) as mastodon, running(
            tmp_path, database_url=database_url, broker_url=broker_url, queue_prefix=queue_prefix,
            extra_env=env) as system:
        token = system.cli("token", "create", "--workspace", "default", "--scope", "write")
        with system.client(token) as api:
            # Given three accounts, one per channel
            def account(name: str, channel: str, config: dict[str, Any]) -> str:
                made = api.post("/v1/accounts", json={"name": name, "channel": channel, "config": config})
                assert made.status_code == 201, made.text
                return str(made.json()["id"])

            console = account("launch", "console", {})
            masto = account("team", "mastodon", {"base_url": mastodon, "access_token_env": MASTODON_TOKEN_ENV,
                                                 "visibility": "public"})
            sky = account("sky", "bluesky", {"service": devnet.pds, "handle": "alice.test",
                                             "app_password_env": BLUESKY_PASSWORD_ENV})
            # When one post goes to all three, with its own text on Bluesky, due in a few seconds
            # (sent twice under one Idempotency-Key, as a client retrying would)
            body = {"text": text, "scheduled_at": (datetime.now(UTC) + timedelta(seconds=3)).isoformat(),
                    "response_plan": PLAN,
                    "accounts": [{"account_id": console}, {"account_id": masto}, {"account_id": sky, "text": short}]}
            first = api.post("/v1/posts", json=body, headers={"Idempotency-Key": f"launch-{tag}"})
            assert first.status_code == 201, first.text
            again = api.post("/v1/posts", json=body, headers={"Idempotency-Key": f"launch-{tag}"})
            assert again.json()["id"] == first.json()["id"]
            post_id = first.json()["id"]

            def all_sent() -> list[dict[str, Any]] | None:
                shares: list[dict[str, Any]] = api.get(f"/v1/posts/{post_id}").json()["shares"]
                return shares if all(s["status"] == "sent" for s in shares) else None

            shares = wait_until(all_sent, timeout=120, interval=0.5, what="the post's three shares to be sent")
            # Then there are three shares, one per account, each with its own text
            assert [(s["channel"], s["text"], s["post_id"]) for s in shares] == [
                ("console", text, post_id), ("mastodon", text, post_id), ("bluesky", short, post_id)]
            _, on_mastodon, on_bluesky = shares
            # And each network holds exactly one post of it, with that text: the console's file
            lines = [line for line in system.console_lines("launch") if tag in line["text"]]
            assert [line["text"] for line in lines] == [text]
            # the fake Mastodon, which counts what it was sent and shows the status
            stats = httpx.get(f"{mastodon}/_fake/stats").json()
            assert {t: n for t, n in stats["by_text"].items() if tag in t} == {text: 1}
            status = httpx.get(f"{mastodon}/api/v1/statuses/{on_mastodon['external_id']}",
                               headers={"Authorization": f"Bearer {TOKEN}"})
            assert status.status_code == 200, status.text
            assert visible(status.json()) == text
            # and alice's repository on the Bluesky network
            records = [r for r in post_records(devnet, "alice.test") if tag in r["value"]["text"]]
            assert [r["value"]["text"] for r in records] == [short]
            assert get_record(devnet, on_bluesky["external_id"]).json()["value"]["text"] == short
        # And each share's dashboard page links to the post's other shares
        with chromium() as browser, guarded_page(browser) as (page, guard):
            sign_in(page, system.base_url, token, f"/dashboard/shares/{shares[0]['id']}")
            others = page.locator("#post li a")
            assert others.all_inner_texts() == ["team (mastodon)", "sky (bluesky)"]
            screenshot(page, tmp_path / "screenshots", "share-post")
            others.nth(1).click()
            page.wait_for_url(f"{system.base_url}/dashboard/shares/{on_bluesky['id']}")
            assert page.locator("blockquote.text").inner_text() == short
            assert page.locator("#post li a").all_inner_texts() == ["launch (console)", "team (mastodon)"]
            assert guard.refused == []
