"""The dashboard's pure parts: the period picker, the chart's points and how figures read."""

from __future__ import annotations

from datetime import UTC, date, datetime

from scheduler.api import figures
from scheduler.api.dashboard import chart, period

TODAY = date(2026, 11, 30)  # a Monday


def _row(day: str, on_time: int, late: int, overdue: int, open_: int = 0) -> dict[str, object]:
    # The rate as the report gives it (the database's followthrough_rate; see test_followthrough_rate)
    settled = on_time + late + overdue
    return {"key": day, "done_on_time": on_time, "done_late": late, "overdue": overdue, "open": open_,
            "rate": on_time / settled if settled else None}


def test_a_day_with_nothing_settled_has_no_rate_never_zero_or_a_hundred_percent() -> None:
    # Given one day with settled tasks, one with only open tasks, and one with none
    rows = [_row("2026-11-28", 1, 1, 2), _row("2026-11-29", 0, 0, 0, open_=3)]
    # When the chart's points are computed day by day
    points = chart.points(rows, date(2026, 11, 28), TODAY, "day")
    # Then only the settled day has a rate; the others have none, and read "no tasks due"
    assert [p.rate for p in points] == [0.25, None, None]
    assert [figures.percent(p.rate) for p in points] == ["25 %", "no tasks due", "no tasks due"]
    bars = chart.bars(points)
    assert [b.height for b in bars][1:] == [0.0, 0.0]
    assert bars[0].height > 0


def test_weeks_are_keyed_by_their_monday_and_take_the_reports_rate() -> None:
    # Given the report's rows grouped by week (each keyed by its Monday; summing the days'
    # counts before taking the rate is the SQL's part: test_followthrough_rate)
    rows = [_row("2026-11-23", 1, 0, 3), _row("2026-11-30", 2, 0, 0)]
    # When the chart's points are computed week by week from a Wednesday
    points = chart.points(rows, date(2026, 11, 25), TODAY, "week")
    # Then each week has its counts and rate
    assert [(p.start, p.on_time, p.overdue, p.rate) for p in points] == [
        (date(2026, 11, 23), 1, 3, 0.25), (date(2026, 11, 30), 2, 0, 1.0)]


def test_the_period_picker_reads_presets_and_dates_and_says_what_was_wrong() -> None:
    # A preset ends today; a custom period covers whole UTC days, its end exclusive
    assert period.parse({"preset": "7d"}, TODAY).first == date(2026, 11, 24)
    custom = period.parse({"from": "2026-11-01", "to": "2026-11-02", "by": "week"}, TODAY)
    assert (custom.start, custom.end, custom.by) == (
        datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC), "week")
    assert period.parse({"preset": "all"}, TODAY).start is None
    # Bad input falls back to the last 30 days and says why
    bad = period.parse({"preset": "custom", "from": "soon", "to": "2026-11-02"}, TODAY)
    assert (bad.preset, bad.first) == ("30d", date(2026, 11, 1))
    assert bad.error is not None
    assert "dates" in bad.error
    assert period.parse({"from": "2026-11-05", "to": "2026-11-01"}, TODAY).error is not None


def test_durations_read_as_people_say_them() -> None:
    assert [figures.seconds(v) for v in (None, 4, 65, 3600, 3 * 86400 + 7200)] == [
        "\u2013", "4 s", "1 min 5 s", "1 h", "3 d 2 h"]
    assert figures.millis(58) == "58 ms"
    assert figures.percent(0.0) == "0 %"
