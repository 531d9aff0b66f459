"""Stop signals, handled one way for every long-running command.

SIGTERM, SIGINT and SIGHUP (the terminal closed) set ``stop``: a role finishes its step and lets go (the follower
loop's sleeps are sliced short for this).
"""

from __future__ import annotations

import signal
import threading
from typing import Any

import structlog

log = structlog.get_logger("followthrough")


def stop_on_signals(stop: threading.Event) -> None:
    """On SIGTERM, SIGINT or SIGHUP set ``stop``."""

    def handler(signum: int, _: Any) -> None:
        log.info("stop_requested", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGHUP, handler)
