"""Supervision for `followthrough up`: run each role as a process, restart one that
dies (with backoff, logged), and stop them all cleanly.

Children run in their own process groups, so Ctrl-C reaches only `up`, which then
stops them in order (SIGTERM, a grace period, then SIGKILL to the whole group).
A role whose main process dies loses the rest of its group at once (a Dramatiq
master's forked worker processes), before it starts again. On Linux each child also
gets SIGTERM if `up` itself dies. (`lineage` catches whatever leaves its group.)
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import structlog

from followthrough.local import lineage

log = structlog.get_logger("followthrough.local.supervisor")

# A role that ran this long before dying starts over at the shortest backoff.
HEALTHY_AFTER = 15.0
FIRST_BACKOFF = 0.5


@dataclass
class Child:
    role: str
    argv: Sequence[str]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    next_start: float = 0.0


@dataclass
class Supervisor:
    env: Mapping[str, str]
    backoff_max: float = 30.0
    grace_seconds: float = 40.0
    children: list[Child] = field(default_factory=list)
    stopping: bool = False

    def add(self, role: str, argv: Sequence[str]) -> None:
        self.children.append(Child(role, argv))

    def pids(self) -> set[int]:
        """The roles' main processes held now (exited ones included until polled)."""
        return {c.process.pid for c in self.children if c.process is not None}

    def start_all(self) -> None:
        for child in self.children:
            self._start(child)

    def _start(self, child: Child) -> None:
        child.process = subprocess.Popen(
            list(child.argv),
            env=dict(self.env),
            start_new_session=True,
            preexec_fn=lineage.die_with_parent,
        )
        child.started_at = time.monotonic()
        log.info("role_started", child_role=child.role, pid=child.process.pid)

    def poll(self) -> None:
        """Restart children that exited, each after its own backoff."""
        now = time.monotonic()
        for child in self.children:
            proc = child.process
            if proc is None:
                if now >= child.next_start and not self.stopping:
                    self._start(child)
                continue
            if self.stopping or not lineage.exited(proc):
                continue
            # Its main process is gone: so goes the rest of its group, before it is reaped.
            _signal_group(proc, signal.SIGKILL)
            code = proc.wait()
            ran = now - child.started_at
            if ran > HEALTHY_AFTER:
                child.restarts = 0
            delay = min(self.backoff_max, FIRST_BACKOFF * 2.0**child.restarts)
            child.restarts += 1
            child.process = None
            child.next_start = now + delay
            log.error(
                "role_exited",
                child_role=child.role,
                exit_code=code,
                ran_seconds=round(ran, 1),
                restart_in_seconds=delay,
            )

    def stop_all(self) -> None:
        self.stopping = True
        held = [c for c in self.children if c.process is not None]
        running = [c for c in held if c.process is not None and not lineage.exited(c.process)]
        for child in running:
            assert child.process is not None
            log.info("role_stopping", child_role=child.role, pid=child.process.pid)
            # Only the role's main process: it stops its own children (Dramatiq's master
            # forwards the signal once; a second one would make them abort). Not through
            # Popen.send_signal, which would reap a process that just exited.
            os.kill(child.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace_seconds
        for child in running:
            assert child.process is not None
            while not lineage.exited(child.process):  # not reaped yet: its group id stays ours
                if time.monotonic() > deadline:
                    log.warning("role_killed", child_role=child.role, pid=child.process.pid)
                    break
                time.sleep(0.05)
        for child in held:
            assert child.process is not None
            # Whatever is left in the group (a worker's forked processes) goes too.
            _signal_group(child.process, signal.SIGKILL)
            child.process.wait()
            log.info("role_stopped", child_role=child.role, exit_code=child.process.returncode)


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
