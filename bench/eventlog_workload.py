"""The event-log benchmark's workload: realistic share events, grouped into appends,
and the same writes as plain rows for the raw psycopg baseline.

Both sides write the very same events (store into ``events``, raw into
``bench_raw``), so row sizes match byte for byte. The raw rows are encoded
beforehand, outside the timing: the codec's work counts against the store.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import orjson

from events import codec
from events.catalogue import (
    ResponseReceived,
    ResponseStep,
    ResponseTask,
    ResponseTasksRecorded,
    ShareAttemptStarted,
    SharePlanned,
    ShareSent,
)
from events.records import NewEvent, metadata

WORKSPACE = "ws-northwind-social"
ACCOUNT_ID = UUID("6f1c2a4e-8b7d-4c3e-9a51-2d0f7e6b9c13")
TEXT = (
    "Our spring release is out: scheduled posts now carry their response plan, so every "
    "share comes with the follow-through built in. Replies are checked after an hour and "
    "again the next day, and the inbox shows what is overdue. Try it and tell us what you "
    "think! #followthrough #community"
)
PLAN = (
    ResponseStep(kind="check_replies", after_seconds=3600, owner="maria@northwind.example"),
    ResponseStep(kind="check_replies", after_seconds=86400, owner="maria@northwind.example"),
)
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)

# (event_id, stream_id, stream_version, type, schema_version, data, metadata, workspace_id)
RawRow = tuple[UUID, str, int, str, int, str, str, str]


@dataclass(frozen=True, slots=True)
class Append:
    """One store append (one transaction): events to one stream at an expected version."""

    stream_id: str
    expected_version: int
    events: tuple[NewEvent, ...]

    def raw_rows(self) -> list[RawRow]:
        """The rows the store writes for this append, encoded as the codec encodes them."""
        cols = codec.encode(self.events)
        return [
            (event_id, self.stream_id, self.expected_version + i, type_name, version, data, meta, WORKSPACE)
            for i, (event_id, type_name, version, data, meta) in enumerate(
                zip(
                    cols["event_ids"],
                    cols["types"],
                    cols["schema_versions"],
                    cols["data"],
                    cols["metadata"],
                    strict=True,
                ),
                start=1,
            )
        ]


def _meta(share_id: UUID, *, actor: str, causation: UUID | None = None) -> dict[str, Any]:
    return metadata(
        workspace_id=WORKSPACE,
        actor=actor,
        correlation_id=str(share_id),
        causation_id=None if causation is None else str(causation),
    )


def planned(share_id: UUID) -> NewEvent:
    event = SharePlanned(
        share_id=share_id,
        account_id=ACCOUNT_ID,
        account_name="Northwind on Mastodon",
        channel="mastodon",
        text=TEXT,
        scheduled_at=NOW + timedelta(hours=2),
        response_plan=PLAN,
        late_policy="send",
        max_lateness_seconds=900,
    )
    return NewEvent(event, metadata=_meta(share_id, actor="api:token-3f9a"))


def sent(share_id: UUID, external_id: str = "113000000000000001") -> NewEvent:
    scheduled = NOW + timedelta(hours=2)
    event = ShareSent(
        attempt=1,
        external_id=external_id,
        url=f"https://mastodon.social/@northwind/{external_id}",
        scheduled_at=scheduled,
        sent_at=scheduled + timedelta(milliseconds=1840),
        lateness_ms=1840,
    )
    return NewEvent(event, metadata=_meta(share_id, actor="worker:execute_share", causation=share_id))


def attempt_started(share_id: UUID) -> NewEvent:
    event = ShareAttemptStarted(attempt=1, started_at=NOW + timedelta(hours=2), idempotency_key=f"share-{share_id}-1")
    return NewEvent(event, metadata=_meta(share_id, actor="worker:execute_share", causation=share_id))


def tasks_recorded(share_id: UUID) -> NewEvent:
    tasks = tuple(
        ResponseTask(task_id=uuid4(), kind=step.kind, after_seconds=step.after_seconds, owner=step.owner)
        for step in PLAN
    )
    return NewEvent(
        ResponseTasksRecorded(tasks=tasks), metadata=_meta(share_id, actor="worker:execute_share", causation=share_id)
    )


def reply(share_id: UUID, n: int) -> NewEvent:
    reply_id = str(113000000000100000 + n)
    event = ResponseReceived(
        reply_id=reply_id,
        author=f"@reader{n}@fosstodon.org",
        text="Congrats on the release! Does the response plan also work for Bluesky accounts?",
        url=f"https://fosstodon.org/@reader{n}/{reply_id}",
        received_at=NOW + timedelta(hours=2, minutes=n),
    )
    return NewEvent(event, metadata=_meta(share_id, actor="worker:collect_responses", causation=share_id))


def single_appends(count: int) -> list[Append]:
    """``count`` single-event appends: shares planned (a new stream, expected 0) and
    then sent (expected 1), the commonest appends of the service."""
    appends: list[Append] = []
    while len(appends) < count:
        share_id = uuid4()
        stream = f"share-{share_id}"
        appends.append(Append(stream, 0, (planned(share_id),)))
        appends.append(Append(stream, 1, (sent(share_id),)))
    return appends[:count]


def batch_appends(count: int, size: int) -> list[Append]:
    """``count`` appends of ``size`` events to a new stream each: a share planned,
    attempted with its tasks, sent, and then its replies."""
    appends: list[Append] = []
    for _ in range(count):
        share_id = uuid4()
        head = [planned(share_id), attempt_started(share_id), tasks_recorded(share_id), sent(share_id)]
        events = head[:size] + [reply(share_id, n) for n in range(size - len(head))]
        appends.append(Append(f"share-{share_id}", 0, tuple(events)))
    return appends


def chunks(items: Sequence[Append], parts: int) -> Iterator[Sequence[Append]]:
    """``items`` in ``parts`` contiguous slices of (nearly) equal length."""
    step, extra = divmod(len(items), parts)
    start = 0
    for i in range(parts):
        end = start + step + (1 if i < extra else 0)
        yield items[start:end]
        start = end


def bulk_load_params(count: int) -> dict[str, Any]:
    """Parameters of ``bulk_load``: templates taken from real events through the codec."""
    share_id = uuid4()
    cols = codec.encode([planned(share_id), sent(share_id)])
    meta = orjson.loads(cols["metadata"][0])
    meta.pop("correlation_id")
    return {
        "count": count,
        "workspace_id": WORKSPACE,
        "metadata": orjson.dumps(meta).decode(),
        "planned_type": cols["types"][0],
        "planned_version": cols["schema_versions"][0],
        "planned": cols["data"][0],
        "sent_type": cols["types"][1],
        "sent_version": cols["schema_versions"][1],
        "sent": cols["data"][1],
    }
