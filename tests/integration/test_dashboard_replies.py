"""The replies page (/dashboard/replies) over real HTTP and a real PostgreSQL: the replies
with their threads, and the forms that answer (a saved reply among them), assign and
dismiss them through the reply service,
with the worker's code publishing on the console channel in this process."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import orjson
import psycopg
import pytest
from psycopg_pool import ConnectionPool

from events.store import EventStore
from followthrough import bootstrap
from followthrough.settings import Settings
from scheduler.services import saved_replies, workspaces
from scheduler.services.shares import ShareService
from tests.support.dashboard import csrf_of, event_count, signed_in
from tests.support.replies import account_on, catch_up, inbox_page, sent_share
from tests.support.servers import serve
from tests.support.shares import WS, Clock, runtime, share_service
from workers.answering import publish_answers
from workers.channels.console import ConsolePublisher
from workers.channels.console_replies import write_reply
from workers.collection import collect_one

# a console account whose answers may be 100 characters (its own limit), looking every second
CONFIG = {"max_characters": 100, "replies": {"cadence": [{"until": "P1D", "every": "PT1S"}]}}


@pytest.fixture
def shares(store: EventStore, pool: ConnectionPool[Any]) -> ShareService:
    return share_service(pool, store, clock=Clock())


@contextmanager
def projecting(store: EventStore, database_url: str) -> Iterator[None]:
    """The shares projection kept up in a thread, as the projector keeps it in a real run."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            catch_up(store, database_url)
            stop.wait(0.05)

    thread = threading.Thread(target=loop, name="projector", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)


def _token(database_url: str, scope: workspaces.Scope, owner: str | None = None) -> str:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return workspaces.create_token(conn, WS, scope, owner=owner)


def _article(html: str, reply_id: UUID | str) -> str:
    found = re.search(rf'<article [^>]*data-reply-id="{reply_id}".*?</article>', html, re.S)
    assert found, f"no article for reply {reply_id}"
    return found.group(0)


def _ids(html: str) -> list[str]:
    return re.findall(r'<article [^>]*data-reply-id="([^"]+)"', html)


