"""Stop signals, handled one way for every long-running command.

SIGTERM and SIGINT set ``stop``: a role finishes its step and lets go. A role idle in a
blocking wait (the dispatcher in LISTEN) may also ask to be interrupted at once.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

import structlog

log = structlog.get_logger("followthrough")


class Interrupted(BaseException):
    """Raised from the signal handler to end an idle wait at once."""


def stop_on_signals(stop: threading.Event, *, interruptible: Callable[[], bool] | None = None) -> None:
    """On SIGTERM or SIGINT set ``stop``; when ``interruptible()`` says the process is
    idle in a blocking call, also raise ``Interrupted`` there."""

    def handler(signum: int, _: Any) -> None:
        log.info("stop_requested", signal=signal.Signals(signum).name)
        stop.set()
        if interruptible is not None and interruptible():
            raise Interrupted

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
