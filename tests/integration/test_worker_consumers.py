"""What a worker process consumes (its two queues on Redis, and no delay queue to poll), and how
its garbage collector is set once it has booted."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import dramatiq
import dramatiq.broker
import pytest
from dramatiq.brokers.redis import RedisBroker

from followthrough.bootstrap import worker_broker
from followthrough.settings import Settings
from workers.actors import queue_names
from workers.middleware import WORKER_GC_THRESHOLDS


def test_a_worker_on_redis_consumes_its_two_queues_and_no_delay_queue(settings: Settings) -> None:
    before = dramatiq.broker.global_broker
    broker = worker_broker(settings, build=lambda: pytest.fail("the worker needs no runtime to start consuming"))
    try:
        assert isinstance(broker, RedisBroker), "the tests' broker is Redis (BROKER_URL or the embedded one)"
        worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
        worker.start()
        try:
            # Nothing is ever delayed: a delay queue's consumer would poll Redis for nothing
            assert set(worker.consumers) == set(queue_names(settings.queue_prefix).values())
        finally:
            worker.stop()
    finally:
        broker.close()
        if before is not None:
            dramatiq.set_broker(before)


# Run in a process of its own, as a worker process boots: freezing the tests' own heap would
# change every test after this one.
BOOT = textwrap.dedent("""
    import gc, json, multiprocessing, sys, types
    from followthrough.bootstrap import worker_broker
    from followthrough.settings import Settings
    from workers import lifeline

    class Runtime:  # what the Resources middleware builds at boot, standing in for the real one
        def close(self): pass

    steps, built = [], []
    # As in a process forked by Dramatiq's master: the lifeline is held to the parent.
    multiprocessing.parent_process = lambda: types.SimpleNamespace(pid=1)
    lifeline.hold = lambda pid: steps.append("lifeline")
    broker = worker_broker(Settings(broker_url=sys.argv[1], queue_prefix=sys.argv[2]),
                           build=lambda: steps.append("runtime") or built.append(Runtime()) or built[0])
    before = gc.get_threshold()
    broker.emit_after("process_boot")
    print(json.dumps({"steps": steps, "before": before, "after": gc.get_threshold(),
                      "frozen": gc.get_freeze_count(),
                      "runtime_tracked": any(o is built[0] for o in gc.get_objects())}))
    broker.close()
""")


def test_a_booted_worker_process_holds_its_lifeline_builds_its_runtime_then_freezes_its_heap(
    settings: Settings,
) -> None:
    # When a worker process boots (its broker built as `followthrough worker` builds it)
    done = subprocess.run([sys.executable, "-c", BOOT, str(settings.broker_url), settings.queue_prefix],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    # Then an orphan dies before it opens anything (the lifeline first), then the runtime is built
    assert found["steps"] == ["lifeline", "runtime"]
    # And everything alive after boot, the runtime included, is out of the collector's sight
    assert found["frozen"] > 10_000
    assert found["runtime_tracked"] is False
    # And young collections come at the worker's threshold, not Python's
    assert tuple(found["before"]) == (700, 10, 10)
    assert tuple(found["after"]) == WORKER_GC_THRESHOLDS
