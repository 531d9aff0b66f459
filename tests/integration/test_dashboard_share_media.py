"""The share page (/dashboard/shares/{id}) of a thread with media, in a real browser (Debian's
chromium through Playwright) over real HTTP and a real PostgreSQL: each image loads from the
dashboard's own media route with the share's alt ("" for the decorative one) and a visible
"Alt:" under it, under the part that carries it; the thread's parts in order, each with its
status, address and warning; the share's warning and language. The media route serves the
session's workspace only; the Shares list and the calendar mark the thread and its images
(every part's counted).
Screenshots: share-media-thread, share-media-thread-390."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg_pool import ConnectionPool

from events.store import EventStore
from followthrough import bootstrap
from followthrough.settings import Settings
from scheduler.api.media import CONTENT_CACHE
from scheduler.services import workspaces
from tests.support.api import bearer
from tests.support.browser import chromium, guarded_page, screenshot, sign_in
from tests.support.dashboard import signed_in
from tests.support.fake_channel import FakeChannel
from tests.support.media import png, uploaded
from tests.support.planner import publish_at
from tests.support.replies import caught_up
from tests.support.servers import serve
from tests.support.shares import WS

PARTS = ["1/ Our spring collection is out today: ten pieces, all made within 200 km of the shop.",
         "2/ The linen shirts come in four colours. Photos below, sizes on https://shop.example/spring",
         "3/ Questions? Answer this thread and the team replies the same day."]
ALT = "Four linen shirts on a rail, in sand, sage, navy and white, in the shop's window light."
READ_BACK = "() => [...document.querySelectorAll('.media img')].map(i => [i.naturalWidth, i.alt])"


def _plan(client: httpx.Client, auth: dict[str, str]) -> tuple[str, list[dict[str, Any]]]:
    """A three-part thread on a console account: a decorative banner as the share's media (the
    first part's), a photo on the second part."""
    account = client.post("/v1/accounts", json={"name": "shop", "channel": "console"}, headers=auth)
    assert account.status_code == 201, account.text
    photo = uploaded(client, auth, png(640, 480, (90, 120, 160)), alt="library alt, replaced by the share's")
    banner = uploaded(client, auth, png(960, 240, (230, 200, 120)), alt="a banner")
    body = {"account_id": account.json()["id"], "language": "en-GB",
            "content_warning": {"text": "prices inside", "label": None},
            "parts": [{"text": PARTS[0]}, {"text": PARTS[1], "content_warning": {"text": "flash photos"},
                                           "media": [{"id": photo["id"], "alt": ALT}]},
                      {"text": PARTS[2]}],
            "media": [{"id": banner["id"], "alt": "", "decorative": True}],
            "response_plan": [{"kind": "check_replies", "after": "PT1H", "owner": "alice"}]}
    planned = client.post("/v1/shares", json=body, headers=auth)
    assert planned.status_code == 201, planned.text
    return str(planned.json()["id"]), [photo, banner]


