"""A group delivery's network calls: each at its own due time, on as few threads as the
channel's speed needs.

One thread (a runner) takes the calls one after the other as they fall due while they
return promptly: a fast channel's group costs no thread hand-off a call, and no herd of
threads waking together for the GIL. A call still running after ``PROMPT_SECONDS`` is slow:
the group's own thread (``steer``) then starts a runner for every call that is due, so a
slow server's calls still go out together, each on its thread, at most that moment late.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from typing import Generic, TypeVar

__all__ = ["PROMPT_SECONDS", "GroupCalls"]

T = TypeVar("T")
R = TypeVar("R")

# A call running longer than this is slow: the calls due behind it get threads of their own.
PROMPT_SECONDS = 0.005
# A runner waits this long at most for the next call's due time before giving its thread back.
LINGER_SECONDS = 0.05


class GroupCalls(Generic[T, R]):
    """Runs ``call`` on each item at its due time (``until``: seconds from now, 0 when due) on
    the ``executor``'s threads, and hands each result in to ``returned`` as a done future."""

    def __init__(self, executor: Executor, items: Sequence[T], *, call: Callable[[T], R],
                 until: Callable[[T], float], returned: queue.SimpleQueue[Future[R]],
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._executor = executor
        self._call = call
        self._until = until
        self._returned = returned
        self._sleep = sleep
        self._waiting = deque(sorted(items, key=until))
        self._lock = threading.Lock()
        # Each runner's current call: when it started; None between calls (or not started yet).
        self._busy_since: dict[int, float | None] = {}
        self._ids = itertools.count()

    def steer(self) -> float | None:
        """Start runners where they are needed: one when calls fall due and none runs, one
        for every call due when each runner is held by a slow call. Returns how long until it
        should look again (None: every call has started)."""
        with self._lock:
            if not self._waiting:
                return None
            until = self._until(self._waiting[0])
            now = time.monotonic()
            free = sum(1 for since in self._busy_since.values() if since is None or now - since < PROMPT_SECONDS)
            if until > PROMPT_SECONDS and not self._busy_since:
                return until - PROMPT_SECONDS  # nothing due soon, no runner: look again when it is
            if free == 0:
                due = sum(1 for _ in itertools.takewhile(lambda item: self._until(item) <= 0, self._waiting))
                for _ in range(max(1, due) if self._busy_since else 1):
                    self._start()
            return PROMPT_SECONDS

    def _start(self) -> None:
        runner = next(self._ids)
        self._busy_since[runner] = None
        self._executor.submit(self._run, runner)

    def _run(self, runner: int) -> None:
        while True:
            with self._lock:
                until = self._until(self._waiting[0]) if self._waiting else None
                if until is None or until > LINGER_SECONDS:
                    del self._busy_since[runner]  # nothing due soon: the thread goes back to the pool
                    return
                item = self._waiting.popleft() if until <= 0 else None
                self._busy_since[runner] = time.monotonic() if item is not None else None
            if item is None:
                self._sleep(until)
                continue
            done: Future[R] = Future()
            try:
                done.set_result(self._call(item))
            except BaseException as exc:  # noqa: BLE001 - handed to the group's thread, which raises it
                done.set_exception(exc)
            with self._lock:
                self._busy_since[runner] = None
            self._returned.put(done)
