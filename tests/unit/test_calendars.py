"""The business clock as pure arithmetic: a later ``after`` is never due earlier, a holiday
never makes a due time earlier, a due time falls in business hours (or ends an interval),
and both daylight-saving transitions count real hours. Business hours are checked here by
the wall clock (the local date and time), not by the code's own interval list."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.catalogue import CalendarDeleted, Event, OwnerCalendarSet, ResponseStep
from events.projections.shares_fold import SharesFold
from events.records import RecordedEvent
from scheduler.domain import calendars as c
from scheduler.domain import share
from scheduler.errors import InvalidInputError
from scheduler.services.recount import Recount
from tests.support.calendars import calendars, moments
from tests.support.factories import SHARE_ID, planned, publish_decision

BERLIN = ZoneInfo("Europe/Berlin")
OFFICE = c.from_event(c.calendar_set("default", time_zone="Europe/Berlin", holidays=[],
                                     week={d: [["09:00", "17:00"]] for d in c.DAYS[:5]}))
ALL_DAY = c.from_event(c.calendar_set("x", time_zone="Europe/Berlin", holidays=[],
                                      week={d: [["00:00", "24:00"]] for d in c.DAYS}))


afters = st.integers(0, 30 * 86_400)


FAR = datetime.max.replace(tzinfo=UTC)


def due_or_none(calendar: c.Calendar, start: datetime, after: int) -> datetime:
    """The due time, or "never" (the end of time) when the calendar holds too little."""
    try:
        return c.add_business(calendar, start, after)
    except c.BeyondHorizonError:
        return FAR


def in_business_hours(calendar: c.Calendar, moment: datetime) -> bool:
    """By the wall clock: the local date is no holiday and its local time is in an interval."""
    local = moment.astimezone(calendar.zone)
    if local.date() in calendar.holidays:
        return False
    minutes = local.hour * 60 + local.minute + local.second / 60
    return any(s <= minutes < e for s, e in calendar.week[local.weekday()])


@settings(max_examples=150, deadline=None)
@given(calendars(), moments, afters, afters)
def test_a_later_after_is_never_due_earlier(calendar: c.Calendar, start: datetime, a: int, b: int) -> None:
    low, high = sorted((a, b))
    assert due_or_none(calendar, start, low) <= due_or_none(calendar, start, high)


@settings(max_examples=150, deadline=None)
@given(calendars(), moments, afters, st.dates(date(2026, 1, 1), date(2027, 3, 31)))
def test_adding_a_holiday_never_makes_a_due_time_earlier(
    calendar: c.Calendar, start: datetime, after: int, holiday: date
) -> None:
    with_holiday = c.Calendar(calendar.time_zone, calendar.week, calendar.holidays | {holiday})
    assert due_or_none(with_holiday, start, after) >= due_or_none(calendar, start, after)


@settings(max_examples=200, deadline=None)
@given(calendars(), moments, afters)
def test_a_due_time_falls_in_business_hours_or_ends_an_interval(
    calendar: c.Calendar, start: datetime, after: int
) -> None:
    try:
        due = c.add_business(calendar, start, after)
    except c.BeyondHorizonError:
        # Only a calendar too sparse for this much time within two years (planning refuses it)
        assert c.business_seconds(calendar, start, start + timedelta(days=c.MAX_DAYS - 1)) < after
        return
    assert due >= start
    if after == 0:
        # Nothing to count: the send itself, or the next moment business hours start
        assert in_business_hours(calendar, due) or due == start
        assert in_business_hours(calendar, due) or not in_business_hours(calendar, start)
    else:
        # The second before it was business time (so it is inside an interval or at its end)
        assert in_business_hours(calendar, due - timedelta(seconds=1))
    # And exactly ``after`` seconds of business time lie between the send and the due time
    assert c.business_seconds(calendar, start, due) == after


def test_the_issue_example_a_friday_afternoon_hour_is_due_monday_morning() -> None:
    friday = datetime(2026, 11, 27, 16, 30, tzinfo=BERLIN)
    assert c.add_business(OFFICE, friday, 3600) == datetime(2026, 11, 30, 9, 30, tzinfo=BERLIN)


@pytest.mark.parametrize(("day", "hours"), [(date(2026, 3, 29), 23), (date(2026, 10, 25), 25),
                                            (date(2026, 6, 1), 24)])
def test_a_whole_day_lasts_the_real_hours_of_that_day_across_both_transitions(day: date, hours: int) -> None:
    midnight = datetime.combine(day, datetime.min.time(), tzinfo=BERLIN)
    next_midnight = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=BERLIN)
    assert c.business_seconds(ALL_DAY, midnight, next_midnight) == hours * 3600
    assert c.add_business(ALL_DAY, midnight, hours * 3600) == next_midnight


def test_office_hours_across_the_spring_and_autumn_transitions_keep_local_times() -> None:
    # Friday 16:30 CET before the spring change: Monday 09:30 is CEST (UTC+2)
    due = c.add_business(OFFICE, datetime(2026, 3, 27, 16, 30, tzinfo=BERLIN), 3600)
    assert due == datetime(2026, 3, 30, 7, 30, tzinfo=UTC)
    # Friday 16:30 CEST before the autumn change: Monday 09:30 is CET (UTC+1)
    due = c.add_business(OFFICE, datetime(2026, 10, 23, 16, 30, tzinfo=BERLIN), 3600)
    assert due == datetime(2026, 10, 26, 8, 30, tzinfo=UTC)


def test_hours_that_start_in_the_spring_forward_gap_start_at_the_transition() -> None:
    night = c.from_event(c.calendar_set("n", time_zone="Europe/Berlin", holidays=[],
                                        week={"sun": [["02:30", "04:00"]]}))
    # 02:30 does not exist on 29 March 2026: the hours run from 03:00 CEST (01:00 UTC) to 04:00
    assert c.intervals_on(night, date(2026, 3, 29)) == [
        (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), datetime(2026, 3, 29, 2, 0, tzinfo=UTC))]
    # On an ordinary Sunday they last an hour and a half
    assert c.business_seconds(night, datetime(2026, 4, 5, tzinfo=BERLIN), datetime(2026, 4, 6, tzinfo=BERLIN)) == 5400


def test_the_owner_s_calendar_wins_over_the_default_and_a_deleted_one_falls_back() -> None:
    events = [(c.calendar_set("default", time_zone="UTC", week={"mon": [["09:00", "10:00"]]}, holidays=[]), 1),
              (c.calendar_set("night", time_zone="UTC", week={"mon": [["22:00", "23:00"]]}, holidays=[]), 2),
              (OwnerCalendarSet(owner="ana", calendar="night"), 3)]
    state = c.fold(events)
    assert state.for_owner("ana") is state.calendars["night"]
    assert state.for_owner("bo") is state.calendars["default"]
    assert state.users_of("night") == ["ana"]
    after = c.evolve(state, CalendarDeleted(name="night"), 4)
    assert after.for_owner("ana") is state.calendars["default"]
    assert after.version == 4


def test_a_calendar_too_sparse_for_a_step_within_two_years_is_beyond_the_horizon() -> None:
    sparse = c.from_event(c.calendar_set("s", time_zone="UTC", week={"sun": [["00:00", "00:15"]]}, holidays=[]))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert c.add_business(sparse, start, 3600) == datetime(2026, 1, 25, 0, 15, tzinfo=UTC)
    with pytest.raises(c.BeyondHorizonError):
        c.add_business(sparse, start, 30 * 86_400)


@pytest.mark.parametrize(("kw", "field"), [
    ({"time_zone": "Not/AZone"}, "time_zone"),
    ({"time_zone": "../etc/passwd"}, "time_zone"),
    ({"week": {"mon": [["9:00", "17:00"]]}}, "week.mon.0.0"),
    ({"week": {"fri": [["10:00", "10:00"]]}}, "week.fri.0"),
    ({"week": {"mon": []}}, "week"),
    ({"holidays": ["tomorrow"]}, "holidays.0"),
])
def test_bad_calendars_are_refused_naming_the_field(kw: dict[str, object], field: str) -> None:
    given_ = {"time_zone": "UTC", "week": {"mon": [["09:00", "17:00"]]}, "holidays": [], **kw}
    with pytest.raises(InvalidInputError) as refused:
        c.calendar_set("x", **given_)
    assert refused.value.field == field


# --- the due time recorded at the send, read alike by every fold ---------------------


def test_a_business_step_is_due_by_its_owner_s_calendar_in_the_domain_the_read_model_and_the_recount() -> None:
    # Given a share with a wall step and a business step, the workspace's calendar Mon-Fri 9-17
    plan = (ResponseStep(kind="check_replies", after_seconds=3600, owner="alice"),
            ResponseStep(kind="answer_replies", after_seconds=3600, owner="alice", clock="business"))
    events: list[Event] = [planned(plan=plan)]
    friday = datetime(2026, 11, 27, 16, 30, tzinfo=BERLIN)
    events += [e.event for e in publish_decision(share.fold(events), friday).events]
    hours = c.fold([(c.calendar_set("default", time_zone="Europe/Berlin", holidays=["2026-11-30"],
                                    week={d: [["09:00", "17:00"]] for d in c.DAYS[:5]}), 1)])
    # When it is recorded sent on Friday at 16:30 (Monday a holiday)
    sent = share.record_sent(share.fold(events), attempt=1, external_id="1", url=None, sent_at=friday,
                             reconciled=False, calendars=hours)
    events += [e.event for e in sent]
    tuesday = datetime(2026, 12, 1, 9, 30, tzinfo=BERLIN)
    # Then the share's state has the wall task an hour on, the business one on Tuesday 09:30
    state = share.fold(events)
    assert [t.due_at for t in state.tasks] == [friday + timedelta(hours=1), tuesday]
    # And the read model's fold agrees
    recorded = [RecordedEvent(i, uuid4(), f"share-{SHARE_ID}", i, e, e.schema_version, {}, "acme", friday, 1, i)
                for i, e in enumerate(events, start=1)]
    fold = SharesFold()
    fold.apply(recorded)
    assert sorted(row["due_at"] for row in fold.tasks.values()) == [friday + timedelta(hours=1), tuesday]
    # And so does the audit's recount, from the stored JSON alone
    recount = Recount()
    recount.add_all((r.position, r.stream_id, r.stream_version, r.type_name, "acme",
                     r.event.__pydantic_serializer__.to_json(r.event).decode()) for r in recorded)
    assert sorted(t.due_at for t in recount.shares[str(SHARE_ID)].tasks.values()) == [
        friday + timedelta(hours=1), tuesday]
    # And without calendars (none left at the send) the business step counts wall time
    wall = share.record_sent(share.fold(events[:-1]), attempt=1, external_id="1", url=None, sent_at=friday,
                             reconciled=False, calendars=c.Calendars())
    assert wall[-1].event.business_due_at is None  # type: ignore[attr-defined]
