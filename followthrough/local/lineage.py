"""Every process `followthrough up` starts stays its descendant, and none outlives it.

`up` makes itself a child subreaper (``PR_SET_CHILD_SUBREAPER``): a process whose parent
dies (a Dramatiq worker process whose master was SIGKILLed) is re-parented to `up`
rather than to init, so `up` sees it, kills it and reaps it (``orphan_reaped``). When
`up` stops, it kills what is left of its descendants, one generation at a time: it
only ever signals its own children (whose pids cannot be reused before it reaps them),
and the children of each one it kills become its own in turn.

The processes `up` started before its roles (the embedded servers) are spared: they
are stopped in order by their own code. Linux only (prctl through ctypes, /proc);
elsewhere the subreaper is not available and only the process groups remain.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Collection
from dataclasses import dataclass, field

import structlog

log = structlog.get_logger("followthrough.local.lineage")

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
LINUX = sys.platform.startswith("linux")


def _prctl(option: int, value: int) -> bool:
    if not LINUX:
        return False
    try:
        return int(ctypes.CDLL(None, use_errno=True).prctl(option, value)) == 0
    except (OSError, AttributeError):
        return False


def die_with_parent() -> None:
    """For ``preexec_fn``: the child gets SIGTERM when the thread that started it exits."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def children(pid: int) -> dict[int, str]:
    """The children of ``pid``, each with its state letter (``Z``: a zombie), from /proc.

    About 0.6 ms with 100 processes on the machine (~6 µs each), so it runs on every
    supervision tick."""
    found: dict[int, str] = {}
    if not LINUX:
        return found
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue  # gone meanwhile
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found[int(entry)] = fields[0].decode()
    return found


def exited(proc: subprocess.Popen[bytes]) -> bool:
    """Whether the child has exited, without reaping it where the platform allows: while it
    is a zombie its pid, and so the id of the process group it leads, cannot be reused,
    so signalling that group afterwards cannot reach a stranger."""
    if proc.returncode is not None:
        return True
    if not hasattr(os, "waitid"):
        return proc.poll() is not None
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return proc.poll() is not None


@dataclass
class Lineage:
    """`up`'s hold on its descendants (see the module's docstring)."""

    me: int
    subreaper: bool
    spared: frozenset[int]
    killed: set[int] = field(default_factory=set)  # signalled, not reaped yet

    @classmethod
    def claim(cls) -> Lineage:
        """Become a subreaper; spare the children already running (the embedded servers)."""
        me = os.getpid()
        subreaper = _prctl(PR_SET_CHILD_SUBREAPER, 1)
        if LINUX and not subreaper:
            log.warning("subreaper_unavailable")
        return cls(me, subreaper, frozenset(children(me)))

    def orphans(self, owned: Collection[int]) -> dict[int, str]:
        """Children neither spared nor ``owned`` (held by a ``Popen``): re-parented to us."""
        return {pid: state for pid, state in children(self.me).items() if pid not in owned and pid not in self.spared}

    def reap(self, owned: Collection[int]) -> list[int]:
        """Kill and reap every orphan; one still dying is reaped on a later call."""
        reaped = []
        for pid, state in self.orphans(owned).items():
            if state != "Z" and pid not in self.killed:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                self.killed.add(pid)
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                self.killed.discard(pid)
                continue
            if done:
                reaped.append(pid)
                # killed: still running when it came to us; else it had died on its own
                # (a worker process's lifeline) and only needed reaping.
                log.warning("orphan_reaped", pid=pid, killed=pid in self.killed, exit_code=_code(status))
                self.killed.discard(pid)
        return reaped

    def sweep(self, owned: Collection[int] = (), *, timeout: float = 10.0) -> None:
        """Kill every remaining descendant except the spared ones, generation by generation."""
        deadline = time.monotonic() + timeout
        while self.orphans(owned):
            self.reap(owned)
            if time.monotonic() > deadline:
                log.error("descendants_left", pids=sorted(self.orphans(owned)))
                return
            time.sleep(0.01)


def _code(status: int) -> int:
    with contextlib.suppress(ValueError):
        return os.waitstatus_to_exitcode(status)
    return status
