"""Queue slots as pure arithmetic: a week pattern in a time zone gives ascending, distinct
UTC instants; the clocks' changes follow the business calendars' rule (a skipped local
time is the transition itself, a repeated one its first occurrence); bad settings name
their place."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.catalogue import ShareCancelled, ShareRescheduled
from scheduler.domain import slots
from scheduler.errors import InvalidInputError
from scheduler.services.slots import held_by
from tests.support.factories import T0, planned

BERLIN = ZoneInfo("Europe/Berlin")
# 2026 in Berlin: the clocks spring forward on Sunday 29 March (02:00 CET -> 03:00 CEST, at
# 01:00 UTC) and fall back on Sunday 25 October (03:00 CEST -> 02:00 CET, at 01:00 UTC).
WEEK = slots.parse({"time_zone": "Europe/Berlin",
                    "week": {"mon": ["17:00", "09:00", "12:30"], "sun": ["01:30", "02:30", "03:00", "09:00"]}})


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def on_day(week: slots.Slots, day: datetime) -> list[datetime]:
    return list(slots.between(week, day, day + timedelta(days=1)))


def test_a_week_is_read_in_order_and_its_monday_slots_keep_local_time_across_the_change() -> None:
    assert WEEK.week[0] == (9 * 60, 12 * 60 + 30, 17 * 60)
    # Monday before the spring change (CET, +1) and after it (CEST, +2): 09:00 local both times
    before = on_day(WEEK, utc(2026, 3, 23))
    after = on_day(WEEK, utc(2026, 3, 30))
    assert before == [utc(2026, 3, 23, 8), utc(2026, 3, 23, 11, 30), utc(2026, 3, 23, 16)]
    assert after == [utc(2026, 3, 30, 7), utc(2026, 3, 30, 10, 30), utc(2026, 3, 30, 15)]
    assert {at.astimezone(BERLIN).strftime("%H:%M") for at in before + after} == {"09:00", "12:30", "17:00"}


def test_spring_forward_a_skipped_slot_is_the_transition_and_merges_with_the_one_after_it() -> None:
    got = list(slots.between(WEEK, utc(2026, 3, 28, 12), utc(2026, 3, 29, 12)))
    # 01:30 CET; 02:30 does not exist that night: it is the transition (01:00 UTC), which is
    # also 03:00 CEST: one slot, not two; 09:00 CEST
    assert got == [utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1), utc(2026, 3, 29, 7)]


def test_fall_back_a_repeated_slot_is_its_first_occurrence_only() -> None:
    got = list(slots.between(WEEK, utc(2026, 10, 24, 12), utc(2026, 10, 25, 12)))
    # 01:30 CEST (23:30 UTC the day before); 02:30 happens twice: the first (CEST, 00:30 UTC)
    # only; 03:00 CET; 09:00 CET
    assert got == [utc(2026, 10, 24, 23, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 2), utc(2026, 10, 25, 8)]


def test_the_window_takes_its_start_and_leaves_its_end() -> None:
    monday_nine = utc(2026, 3, 23, 8)
    assert next(slots.between(WEEK, monday_nine, monday_nine + timedelta(days=7))) == monday_nine
    assert list(slots.between(WEEK, monday_nine - timedelta(hours=1), monday_nine)) == []


# hypothesis takes naive bounds and attaches the time zone itself
NAIVE_FIRST, NAIVE_LAST = datetime(2026, 1, 1), datetime(2028, 12, 31)  # noqa: DTZ001


@given(start=st.datetimes(min_value=NAIVE_FIRST, max_value=NAIVE_LAST, timezones=st.just(UTC)),
       hours=st.integers(min_value=1, max_value=24 * 20), cut=st.floats(min_value=0, max_value=1))
def test_slots_ascend_are_distinct_and_two_windows_give_what_one_does(start: datetime, hours: int,
                                                                       cut: float) -> None:
    end = start + timedelta(hours=hours)
    middle = start + (end - start) * cut
    whole = list(slots.between(WEEK, start, end))
    assert all(a < b for a, b in pairwise(whole))
    assert all(start <= at < end for at in whole)
    assert list(slots.between(WEEK, start, middle)) + list(slots.between(WEEK, middle, end)) == whole
    # every slot is a listed local time of its local weekday (a skipped 02:30 reads 03:00,
    # which Sunday lists too)
    for at in whole:
        local = at.astimezone(BERLIN)
        assert local.hour * 60 + local.minute in WEEK.week[local.weekday()]


def test_a_week_without_slots_is_refused_and_has_no_next_slot() -> None:
    with pytest.raises(InvalidInputError) as refused:
        slots.parse({"time_zone": "Europe/Berlin", "week": {"mon": [], "tue": []}})
    assert refused.value.field == "config.slots.week"
    with pytest.raises(slots.NoSlotsError, match="no slot"):
        next(slots.between(slots.Slots("Europe/Berlin", ((),) * 7), utc(2026, 1, 1), utc(2027, 1, 1)))


@pytest.mark.parametrize(("value", "field"), [
    ("09:00", "config.slots"),
    ({"time_zone": "Mars/Olympus", "week": {"mon": ["09:00"]}}, "config.slots.time_zone"),
    ({"week": {"mon": ["09:00"]}}, "config.slots.time_zone"),
    ({"time_zone": "UTC", "week": {"mon": ["25:00"]}}, "config.slots.week.mon.0"),
    ({"time_zone": "UTC", "week": {"mon": ["09:00", "9:30"]}}, "config.slots.week.mon.1"),
    ({"time_zone": "UTC", "week": {"mon": ["24:00"]}}, "config.slots.week.mon.0"),
    ({"time_zone": "UTC", "week": {"mon": ["09:00", "09:00"]}}, "config.slots.week.mon.1"),
    ({"time_zone": "UTC", "week": {"mon": "09:00"}}, "config.slots.week.mon"),
    ({"time_zone": "UTC", "week": {"someday": ["09:00"]}}, "config.slots.week.someday"),
    ({"time_zone": "UTC", "week": ["09:00"]}, "config.slots.week"),
    ({"time_zone": "UTC", "week": {"mon": ["09:00"]}, "every": "day"}, "config.slots.every"),
])
def test_a_bad_setting_names_its_place(value: Any, field: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        slots.parse(value)
    assert refused.value.field == field


def test_no_setting_is_no_slots_and_a_setting_reads_back_as_given() -> None:
    assert slots.from_config({}) is None
    assert slots.view(WEEK) == {"time_zone": "Europe/Berlin", "week": {
        "mon": ["09:00", "12:30", "17:00"], "sun": ["01:30", "02:30", "03:00", "09:00"]}}


def test_the_log_says_which_slot_a_share_holds() -> None:
    slotted = planned().model_copy(update={"slot": True})
    assert held_by([planned()]) is None  # an explicit time takes no slot
    assert held_by([slotted]) == T0
    assert held_by([slotted, ShareRescheduled(scheduled_at=T0)]) == T0  # to its own time: kept
    assert held_by([slotted, ShareRescheduled(scheduled_at=T0 + timedelta(hours=1))]) is None
    assert held_by([slotted, ShareRescheduled(scheduled_at=T0 + timedelta(hours=1)),
                    ShareRescheduled(scheduled_at=T0)]) is None  # given back is given back
    assert held_by([slotted, ShareCancelled(reason="no")]) is None
