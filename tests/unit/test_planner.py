"""The shares calendar's grid as pure arithmetic: weeks start on Monday, a month view is six
whole weeks, a day is local midnight to local midnight (23 or 25 hours when Berlin's clocks
change), navigation moves by a week or a month, and a text's excerpt is cut at a word."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scheduler.domain import planner

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize("anchor", [date(2026, 12, 7), date(2026, 12, 9), date(2026, 12, 13)])
def test_a_week_view_is_monday_to_sunday_around_the_day_asked_for(anchor: date) -> None:
    week = planner.grid("week", anchor, UTC)
    assert week.days == tuple(date(2026, 12, 7) + timedelta(days=i) for i in range(7))
    assert week.days[0].weekday() == 0
    assert (week.start, week.end) == (datetime(2026, 12, 7, tzinfo=UTC), datetime(2026, 12, 14, tzinfo=UTC))
    assert (week.previous, week.next) == (anchor - timedelta(days=7), anchor + timedelta(days=7))


@pytest.mark.parametrize(("anchor", "first"), [
    (date(2026, 12, 17), date(2026, 11, 30)),  # the 1st is a Tuesday
    (date(2026, 6, 1), date(2026, 6, 1)),  # the 1st is a Monday: no week of May before it
    (date(2026, 2, 28), date(2026, 1, 26)),  # February 2026 fits in four weeks, still six shown
    (date(2026, 3, 31), date(2026, 2, 23)),  # March 2026 starts on a Sunday and spans six weeks
])
def test_a_month_view_is_six_whole_weeks_from_the_monday_on_or_before_the_first(anchor: date, first: date) -> None:
    month = planner.grid("month", anchor, UTC)
    assert len(month.weeks) == 6
    assert all(len(w) == 7 for w in month.weeks)
    assert month.days[0] == first
    assert month.days[0].weekday() == 0
    assert month.days == tuple(first + timedelta(days=i) for i in range(42))
    assert month.in_month(anchor.replace(day=1))
    assert not month.in_month(first - timedelta(days=1))
    last = anchor.replace(day=28)
    while (last + timedelta(days=1)).month == anchor.month:
        last += timedelta(days=1)
    assert last in month.days


def test_month_navigation_goes_to_the_first_of_the_months_around_it_across_years() -> None:
    december = planner.grid("month", date(2026, 12, 31), UTC)
    assert (december.previous, december.next) == (date(2026, 11, 1), date(2027, 1, 1))
    january = planner.grid("month", date(2027, 1, 15), UTC)
    assert january.previous == date(2026, 12, 1)


def test_the_week_berlin_springs_forward_is_an_hour_short_and_bounded_by_local_midnights() -> None:
    # 2026-03-29: 02:00 CET -> 03:00 CEST; Monday the 23rd is CET (+1), Monday the 30th CEST (+2)
    week = planner.grid("week", date(2026, 3, 26), BERLIN)
    assert week.start == datetime(2026, 3, 22, 23, tzinfo=UTC)
    assert week.end == datetime(2026, 3, 29, 22, tzinfo=UTC)
    assert week.end - week.start == timedelta(days=7, hours=-1)
    sunday = week.days[-1]
    assert planner.midnight(sunday + timedelta(days=1), BERLIN) - planner.midnight(sunday, BERLIN) == timedelta(
        hours=23)


def test_the_day_berlin_falls_back_is_25_hours_and_its_late_evening_stays_on_it() -> None:
    # 2026-10-25: 03:00 CEST -> 02:00 CET
    day = date(2026, 10, 25)
    start, end = planner.midnight(day, BERLIN), planner.midnight(day + timedelta(days=1), BERLIN)
    assert (start, end) == (datetime(2026, 10, 24, 22, tzinfo=UTC), datetime(2026, 10, 25, 23, tzinfo=UTC))
    # 23:30 UTC is 00:30 on Monday in Berlin (CET), 22:30 UTC is 23:30 on Sunday
    assert planner.local_day(datetime(2026, 10, 25, 22, 30, tzinfo=UTC), BERLIN) == day
    assert planner.local_day(datetime(2026, 10, 25, 23, 30, tzinfo=UTC), BERLIN) == day + timedelta(days=1)
    month = planner.grid("month", day, BERLIN)
    assert month.start == datetime(2026, 9, 27, 22, tzinfo=UTC)  # Monday 28 September, CEST
    assert month.end == datetime(2026, 11, 8, 23, tzinfo=UTC)  # Monday 9 November, CET


def test_items_fall_on_their_local_day_in_the_order_given() -> None:
    # 23:30 UTC on Sunday is already Monday in Berlin
    items = [("a", datetime(2026, 12, 6, 22, 59, tzinfo=UTC)), ("b", datetime(2026, 12, 6, 23, 0, tzinfo=UTC)),
             ("c", datetime(2026, 12, 7, 8, tzinfo=UTC))]
    days = planner.by_day(items, lambda item: item[1], BERLIN)
    assert {d: [name for name, _ in rows] for d, rows in days.items()} == {
        date(2026, 12, 6): ["a"], date(2026, 12, 7): ["b", "c"]}


def test_an_excerpt_is_one_line_cut_at_a_word_with_an_ellipsis() -> None:
    assert planner.excerpt("Short\n\nand  sweet") == "Short and sweet"
    long = "The doors open at nine, " * 10
    cut = planner.excerpt(long, 40)
    assert len(cut) <= 40
    assert cut.endswith("\u2026")
    assert long.startswith(cut[:-1])
    assert not cut[:-1].endswith((" ", ","))
    assert planner.excerpt("x" * 50, 10) == "x" * 9 + "\u2026"


@pytest.mark.parametrize(("counts", "said"), [
    ((0, 0, 0), ""), ((1, 0, 0), ""), ((3, 0, 0), "thread of 3"), ((0, 1, 0), "1 image"),
    ((3, 2, 0), "thread of 3 · 2 images"), ((1, 1, 2), "1 image · 2 videos"),
])
def test_a_thread_and_media_are_marked_beside_the_excerpt(counts: tuple[int, int, int], said: str) -> None:
    assert planner.content_mark(*counts) == said
