"""Child process of the event-log benchmark: read the whole log through
``EventStore.read_all`` and report the process's peak memory (its RSS high-water mark).

Run alone: ``python -m bench.eventlog_memory URL EXPECTED [BATCH [SECONDS]]``. It prints
one JSON object: events read, seconds, RSS before reading and the peak, in MB. It
stops early, and says so, once SECONDS have passed or its rate so far shows that
reading everything would take longer: a slow read still reports its memory.
"""

from __future__ import annotations

import resource
import sys
import time

import orjson

from events.pool import make_pool
from events.store import EventStore


def rss_mb() -> float:
    """This process's current resident set size (Linux), in MB."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def peak_mb() -> float:
    """This process's peak resident set size, in MB: VmHWM, the high-water mark of this
    program's own address space. (``ru_maxrss`` would not do: Linux carries it over
    ``exec`` from the forking parent, so it reports the parent's size.)"""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


GRACE_SECONDS = 10.0  # read this long before judging from the rate whether the limit can be met


def main(argv: list[str]) -> int:
    url, expected = argv[0], int(argv[1])
    batch = int(argv[2]) if len(argv) > 2 else 1000
    limit = float(argv[3]) if len(argv) > 3 else float("inf")
    pool = make_pool(url, role="bench-memory", max_size=1)
    pool.open(wait=True)
    stopped = None
    try:
        store = EventStore(pool)
        before = rss_mb()
        started = time.perf_counter()
        count = 0
        for _ in store.read_all(batch_size=batch):
            count += 1
            if count % batch:
                continue
            elapsed = time.perf_counter() - started
            projected = elapsed * expected / count
            if elapsed > limit or (elapsed > GRACE_SECONDS and projected > limit):
                stopped = f"stopped after {elapsed:.0f} s: all {expected:,} at this rate: ~{projected:,.0f} s"
                break
        seconds = time.perf_counter() - started
    finally:
        pool.close()
    result = {
        "events": count,
        "expected": expected,
        "seconds": round(seconds, 3),
        "stopped": stopped,
        "rss_before_read_mb": round(before, 1),
        "peak_rss_mb": round(peak_mb(), 1),
    }
    print(orjson.dumps(result).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
