"""Realistic share histories for the log: planned, sometimes rescheduled or cancelled,
attempted with their response tasks, failed and retried, sent, abandoned, replies
received, tasks completed or cancelled, the odd duplicate post. Shares progress
interleaved (many in flight at once), as the service writes them.

Deterministic for a seed. Used by the rebuild tests and ``bench/rebuild.py``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

from events.catalogue import (
    DuplicatePosted,
    DuplicateRemoved,
    Event,
    ResponseReceived,
    ResponseStep,
    ResponseTask,
    ResponseTaskCompleted,
    ResponseTasksCancelled,
    ResponseTasksRecorded,
    ShareAbandoned,
    ShareAttemptStarted,
    ShareCancelled,
    ShareFailed,
    ShareHeld,
    SharePlanned,
    ShareRescheduled,
    ShareSent,
)
from events.records import NewEvent, StreamAppend, metadata

ACCOUNTS = [(UUID(int=i + 1), name) for i, name in enumerate(("acme-news", "acme-dev", "acme-jobs"))]
OWNERS = ("alice", "bob", "carol")
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def _uuid(rng: random.Random) -> UUID:
    return UUID(int=rng.getrandbits(128), version=4)


def share_history(rng: random.Random, workspace_id: str) -> list[list[Event]]:
    """One share's appends (each a list of events), in order."""
    account_id, account_name = rng.choice(ACCOUNTS)
    due = T0 + timedelta(minutes=rng.randrange(60 * 24 * 28))
    plan = tuple(ResponseStep(kind=k, after_seconds=s, owner=rng.choice(OWNERS))
                 for k, s in (("check_replies", 3600), ("answer_replies", 86400)))
    appends: list[list[Event]] = [[SharePlanned(
        share_id=_uuid(rng), account_id=account_id, account_name=account_name,
        channel=rng.choice(("mastodon", "bluesky")),
        text="Launch notes: " + " ".join(rng.choice(("new", "faster", "read", "models", "today")) for _ in range(20)),
        scheduled_at=due, response_plan=plan)]]
    roll = rng.random()
    if roll < 0.05:
        due += timedelta(hours=1)
        appends.append([ShareRescheduled(scheduled_at=due)])
    if roll > 0.97:
        appends.append([ShareCancelled(reason="plans changed")])
        return appends
    tasks = tuple(ResponseTask(task_id=_uuid(rng), kind=s.kind, after_seconds=s.after_seconds, owner=s.owner)
                  for s in plan)
    attempts = 1 + (rng.random() < 0.1) + (rng.random() < 0.05)
    for attempt in range(1, attempts + 1):
        at = due + timedelta(seconds=attempt * 30)
        started = ShareAttemptStarted(attempt=attempt, started_at=at, idempotency_key=f"k{attempt}")
        appends.append([started, ResponseTasksRecorded(tasks=tasks)] if attempt == 1 else [started])
        if attempt < attempts:
            appends.append([ShareFailed(attempt=attempt, failed_at=at, reason="HTTP 503", retryable=True,
                                        next_attempt_at=at + timedelta(seconds=30))])
    sent_at = due + timedelta(seconds=attempts * 30 + 1)
    if roll < 0.01:
        appends.append([ShareAbandoned(attempts=attempts, abandoned_at=sent_at, reason="HTTP 503"),
                        ResponseTasksCancelled(task_ids=tuple(t.task_id for t in tasks), reason="abandoned")])
        return appends
    if 0.01 <= roll < 0.015:
        appends.append([ShareHeld(held_at=sent_at, lateness_ms=600_000, reason="too late")])
        return appends
    appends.append([ShareSent(attempt=attempts, external_id=str(rng.getrandbits(60)), url="https://m.example/@a/1",
                              scheduled_at=due, sent_at=sent_at, lateness_ms=attempts * 30_000 + 1000)])
    if rng.random() < 0.01:
        appends.append([DuplicatePosted(attempt=attempts, external_id="dup", detected_at=sent_at)])
        appends.append([DuplicateRemoved(external_id="dup", removed_at=sent_at)])
    for n in range(rng.choice((0, 0, 1, 2))):
        appends.append([ResponseReceived(reply_id=f"r{n}", author="@someone", text="nice!",
                                         received_at=sent_at + timedelta(minutes=n + 5))])
    for task in tasks:
        if rng.random() < 0.8:
            late = rng.random() < 0.2
            done = sent_at + timedelta(seconds=task.after_seconds * (2 if late else 0.5))
            appends.append([ResponseTaskCompleted(task_id=task.task_id, completed_at=done, completed_by=task.owner)])
    return appends


def share_appends(
    total_events: int, *, seed: int = 1, workspace_id: str = "acme", in_flight: int = 200
) -> Iterator[StreamAppend]:
    """Appends of share histories, about ``total_events`` events, with ``in_flight``
    shares progressing at once (one append of a random one at a time)."""
    rng = random.Random(seed)
    live: list[tuple[str, list[list[Event]], int]] = []
    written = 0
    while written < total_events or live:
        if written < total_events and len(live) < in_flight:
            history = share_history(rng, workspace_id)
            planned = history[0][0]
            assert isinstance(planned, SharePlanned)
            live.append((f"share-{planned.share_id}", history, 0))
            continue
        i = rng.randrange(len(live))
        stream, history, done = live[i]
        events = history[done]
        meta = metadata(workspace_id=workspace_id, actor="worker:execute_share")
        expected = sum(len(a) for a in history[:done])
        yield StreamAppend(stream, [NewEvent(e, event_id=_uuid(rng), metadata=meta) for e in events], expected,
                           workspace_id)
        written += len(events)
        if done + 1 == len(history):
            live[i] = live[-1]
            live.pop()
        else:
            live[i] = (stream, history, done + 1)


def in_chunks(appends: Iterator[StreamAppend], size: int) -> Iterator[list[StreamAppend]]:
    """Chunks of up to ``size`` appends for ``EventStore.append_many``, each stream at
    most once in a chunk (the statement reads every head before writing)."""
    chunk: list[StreamAppend] = []
    streams: set[str] = set()
    for append in appends:
        if len(chunk) == size or append.stream_id in streams:
            yield chunk
            chunk, streams = [], set()
        chunk.append(append)
        streams.add(append.stream_id)
    if chunk:
        yield chunk
