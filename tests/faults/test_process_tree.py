"""Every process accounted for: a worker role's whole tree stops with it, and nothing
`followthrough up` started outlives it, whether a Dramatiq master is SIGKILLed, `up` is
stopped with Ctrl-C, or `up` itself is SIGKILLed. Real processes, real servers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson
import psutil
import pytest

from tests.support.system import System, running, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow]

ENV = {
    "FOLLOWTHROUGH_WORKER_PROCESSES": "2",
    "FOLLOWTHROUGH_WORKER_THREADS": "2",
    "FOLLOWTHROUGH_WORKER_SHUTDOWN_SECONDS": "5",
    "FOLLOWTHROUGH_RESTART_BACKOFF_MAX_SECONDS": "2",
}
SHARES = 6


class Census:
    """Every descendant of a process seen while it runs, sampled in the background
    (a process is keyed by pid and start time, so a reused pid is a new entry)."""

    def __init__(self, root: psutil.Process) -> None:
        self.root = root
        self.seen: dict[tuple[int, float], psutil.Process] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> Census:
        self._thread.start()
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while True:
            self.take()
            if self._stop.wait(0.05):
                return

    def take(self) -> None:
        try:
            children = self.root.children(recursive=True)
        except psutil.Error:
            return
        for proc in children:
            try:
                self.seen.setdefault((proc.pid, proc.create_time()), proc)
            except psutil.Error:
                continue

    def alive(self) -> list[psutil.Process]:
        """The processes seen that still run (a zombie runs nothing: it only waits to be reaped)."""
        return [p for p in list(self.seen.values()) if _running(p)]


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def worker_masters(system: System) -> dict[str, psutil.Process]:
    """Each worker role's current process: the Dramatiq master (the role execs into the
    Dramatiq CLI when both servers are given)."""
    pids: dict[str, int] = {}
    for line in system.logs():
        if line.get("event") == "role_started" and str(line.get("child_role", "")).startswith("worker"):
            pids[line["child_role"]] = line["pid"]
    masters = {}
    for role, pid in pids.items():
        try:
            masters[role] = psutil.Process(pid)
        except psutil.NoSuchProcess:
            continue
    return masters


def workers_up(system: System, roles: int) -> dict[str, psutil.Process] | None:
    """The masters, once every worker role has a master with its worker process forked and ready."""
    masters = worker_masters(system)
    ready = sum(1 for line in system.logs() if line.get("event") == "worker_process_ready")
    try:
        complete = len(masters) == roles and all(m.children() for m in masters.values())
    except psutil.NoSuchProcess:
        return None
    return masters if complete and ready >= roles else None


def plan_shares(api: Any, account_id: str, count: int) -> list[str]:
    due = datetime.now(UTC) + timedelta(seconds=2)
    ids = []
    for i in range(count):
        response = api.post("/v1/shares", json={
            "account_id": account_id, "text": f"after the kill {i}", "scheduled_at": due.isoformat(),
            "response_plan": [{"kind": "check_replies", "after": "PT1H", "owner": "ops"}]})
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


def test_a_sigkilled_dramatiq_master_takes_its_worker_processes_with_it(
    tmp_path: Path, database_url: str, broker_url: str, queue_prefix: str
) -> None:
    with running(tmp_path, database_url=database_url, broker_url=broker_url, queue_prefix=queue_prefix,
                 extra_env=ENV) as system, Census(psutil.Process(system.process.pid)) as census:
        # Given `up` with two worker roles, each a Dramatiq master with its forked worker process
        masters = wait_until(lambda: workers_up(system, 2), timeout=60, what="the worker processes to be up")
        master = masters["worker-1"]
        assert "dramatiq" in master.cmdline()
        orphans = master.children()
        assert orphans

        # When the master is SIGKILLed (and only the master)
        master.send_signal(signal.SIGKILL)

        # Then its former worker processes are gone too (dead and reaped, not adopted by init)
        wait_until(lambda: not any(p.is_running() for p in orphans), timeout=30,
                   what=f"the killed master's worker processes {[p.pid for p in orphans]} to be gone")
        # And the supervisor started the role again
        restarted = wait_until(lambda: (m := worker_masters(system).get("worker-1")) and m.pid != master.pid,
                               timeout=30, what="worker-1 to be restarted")
        assert restarted
        wait_until(lambda: workers_up(system, 2), timeout=60, what="the restarted worker processes to be up")

        # When shares fall due
        token = system.cli("token", "create", "--workspace", "default", "--scope", "write")
        with system.client(token) as api:
            account = api.post("/v1/accounts", json={"name": "lineage", "channel": "console"}).json()
            planned = plan_shares(api, account["id"], SHARES)

            # Then every one is sent
            def all_sent() -> bool:
                return all(api.get(f"/v1/shares/{share_id}").json()["status"] == "sent" for share_id in planned)

            wait_until(all_sent, timeout=60, interval=0.5, what="every share to be sent")

            # (the list is the shares read model, which the projector brings up to date after the
            # log a share's own page reads: on a busy machine it can be a moment behind)
            def listed_sent() -> list[str] | None:
                listed = api.get("/v1/shares", params={"status": "sent", "limit": 1000}).json()["shares"]
                found = [s["id"] for s in listed]
                return found if set(found) >= set(planned) else None

            sent = wait_until(listed_sent, timeout=30, interval=0.5, what="the list of sent shares to hold them all")
        census.take()
    # (leaving `running` stops `up` with Ctrl-C, as a user does)

    # And no process of the run is left once `up` has stopped
    wait_until(lambda: not census.alive(), timeout=30,
               what=f"every process of the run to be gone, left: {[p.pid for p in census.alive()]}")
    assert len(census.seen) >= 6  # api, dispatcher, projector, two masters and their workers, at least
    # And every share recorded sent has exactly one share_sent line in the log
    assert set(sent) >= set(planned)
    lines = Counter(line.get("share_id") for line in system.logs() if line.get("event") == "share_sent")
    assert {share_id: lines[share_id] for share_id in sent} == dict.fromkeys(sent, 1)
    # And `up` reaped the killed master's worker processes itself
    reaped = {line["pid"] for line in system.logs() if line.get("event") == "orphan_reaped"}
    assert {p.pid for p in orphans} <= reaped


def test_a_sigkilled_up_leaves_no_role_and_no_worker_process_running(
    tmp_path: Path, database_url: str, broker_url: str, queue_prefix: str
) -> None:
    with running(tmp_path, database_url=database_url, broker_url=broker_url, queue_prefix=queue_prefix,
                 extra_env=ENV) as system, Census(psutil.Process(system.process.pid)) as census:
        # Given `up` with its roles and the Dramatiq worker processes up
        wait_until(lambda: workers_up(system, 2), timeout=60, what="the worker processes to be up")
        census.take()
        workers = [p for m in worker_masters(system).values() for p in m.children()]
        assert workers

        # When `up` itself is SIGKILLed
        system.process.send_signal(signal.SIGKILL)
        system.process.wait()

        # Then every role and every Dramatiq worker process stops too
        wait_until(lambda: not census.alive(), timeout=60,
                   what=f"every process of the run to stop, left: {[p.pid for p in census.alive()]}")
        assert not any(_running(p) for p in workers)


ORPHAN = """
import os, sys, time

