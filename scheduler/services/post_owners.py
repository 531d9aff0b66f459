"""Which posts on a network the log already records as a share's or an answer's.

A look-up for an unknown outcome (``Publisher.find``) matches a post by its text where the
network cannot be asked by idempotency key: another share with the same text, on the same
account, would match too. The worker passes over a post the log records for another stream.
"""

from __future__ import annotations

from typing import Any

from psycopg_pool import ConnectionPool

# The events that record a post and its id on the network (``events_posts_idx`` covers them:
# keep the two lists the same, or the query reads the whole log).
_RECORDED_ELSEWHERE = """
SELECT EXISTS (
    SELECT 1 FROM events
    WHERE data->>'external_id' = %(external_id)s
      AND type IN ('ShareSent', 'SharePartSent', 'DuplicatePosted', 'ReplyAnswered')
      AND workspace_id = %(workspace_id)s
      AND stream_id <> %(stream_id)s)
"""


class PostOwners:
    """``taken(external_id)``: whether the post is recorded for a stream other than ``stream_id``
    (read on a connection of its own: a look-up runs on a call thread)."""

    def __init__(self, pool: ConnectionPool[Any], workspace_id: str, stream_id: str) -> None:
        self.pool = pool
        self.workspace_id = workspace_id
        self.stream_id = stream_id

    def __call__(self, external_id: str) -> bool:
        with self.pool.connection() as conn:
            row = conn.execute(_RECORDED_ELSEWHERE, {"external_id": external_id, "workspace_id": self.workspace_id,
                                                     "stream_id": self.stream_id}).fetchone()
        return bool(row and row[0])
