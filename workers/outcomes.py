"""Recording what a network call did: the post (or an extra post for a share already
sent), or the failure. Every outcome goes through the one unit of work for share
streams (``Delivery.change``), re-deciding on the stream's latest state when another
writer got there first.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import structlog

from events.catalogue import ShareSent
from scheduler.domain import share as lifecycle
from scheduler.domain.share import ShareState
from scheduler.services import calendars
from workers.channels import ChannelError, Post, Published
from workers.delivery import Delivery

log = structlog.get_logger("workers.outcomes")


def sent_time(published: Published, started: datetime) -> datetime:
    """The post's own creation time as the network reports it, else when the call started."""
    return published.created_at or started


def log_sent(published: Published, sent: ShareSent, *, version: int, reconciled: bool, **context: Any) -> None:
    log.info("share_sent", external_id=published.external_id, url=published.url, stream_version=version,
             sent_at=sent.sent_at.isoformat(), lateness_ms=sent.lateness_ms, reconciled=reconciled, **context)


def record_sent(d: Delivery, state: ShareState, attempt: int, published: Published, *, reconciled: bool,
                started: datetime, post: Post) -> str:
    """Record the post; for a share already sent with another post, record the duplicate
    (and delete it when the account asks for that)."""
    sent_at = sent_time(published, started)
    hours = calendars.for_share(d.rt.store, d.conn, d.workspace_id, state)
    after, written = d.change(
        lambda s: lifecycle.record_sent(s, attempt=attempt, external_id=published.external_id, url=published.url,
                                        sent_at=sent_at, reconciled=reconciled, now=d.rt.clock(), calendars=hours),
        state=state,
    )
    if not written:
        log.info("share_already_sent", external_id=published.external_id)
        return "share_already_sent"
    last = written[-1].event
    if not isinstance(last, ShareSent):  # an extra post for a share already sent
        return _duplicate(d, after, published, post)
    log_sent(published, last, version=after.version, reconciled=reconciled)
    return "share_sent"


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
    d.change(lambda s: lifecycle.duplicate_removed(s, external_id=published.external_id, now=d.rt.clock()),
             state=state)
    log.warning("duplicate_removed", external_id=published.external_id)
    return "share_duplicate_removed"


def record_failure(d: Delivery, state: ShareState, attempt: int, reason: str, *, retryable: bool,
                   outcome_unknown: bool, retry_after: timedelta | None) -> str:
    rt = d.rt
    after, written = d.change(
        lambda s: lifecycle.record_failure(
            s, attempt=attempt, reason=reason, retryable=retryable, outcome_unknown=outcome_unknown,
            now=rt.clock(), policy=rt.retry_policy, random=rt.random(), retry_after=retry_after),
        state=state,
    )
    if not written:
        log.info("share_outcome_already_recorded", status=after.status)
        return "share_outcome_already_recorded"
    names = [e.event.type_name for e in written]
    if "ShareAbandoned" in names:
        log.error("share_abandoned", reason=reason, attempts=attempt)
        return "share_abandoned"
    next_at = getattr(written[0].event, "next_attempt_at", None)
    if next_at is not None:
        log.warning("share_retry_scheduled", reason=reason, next_attempt_at=next_at.isoformat(),
                    outcome_unknown=outcome_unknown)
        return "share_retry_scheduled"
    log.error("share_failed", reason=reason, retryable=retryable)
    return "share_failed"