read, write = os.pipe()  # end of file on `read`: the parent has exited
log_read, log_write = os.pipe()  # like Dramatiq's logging pipe, read only by the parent
parent = os.getpid()
child = os.fork()
if child:
    print(parent, child, flush=True)
    os._exit(0)
os.close(write)
sys.stdout = sys.stderr = os.fdopen(log_write, "w")  # as a Dramatiq worker process does

from followthrough.logs import configure_logging
from workers import lifeline

configure_logging(role="worker", fmt="json")
os.read(read, 1)
while os.getppid() == parent:
    time.sleep(0.01)
lifeline.hold(parent)
os.write(1, b"still running\\n")
"""


def test_a_worker_process_whose_parent_died_before_it_booted_exits_and_says_so(tmp_path: Path) -> None:
    # Given a forked process whose parent exits before the child sets its lifeline
    out = tmp_path / "orphan.log"
    with out.open("wb") as sink:
        subprocess.run([sys.executable, "-c", ORPHAN], stdout=sink, stderr=subprocess.STDOUT, check=True,
                       timeout=60, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    parent, child_pid = map(int, out.read_text().splitlines()[0].split())
    child = psutil.Process(child_pid)

    # When it holds its lifeline to the parent it was forked from
    wait_until(lambda: not _running(child), timeout=30, what="the orphaned process to exit")

    # Then it logged worker_orphaned (to its own stdout, not to a dead parent's pipe) and went no further
    lines = out.read_text().splitlines()
    assert "still running" not in lines
    events = [orjson.loads(line) for line in lines[1:] if line.startswith("{")]
    assert [e["event"] for e in events] == ["worker_orphaned"]
    assert events[0]["forked_from"] == parent
    assert events[0]["parent"] != parent
