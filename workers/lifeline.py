"""A Dramatiq worker process lives only as long as the master that forked it.

Dramatiq's master forks the worker processes and relays their output through a pipe.
If the master dies (a SIGKILL, an OOM kill), its worker processes are re-parented and
go on taking messages and publishing, their lines written to a pipe nobody reads.
So each worker process, at boot, asks Linux for SIGKILL when its parent dies
(``PR_SET_PDEATHSIG``), then checks that its parent is still the master it was forked
from: a master that died before that request was made sends no signal.

SIGKILL rather than SIGTERM: nothing a worker does after its master died can be
logged, so finishing its messages would only publish unseen; a message it held comes
back from the schedule when its lease ends, as for any killed worker.

Linux only (prctl through ctypes); elsewhere ``hold`` does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
from typing import Any

import dramatiq
import structlog
from dramatiq.middleware import Middleware

PR_SET_PDEATHSIG = 1
ORPHANED_EXIT = 1  # Dramatiq's RET_KILLED; nobody waits for it: the parent is gone


class Lifeline(Middleware):
    """Ties each worker process to its master (see the module's docstring). Add it before
    the middleware that builds resources at boot: an orphan should open nothing."""

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        parent = multiprocessing.parent_process()
        if parent is not None and parent.pid is not None:  # None: not a forked worker process
            hold(parent.pid)


def hold(forked_from: int) -> None:
    """Die (SIGKILL) when the parent dies; exit at once if it already has."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    parent = os.getppid()
    if parent != forked_from:
        _own_stdout_log().warning("worker_orphaned", pid=os.getpid(), forked_from=forked_from, parent=parent)
        os._exit(ORPHANED_EXIT)


class _OwnStdout(structlog.WriteLogger):
    """The process's own stdout (inherited from the role: what `up` logs), not the pipe
    Dramatiq put in ``sys.stdout``, whose reader died with the master."""

    def __init__(self) -> None:
        super().__init__(sys.__stdout__)
        self.name = __name__  # read by add_logger_name


def _own_stdout_log() -> Any:
    return structlog.wrap_logger(_OwnStdout())
