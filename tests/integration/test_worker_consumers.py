"""What a worker process consumes: its two queues on Redis, and no delay queue to poll."""

from __future__ import annotations

import dramatiq
import dramatiq.broker
import pytest
from dramatiq.brokers.redis import RedisBroker

from followthrough.bootstrap import worker_broker
from followthrough.settings import Settings
from workers.actors import queue_names


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
