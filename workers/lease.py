"""The one keeper of a call lease (``scheduler.services.call_lease``), for posts and answers.

Handed to the channel as ``before_write``: called right before each request that may
publish, it makes the attempt's lease cover that request, or raises ``LeaseLost`` and the
request is not sent. A lease claimed or extended moments ago still covers a request: the
common case (a prompt channel, one request) costs no statement at all.
"""

from __future__ import annotations

import threading
import time
from typing import Any
from uuid import UUID

from psycopg_pool import ConnectionPool

from scheduler.services import call_lease
from scheduler.services.call_lease import Kind
from workers.channels import LeaseLost


class LeaseKeeper:
    def __init__(self, pool: ConnectionPool[Any], kind: Kind, share_id: UUID, attempt: int, *,
                 budget_seconds: float, claimed_at: float) -> None:
        self.pool = pool
        self.kind: Kind = kind
        self.share_id = share_id
        self.attempt = attempt
        self.budget_seconds = budget_seconds
        # Fresh for an eighth of the budget (at most 5 s): what is left still covers a request.
        self.fresh_for = min(5.0, budget_seconds / 8)
        self.kept_at = claimed_at
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            if time.monotonic() - self.kept_at < self.fresh_for:
                return
            with self.pool.connection() as conn:
                if not call_lease.extend(conn, self.kind, self.share_id, self.attempt,
                                         budget_seconds=self.budget_seconds):
                    raise LeaseLost(str(self.share_id))
            self.kept_at = time.monotonic()
