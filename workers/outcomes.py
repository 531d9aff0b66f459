"""Recording what a network call did: the post (or an extra post for a share already
sent), or the failure. Every outcome goes through the one unit of work for share
streams, re-deciding on the stream's latest state when another writer got there first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
import structlog

from events.catalogue import ShareSent
from events.errors import ConcurrencyError
from events.records import AppendResult, NewEvent, RecordedEvent
from scheduler.domain import share as lifecycle
from scheduler.domain.share import ShareState
from scheduler.services.share_stream import stamp
from workers.channels import ChannelError, Post, Published
from workers.runtime import Runtime

log = structlog.get_logger("workers.execution")

OUTCOME_APPEND_TRIES = 5
Conn = psycopg.Connection[Any]


@dataclass
class Delivery:
    """One share of a "publish this now" message being handled, on the message's connection."""

    rt: Runtime
    conn: Conn
    share_id: UUID
    message_id: str | None
    workspace_id: str = ""

    def load(self) -> tuple[ShareState, list[RecordedEvent]]:
        history = self.rt.store.read_stream(lifecycle.stream_id(self.share_id), conn=self.conn)
        if history:
            self.workspace_id = history[0].workspace_id
        return lifecycle.fold(r.event for r in history), history

    def stamp(self, events: Sequence[NewEvent]) -> list[NewEvent]:
        """The events with this delivery's metadata (actor, correlation, causation)."""
        return stamp(events, workspace_id=self.workspace_id, actor="worker", share_id=self.share_id,
                     causation_id=self.message_id)

    def commit(self, events: Sequence[NewEvent], *, expected_version: int) -> AppendResult:
        """Append ``events`` and the schedule changes they imply, atomically."""
        return self.rt.streams.commit(self.conn, share_id=self.share_id, workspace_id=self.workspace_id,
                                      events=self.stamp(events), expected_version=expected_version)


def sent_time(published: Published, started: datetime) -> datetime:
    """The post's own creation time as the network reports it, else when the call started."""
    return published.created_at or started


def log_sent(published: Published, sent: ShareSent, *, version: int, reconciled: bool) -> None:
    log.info("share_sent", external_id=published.external_id, url=published.url, stream_version=version,
             sent_at=sent.sent_at.isoformat(), lateness_ms=sent.lateness_ms, reconciled=reconciled)


def record_sent(d: Delivery, state: ShareState, attempt: int, published: Published, *, reconciled: bool,
                started: datetime, post: Post) -> str:
    """Record the post; for a share already sent with another post, record the duplicate
    (and delete it when the account asks for that)."""
    for _ in range(OUTCOME_APPEND_TRIES):
        events = lifecycle.record_sent(state, attempt=attempt, external_id=published.external_id,
                                       url=published.url, sent_at=sent_time(published, started),
                                       reconciled=reconciled, now=d.rt.clock())
        if not events:
            log.info("share_already_sent", external_id=published.external_id)
            return "share_already_sent"
        try:
            version = d.commit(events, expected_version=state.version).version
        except ConcurrencyError:
            state, _ = d.load()  # the stream moved (a reply, another attempt): decide again
            continue
        last = events[-1].event
        if not isinstance(last, ShareSent):  # an extra post for a share already sent
            state = replace(lifecycle.fold((e.event for e in events), state), version=version)
            return _duplicate(d, state, published, post)
        log_sent(published, last, version=version, reconciled=reconciled)
        return "share_sent"
    raise RuntimeError(f"could not record the outcome of share {d.share_id} after {OUTCOME_APPEND_TRIES} tries")


def _duplicate(d: Delivery, state: ShareState, published: Published, post: Post) -> str:
    """An extra post went out: never silent. Deleted again when the account says so."""
    first = state.sent.external_id if state.sent else None
    log.warning("duplicate_posted", external_id=published.external_id, url=published.url,
                first_external_id=first)
    if post.account_config.get("remove_duplicates") is not True:
        return "share_duplicate_posted"
    try:
        d.rt.publishers.for_channel(state.planned.channel if state.planned else "").delete(
            post, published.external_id)
    except ChannelError as exc:
        log.error("duplicate_removal_failed", external_id=published.external_id, reason=exc.reason)
        return "share_duplicate_posted"
    for _ in range(OUTCOME_APPEND_TRIES):
        events = lifecycle.duplicate_removed(state, external_id=published.external_id, now=d.rt.clock())
        if not events:
            break
        try:
            d.commit(events, expected_version=state.version)
        except ConcurrencyError:
            state, _ = d.load()
            continue
        break
    log.warning("duplicate_removed", external_id=published.external_id)
    return "share_duplicate_removed"


def record_failure(d: Delivery, state: ShareState, attempt: int, reason: str, *, retryable: bool,
                   outcome_unknown: bool, retry_after: timedelta | None) -> str:
    rt = d.rt
    for _ in range(OUTCOME_APPEND_TRIES):
        events = lifecycle.record_failure(
            state, attempt=attempt, reason=reason, retryable=retryable, outcome_unknown=outcome_unknown,
            now=rt.clock(), policy=rt.retry_policy, random=rt.random(), retry_after=retry_after,
        )
        if not events:
            log.info("share_outcome_already_recorded", status=state.status)
            return "share_outcome_already_recorded"
        try:
            d.commit(events, expected_version=state.version)
        except ConcurrencyError:
            state, _ = d.load()
            continue
        names = [e.event.type_name for e in events]
        if "ShareAbandoned" in names:
            log.error("share_abandoned", reason=reason, attempts=attempt)
            return "share_abandoned"
        next_at = getattr(events[0].event, "next_attempt_at", None)
        if next_at is not None:
            log.warning("share_retry_scheduled", reason=reason, next_attempt_at=next_at.isoformat(),
                        outcome_unknown=outcome_unknown)
            return "share_retry_scheduled"
        log.error("share_failed", reason=reason, retryable=retryable)
        return "share_failed"
    raise RuntimeError(f"could not record the failure of share {d.share_id} after {OUTCOME_APPEND_TRIES} tries")
