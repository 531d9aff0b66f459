"""Business time between two instants (``calendars.business_seconds``, the count a reply's
time to answer and a business task's at-risk point use): its properties, and the cases of
the issue (a weekend, a holiday, both daylight-saving transitions)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.domain import calendars as c
from tests.support.calendars import calendars, moments

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
OFFICE = c.from_event(c.calendar_set("default", time_zone="Europe/Berlin", holidays=["2026-12-24"],
                                     week={d: [["09:00", "17:00"]] for d in c.DAYS[:5]}))
spans = st.integers(0, 20 * 86_400)


@settings(max_examples=200, deadline=None)
@given(calendars(), moments, st.integers(-20 * 86_400, 20 * 86_400))
def test_business_time_is_never_negative_nor_more_than_the_wall_time(
    calendar: c.Calendar, start: datetime, seconds: int
) -> None:
    end = start + timedelta(seconds=seconds)
    found = c.business_seconds(calendar, start, end)
    assert 0 <= found <= max(0, seconds)
    if seconds <= 0:
        assert found == 0


@settings(max_examples=150, deadline=None)
@given(calendars(), moments, spans, spans)
def test_business_time_adds_up_over_consecutive_spans(calendar: c.Calendar, start: datetime, a: int, b: int) -> None:
    middle, end = start + timedelta(seconds=a), start + timedelta(seconds=a + b)
    assert c.business_seconds(calendar, start, end) == pytest.approx(  # (sums of microseconds as floats)
        c.business_seconds(calendar, start, middle) + c.business_seconds(calendar, middle, end), abs=1e-6)


@settings(max_examples=150, deadline=None)
@given(calendars(), moments, spans, st.dates(date(2026, 1, 1), date(2027, 1, 31)))
def test_adding_a_holiday_never_adds_business_time(
    calendar: c.Calendar, start: datetime, seconds: int, holiday: date
) -> None:
    with_holiday = c.Calendar(calendar.time_zone, calendar.week, calendar.holidays | {holiday})
    end = start + timedelta(seconds=seconds)
    assert c.business_seconds(with_holiday, start, end) <= c.business_seconds(calendar, start, end)


def test_a_weekend_holds_no_business_time() -> None:
    friday_evening = datetime(2026, 11, 27, 17, 0, tzinfo=BERLIN)
    monday_morning = datetime(2026, 11, 30, 9, 0, tzinfo=BERLIN)
    assert c.business_seconds(OFFICE, friday_evening, monday_morning) == 0
    # A reply on Friday at 16:45 answered on Monday at 09:15: half an hour of business time
    assert c.business_seconds(OFFICE, friday_evening - timedelta(minutes=15),
                              monday_morning + timedelta(minutes=15)) == 1800


def test_a_holiday_holds_no_business_time() -> None:
    christmas_eve = datetime(2026, 12, 24, 0, 0, tzinfo=BERLIN)
    assert c.business_seconds(OFFICE, christmas_eve, christmas_eve + timedelta(days=1)) == 0
    assert c.business_seconds(OFFICE, christmas_eve - timedelta(days=1), christmas_eve) == 8 * 3600


def test_office_hours_across_both_transitions_count_the_local_hours() -> None:
    # Friday 16:00 to Monday 10:00 across the spring (Berlin 29 March) and autumn (25 October)
    # changes: an hour on Friday and an hour on Monday, whatever the offset did meanwhile
    for friday in (date(2026, 3, 27), date(2026, 10, 23)):
        start = datetime.combine(friday, datetime.min.time(), tzinfo=BERLIN) + timedelta(hours=16)
        end = datetime.combine(friday + timedelta(days=3), datetime.min.time(), tzinfo=BERLIN) + timedelta(hours=10)
        assert c.business_seconds(OFFICE, start, end) == 2 * 3600
    # New York's changes (8 March, 1 November): an all-day calendar counts 23 and 25 hours
    all_day = c.from_event(c.calendar_set("x", time_zone="America/New_York", holidays=[],
                                          week={d: [["00:00", "24:00"]] for d in c.DAYS}))
    for day, hours in ((date(2026, 3, 8), 23), (date(2026, 11, 1), 25)):
        midnight = datetime.combine(day, datetime.min.time(), tzinfo=NEW_YORK)
        following = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=NEW_YORK)
        assert c.business_seconds(all_day, midnight, following) == hours * 3600


def test_hours_inside_the_repeated_autumn_hour_count_once() -> None:
    # 02:00-03:00 on 25 October 2026 in Berlin: the wall clock shows that hour twice; the
    # interval runs from its first 02:00 to the first 03:00 (two real hours)
    night = c.from_event(c.calendar_set("night", time_zone="Europe/Berlin", holidays=[],
                                        week={"sun": [["02:00", "03:00"]]}))
    start = datetime(2026, 10, 24, 12, 0, tzinfo=UTC)
    assert c.business_seconds(night, start, start + timedelta(days=1)) == 2 * 3600
