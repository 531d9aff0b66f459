"""A delivery that runs longer than any of its calls may take says where its thread is.

A group's attempts are in the log before its calls start; if the thread then stops moving,
its shares wait for their call leases to run out and go out again, late, with nothing in the
log to say why. A watcher thread (one per worker process, started with the first delivery)
looks at the deliveries running, and logs each one that has run longer than ``after_seconds``
once, with the stack its thread is at and, when the delivery named its database connection,
what that connection's server process is doing (``describe_backend``): a thread waiting on
the database shows only psycopg's wait in its stack.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import structlog

log = structlog.get_logger("workers.stalls")


@dataclass
class Running:
    """One delivery running; it sets ``backend_pid`` once it holds its connection."""

    message_id: str | None
    shares: int
    since: float
    reported: bool = False
    backend_pid: int | None = None
    # How far its calls got, given every thread's frame (``workers.execution``): a delivery
    # whose thread waits for its calls says where they are.
    progress: Callable[[dict[int, FrameType]], dict[str, Any]] | None = None


@dataclass
class Deliveries:
    """The deliveries running in this process, by thread."""

    after_seconds: float
    clock: Callable[[], float] = time.monotonic
    # A backend's activity by its pid (``workers.backends.describe``); None: not looked at.
    describe_backend: Callable[[int], dict[str, Any]] | None = None
    _running: dict[int, Running] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _watcher: threading.Thread | None = None
    _stopped: threading.Event = field(default_factory=threading.Event)

    @contextmanager
    def running(self, message_id: str | None, shares: int) -> Iterator[Running]:
        thread = threading.get_ident()
        entry = Running(message_id, shares, self.clock())
        with self._lock:
            self._running[thread] = entry
            if self._watcher is None:
                self._watcher = threading.Thread(target=self._watch, name="followthrough-stalls", daemon=True)
                self._watcher.start()
        try:
            yield entry
        finally:
            with self._lock:
                self._running.pop(thread, None)

    def current(self) -> Running | None:
        """The delivery running on this thread, if any."""
        with self._lock:
            return self._running.get(threading.get_ident())

    def check(self) -> int:
        """Log each delivery running too long (once); how many were logged now."""
        now = self.clock()
        with self._lock:
            late = [(thread, r) for thread, r in self._running.items()
                    if not r.reported and now - r.since > self.after_seconds]
            for _, r in late:
                r.reported = True
        frames = sys._current_frames() if late else {}
        for thread, r in late:
            frame = frames.get(thread)
            stack = "".join(traceback.format_stack(frame)[-12:]) if frame is not None else "(thread gone)"
            log.warning("delivery_running_long", message_id=r.message_id, shares=r.shares,
                        running_seconds=round(now - r.since, 1), stack=stack, **self._backend(r),
                        **self._progress(r, frames))
        return len(late)

    def _backend(self, r: Running) -> dict[str, Any]:
        if r.backend_pid is None or self.describe_backend is None:
            return {}
        try:
            return {"backend": self.describe_backend(r.backend_pid)}
        except Exception as exc:  # noqa: BLE001 - the database may be what is stuck: the line goes out anyway
            return {"backend": {"pid": r.backend_pid, "error": f"{type(exc).__name__}: {exc}"}}

    @staticmethod
    def _progress(r: Running, frames: dict[int, FrameType]) -> dict[str, Any]:
        if r.progress is None:
            return {}
        try:
            return {"calls": r.progress(frames)}
        except Exception as exc:  # noqa: BLE001 - a diagnosis that fails must not stop the line
            return {"calls": {"error": f"{type(exc).__name__}: {exc}"}}

    def stop(self) -> None:
        """Stop watching (the runtime is closing)."""
        self._stopped.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)

    def _watch(self) -> None:
        while not self._stopped.wait(max(1.0, self.after_seconds / 8)):
            self.check()
