"""A delivery running longer than its calls may take is logged once, with where its thread is."""

from __future__ import annotations

import threading

from structlog.testing import capture_logs

from workers.stalls import Deliveries


def parked_in_a_call(deliveries: Deliveries, inside: threading.Event, release: threading.Event) -> None:
    with deliveries.running("msg-1", 50):
        inside.set()
        release.wait(timeout=30)


def test_a_delivery_running_too_long_is_logged_once_with_the_stack_its_thread_is_at() -> None:
    now = [100.0]
    deliveries = Deliveries(after_seconds=40.0, clock=lambda: now[0])
    inside, release = threading.Event(), threading.Event()
    worker = threading.Thread(target=parked_in_a_call, args=(deliveries, inside, release))
    worker.start()
    try:
        assert inside.wait(timeout=10)
        with capture_logs() as lines:
            now[0] = 139.0
            assert deliveries.check() == 0  # not yet: a slow call may still be running
            now[0] = 141.0
            assert deliveries.check() == 1
            now[0] = 200.0
            assert deliveries.check() == 0  # once a delivery
    finally:
        release.set()
        worker.join(timeout=10)
    [line] = lines
    assert line["event"] == "delivery_running_long"
    assert line["log_level"] == "warning"
    assert line["message_id"] == "msg-1"
    assert line["shares"] == 50
    assert line["running_seconds"] == 41.0
    assert "parked_in_a_call" in line["stack"]


def test_a_delivery_that_finished_is_not_watched_any_more() -> None:
    now = [0.0]
    deliveries = Deliveries(after_seconds=1.0, clock=lambda: now[0])
    with deliveries.running("msg-2", 1):
        pass
    now[0] = 10.0
    assert deliveries.check() == 0


def test_the_watcher_stops_with_the_runtime() -> None:
    deliveries = Deliveries(after_seconds=1.0)
    with deliveries.running("msg-3", 1):
        pass
    watcher = deliveries._watcher
    assert watcher is not None
    assert watcher.is_alive()
    deliveries.stop()
    assert not watcher.is_alive()


def test_the_line_says_what_the_delivery_s_database_connection_is_doing() -> None:
    now = [0.0]
    seen: list[int] = []

    def describe(pid: int) -> dict[str, object]:
        seen.append(pid)
        return {"pid": pid, "state": "active", "wait_event_type": "Lock"}

    deliveries = Deliveries(after_seconds=1.0, clock=lambda: now[0], describe_backend=describe)
    with capture_logs() as lines, deliveries.running("msg-4", 2) as running:
        running.backend_pid = 4242
        now[0] = 2.0
        assert deliveries.check() == 1
    deliveries.stop()
    assert seen == [4242]
    assert lines[0]["backend"] == {"pid": 4242, "state": "active", "wait_event_type": "Lock"}


def test_a_database_that_cannot_answer_does_not_keep_the_line_back() -> None:
    now = [0.0]

    def describe(pid: int) -> dict[str, object]:
        raise OSError("connection refused")

    deliveries = Deliveries(after_seconds=1.0, clock=lambda: now[0], describe_backend=describe)
    with capture_logs() as lines, deliveries.running("msg-5", 1) as running:
        running.backend_pid = 7
        now[0] = 2.0
        assert deliveries.check() == 1
    deliveries.stop()
    assert lines[0]["event"] == "delivery_running_long"
    assert lines[0]["backend"] == {"pid": 7, "error": "OSError: connection refused"}


def test_a_progress_report_that_fails_does_not_keep_the_line_back() -> None:
    now = [0.0]
    deliveries = Deliveries(after_seconds=1.0, clock=lambda: now[0])
    with capture_logs() as lines, deliveries.running("msg-6", 3) as running:
        running.progress = lambda frames: {"started": 1 // 0}
        now[0] = 2.0
        assert deliveries.check() == 1
    deliveries.stop()
    assert lines[0]["event"] == "delivery_running_long"
    assert lines[0]["calls"] == {"error": "ZeroDivisionError: integer division or modulo by zero"}
