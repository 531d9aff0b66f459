"""The replies page's cards, written in Python (``cards.py``), are the markup the template
wrote (``reply_cards_reference.html``, the loop replies.html had), byte for byte, for every
branch: author and links, SLA, thread (missing parent, answered above), our answer in each
status, dismissed, a refused form with its draft, saved replies, and a read token's page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from uuid import UUID, uuid4

import pytest
from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup
from markupsafe import escape as markup_escape

from scheduler.api.dashboard import cards, filters
from scheduler.api.dashboard.cards import reply_cards
from scheduler.api.dashboard.desk import Filters
from scheduler.api.figures import when
from scheduler.domain.limits import TextLimit, limit_for

TEMPLATES = Path(__file__).resolve().parents[2] / "scheduler" / "api" / "dashboard" / "templates"
AT = datetime(2026, 12, 6, 15, 20, 30, 442995, tzinfo=UTC)
SHARE = UUID("db5f4acc-6f46-43de-8963-845339af628b")


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader([TEMPLATES, Path(__file__).parent]), autoescape=True)
    filters.install(env)
    return env


def _row(**changes: Any) -> dict[str, Any]:
    row = {"id": uuid4(), "share_id": SHARE, "account_id": uuid4(), "account_name": "Acme & co", "channel": "console",
           "network_reply_id": "r10", "author": "person94", "author_name": None,
           "text": "Reply <10>: see https://example.org/10.", "url": "file:///bench/x#r10", "received_at": AT,
           "collected_at": AT, "state": "unanswered", "answer_text": None, "answer_status": None, "answer_error": None,
           "answer_url": None, "answered_at": None, "answered_natively": False, "dismissed_at": None,
           "dismiss_reason": None, "parent_id": None, "owner": "owner2", "assignee": "owner2", "assigned": False,
           "post_text": "Benchmark post number 12", "post_url": "file:///bench/post", "post_sent_at": AT,
           "sla_due_at": AT + timedelta(hours=1), "sla": "breached", "thread": [], "author_url": None,
           "handle": "person94", "limit": limit_for("console", {}), "draft": "", "left": 5000, "saved": []}
    return row | changes


def _above(author: str, **changes: Any) -> dict[str, Any]:
    return {"share_id": SHARE, "network_reply_id": f"n-{author}", "parent_id": None, "author": author,
            "author_name": None, "text": f"I am {author} https://a.example/?x=1&y=2", "url": None, "received_at": AT,
            "state": "answered", "answer_text": None, "answer_status": None, "answer_url": None,
            "answered_natively": False} | changes


ROWS = [
    _row(),
    _row(channel="bluesky", author="ana.bsky.social", author_name='Ana "<b>"', handle="@ana.bsky.social",
         author_url="https://bsky.app/profile/ana.bsky.social", assigned=True, assignee="b<o>b", sla="at_risk",
         sla_due_at=None, url=None, limit=limit_for("bluesky", {})),
    _row(sla=None, assignee=None, parent_id="n-c", post_url=None, post_text=None, text=None, thread=[
        {"missing": True, "network_reply_id": "n-0"},
        _above("a", author_name="A <a>", answer_text="Thanks https://t.example/1", answer_status="answered",
               answer_url="https://t.example/1"),
        _above("b", answer_text="We <3 you", answer_status=None),
        _above("c", answered_natively=True),
        _above("d", answer_text="retry", answer_status="failed"),
    ]),
    _row(answer_status="failed", answer_error="network said <no>", draft='<x> & "y" isn\'t', left=-3,
         limit=TextLimit(300, "graphemes", url_weight=None),
         saved=[(uuid4(), "Thanks <all>", 'Thanks "person94" & co'), (uuid4(), "Later", "")]),
    _row(answer_status="requested", answer_text="On its way"),
    _row(state="answered", sla=None, answer_status="answered", answer_text="Done: https://x.example",
         answer_url="https://x.example/1"),
    _row(state="answered", sla=None, answered_natively=True),
    _row(state="dismissed", sla=None, dismissed_at=AT, dismiss_reason="spam <really>"),
    _row(state="dismissed", sla=None, dismissed_at=AT),
]


@pytest.mark.parametrize("can_write", [True, False])
@pytest.mark.parametrize("refused", [None, 3, "elsewhere"])
def test_the_cards_are_the_templates_markup(can_write: bool, refused: int | str | None) -> None:
    session = SimpleNamespace(csrf="tok<en>&", principal=SimpleNamespace(can_write=can_write))
    chosen = Filters(state="unanswered", owner="a&b <c>")
    failed = None if refused is None else {
        "id": ROWS[refused]["id"] if isinstance(refused, int) else uuid4(), "action": "answer",
        "error": "The answer is <too> long."}
    expected = _env().get_template("reply_cards_reference.html").render(
        replies=ROWS, session=session, filters=chosen, failed=failed)
    written = reply_cards(ROWS, session.csrf if can_write else "", chosen.query(), can_write, failed)
    assert str(written) == expected
    assert ('id="error-' in expected) == (refused == 3)
    assert ("<form" in expected) == can_write


def test_no_reply_no_card() -> None:
    assert str(reply_cards([], "t", "", True)) == ""


@pytest.mark.parametrize("moment", [
    AT, AT.replace(microsecond=0), datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
    datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC), "2026-12-06T15:20:30.5+01:00",
])
def test_a_time_reads_as_strftime_wrote_it(moment: datetime | str) -> None:
    parsed = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    assert when(moment) == f"{parsed:%Y-%m-%d %H:%M:%S} UTC"
    assert when(parsed.replace(tzinfo=None)) == str(parsed.replace(tzinfo=None))
    assert when(None) == "\u2013"


@pytest.mark.parametrize("value", ["a & <b> \"c\" 'd'", "", 5000, None, UUID(int=7), Markup("<em>x</em>"), "é·←"])
def test_a_value_is_escaped_as_markupsafe_escapes_it(value: object) -> None:
    assert cards.escape(value) == str(markup_escape(value))
