"""Collecting replies: one look at the thread under a sent share.

Order, for each share of a "look now" message: read the share -> count the look against
the account's hourly budget (spent: the look moves to the next hour) -> read the thread
through the channel -> decide on the share with every look counted (``reply_looks``) ->
when the look changed something, append it (new replies, answers the account wrote
itself, tasks that settle, the look with the next one's time: the schedule row) with the
expected version; when it changed nothing, no event: its next look is written to the
schedule row, guarded by the same version (``services.looks.look_again``). Either way
the look is counted in that transaction, and when another writer got there first the
look is decided again on the newer state. A look repeated (a redelivered message)
records nothing twice: reply events carry ids derived from the share and the network's
reply id.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

import structlog

from events.catalogue import Engagement
from events.errors import ConcurrencyError
from events.records import AppendResult
from scheduler.domain import share as lifecycle
from scheduler.domain.replies import budget_per_hour
from scheduler.domain.share import Look, ShareState, ThreadPost
from scheduler.errors import InvalidInputError
from scheduler.services import looks
from scheduler.services.answer_queue import postpone_look, take_look_budget
from scheduler.services.share_stream import SCHEDULE_CHANNEL, WRITE_TRIES
from workers.channels import ChannelError, EngagementReader, SharePost, ThreadReader, TransientChannelError
from workers.context import bound, share_context
from workers.delivery import Delivery
from workers.runtime import Runtime

log = structlog.get_logger("workers.collection")


def collect_replies(rt: Runtime, share_ids: Sequence[UUID], *, message_id: str | None = None) -> dict[UUID, str]:
    """One look at each share's thread; each share's outcome by id."""
    outcomes = {}
    for share_id in dict.fromkeys(share_ids):
        with bound(share_id=str(share_id)):
            outcomes[share_id] = collect_one(rt, share_id, message_id=message_id)
    return outcomes


def share_post(d: Delivery, state: ShareState) -> SharePost:
    assert state.planned is not None
    assert state.sent is not None
    return SharePost(share_id=d.share_id, workspace_id=d.workspace_id, account_name=state.planned.account_name,
                     account_config=d.rt.accounts.get(d.conn, state.planned.account_id),
                     external_id=state.sent.external_id, url=state.sent.url, sent_at=state.sent.sent_at)


def collect_one(rt: Runtime, share_id: UUID, *, message_id: str | None = None) -> str:
    with rt.pool.connection() as conn:
        d = Delivery(rt, conn, share_id, message_id)
        state, _ = d.load()
        config = rt.accounts.get(conn, state.planned.account_id) if state.planned is not None else None
        with bound(**share_context(d.workspace_id, state, config)):
            return _look(rt, d, state)


def _look(rt: Runtime, d: Delivery, state: ShareState) -> str:
    if state.planned is None or state.sent is None or state.status != "sent":
        log.info("replies_skipped", reason=f"share is {state.status if state.planned else 'unknown'}")
        return "replies_skipped"
    now = rt.clock()
    post = share_post(d, state)
    if not _within_budget(d, state, post, now):
        return "replies_postponed"
    posts, error, retry_after, engagement = _read(rt, state, post)
    look = _write_look(rt, d, state, posts, now=now, error=error, retry_after=retry_after, engagement=engagement)
    if look is None:
        log.info("replies_skipped", reason="the share is no longer sent")
        return "replies_skipped"
    looked = look.looked
    log.info("replies_collected", channel=state.planned.channel, found=looked.found, new=looked.new,
             answered_natively=sum(1 for e in look.events if e.event.type_name == "ReplyAnswered"),
             tasks_settled=sum(1 for e in look.events if e.event.type_name == "ResponseTaskCompleted"),
             collected=looked.collected, error=looked.error, recorded=look.recorded,
             empty_looks=looked.empty_looks,
             engagement=looked.engagement.model_dump() if looked.engagement else None,
             next_look_at=looked.next_look_at.isoformat() if looked.next_look_at else None)
    return "replies_collected" if looked.collected else "replies_not_collected"


def _write_look(rt: Runtime, d: Delivery, state: ShareState, posts: list[ThreadPost] | None, *, now: datetime,
                error: str | None, retry_after: timedelta | None,
                engagement: Engagement | None = None) -> Look | None:
    """Decide on the share with every look counted and write the look: its events (and
    the look counted with them), or, when it changed nothing, its next look and count
    alone; decided again on the newer state when another writer got there first."""
    loaded: ShareState | None = state
    for _ in range(WRITE_TRIES):
        if loaded is None:
            loaded, _ = d.load()
        counted = lifecycle.looks_counted(loaded, looks.ledger(d.conn, d.share_id))
        look = lifecycle.record_look(counted, posts, now=now, error=error, retry_after=retry_after,
                                     engagement=engagement)
        if look is None:
            return None
        before = counted.thread.looks
        if look.recorded:
            def count(conn: looks.Conn, _: AppendResult, look: Look = look, before: int = before) -> None:
                looks.count_look(conn, share_id=d.share_id, workspace_id=d.workspace_id, looked=look.looked,
                                 looks_before=before)
            try:
                d.commit(look.events, expected_version=loaded.version, also=count)
            except ConcurrencyError:
                loaded = None  # the share moved on meanwhile: decide again on the new state
                continue
            return look
        if looks.look_again(d.conn, share_id=d.share_id, workspace_id=d.workspace_id, version=loaded.version,
                            looked=look.looked, looks_before=before):
            if look.looked.next_look_at is not None and rt.notifier is not None:
                rt.notifier.notify((SCHEDULE_CHANNEL,))  # the dispatcher may plan to wake later
            return look
        loaded = None
    raise ConcurrencyError(d.stream_id, None, -1)


def _within_budget(d: Delivery, state: ShareState, post: SharePost, now: datetime) -> bool:
    assert state.planned is not None
    try:
        budget = budget_per_hour(post.account_config)
    except InvalidInputError:
        budget = 1  # a broken setting costs looks, never floods the network
    used = take_look_budget(d.conn, state.planned.account_id, now)
    if used <= budget:
        return True
    next_hour = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    postpone_look(d.conn, d.share_id, next_hour)
    log.warning("replies_look_postponed", reason="the account's budget of looks for this hour is spent",
                budget_per_hour=budget, next_look_at=next_hour.isoformat())
    return False


def _read(rt: Runtime, state: ShareState, post: SharePost) -> tuple[
        list[ThreadPost] | None, str | None, timedelta | None, Engagement | None]:
    """The thread's posts (None: the channel cannot read replies) and the post's counts
    (None: the channel does not read them), or why the look failed."""
    assert state.planned is not None
    try:
        publisher = rt.publishers.for_channel(state.planned.channel)
    except ChannelError as exc:
        return [], exc.reason, None, None
    if not isinstance(publisher, ThreadReader):
        return None, None, None, None
    try:
        if isinstance(publisher, EngagementReader):
            read = publisher.read_look(post)
            return read.posts, None, None, read.engagement
        return publisher.read_thread(post), None, None, None
    except TransientChannelError as exc:
        return [], exc.reason, exc.retry_after, None
    except ChannelError as exc:
        return [], exc.reason, None, None
