"""Crashing the roles of a running `followthrough up` as a fault test does."""

from __future__ import annotations

import signal

import psutil

from tests.support.system import System


def kill_worker_processes(system: System) -> int:
    """SIGKILL the Dramatiq worker processes (not their masters): a crash mid-call."""
    killed = 0
    masters = [line["pid"] for line in system.logs()
               if line.get("event") == "role_started" and str(line.get("child_role", "")).startswith("worker")]
    for pid in masters:
        try:
            for child in psutil.Process(pid).children(recursive=True):
                child.send_signal(signal.SIGKILL)
                killed += 1
        except psutil.NoSuchProcess:
            continue
    return killed
