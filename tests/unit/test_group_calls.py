"""A group's calls: one thread while they return promptly, a thread each once they are slow,
none before its due time, and a failing call handed back rather than lost."""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from workers.group_calls import GroupCalls


def _drain(calls: GroupCalls[float, object], returned: queue.SimpleQueue[Future[object]], count: int,
           *, steer: bool = True) -> list[Future[object]]:
    """The group's thread, as execution._call_all runs it: steer, wait for what comes back."""
    done: list[Future[object]] = []
    deadline = time.monotonic() + 20
    while len(done) < count:
        assert time.monotonic() < deadline, f"only {len(done)} of {count} calls came back"
        look = calls.steer() if steer else 0.05
        try:
            done.append(returned.get(timeout=look if look is not None else 0.05))
        except queue.Empty:
            continue
    return done


def _until(due: float) -> float:
    return max(0.0, due - time.monotonic())


def test_prompt_calls_due_together_run_one_after_the_other_on_one_thread() -> None:
    # Given 50 calls due now that return at once
    threads: set[int] = set()

    def call(due: float) -> object:
        threads.add(threading.get_ident())
        return due

    returned: queue.SimpleQueue[Future[object]] = queue.SimpleQueue()
    now = time.monotonic()
    with ThreadPoolExecutor(50) as pool:
        calls: GroupCalls[float, object] = GroupCalls(pool, [now] * 50, call=call, until=_until, returned=returned)
        # When the group's thread steers once (a runner starts) and waits for every call
        calls.steer()
        done = _drain(calls, returned, 50, steer=False)
    # Then all 50 went out, on one thread: no hand-off a call
    assert [f.result() for f in done] == [now] * 50
    assert len(threads) == 1


def test_slow_calls_each_get_a_thread_so_they_run_together() -> None:
    # Given 8 calls due now, each of which can only return once all 8 are in flight
    barrier = threading.Barrier(8, timeout=10)

    def call(due: float) -> object:
        return barrier.wait()

    returned: queue.SimpleQueue[Future[object]] = queue.SimpleQueue()
    with ThreadPoolExecutor(50) as pool:
        calls: GroupCalls[float, object] = GroupCalls(pool, [time.monotonic()] * 8, call=call, until=_until,
                                                      returned=returned)
        # When the group's thread steers as it waits
        done = _drain(calls, returned, 8)
    # Then the first call's slowness opened a thread for each of the others: all 8 met
    assert sorted(f.result() for f in done) == list(range(8))  # type: ignore[type-var]


def test_no_call_starts_before_its_due_time() -> None:
    # Given calls due over the next tenth of a second, in no order
    started: dict[float, float] = {}

    def call(due: float) -> object:
        started[due] = time.monotonic()
        return due

    now = time.monotonic()
    dues = [now + offset for offset in (0.08, 0.0, 0.1, 0.02, 0.05)]
    returned: queue.SimpleQueue[Future[object]] = queue.SimpleQueue()
    with ThreadPoolExecutor(8) as pool:
        calls: GroupCalls[float, object] = GroupCalls(pool, dues, call=call, until=_until, returned=returned)
        # When they run
        done = _drain(calls, returned, len(dues))
    # Then each started at or after its due time, and came back in due order
    assert all(started[due] >= due for due in dues)
    assert [f.result() for f in done] == sorted(dues)


def test_a_call_that_raises_comes_back_as_a_failed_future_and_the_rest_still_go_out() -> None:
    # Given three calls due now, the second of which raises
    def call(due: float) -> object:
        if due == 2.0:
            raise RuntimeError("the channel's code broke")
        return due

    returned: queue.SimpleQueue[Future[object]] = queue.SimpleQueue()
    with ThreadPoolExecutor(4) as pool:
        calls: GroupCalls[float, object] = GroupCalls(pool, [1.0, 2.0, 3.0], call=call, until=lambda _: 0.0,
                                                      returned=returned)
        done = _drain(calls, returned, 3)
    # Then the failure is handed in (the group's thread raises it), and the others came back
    failed = [f for f in done if f.exception() is not None]
    assert len(failed) == 1
    with pytest.raises(RuntimeError, match="broke"):
        failed[0].result()
    assert sorted(f.result() for f in done if f.exception() is None) == [1.0, 3.0]  # type: ignore[type-var]