def test_the_replies_page_shows_each_reply_with_its_thread_and_answers_it_through_the_service(
    settings: Settings, store: EventStore, pool: ConnectionPool[Any], shares: ShareService,
) -> None:
    url = settings.database_url or ""
    # Given a sent console share, a reply to its post with a link and markup, and a reply to that reply
    rt = runtime(pool, store, ConsolePublisher(settings.console_dir.resolve()), clock=shares.clock)
    account = account_on(pool, "console", CONFIG)
    share_id = sent_share(rt, shares, account, text="We launched the desk!")
    first = write_reply(settings.console_dir, WS, "team", share_id=str(share_id), author="ana", author_name="Ana Lima",
                        text="Docs at https://example.org/desk? <b>bold</b> <script>alert(1)</script>")
    write_reply(settings.console_dir, WS, "team", share_id=str(share_id), author="bo", text="Same question",
                parent_id=first["reply_id"])
    assert collect_one(rt, share_id) == "replies_collected"
    catch_up(store, url)
    write, read = _token(url, "write"), _token(url, "read")
    with projecting(store, url), serve(bootstrap.build_api(settings)) as base_url, \
            signed_in(base_url, write, next_page="/dashboard/replies") as browser:
        # When the person who answers opens the replies page
        page = browser.get("/dashboard/replies")
        assert page.status_code == 200, page.text
        html = page.text
        # Then both replies are there, the newest first, each an article with its id
        ids = _ids(html)
        assert len(ids) == 2
        ana, bo = _article(html, ids[1]), _article(html, ids[0])
        assert ">ana<" in ana
        assert ">bo<" in bo
        # And the text is plain: its link clickable, its markup shown as text, never run
        link = '<a href="https://example.org/desk" rel="nofollow noopener noreferrer">https://example.org/desk</a>?'
        assert link in ana
        assert "&lt;b&gt;bold&lt;/b&gt; &lt;script&gt;alert(1)&lt;/script&gt;" in ana
        assert "<b>bold" not in html
        assert "<script>alert" not in html
        # And bo's reply shows the thread above it: the share's post, then ana's reply
        thread = bo.split('<p class="text reply-text">')[0]
        assert thread.index("We launched the desk!") < thread.index("Ana Lima (ana)") < thread.index("Docs at")
        # And each has its SLA state, an answer form with its label, what the account allows, and Dismiss
        assert 'badge-sla-on_track' in ana
        assert '<span class="name">Ana Lima</span> <span class="handle">ana</span>' in ana  # name, then handle
        assert re.search(rf'<label for="text-{ids[1]}">Answer Ana Lima</label>', ana)
        assert f'<textarea id="text-{ids[1]}" name="text"' in ana
        assert '<span class="n">100</span> characters left on console' in ana
        assert ">Answer</button>" in ana
        assert ">Dismiss</button>" in ana
        # And the page is linked from the navigation
        assert '<a href="/dashboard/replies" aria-current="page">Replies</a>' in html

        # And the filters narrow it (GET parameters), a bad value saying so instead of failing
        def shown(**params: str) -> tuple[int, str]:
            answer = browser.get("/dashboard/replies", params=params)
            assert answer.status_code == 200, answer.text
            return len(_ids(answer.text)), answer.text

        assert shown(owner="alice")[0] == 2
        assert shown(owner="bob")[0] == 0
        assert shown(state="answered")[0] == 0
        assert shown(account_id=str(account.id), share_id=str(share_id))[0] == 2
        count, bad = shown(share_id="not-an-id", state="maybe")
        assert count == 2
        assert "share_id: &#39;not-an-id&#39; is not an id" in bad
        assert "state: one of" in bad

        csrf = csrf_of(html)
        before = event_count(url)
        # When an empty answer, one too long for the account, and one with a bad CSRF value are sent
        empty = browser.post(f"/dashboard/replies/{ids[1]}/answer", data={"csrf": csrf, "text": "  "})
        long = browser.post(f"/dashboard/replies/{ids[1]}/answer", data={"csrf": csrf, "text": "x" * 150})
        forged = browser.post(f"/dashboard/replies/{ids[1]}/answer", data={"csrf": "forged", "text": "Hi"})
        # Then each comes back with its reason on the page, the draft kept, and nothing written
        assert empty.status_code == 422
        assert "The answer must not be empty." in _article(empty.text, ids[1])
        assert long.status_code == 422
        refused = _article(long.text, ids[1])
        assert "The answer is 150 characters long; console allows at most 100." in refused
        assert "x" * 150 + "</textarea>" in refused
        assert '<span class="n">-50</span>' in refused
        assert forged.status_code == 403
        assert "this form has expired" in forged.text
        for answer in (empty, long, forged):
            assert "Traceback" not in answer.text
        assert event_count(url) == before

        # When ana's reply is answered from the page
        answered = browser.post(f"/dashboard/replies/{ids[1]}/answer",
                                data={"csrf": csrf, "text": "Yes: https://example.org/desk", "back": "owner=alice"})
        # Then the browser goes back to the page (POST-redirect-GET), at the reply, with the filter kept
        assert answered.status_code == 303, answered.text
        assert answered.headers["location"] == f"/dashboard/replies?owner=alice&done=answered#reply-{ids[1]}"
        after = browser.get(answered.headers["location"].split("#")[0]).text
        assert 'data-answer="requested"' in _article(after, ids[1])
        assert "Your answer is on its way" in after
        # And once the worker publishes it, the page shows it answered with its url
        assert publish_answers(rt, share_id) == "reply_answered"
        catch_up(store, url)
        done = _article(browser.get("/dashboard/replies").text, ids[1])
        assert 'data-answer="answered"' in done
        assert re.search(r'class="answer-url" href="file://[^"]+"', done)
        assert "<textarea" not in done  # answered: no form
        lines = [orjson.loads(x) for x in (settings.console_dir / WS / "team.replies.jsonl").read_bytes().splitlines()]
        assert [x["text"] for x in lines if x["by_account"]] == ["Yes: https://example.org/desk"]

        # When bo's reply is dismissed, and then answered from a page loaded before
        dismissed = browser.post(f"/dashboard/replies/{ids[0]}/dismiss", data={"csrf": csrf, "reason": "asked above"})
        assert dismissed.status_code == 303
        assert "Dismissed" in _article(browser.get("/dashboard/replies").text, ids[0])
        before = event_count(url)
        late = browser.post(f"/dashboard/replies/{ids[0]}/answer", data={"csrf": csrf, "text": "See above"})
        # Then the page says it was dismissed and the answer not sent; nothing is written
        assert late.status_code == 422
        assert "This reply was dismissed (asked above); the answer was not sent." in _article(late.text, ids[0])
        assert event_count(url) == before
        # And an unknown reply is a clear 404 on the page
        unknown = browser.post("/dashboard/replies/00000000-0000-4000-8000-00000000beef/answer",
                               data={"csrf": csrf, "text": "Hi"})
        assert unknown.status_code == 404
        assert "not in this workspace" in unknown.text

        # And the share page shows its thread, linking to the replies page filtered by the share
        share_page = browser.get(f"/dashboard/shares/{share_id}").text
        assert "Thread: 2 replies" in share_page
        assert 'data-answer="answered"' in share_page
        assert f'href="/dashboard/replies?share_id={share_id}"' in share_page

    # And a read token sees the page without any form
    with serve(bootstrap.build_api(settings)) as base_url, \
            signed_in(base_url, read, next_page="/dashboard/replies") as reader:
        html = reader.get("/dashboard/replies").text
        assert len(_ids(html)) == 2
        assert "<textarea" not in html
        assert ">Dismiss</button>" not in html
        assert "read token" in html
        refused = reader.post(f"/dashboard/replies/{ids[1]}/dismiss", data={"csrf": csrf_of(html)})
        assert refused.status_code == 403


