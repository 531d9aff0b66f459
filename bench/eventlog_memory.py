"""Child process of the event-log benchmark: read the whole log through
``EventStore.read_all`` and report the process's peak memory (maxrss).

Run alone: ``python -m bench.eventlog_memory URL EXPECTED [BATCH]``. It prints one
JSON object: events read, seconds, RSS before reading and the peak, in MB.
"""

from __future__ import annotations

import resource
import sys
import time

import orjson

from events.store import EventStore
from scheduler.db import make_pool
from scheduler.settings import Settings


def rss_mb() -> float:
    """This process's current resident set size (Linux), in MB."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def main(argv: list[str]) -> int:
    url, expected = argv[0], int(argv[1])
    batch = int(argv[2]) if len(argv) > 2 else 1000
    settings = Settings(database_url=url, broker_url="redis://unused", pool_min=1, pool_max=1)
    pool = make_pool(settings, url, role="bench-memory")
    pool.open(wait=True)
    try:
        store = EventStore(pool)
        before = rss_mb()
        started = time.perf_counter()
        count = 0
        for _ in store.read_all(batch_size=batch):
            count += 1
        seconds = time.perf_counter() - started
    finally:
        pool.close()
    result = {
        "events": count,
        "expected": expected,
        "seconds": round(seconds, 3),
        "rss_before_read_mb": round(before, 1),
        "peak_rss_mb": round(peak_mb(), 1),
    }
    print(orjson.dumps(result).decode())
    return 0 if count == expected else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
