"""Realistic share histories for the log: planned, sometimes rescheduled or cancelled,
attempted with their response tasks, failed and retried, sent, abandoned, looks at
the thread (some finding replies, some on a channel that cannot read them), replies
answered (after failed attempts, given up, natively in the network's app), dismissed
or left alone, tasks completed or cancelled, the odd duplicate post. Shares progress
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
    Engagement,
    Event,
    RepliesLooked,
    ReplyAnswerAttemptStarted,
    ReplyAnswered,
    ReplyAnswerFailed,
    ReplyAnswerRequested,
    ReplyAssigned,
    ReplyDismissed,
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
    appends.extend(thread_history(rng, sent_at))
    for task in tasks:
        if rng.random() < 0.8:
            late = rng.random() < 0.2
            done = sent_at + timedelta(seconds=task.after_seconds * (2 if late else 0.5))
            appends.append([ResponseTaskCompleted(task_id=task.task_id, completed_at=done, completed_by=task.owner)])
    return appends


def thread_history(rng: random.Random, sent_at: datetime) -> list[list[Event]]:
    """The appends of the looks at a sent share's thread and of its replies' answers."""
    roll = rng.random()
    if roll < 0.1:  # a channel that cannot read replies: one look, then none
        return [[RepliesLooked(looked_at=sent_at + timedelta(minutes=5), found=0, new=0, empty_looks=1,
                               collected=False)]]
    if roll < 0.15:  # sent before replies were collected: a reply recorded by hand, no looks
        return [[ResponseReceived(reply_id="r0", author="@someone", text="nice!",
                                  received_at=sent_at + timedelta(minutes=5))]]
    appends: list[list[Event]] = []
    replies: list[str] = []
    empty = 0
    for look in range(1, rng.choice((1, 2, 3)) + 1):
        at = sent_at + timedelta(minutes=10 * look)
        found = [f"r{look}-{n}" for n in range(rng.choice((0, 0, 1, 2)))]
        empty = 0 if found else empty + 1
        received: list[Event] = [ResponseReceived(
            reply_id=reply, author=f"@fan{n}", text="nice!", url=f"https://m.example/@fan{n}/{look}",
            received_at=at - timedelta(minutes=n + 1), parent_id=rng.choice((None, replies[-1] if replies else None)),
            collected_at=at) for n, reply in enumerate(found)]
        if replies and rng.random() < 0.05:  # found again (collected twice): counted, not inserted again
            received.append(ResponseReceived(reply_id=replies[0], author="@fan0", text="nice!", received_at=at))
        replies.extend(found)
        # The post's counts, read by every other look (no draw from ``rng``: the histories stay as they were).
        counts = Engagement(replies=len(replies), reposts=look, likes=2 * look + len(found),
                            quotes=look - 1 if look > 1 else None) if look % 2 else None
        appends.append([*received, RepliesLooked(looked_at=at, found=len(replies), new=len(found),
                                                 empty_looks=empty, next_look_at=at + timedelta(minutes=10),
                                                 engagement=counts)])
    for reply in replies:
        at = sent_at + timedelta(hours=1)
        if rng.random() < 0.3:  # given to a person first (now and then given on to another)
            appends.extend([[ReplyAssigned(reply_id=reply, assignee=rng.choice(OWNERS), assigned_by="alice",
                                           assigned_at=at - timedelta(minutes=n))] for n in range(rng.choice((1, 2)))])
        appends.extend(reply_history(rng, reply, at))
        if rng.random() < 0.05:  # assigned after it was handled: it still changes hands
            appends.append([ReplyAssigned(reply_id=reply, assignee="carol", assigned_by="bob", assigned_at=at)])
    if rng.random() < 0.02:  # an answer to a reply the model never held
        appends.append([ReplyDismissed(reply_id="unknown", dismissed_by="bob", dismissed_at=sent_at)])
    if rng.random() < 0.02:  # and an assignment of one
        appends.append([ReplyAssigned(reply_id="unknown", assignee="bob", assigned_by="bob", assigned_at=sent_at)])
    return appends


def reply_history(rng: random.Random, reply: str, at: datetime) -> list[list[Event]]:
    """One reply's answer or dismissal (or nothing), as the appends that record it."""
    roll = rng.random()
    owner = rng.choice(OWNERS)
    if roll < 0.3:
        return []
    if roll < 0.45:
        dismissed = [[ReplyDismissed(reply_id=reply, reason="spam", dismissed_by=owner, dismissed_at=at)]]
        if roll < 0.35:  # then answered in the network's own app after all
            dismissed.append([ReplyAnswered(reply_id=reply, external_id=f"own-{reply}", answered_at=at,
                                            native=True)])
        return dismissed
    if roll < 0.55:
        return [[ReplyAnswered(reply_id=reply, external_id=f"own-{reply}", url="https://m.example/@a/own",
                               answered_at=at, native=True)]]
    appends: list[list[Event]] = [[ReplyAnswerRequested(reply_id=reply, text="Thanks!", requested_by=owner,
                                                        requested_at=at)]]
    attempts = 1 + (rng.random() < 0.2) + (rng.random() < 0.1)
    given_up = roll > 0.95
    for attempt in range(1, attempts + 1):
        started = at + timedelta(seconds=attempt * 30)
        appends.append([ReplyAnswerAttemptStarted(reply_id=reply, attempt=attempt, started_at=started,
                                                  idempotency_key=f"a{attempt}")])
        if attempt < attempts or given_up:
            last = attempt == attempts
            appends.append([ReplyAnswerFailed(
                reply_id=reply, attempt=attempt, failed_at=started, reason="HTTP 503" if not last else "HTTP 422",
                retryable=not last, next_attempt_at=None if last else started + timedelta(seconds=30))])
    if not given_up:
        answered = at + timedelta(seconds=attempts * 30 + 1)
        appends.append([ReplyAnswered(reply_id=reply, external_id=f"ans-{reply}", url="https://m.example/@a/2",
                                      answered_at=answered, attempt=attempts)])
        if rng.random() < 0.1:  # late news of a settled reply: already answered, nothing changes
            appends.append([ReplyAnswered(reply_id=reply, external_id=f"ans-{reply}", answered_at=answered,
                                          reconciled=True),
                            ReplyAnswerAttemptStarted(reply_id=reply, attempt=attempts + 1, started_at=answered,
                                                      idempotency_key="late", reconcile=True),
                            ReplyAnswerFailed(reply_id=reply, attempt=attempts + 1, failed_at=answered,
                                              reason="HTTP 409", retryable=False),
                            ReplyDismissed(reply_id=reply, dismissed_by=owner, dismissed_at=answered)])
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