def test_a_reply_is_assigned_from_the_page_found_by_mine_and_answered_with_a_saved_reply_without_script(
    settings: Settings, store: EventStore, pool: ConnectionPool[Any], shares: ShareService,
) -> None:
    url = settings.database_url or ""
    # Given a sent console share (its step owned by alice) with two replies, a saved reply
    # with both placeholders, and a write token belonging to carla
    rt = runtime(pool, store, ConsolePublisher(settings.console_dir.resolve()), clock=shares.clock)
    account = account_on(pool, "console", {"replies": CONFIG["replies"]})
    share_id = sent_share(rt, shares, account, text="We launched the desk!")
    write_reply(settings.console_dir, WS, "team", share_id=str(share_id), author="ana", author_name="Ana Lima",
                text="Is there a guide?")
    write_reply(settings.console_dir, WS, "team", share_id=str(share_id), author="bo", text="Nice!")
    assert collect_one(rt, share_id) == "replies_collected"
    catch_up(store, url)
    with pool.connection() as conn:
        thanks = saved_replies.save(conn, WS, name="thanks", text="Thank you, {author}! The {account} team", by="t")
        saved_replies.save(conn, WS, name="{author}?", text="{{author}}", by="t")
    write = _token(url, "write", owner="carla")
    with projecting(store, url), serve(bootstrap.build_api(settings)) as base_url, \
            signed_in(base_url, write, next_page="/dashboard/replies") as browser:
        html = browser.get("/dashboard/replies").text
        ids = {("ana" if "Is there a guide?" in _article(html, i) else "bo"): i for i in _ids(html)}
        ana = _article(html, ids["ana"])
        # Then each reply says who answers it (alice, the step's owner), offers the saved
        # replies filled for its author, and a form to give it to someone
        assert 'data-assignee="alice"' in ana
        assert f'<option value="{thanks.id}" data-text="Thank you, Ana Lima! The team team">thanks</option>' in ana
        assert 'data-text="{Ana Lima}">{author}?</option>' in ana  # a value is not filled again
        assert ">Assign</button>" in ana
        assert re.search(r'<datalist id="people">.*<option value="alice">.*<option value="carla">', html, re.S)
        csrf = csrf_of(html)
        # And "mine" shows none of them yet: carla owns nothing
        assert _ids(browser.get("/dashboard/replies", params={"mine": "true"}).text) == []
        # When carla gives ana's reply to herself through the Assign form
        before = event_count(url)
        given = browser.post(f"/dashboard/replies/{ids['ana']}/assign",
                             data={"csrf": csrf, "owner": " carla ", "back": "state=unanswered"})
        # Then one event is written, and the page (at the reply, filter kept) shows it assigned to her
        assert given.status_code == 303, given.text
        assert given.headers["location"] == f"/dashboard/replies?state=unanswered&done=assigned#reply-{ids['ana']}"
        assert event_count(url) == before + 1
        after = browser.get(given.headers["location"].split("#")[0]).text
        assert "assigned to <strong>carla</strong>" in _article(after, ids["ana"])
        assert "Reply assigned." in after
        # And "mine" and "assigned to" find it, alice keeps bo's
        assert _ids(browser.get("/dashboard/replies", params={"mine": "true"}).text) == [ids["ana"]]
        assert _ids(browser.get("/dashboard/replies", params={"assignee": "carla"}).text) == [ids["ana"]]
        assert _ids(browser.get("/dashboard/replies", params={"assignee": "alice"}).text) == [ids["bo"]]
        # And the read model the API lists tells the same
        reply = next(r for r in inbox_page(pool) if str(r["id"]) == ids["ana"])
        assert (reply["assignee"], reply["assigned"]) == ("carla", True)
        # And an empty name is refused on the page, nothing written
        before = event_count(url)
        empty = browser.post(f"/dashboard/replies/{ids['bo']}/assign", data={"csrf": csrf, "owner": "  "})
        assert empty.status_code == 422
        assert "The person to assign it to must name a person" in _article(empty.text, ids["bo"])
        assert event_count(url) == before
        # When ana's reply is answered with the saved reply, the answer box left empty (no script)
        answered = browser.post(f"/dashboard/replies/{ids['ana']}/answer",
                                data={"csrf": csrf, "text": "", "saved_reply_id": str(thanks.id)})
        assert answered.status_code == 303, answered.text
        # Then the answer published is the saved reply, its placeholders filled, once
        assert publish_answers(rt, share_id) == "reply_answered"
        lines = [orjson.loads(x) for x in (settings.console_dir / WS / "team.replies.jsonl").read_bytes().splitlines()]
        assert [x["text"] for x in lines if x["by_account"]] == ["Thank you, Ana Lima! The team team"]
        # And text written in the box wins over a saved reply picked; an unknown saved reply is said so
        gone = browser.post(f"/dashboard/replies/{ids['bo']}/answer",
                            data={"csrf": csrf, "text": "", "saved_reply_id": "00000000-0000-4000-8000-00000000beef"})
        assert gone.status_code == 404
        assert "That saved reply is gone" in _article(gone.text, ids["bo"])
        own = browser.post(f"/dashboard/replies/{ids['bo']}/answer",
                           data={"csrf": csrf, "text": "Thanks, bo", "saved_reply_id": str(thanks.id)})
        assert own.status_code == 303, own.text
        assert publish_answers(rt, share_id) == "reply_answered"
        lines = [orjson.loads(x) for x in (settings.console_dir / WS / "team.replies.jsonl").read_bytes().splitlines()]
        assert [x["text"] for x in lines if x["by_account"]] == ["Thank you, Ana Lima! The team team", "Thanks, bo"]
