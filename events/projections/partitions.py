"""A rebuild split over processes: each folds one partition of the log (the streams
whose id hashes to it) into the tables being built, so that folding, which holds
Python's interpreter lock, runs on several cores (``rebuild(..., workers=N)``).

Only for a projection whose rows each derive from one stream's events
(``partition_by_stream``): then the partitions' rows never meet. Every partition reads
up to one checkpoint taken below the horizon; the rebuild goes on from it alone.

The rebuilding process folds partition 0 itself and starts one worker process per
other partition::

    python -m events.projections.partitions      (a pickled PartitionJob on stdin)

A worker writes its progress on standard output, ``applied <events>`` per window, and
ends with ``done <events> <peak RSS in MB>`` or ``error <message>`` (exit status 1).
Anything else it prints (logs) goes to standard error, which it shares with its parent.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any

import psycopg

from events.errors import EventStoreError
from events.projections.collector import few_collections
from events.projections.protocols import Rebuildable, Rebuilder
from events.records import Checkpoint, RecordedEvent
from events.store import EventStore, Partition

__all__ = [
    "PartitionJob", "PartitionWorker", "RebuildWorkerError", "build_partition", "fold_windows",
    "windows",
]

WORKER_MODULE = "events.projections.partitions"
STOP_SECONDS = 10.0  # a worker asked to stop (another partition failed) before it is killed


class RebuildWorkerError(EventStoreError):
    """A worker process of a parallel rebuild failed (the rebuild is abandoned)."""


@dataclass(frozen=True, slots=True)
class PartitionJob:
    conninfo: str
    projection: Rebuildable
    tables: Mapping[str, str]
    partition: Partition
    until: Checkpoint
    window: int


@dataclass(frozen=True, slots=True)
class PartitionDone:
    events: int
    peak_rss_mb: float




def windows(events: Iterator[RecordedEvent], size: int) -> Iterator[list[RecordedEvent]]:
    batch: list[RecordedEvent] = []
    for recorded in events:
        batch.append(recorded)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def fold_windows(
    conn: psycopg.Connection[Any],
    builder: Rebuilder,
    events: Iterator[RecordedEvent],
    window: int,
    report: Callable[[int], None],
) -> tuple[Checkpoint | None, int]:
    """Fold ``events`` with ``builder``, a transaction per window of ``window`` events;
    ``report`` hears the events applied so far after each. Returns the checkpoint of the
    last event (None: there was none) and how many were applied."""
    after, applied = None, 0
    for batch in windows(events, window):
        with conn.transaction():
            builder.apply(batch)
        after, applied = batch[-1].checkpoint, applied + len(batch)
        report(applied)
    return after, applied


def build_partition(
    store: EventStore, conn: psycopg.Connection[Any], job: PartitionJob, report: Callable[[int], None]
) -> int:
    """Fold the job's partition into its tables and write all of it; returns the events applied."""
    projection = job.projection
    builder = projection.rebuilder(conn, job.tables)
    events = store.read_all(types=projection.types, until=job.until, partition=job.partition)
    _, applied = fold_windows(conn, builder, events, job.window, report)
    with conn.transaction():
        builder.flush()
    return applied


class PartitionWorker:
    """One worker process and what it has said so far."""

    def __init__(self, job: PartitionJob) -> None:
        self.partition = job.partition
        self.applied = 0
        self._done: PartitionDone | None = None
        self._error: str | None = None
        self._process = subprocess.Popen(  # noqa: S603 -- this interpreter, a module of this package
            [sys.executable, "-m", WORKER_MODULE], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        # On a pipe, not the command line: the connection string may hold a password.
        try:
            with self._process.stdin as stdin:
                pickle.dump(job, stdin)
        except OSError as exc:  # it died before reading its job
            self._process.kill()
            self._process.wait()
            raise RebuildWorkerError(f"rebuild worker for partition {job.partition.part} of "
                                     f"{job.partition.parts} did not start: {exc}") from exc
        self._reader = threading.Thread(target=self._read, args=(self._process.stdout,), daemon=True,
                                        name=f"rebuild-worker-{job.partition.part}")
        self._reader.start()

    @property
    def running(self) -> bool:
        return self._process.poll() is None

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the worker to end; True once it has."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout)
        return not self.running

    def raise_if_failed(self) -> None:
        """Raise ``RebuildWorkerError`` now if the worker has already ended badly."""
        if not self.running and self._process.returncode != 0:
            self.result()

    def result(self) -> PartitionDone:
        """What the ended worker built; raises ``RebuildWorkerError`` if it failed."""
        self._process.wait()
        self._reader.join()
        if self._done is not None and self._process.returncode == 0:
            return self._done
        said = self._error or f"exited with status {self._process.returncode}"
        raise RebuildWorkerError(f"rebuild worker for partition {self.partition.part} of "
                                 f"{self.partition.parts}: {said}")

    def stop(self) -> None:
        """End the worker if it still runs (its open transaction is rolled back)."""
        if self.running:
            self._process.terminate()
            if not self.wait(STOP_SECONDS):
                self._process.kill()
                self._process.wait()
        self._reader.join()

    def _read(self, stdout: IO[bytes]) -> None:
        with stdout:
            for raw in stdout:
                word, _, rest = raw.decode(errors="replace").strip().partition(" ")
                if word == "applied":
                    self.applied = int(rest)
                elif word == "done":
                    events, peak = rest.split()
                    self.applied = int(events)
                    self._done = PartitionDone(int(events), float(peak))
                elif word == "error":
                    self._error = rest


def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM), in MB; 0 where /proc is not."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def main() -> int:
    """A worker process: read the job, build its partition, say how it went."""
    from events.pool import make_pool

    protocol = sys.stdout
    sys.stdout = sys.stderr  # whatever else is printed (logs) stays out of the protocol
    parent = os.getppid()
    job: PartitionJob = pickle.load(sys.stdin.buffer)  # noqa: S301 -- written by the parent process

    def report(applied: int) -> None:
        if os.getppid() != parent:  # the rebuilding process is gone: nobody will swap this in
            raise RuntimeError("the rebuilding process ended")
        print(f"applied {applied}", file=protocol, flush=True)

    pool = make_pool(job.conninfo, role="projections-rebuild-worker", max_size=2)
    try:
        pool.open(wait=True, timeout=30)
        with pool.connection() as conn, few_collections():
            applied = build_partition(EventStore(pool), conn, job, report)
    except KeyboardInterrupt:  # Ctrl-C on the terminal reaches the workers too: the parent reports it
        return 130
    except Exception as exc:  # noqa: BLE001 -- reported to the parent, which raises it
        message = " ".join(f"{type(exc).__name__}: {exc}".split())
        print(f"error {message}", file=protocol, flush=True)
        return 1
    finally:
        pool.close()
    print(f"done {applied} {peak_rss_mb():.1f}", file=protocol, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
