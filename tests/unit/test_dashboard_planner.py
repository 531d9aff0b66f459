"""How the calendar page names a share's state and its week: every known status has its own
word and icon; a status the page has never heard of still reads, by its name; a week's title
reads across months and years."""

from __future__ import annotations

from datetime import UTC, date

from scheduler.api.dashboard import planner as page
from scheduler.domain import planner


def test_every_known_state_has_its_own_word_icon_and_style() -> None:
    states = list(page.STATES.values())
    for part in ("label", "icon", "css"):
        values = [getattr(s, part) for s in states]
        assert len(set(values)) == len(values), part
    for status in ("planned", "sent", "failed", "held", "in_review", "review_overdue", "rejected"):
        assert page.state_of(status) is page.STATES[status]


def test_an_unknown_status_reads_by_its_name() -> None:
    unknown = page.state_of("paused_by_network")
    assert (unknown.label, unknown.css) == ("Paused by network", "other")
    assert unknown.icon not in {s.icon for s in page.STATES.values()}
    assert page.state_of("").label == "Unknown"


def test_a_week_title_reads_within_a_month_across_months_and_across_years() -> None:
    assert page.title(planner.grid("week", date(2026, 12, 9), UTC)) == "7\u201313 December 2026"
    assert page.title(planner.grid("week", date(2026, 12, 2), UTC)) == "30 Nov \u2013 6 Dec 2026"
    assert page.title(planner.grid("week", date(2026, 12, 30), UTC)) == "28 Dec 2026 \u2013 3 Jan 2027"
    assert page.title(planner.grid("month", date(2026, 12, 30), UTC)) == "December 2026"
