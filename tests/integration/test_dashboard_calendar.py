"""The shares calendar (/dashboard/calendar) in a real browser (Debian's chromium through
Playwright) over real HTTP and a real PostgreSQL: a week and a month of shares in every
state, in the workspace's time zone (Europe/Berlin), each state told by a word and a shape,
moved through with previous / next / today, filtered by account, each share a link to its
page; on a phone (390 px) the days stack. Screenshots: calendar-week, calendar-month,
calendar-390."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import psycopg
from playwright.sync_api import Page
from psycopg_pool import ConnectionPool

from events.store import EventStore
from followthrough import bootstrap
from followthrough.settings import Settings
from scheduler.domain import planner
from scheduler.services import accounts, calendars, workspaces
from scheduler.services.shares import PlanShare, ShareService
from tests.support.browser import chromium, guarded_page, screenshot
from tests.support.dashboard import signed_in
from tests.support.fake_channel import FakeChannel
from tests.support.planner import publish_at
from tests.support.replies import caught_up
from tests.support.servers import serve
from tests.support.shares import PLAN, WS, make_account

BERLIN = ZoneInfo("Europe/Berlin")
WORKDAY = [["09:00", "17:00"]]
# The approval states come from the approval work: the page shows whatever status the read
# model holds, so the test sets them (and one status this page has never heard of) on real shares' rows.
SET_BY_HAND = ("in_review", "review_overdue", "rejected", "paused_by_network")


def _at(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), BERLIN)


def _seed(pool: ConnectionPool[Any], store: EventStore, shares: ShareService, database_url: str,
          monday: date) -> dict[str, Any]:
    """A week of three accounts' shares from ``monday`` in Berlin, one in every state, and a
    busy Friday (more than a month's day shows)."""
    calendars.put(store, WS, "default", time_zone="Europe/Berlin", week=dict.fromkeys(("mon", "tue", "wed", "thu",
                  "fri"), WORKDAY), holidays=[], actor="test")
    launch = make_account(pool, name="launch")
    support = make_account(pool, name="support", late_policy="hold", max_lateness_seconds=60)
    news = make_account(pool, name="newsroom")

    def plan(account: Any, text: str, at: datetime) -> UUID:
        return shares.plan(WS, PlanShare(account_id=account.id, text=text, scheduled_at=at, response_plan=PLAN),
                           actor="test").share_id

    tue, wed, thu, fri, sat, sun = (monday + timedelta(days=i) for i in range(1, 7))
    ids: dict[str, Any] = {
        "sent": plan(launch, "Monday kick-off: what ships this week, in three lines.", _at(monday, 9)),
        "sent_late": plan(news, "Release notes for 4.2 are up: faster sync, dark mode and a new export.",
                          _at(monday, 12, 30)),
        "failed": plan(launch, "Behind the scenes video from the office, part two.", _at(tue, 10)),
        "held": plan(support, "Support hours change over the holidays: here is when we answer.", _at(tue, 15)),
        "in_review": plan(launch, "Customer story: how a five-person team answers every reply within a day.",
                          _at(wed, 11)),
        "review_overdue": plan(news, "Press release: the partnership with the city library.", _at(thu, 8, 30)),
        "planned": plan(support, "Reminder: the webinar on answering replies starts at 16:00 today.", _at(thu, 14)),
        "rejected": plan(launch, "Black Friday all-caps shouting that legal said no to.", _at(fri, 9)),
        "paused_by_network": plan(news, "Weekend reading list: five posts on community work.", _at(sat, 10)),
        "cancelled": plan(launch, "A poll we dropped.", _at(sun, 18)),
        "friday": [plan(launch if i % 2 else news, f"Friday thread, part {i + 1} of 5: what we learnt this week.",
                        _at(fri, 11 + i)) for i in range(5)],
        "next_week": plan(launch, "Next Monday's teaser.", _at(monday + timedelta(days=7), 9)),
        "accounts": {"launch": str(launch.id), "support": str(support.id), "newsroom": str(news.id)},
    }
    assert publish_at(pool, store, ids["sent"], _at(monday, 9)) == "share_sent"
    assert publish_at(pool, store, ids["sent_late"], _at(monday, 12, 47)) == "share_sent"
    assert publish_at(pool, store, ids["failed"], _at(tue, 10), FakeChannel(script=["permanent"])) in (
        "share_failed", "share_abandoned")
    assert publish_at(pool, store, ids["held"], _at(tue, 15, 10)) == "share_held"
    shares.cancel(WS, ids["cancelled"], reason="dropped", actor="test")
    caught_up(store, database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        for status in SET_BY_HAND:
            conn.execute("UPDATE rm_shares SET status = %s WHERE share_id = %s", (status, ids[status]))
    return ids


def _sign_in(page: Page, base_url: str, token: str, target: str) -> None:
    page.goto(f"{base_url}{target}")
    assert "/dashboard/signin" in page.url
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}{target}")


def _status(page: Page, share_id: Any) -> str:
    return page.locator(f'li[data-share="{share_id}"]').get_attribute("data-status") or ""


def test_the_week_and_the_month_show_every_state_by_word_and_shape_and_lead_to_each_share(
    settings: Settings, pool: ConnectionPool[Any], store: EventStore, shares: ShareService, database_url: str,
    tmp_path: Path,
) -> None:
    shots = tmp_path / "screenshots"
    # Given a week of shares in every state, from next week's Monday (Berlin): the whole week
    # ahead, whatever the day (a share cannot be planned in the past)
    monday = planner.monday_of(planner.local_day(datetime.now(UTC), BERLIN)) + timedelta(days=7)
    ids = _seed(pool, store, shares, database_url, monday)
    with psycopg.connect(database_url, autocommit=True) as conn:
        token = workspaces.create_token(conn, WS, "read", label="planner")
    app = bootstrap.build_api(settings)
    week_url = f"/dashboard/calendar?view=week&date={monday.isoformat()}"
    with serve(app, **bootstrap.API_SERVER_OPTIONS) as base_url, chromium() as browser:
        with guarded_page(browser, width=1440, height=900) as (page, guard):
            # When a social-media manager opens the calendar's week
            _sign_in(page, base_url, token, week_url)
            # Then each day of the week, Monday first, has its heading, in Berlin's time zone
            days = page.locator(".cal-week > li.cal-day")
            assert days.count() == 7
            assert days.nth(0).locator("h3").inner_text().startswith(f"Monday {monday.day} ")
            assert days.nth(6).locator("h3").inner_text().startswith("Sunday")
            assert "Times in Europe/Berlin" in page.locator("footer").inner_text()
            # And every share is there with its own state, told by a word and an icon, not colour alone
            words = {"sent": "Sent", "sent_late": "Sent", "held": "Held", "in_review": "In review",
                     "review_overdue": "Review overdue", "planned": "Planned", "rejected": "Rejected",
                     "paused_by_network": "Paused by network", "cancelled": "Cancelled"}
            for key, word in words.items():
                item = page.locator(f'.cal-week li[data-share="{ids[key]}"]')
                assert item.locator(".cal-state").inner_text().strip().endswith(word), key
                assert item.locator(".cal-icon").inner_text().strip(), key
            assert _status(page, ids["failed"]) in ("failed", "abandoned")
            assert _status(page, ids["in_review"]) == "in_review"
            # at the local time it was planned for, with its account and text
            sent = page.locator(f'.cal-week li[data-share="{ids["sent_late"]}"]')
            assert sent.locator("time").inner_text() == "12:30"
            assert "newsroom" in sent.inner_text()
            assert "sent 12:47" in sent.inner_text()
            assert "Release notes for 4.2" in sent.inner_text()
            # the states differ in their borders, not only in their colours
            styles = {page.locator(f'.cal-week li[data-share="{ids[k]}"]').evaluate(
                "e => getComputedStyle(e).borderTopStyle") for k in ("planned", "sent", "held", "review_overdue")}
            assert len(styles) == 4, styles
            assert page.locator(f'.cal-week li[data-share="{ids["next_week"]}"]').count() == 0
            screenshot(page, shots, "calendar-week")

            # When they filter by one account, only its shares remain
            page.get_by_label("Account").select_option(label="support (console)")
            page.get_by_role("button", name="Show").click()
            page.wait_for_url("**account_id=*")
            shown = {page.locator(".cal-week li.cal-share").nth(i).get_attribute("data-share")
                     for i in range(page.locator(".cal-week li.cal-share").count())}
            assert shown == {str(ids["held"]), str(ids["planned"])}

            # When they move to the next week and back
            page.goto(f"{base_url}{week_url}")
            heading = page.locator("#cal-title").inner_text()
            page.get_by_role("link", name="Next week").click()
            assert page.locator(f'li[data-share="{ids["next_week"]}"]').count() == 1
            page.get_by_role("link", name="Previous week").click()
            assert page.locator("#cal-title").inner_text() == heading
            page.get_by_role("link", name="Today", exact=True).click()
            assert page.locator(".cal-day.is-today .cal-today").count() == 1

            # When they open the month
            page.goto(f"{base_url}{week_url}")
            page.get_by_role("link", name="Month", exact=True).click()
            page.wait_for_url("**view=month*")
            # Then it is six whole weeks from a Monday, with the week's shares on their days
            cells = page.locator(".cal-month-days > li.cal-day")
            assert cells.count() == 42
            assert page.locator(f'.cal-month-days li[data-share="{ids["review_overdue"]}"]').count() == 1
            # and a busy Friday shows four and links to the rest in its week
            friday = page.locator(".cal-month-days > li.cal-day", has=page.locator(
                f'time[datetime="{(monday + timedelta(days=4)).isoformat()}"]'))
            if planner.grid("month", monday, BERLIN).in_month(monday + timedelta(days=4)):
                assert friday.locator("li.cal-share").count() == 4
                assert "+2 more" in friday.locator(".cal-more").inner_text()
            screenshot(page, shots, "calendar-month")

            # When they follow a share's link, its page opens
            page.locator(f'li[data-share="{ids["held"]}"] a').first.click()
            page.wait_for_url(f"**/dashboard/shares/{ids['held']}")
            assert "Support hours change" in page.locator("main").inner_text()
            assert guard.refused == []

        with guarded_page(browser, width=390, height=844) as (page, guard):
            # When they look at the week on a phone
            _sign_in(page, base_url, token, week_url)
            # Then the days stack, one under another, and nothing runs off the screen
            first, second = (page.locator(".cal-week > li.cal-day").nth(i).bounding_box() for i in (0, 1))
            assert first is not None
            assert second is not None
            assert first["x"] == second["x"]
            assert second["y"] > first["y"]
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            screenshot(page, shots, "calendar-390")
            assert guard.refused == []


def test_a_bad_day_or_another_workspaces_account_is_said_and_the_calendar_still_shows(
    settings: Settings, pool: ConnectionPool[Any], store: EventStore, shares: ShareService, database_url: str,
) -> None:
    # Given a share this week in acme, and an account of another workspace
    launch = make_account(pool, name="launch")
    now = datetime.now(UTC)
    mine = shares.plan(WS, PlanShare(account_id=launch.id, text="This week's post", scheduled_at=now,
                                     response_plan=PLAN), actor="test").share_id
    caught_up(store, database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        token = workspaces.create_token(conn, WS, "read")
        workspaces.ensure_workspace(conn, "globex")
        theirs = accounts.create(conn, workspace_id="globex", name="theirs", channel="console", config={},
                                 default_response_plan=None, late_policy="send", max_lateness_seconds=None)
    with serve(bootstrap.build_api(settings), **bootstrap.API_SERVER_OPTIONS) as base_url, \
            signed_in(base_url, token) as client:
        # When the page is asked for a day that is none and for globex's account
        page = client.get("/dashboard/calendar", params={"date": "2026-02-30", "account_id": str(theirs.id),
                                                         "view": "fortnight"})
        # Then it says so and shows this week (UTC: no business calendar) of every account of acme's
        assert page.status_code == 200, page.text
        assert "Date must be a day (YYYY-MM-DD): showing today." in page.text
        assert "That account is not in this workspace: showing every account." in page.text
        assert "theirs" not in page.text
        assert 'class="cal-week"' in page.text
        assert "Times in UTC" in page.text
        if planner.grid("week", datetime.now(UTC).date(), UTC).start <= now:  # (not just past Sunday midnight)
            assert f'data-share="{mine}"' in page.text
        # And a month at the calendar's end is refused the same way
        end = client.get("/dashboard/calendar", params={"view": "month", "date": "9999-12-31"})
        assert "Date must be in the years" in end.text
        # And a month shows 42 days
        month = client.get("/dashboard/calendar", params={"view": "month", "date": "2027-02-10"})
        assert month.text.count('<li class="cal-day') == 42
