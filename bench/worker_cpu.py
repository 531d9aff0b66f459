"""Worker CPU a published share, in one process: the publishing path without the broker,
the dispatcher or the other roles, so that a change of a tenth of a millisecond a share shows
(bench/dispatch.py's figure moves by that much from run to run on two shared cores).

Shares on a console account, all due, are handed to ``workers.execution.execute_shares`` in
groups of ``--group`` (as the dispatcher groups them) by ``--threads`` group threads (a
worker process's actor threads), with the worker's own runtime (pool, call threads, log
lines as JSON to a file). Printed: the worker's CPU a share (by thread: the group threads,
the call threads, the rest), user and system time, and this database's PostgreSQL CPU a
share; first with one group thread, then with ``--threads``: the ratio between the two is
what groups running at once cost each other (the GIL). Each figure is the best of
``--rounds`` rounds. The split by thread comes from the kernel's per-thread times, counted
in clock ticks (10 ms): with fewer than the default 3,000 shares a round it is rough (the
total is not: it is the process's own). The last line of standard output is one JSON object.

    python bench/worker_cpu.py [--shares 3000] [--group 50] [--threads 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import psutil

from bench.dispatch import console_account, plan_many, planner, servers
from followthrough import bootstrap
from followthrough.connections import migrate
from followthrough.logs import configure_logging
from followthrough.settings import Settings
from scheduler.services.shares import ShareService
from workers import execution
from workers.runtime import Runtime


@dataclass
class Publishing:
    """A scratch database with a console account, and the worker's own runtime on it."""

    rt: Runtime
    shares: ShareService
    account_id: uuid.UUID
    database: str

    def due_groups(self, shares: int, group: int) -> list[list[uuid.UUID]]:
        """``shares`` shares already due, plus one group more (to warm up with), in groups of ``group``."""
        due = datetime.now(UTC) - timedelta(seconds=1)
        ids = plan_many(self.shares, self.account_id, [due] * (shares + group), threads=4)
        return [ids[i:i + group] for i in range(0, len(ids), group)]


@contextlib.contextmanager
def publishing(prefix: str) -> Iterator[Publishing]:
    """The publishing path of a worker, its log lines as JSON to a file, on the named or embedded servers."""
    with tempfile.TemporaryDirectory(prefix=f"{prefix}-") as tmp, \
            servers(Path(tmp) / "servers") as (url, broker), open(Path(tmp) / "worker.log", "w") as log_file:
        configure_logging(role="worker", level="info", fmt="json", stream=log_file)
        settings = Settings(database_url=url, broker_url=broker, home=Path(tmp) / "home",
                            queue_prefix=prefix.replace("-", ""))
        migrate(settings)
        pool, notifier, svc = planner(url)
        account = console_account(pool)
        rt = bootstrap.build_runtime(settings)
        try:
            yield Publishing(rt, svc, account.id, url.rsplit("/", 1)[-1])
        finally:
            rt.close()
            notifier.stop()
            pool.close()


def postgres_cpu(database: str) -> float:
    """CPU seconds of this database's PostgreSQL backends so far."""
    used = 0.0
    for p in psutil.process_iter(["name", "cmdline"]):
        if "postgres" in (p.info["name"] or "") and database in " ".join(p.info["cmdline"] or []):
            with contextlib.suppress(psutil.Error):
                times = p.cpu_times()
                used += times.user + times.system
    return used


def thread_cpu(me: psutil.Process) -> dict[int, float]:
    return {t.id: t.user_time + t.system_time for t in me.threads()}


def by_role(before: dict[int, float], after: dict[int, float], group_threads: set[int]) -> dict[str, float]:
    names = {t.native_id: t.name for t in threading.enumerate()}
    used = {"group": 0.0, "call": 0.0, "other": 0.0}
    for tid, seconds in after.items():
        role = "group" if tid in group_threads else "call" if names.get(tid, "").startswith("call") else "other"
        used[role] += seconds - before.get(tid, 0.0)
    return used


def measure(rt: Runtime, database: str, groups: list[list[uuid.UUID]], threads: int) -> dict[str, float]:
    """Run every group; the CPU each part used, in ms a share."""
    me = psutil.Process()
    group_threads: set[int] = set()

    def run(group: list[uuid.UUID]) -> dict[uuid.UUID, str]:
        group_threads.add(threading.get_native_id())
        return execution.execute_shares(rt, group)

    shares = sum(len(g) for g in groups)
    times0, threads0, pg0 = me.cpu_times(), thread_cpu(me), postgres_cpu(database)
    with ThreadPoolExecutor(threads, thread_name_prefix="group") as pool:
        outcomes = [o for result in pool.map(run, groups) for o in result.values()]
        times1, threads1 = me.cpu_times(), thread_cpu(me)
    pg1 = postgres_cpu(database)
    if outcomes.count("share_sent") != shares:
        raise SystemExit(f"not every share was sent: {sorted(set(outcomes))}")
    roles = by_role(threads0, threads1, group_threads)
    per = 1000 / shares
    return {
        "worker_ms": round(per * (times1.user + times1.system - times0.user - times0.system), 3),
        "user_ms": round(per * (times1.user - times0.user), 3),
        "system_ms": round(per * (times1.system - times0.system), 3),
        "group_threads_ms": round(per * roles["group"], 3),
        "call_threads_ms": round(per * roles["call"], 3),
        "postgres_ms": round(per * (pg1 - pg0), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shares", type=int, default=3000, help="shares a round")
    parser.add_argument("--group", type=int, default=50, help="shares a group (the dispatcher's message size)")
    parser.add_argument("--threads", type=int, default=4, help="group threads of the second measurement")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    best: dict[int, dict[str, float]] = {}
    with publishing("bench-worker-cpu") as bench:
        for round_ in range(args.rounds):
            for threads in (1, args.threads):
                groups = bench.due_groups(args.shares, args.group)
                execution.execute_shares(bench.rt, groups[0])  # warm-up: connections, prepared statements
                figures = measure(bench.rt, bench.database, groups[1:], threads)
                print(f"round {round_ + 1}, {threads} group thread(s): {figures}", flush=True)
                if threads not in best or figures["worker_ms"] < best[threads]["worker_ms"]:
                    best[threads] = figures
    one, many = best[1], best[args.threads]
    print(f"worker CPU a share, best of {args.rounds}: one group thread {one['worker_ms']} ms "
          f"(group thread {one['group_threads_ms']}, call threads {one['call_threads_ms']}, "
          f"system {one['system_ms']}), PostgreSQL {one['postgres_ms']} ms; "
          f"{args.threads} group threads {many['worker_ms']} ms (x{many['worker_ms'] / one['worker_ms']:.2f})")
    print(orjson.dumps({"shares": args.shares, "group": args.group, "threads": args.threads, "rounds": args.rounds,
                        "one_thread": one, "many_threads": many,
                        "ratio_many_to_one": round(many["worker_ms"] / one["worker_ms"], 3)}).decode())


if __name__ == "__main__":
    main()
