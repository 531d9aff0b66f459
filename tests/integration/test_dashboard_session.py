"""The dashboard's sign-in, session cookie and forms over real HTTP: who may see, who may act."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest

from followthrough import bootstrap
from followthrough.settings import Settings
from scheduler.api.dashboard import session
from scheduler.services import workspaces
from tests.support.dashboard import csrf_of, event_count, signed_in
from tests.support.database import connect
from tests.support.servers import serve


@pytest.fixture
def base_url(settings: Settings) -> Iterator[str]:
    with serve(bootstrap.build_api(settings)) as url:
        yield url


def _token(database_url: str, scope: workspaces.Scope) -> str:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return workspaces.create_token(conn, "acme", scope)


def test_a_page_without_a_session_sends_the_browser_to_sign_in(base_url: str) -> None:
    # Given no cookie; When a dashboard page is asked for
    answer = httpx.get(f"{base_url}/dashboard/inbox?x=1", follow_redirects=False)
    # Then the browser is sent to sign in, coming back to that page afterwards
    assert answer.status_code == 303
    assert answer.headers["location"] == "/dashboard/signin?next=%2Fdashboard%2Finbox%3Fx%3D1"


def test_signing_in_sets_an_httponly_strict_expiring_cookie_that_is_not_the_token(
    base_url: str, database_url: str
) -> None:
    # Given a read token
    token = _token(database_url, "read")
    # When it signs in
    answer = httpx.post(f"{base_url}/dashboard/signin", data={"token": token, "next": "/dashboard/health"})
    # Then the answer redirects with a session cookie: HttpOnly, SameSite=Strict, scoped and expiring
    assert answer.status_code == 303
    assert answer.headers["location"] == "/dashboard/health"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{session.COOKIE}=")
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/dashboard", f"Max-Age={session.LIFETIME_SECONDS}"):
        assert attribute.lower() in cookie.lower(), cookie
    assert token not in cookie


def test_a_wrong_token_or_a_foreign_next_page_gets_nothing(base_url: str, database_url: str) -> None:
    # When an unknown token signs in
    wrong = httpx.post(f"{base_url}/dashboard/signin", data={"token": "ft_nope"})
    # Then the form comes back with the reason, and no cookie
    assert wrong.status_code == 401
    assert "unknown or revoked" in wrong.text
    assert "set-cookie" not in wrong.headers
    # And a next page on another site is not followed (no open redirect)
    token = _token(database_url, "read")
    away = httpx.post(f"{base_url}/dashboard/signin", data={"token": token, "next": "//evil.example/x"})
    assert away.headers["location"] == "/dashboard"


def test_a_forged_expired_or_revoked_session_is_sent_back_to_sign_in(base_url: str, database_url: str) -> None:
    token = _token(database_url, "read")
    with signed_in(base_url, token) as client:
        good = client.cookies[session.COOKIE]
        page = client.get("/dashboard")
        assert page.status_code == 200
        # (a page is never cached, framed, or allowed a script or an asset from elsewhere)
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["x-frame-options"] == "DENY"
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        # When the signature is altered, or the expiry moved on
        token_id, expires, signature = good.split(".")
        forged = [f"{token_id}.{expires}.{signature[:-2]}AA", f"{token_id}.{int(expires) + 3600}.{signature}"]
        for value in forged:
            client.cookies.set(session.COOKIE, value)
            # Then it is not a session
            assert client.get("/dashboard").status_code == 303
        # And a session issued long ago has expired
        with connect(database_url) as conn:
            found = workspaces.session_key(conn, UUID(token_id))
        assert found is not None
        client.cookies.set(session.COOKIE, session.issue(*found, now=time.time() - 2 * session.LIFETIME_SECONDS))
        assert client.get("/dashboard").status_code == 303
        # And revoking the token ends its sessions
        client.cookies.set(session.COOKIE, good)
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("UPDATE api_tokens SET revoked_at = now()")
        assert client.get("/dashboard").status_code == 303


def test_forms_need_the_pages_csrf_value_the_same_origin_and_a_write_token(
    base_url: str, database_url: str
) -> None:
    task = "00000000-0000-4000-8000-000000000001"
    before = event_count(database_url)
    with signed_in(base_url, _token(database_url, "write")) as writer:
        csrf = csrf_of(writer.get("/dashboard/inbox").text)
        # When a form comes without the CSRF value, or from another site
        missing = writer.post(f"/dashboard/inbox/{task}/complete", data={})
        foreign = writer.post(f"/dashboard/inbox/{task}/complete", data={"csrf": csrf},
                              headers={"Origin": "https://evil.example"})
        # Then it is refused and nothing is written
        assert missing.status_code == 403
        assert "expired" in missing.text
        assert foreign.status_code == 403
        # And with the value, the action runs (here: an unknown task, said on the page)
        unknown = writer.post(f"/dashboard/inbox/{task}/complete", data={"csrf": csrf})
        assert unknown.status_code == 303
        assert "error=" in unknown.headers["location"]
    with signed_in(base_url, _token(database_url, "read")) as reader:
        csrf = csrf_of(reader.get("/dashboard/inbox").text)  # the sign-out form's
        # When a read session sends a valid form that acts
        acting = reader.post(f"/dashboard/inbox/{task}/complete", data={"csrf": csrf})
        # Then it is refused: reading tokens only see
        assert acting.status_code == 403
        assert "read token" in acting.text
    assert event_count(database_url) == before


def test_pages_answer_bad_input_with_a_message_never_a_500(base_url: str, database_url: str) -> None:
    with signed_in(base_url, _token(database_url, "read")) as client:
        # When the period is not a date, or a share does not exist
        bad_period = client.get("/dashboard", params={"preset": "custom", "from": "nope", "to": "2026-01-01"})
        reversed_period = client.get("/dashboard/shares", params={"from": "2026-02-01", "to": "2026-01-01"})
        missing: Any = client.get("/dashboard/shares/00000000-0000-4000-8000-000000000009")
        # Then each page says what was wrong
        assert bad_period.status_code == 200
        assert "must be dates" in bad_period.text
        assert "no tasks due" in bad_period.text  # the empty workspace's rate: no rate, not 0 %
        assert reversed_period.status_code == 200
        assert "must not be before" in reversed_period.text
        assert missing.status_code == 404
        assert "No such share" in missing.text


def test_a_share_is_settled_from_its_page_and_a_refused_change_is_said_on_the_page(
    base_url: str, database_url: str
) -> None:
    # Given a planned share (planned through the API) and a write session
    token = _token(database_url, "write")
    api = httpx.Client(base_url=base_url, timeout=10, headers={"Authorization": f"Bearer {token}"})
    with api, signed_in(base_url, token) as writer:
        account = api.post("/v1/accounts", json={"name": "main", "channel": "console"}).json()["id"]
        share = api.post("/v1/shares", json={
            "account_id": account, "text": "Later",
            "scheduled_at": (datetime.now(UTC) + timedelta(days=300)).isoformat(),
            "response_plan": [{"kind": "check_replies", "after": "PT1H", "owner": "alice"}]}).json()["id"]
        page = writer.get(f"/dashboard/shares/{share}")
        assert page.status_code == 200
        csrf = csrf_of(page.text)
        # When it is marked sent (it is not held: refused) and then cancelled from its page
        refused = writer.post(f"/dashboard/shares/{share}/settle",
                              data={"csrf": csrf, "action": "mark-sent", "url": "https://example.social/@a/1"})
        cancelled = writer.post(f"/dashboard/shares/{share}/settle",
                                data={"csrf": csrf, "action": "cancel", "reason": "not needed"})
        # Then the refusal comes back to the page as a message, and the cancel is done
        assert refused.status_code == 303
        assert "error=" in refused.headers["location"]
        assert writer.get(refused.headers["location"]).status_code == 200
        assert cancelled.headers["location"] == f"/dashboard/shares/{share}?done=cancelled"
        assert api.get(f"/v1/shares/{share}").json()["status"] == "cancelled"
        shown = writer.get(cancelled.headers["location"]).text
        assert "Share cancelled." in shown
        assert "ShareCancelled" in shown


def test_the_weekly_chart_takes_each_weeks_rate_from_the_report_by_week(base_url: str, database_url: str) -> None:
    # Given tasks due in two ISO weeks: 23 Nov one on time and three overdue; 30 Nov two on time
    with connect(database_url) as conn:
        for day, on_time, overdue in (("2026-11-23", 1, 0), ("2026-11-27", 0, 3), ("2026-11-30", 2, 0)):
            due = datetime.fromisoformat(f"{day}T12:00:00+00:00")
            for done in [True] * on_time + [False] * overdue:
                conn.execute(
                    "INSERT INTO rm_response_tasks (task_id, share_id, workspace_id, account_id, account_name,"
                    " channel, kind, owner, after_seconds, status, recorded_at, due_at, completed_at)"
                    " VALUES (gen_random_uuid(), gen_random_uuid(), 'acme', gen_random_uuid(), 'launch', 'console',"
                    " 'check_replies', 'alice', 3600, %s, now(), %s, %s)",
                    ("done" if done else "open", due, due - timedelta(minutes=1) if done else None))
    # When the overview is shown week by week
    with signed_in(base_url, _token(database_url, "read")) as client:
        page = client.get("/dashboard", params={"from": "2026-11-23", "to": "2026-12-06", "by": "week"})
    # Then each week's row has its rate over its summed counts (the database's followthrough_rate)
    assert page.status_code == 200, page.text
    rows = re.findall(r'<th scope="row">(week of [^<]+)</th>(?:(?!</tr>).)*?data-rate="([^"]+)"', page.text, re.S)
    assert rows == [("week of 23 Nov", "0.2500"), ("week of 30 Nov", "1.0000")]
