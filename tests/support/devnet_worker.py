"""A worker process that dies mid-call: it runs one delivery of a share (``execute_share``, as
the publish actor does) with the real Bluesky publisher, and SIGKILLs itself the moment the
PDS has answered ``createRecord``: the post exists, the worker never records it.

    python -m tests.support.devnet_worker DATABASE_URL SHARE_ID CALL_BUDGET_SECONDS [WRITES]

``WRITES`` (default 1): it dies at the answer to that many ``createRecord`` calls (a thread's
part after the first: the parts before it are out and recorded).

The account's app password comes from the environment variable its config names.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID

import httpx

from events.pool import make_pool
from events.store import EventStore
from followthrough.bootstrap import channel_client
from followthrough.settings import Settings
from tests.support.shares import runtime
from workers.channels.bluesky import BlueskyPublisher
from workers.execution import execute_share

WRITE = "/xrpc/com.atproto.repo.createRecord"


def die_once_written(writes: int) -> Callable[[httpx.Response], None]:
    seen = [0]

    def hook(response: httpx.Response) -> None:
        if response.request.url.path == WRITE:
            seen[0] += 1
            if seen[0] >= writes:
                os.kill(os.getpid(), signal.SIGKILL)

    return hook


def main(database_url: str, share_id: str, call_budget_seconds: str, writes: str = "1") -> None:
    pool = make_pool(database_url, role="test-worker", max_size=4)
    pool.open(wait=True)
    client = channel_client(Settings(database_url=database_url))
    client.event_hooks = {"response": [die_once_written(int(writes))]}
    rt = runtime(pool, EventStore(pool), BlueskyPublisher(client), clock=lambda: datetime.now(UTC),
                 call_budget_seconds=float(call_budget_seconds))
    outcome = execute_share(rt, UUID(share_id))
    print(f"worker lived: {outcome}", file=sys.stderr)
    sys.exit(3)  # never reached when the write was made


if __name__ == "__main__":
    main(*sys.argv[1:5])
