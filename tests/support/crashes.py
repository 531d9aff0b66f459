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
            children = psutil.Process(pid).children(recursive=True)
        except psutil.NoSuchProcess:
            continue  # an earlier worker role, gone
        for child in children:
            try:  # one gone since it was listed (its master reaps a killed sibling) spares no other
                child.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                continue
            killed += 1
    return killed
