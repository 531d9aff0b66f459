"""The one follower loop (connect, lead, listen, step, reconnect) against the real PostgreSQL:
what the dispatcher, the projection runners and the webhook deliverer all rely on."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest
from psycopg_pool import PoolTimeout
from structlog.testing import capture_logs

from events.follower import Backoff
from tests.support.followers import CHANNEL, Steps, follower, following, lock_is_free, terminate_sessions
from tests.support.system import wait_until


def said(logs: list[dict[str, Any]], event: str, name: str) -> list[dict[str, Any]]:
    return [line for line in logs if line["event"] == event and line.get("follower") == name]


def test_a_standby_takes_the_lead_when_the_leaders_session_is_terminated(database_url: str) -> None:
    a_steps, b_steps = Steps(), Steps()
    # The old leader comes back after a second: by then the standby has taken over
    a = follower(database_url, "a", a_steps, backoff=Backoff(base=1.0, cap=1.0))
    b = follower(database_url, "b", b_steps)
    with capture_logs() as logs, following(a):
        # Given a leader, and a second follower of the same lock standing by
        assert a.leading.wait(10)
        with following(b):
            wait_until(lambda: said(logs, "follower_standby", "b"), timeout=10, what="b to stand by")
            assert not b.leading.is_set()
            steps_before = len(b_steps.at)
            # When an administrator terminates the leader's session
            assert terminate_sessions(database_url, "a") == 1
            ended = time.monotonic()
            # Then the standby leads within a second and steps
            assert b.leading.wait(5)
            took_over = time.monotonic() - ended
            wait_until(lambda: len(b_steps.at) > steps_before, timeout=5, what="the new leader to step")
            # And the old leader noticed, reconnected and stands by: one leader at a time
            wait_until(lambda: said(logs, "follower_reconnected", "a"), timeout=10, what="a to reconnect")
            wait_until(lambda: len(said(logs, "follower_standby", "a")) == 1, timeout=10, what="a to stand by")
            assert not a.leading.is_set()
            assert said(logs, "follower_connection_lost", "a")[0]["log_level"] == "warning"
            assert said(logs, "follower_released", "a")
    assert took_over < 1.0, took_over
    assert [line["event"] for line in logs if line.get("follower") == "b"][:2] == [
        "follower_standby", "follower_leading"]


def test_a_leader_busy_stepping_notices_within_seconds_that_its_session_was_terminated(database_url: str) -> None:
    # Given a leader whose step always finds more work (it never sleeps on its connection)
    steps = Steps(wait=0.0)
    busy = follower(database_url, "busy", steps, backoff=Backoff(base=1.0, cap=1.0))
    with capture_logs() as logs, following(busy):
        assert busy.leading.wait(10)
        # When its session is terminated
        assert terminate_sessions(database_url, "busy") == 1
        ended = time.monotonic()
        # Then it gives up the lead within the lead check's second or so, and comes back
        wait_until(lambda: said(logs, "follower_connection_lost", "busy"), timeout=5, interval=0.01,
                   what="the loss to be noticed")
        noticed = time.monotonic() - ended
        wait_until(lambda: len(said(logs, "follower_leading", "busy")) == 2, timeout=10, what="the lead again")
    assert noticed < 2.0, noticed


def test_a_step_losing_the_database_reconnects_after_a_capped_growing_backoff(database_url: str) -> None:
    # Given a step whose database calls fail four times running (jitter fixed at its top)
    lost = [psycopg.OperationalError("server closed the connection"), psycopg.InterfaceError("closed"),
            PoolTimeout("no connection in 30 s"), psycopg.OperationalError("terminating connection")]
    steps = Steps(failures=list(lost))
    f = follower(database_url, "flaky", steps, random=lambda: 1.0)
    with capture_logs() as logs, following(f):
        wait_until(lambda: len(steps.at) >= 6, timeout=10, what="the follower to step again")
        # When it fails once more after it has recovered
        steps.failures.append(psycopg.OperationalError("again"))
        wait_until(lambda: len(said(logs, "follower_connection_lost", "flaky")) == 5, timeout=10,
                   what="the fifth loss")
        wait_until(lambda: len(said(logs, "follower_leading", "flaky")) == 6, timeout=10,
                   what="the lead taken again after the fifth loss")
    losses = said(logs, "follower_connection_lost", "flaky")
    # Then each loss was retried later than the one before, up to the cap, and a success reset it
    assert [line["retry_in_s"] for line in losses] == [0.05, 0.1, 0.2, 0.2, 0.05]
    assert [line["failures"] for line in losses] == [1, 2, 3, 4, 1]
    assert [line["error_type"] for line in losses[:4]] == ["OperationalError", "InterfaceError", "PoolTimeout",
                                                            "OperationalError"]
    gaps = [later - earlier for earlier, later in zip(steps.at, steps.at[1:4], strict=False)]
    assert all(gap >= wait for gap, wait in zip(gaps, [0.05, 0.1, 0.2], strict=True)), gaps
    # And each loss cost the lead and a new session: released, reconnected, leading again (and the stop released it)
    assert len(said(logs, "follower_released", "flaky")) == 5 + 1
    assert len(said(logs, "follower_reconnected", "flaky")) == 5


def test_a_step_failing_otherwise_is_retried_after_backoff_without_giving_up_the_lead(database_url: str) -> None:
    # Given a step that fails twice with an error that is not the database's (a broker outage)
    steps = Steps(failures=[RuntimeError("broker refused"), RuntimeError("broker refused")])
    f = follower(database_url, "stubborn", steps, random=lambda: 0.0)
    with capture_logs() as logs, following(f):
        wait_until(lambda: len(steps.at) >= 3, timeout=10, what="the step to succeed")
        # Then it was logged as an error with its traceback, and retried on the same lead
        failed = said(logs, "follower_step_failed", "stubborn")
        assert [(line["log_level"], line["retry_in_s"], line["exc_info"]) for line in failed] == [
            ("error", 0.025, True), ("error", 0.05, True)]
        assert f.leading.is_set()
        assert not said(logs, "follower_connection_lost", "stubborn")
        assert len(said(logs, "follower_leading", "stubborn")) == 1


@pytest.mark.parametrize("role", ["leader", "standby"])
def test_stop_ends_a_long_sleep_promptly_and_lets_go_of_the_lead(database_url: str, role: str) -> None:
    # Given a follower asleep for 30 s between steps, and one standing by with a 30 s poll
    holder = follower(database_url, "holder", Steps(wait=30.0), standby_poll=30.0)
    sleeper = follower(database_url, "sleeper", Steps(wait=30.0), standby_poll=30.0)
    with capture_logs() as logs, following(holder) as leading:
        assert holder.leading.wait(10)
        wait_until(lambda: holder.idle, timeout=10, what="the leader to sleep")
        with following(sleeper) as standing_by:
            wait_until(lambda: said(logs, "follower_standby", "sleeper"), timeout=10, what="the standby")
            target = leading if role == "leader" else standing_by
            # When it is asked to stop
            asked = time.monotonic()
            target.stop.set()
            # Then it returns within half a second
            wait_until(target.returned, timeout=2, interval=0.01, what="the follower to return")
            assert time.monotonic() - asked < 0.5
            if role == "leader":
                # And its session is gone with the lead (the standby polls only every 30 s)
                assert said(logs, "follower_released", "holder")
                assert lock_is_free(database_url)
            else:
                assert holder.leading.is_set()


def test_a_notify_on_its_channel_wakes_a_sleeping_follower(database_url: str) -> None:
    steps = Steps(wait=30.0)
    f = follower(database_url, "woken", steps)
    with following(f):
        wait_until(lambda: f.idle, timeout=10, what="the follower to sleep")
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("SELECT pg_notify(%s, '')", (CHANNEL,))
        wait_until(lambda: len(steps.at) == 2, timeout=2, interval=0.01, what="the follower to wake")


def test_followers_without_a_lock_all_listen_and_step(database_url: str) -> None:
    one, two = Steps(), Steps()
    with capture_logs() as logs, following(follower(database_url, "one", one, lock=None),
                                           follower(database_url, "two", two, lock=None)):
        wait_until(lambda: one.at and two.at, timeout=10, what="both to step")
    assert said(logs, "follower_listening", "one")
    assert said(logs, "follower_listening", "two")
    assert not [line for line in logs if line["event"] in {"follower_leading", "follower_standby"}]