def test_the_share_page_shows_a_threads_parts_and_its_images_with_their_alt(
    settings: Settings, pool: ConnectionPool[Any], store: EventStore, database_url: str, tmp_path: Path,
) -> None:
    shots = tmp_path / "screenshots"
    auth = bearer(database_url, WS)
    app = bootstrap.build_api(settings)
    with serve(app, **bootstrap.API_SERVER_OPTIONS) as base_url, chromium() as browser:
        with httpx.Client(base_url=base_url, timeout=20) as client:
            share_id, (photo, banner) = _plan(client, auth)
        # Given the first two parts are out and the third failed for good
        outcome = publish_at(pool, store, share_id, datetime.now(UTC), FakeChannel(script=["ok", "ok", "permanent"]))
        assert outcome in ("share_failed", "share_abandoned")
        caught_up(store, database_url)
        with psycopg.connect(database_url, autocommit=True) as conn:
            token = workspaces.create_token(conn, WS, "read", label="manager")
        page_path = f"/dashboard/shares/{share_id}"
        for width, name in ((1280, "share-media-thread"), (390, "share-media-thread-390")):
            with guarded_page(browser, width=width, height=900) as (page, guard):
                # When the social-media manager opens the share's page
                sign_in(page, base_url, token, page_path)
                page.wait_for_load_state("load")
                # Then both images load from the dashboard, the banner with "", the photo with the share's alt
                assert page.evaluate(READ_BACK) == [[960, ""], [640, ALT]]
                # each under the part that carries it: the banner the first, the photo the second, none the third
                parts = page.locator("ol.parts > li.part")
                assert [parts.nth(i).locator(".media img").count() for i in range(3)] == [1, 1, 0]
                assert page.locator(".media").count() == 2
                banner_img, photo_img = parts.nth(0).locator(".media img"), parts.nth(1).locator(".media img")
                assert photo_img.get_attribute("src") == f"/dashboard/media/{photo['id']}/content"
                assert (photo_img.get_attribute("width"), photo_img.get_attribute("height")) == ("640", "480")
                assert banner_img.get_attribute("alt") == ""
                assert f"Alt: {ALT}" in parts.nth(1).locator(".media figcaption").inner_text()
                assert "Decorative" in parts.nth(0).locator(".media figcaption").inner_text()
                assert "Media of part 2 (1)" in parts.nth(1).inner_text()
                # And the parts in order, each with its status; the sent ones with their address and time
                assert parts.count() == 3
                assert [parts.nth(i).locator("blockquote").inner_text() for i in range(3)] == PARTS
                assert [parts.nth(i).get_attribute("data-status") for i in range(3)] == ["sent", "sent", "failed"]
                assert parts.nth(0).locator("a.part-url").count() == 1
                assert parts.nth(2).locator("a.part-url").count() == 0
                assert "sent" in parts.nth(0).locator(".line").inner_text()
                # a link in a part's text is clickable; the second part's own warning shows above it
                assert parts.nth(1).locator("blockquote a").get_attribute("href") == "https://shop.example/spring"
                assert "flash photos" in parts.nth(1).locator(".cw").inner_text()
                # And the share's warning and language
                assert "prices inside" in page.locator("#content-warning").inner_text()
                assert page.locator("#language").inner_text() == "en-GB"
                assert page.evaluate("document.documentElement.scrollWidth") <= width
                screenshot(page, shots, name)
                assert guard.refused == []

        # The media route: the bytes to the share's workspace, cached as the API's; another workspace: 404
        with signed_in(base_url, token) as mine:
            # (and the Shares list and the calendar mark the thread and its images beside the excerpt)
            for listing in ("/dashboard/shares", "/dashboard/calendar"):
                html = mine.get(listing).text
                item = html[html.index(f'data-share="{share_id}"'):]
                assert "thread of 3 · 2 images" in item[:item.index("</li>")], listing
            # the page lets images and video come from the dashboard itself, and from nowhere else
            policy = dict(d.strip().split(" ", 1) for d in mine.get(page_path).headers["content-security-policy"]
                          .split(";"))
            assert (policy["img-src"], policy["media-src"], policy["default-src"]) == ("'self' data:", "'self'",
                                                                                      "'none'")
            answer = mine.get(f"/dashboard/media/{banner['id']}/content")
            assert answer.status_code == 200
            assert answer.headers["content-type"] == "image/png"
            assert answer.headers["cache-control"] == CONTENT_CACHE
            assert mine.get(f"/dashboard/media/{banner['id']}/content",
                            headers={"If-None-Match": answer.headers["etag"]}).status_code == 304
        with psycopg.connect(database_url, autocommit=True) as conn:
            workspaces.ensure_workspace(conn, "elsewhere")
            other = workspaces.create_token(conn, "elsewhere", "write", label="other")
        with signed_in(base_url, other) as theirs:
            refused = theirs.get(f"/dashboard/media/{photo['id']}/content")
            assert refused.status_code == 404
            assert refused.content != answer.content
            assert theirs.get(page_path).status_code == 404
