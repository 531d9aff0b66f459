"""Publishing a thread: its parts in order, each recorded before the next goes out.

Called by ``workers.execution`` once the attempt (and the response tasks) are in the log and
the share's call lease is held, like a single post. Each part has its own idempotency key
(``lifecycle.part_key``); the attempt starts at the first part not recorded
(``lifecycle.resume_at``), looks that one up first when the last outcome is unknown (the
only part that can be in doubt), and records each part (``SharePartSent``) before sending
the next, the last with the share's ``ShareSent``. Each record takes a connection of its own
for the moment it writes: the call may run on another thread than the message's connection,
and holding one across the network calls could starve the lease keeper's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial

import structlog

from events.catalogue import SharedMedia
from events.records import NewEvent
from scheduler.domain import content
from scheduler.domain import share as lifecycle
from scheduler.domain.share import ShareState
from scheduler.services import calendars
from workers.channels import (
    Attachment,
    ChannelError,
    LeaseLost,
    PermanentChannelError,
    Post,
    PostRef,
    Published,
    Publisher,
    ReplyTo,
    TransientChannelError,
)
from workers.delivery import Delivery
from workers.outcomes import sent_time
from workers.runtime import Runtime

log = structlog.get_logger("workers.threads")

# A part's planned media with their bytes (``workers.execution.load_media``).
MediaLoader = Callable[[Sequence[SharedMedia]], tuple[Attachment, ...]]


@dataclass
class ThreadCall:
    """How far an attempt got: the share's state after the parts it recorded, and its outcome
    (recorded) or what stopped it (to record as a single post's failure is)."""

    state: ShareState
    outcome: str | None = None
    error: PermanentChannelError | TransientChannelError | None = None
    lost: bool = False


def publish_thread(rt: Runtime, message: Delivery, state: ShareState, post: Post, publisher: Publisher, *,
                   reconcile: bool, load: MediaLoader) -> ThreadCall:
    planned = state.planned
    assert planned is not None
    assert state.share_id is not None
    parts = content.parts_of(planned)
    first = lifecycle.resume_at(state)
    for index in range(first, len(parts)):
        started = rt.clock()
        try:
            # Its media read now, uploaded by the publisher before the part (an upload repeated is harmless).
            wanted = content.media_of(planned, index)
            part = _part_post(post, state, index, load(wanted) if wanted else ())
            found = publisher.find(part) if reconcile and index == first else None
            published = found or publisher.publish(part)
        except LeaseLost:
            return ThreadCall(state, lost=True)
        except (PermanentChannelError, TransientChannelError) as exc:
            log.warning("share_part_failed", part=index, reason=exc.reason)
            return ThreadCall(state, error=exc)
        # A connection only while recording: the lease keeper takes one before each request.
        with rt.pool.connection() as conn:
            d = Delivery(rt, conn, message.share_id, message.message_id, message.workspace_id)
            state, written = d.change(partial(_record_part, d, index, published, sent_time(published, started),
                                              reconciled=found is not None), state=state)
        if any(e.event.type_name == "DuplicatePosted" for e in written):
            # Another attempt recorded this part with its own post: this attempt's thread is not
            # the share's any more, so it stops here (its post is a duplicate, never "sent").
            log.warning("duplicate_posted", part=index, external_id=published.external_id, url=published.url)
            return _duplicate(rt, message, state, part, publisher=publisher, published=published)
        log.info("share_part_sent", part=index, of=len(parts), external_id=published.external_id,
                 url=published.url, reconciled=found is not None, stream_version=state.version)
        if state.status != "sending":
            break  # sent (the last part), or a person marked it sent meanwhile: nothing more to send
    if state.status == "sent":
        sent = state.sent
        assert sent is not None
        log.info("share_sent", external_id=sent.external_id, url=sent.url, parts=len(parts),
                 stream_version=state.version, sent_at=sent.sent_at.isoformat(), lateness_ms=sent.lateness_ms)
        return ThreadCall(state, outcome="share_sent")
    log.warning("share_thread_stopped", status=state.status, at_part=lifecycle.resume_at(state))
    return ThreadCall(state, outcome="share_thread_stopped")


def _duplicate(rt: Runtime, message: Delivery, state: ShareState, part: Post, *, publisher: Publisher,
               published: Published) -> ThreadCall:
    """An extra post of a part went out: deleted again when the account says so (as a single
    post's is, ``workers.outcomes``). No connection is held while the network deletes it."""
    if part.account_config.get("remove_duplicates") is not True:
        return ThreadCall(state, outcome="share_duplicate_posted")
    try:
        publisher.delete(part, published.external_id)
    except ChannelError as exc:
        log.error("duplicate_removal_failed", part=part.part, external_id=published.external_id, reason=exc.reason)
        return ThreadCall(state, outcome="share_duplicate_posted")
    with rt.pool.connection() as conn:
        d = Delivery(rt, conn, message.share_id, message.message_id, message.workspace_id)
        state, _ = d.change(lambda s: lifecycle.duplicate_removed(s, external_id=published.external_id,
                                                                  now=rt.clock()), state=state)
    log.warning("duplicate_removed", part=part.part, external_id=published.external_id)
    return ThreadCall(state, outcome="share_duplicate_removed")


def _record_part(d: Delivery, index: int, published: Published, sent_at: datetime, state: ShareState, *,
                 reconciled: bool) -> tuple[NewEvent, ...]:
    return lifecycle.record_part_sent(
        state, attempt=state.attempts, part=index, external_id=published.external_id, url=published.url,
        cid=published.cid, sent_at=sent_at, reconciled=reconciled, now=d.rt.clock(),
        calendars=calendars.for_share(d.rt.store, d.conn, d.workspace_id, state))


def _part_post(post: Post, state: ShareState, index: int, media: tuple[Attachment, ...]) -> Post:
    """Part ``index`` as a post: its text, warning, key and media; from the second on, under
    the part before."""
    planned = state.planned
    assert planned is not None
    assert state.share_id is not None
    reply_to = None
    if index > 0:
        root, parent = lifecycle.part_sent(state, 0), lifecycle.part_sent(state, index - 1)
        assert root is not None  # parts are recorded in order
        assert parent is not None
        reply_to = ReplyTo(root=PostRef(root.external_id, root.cid, root.sent_at),
                           parent=PostRef(parent.external_id, parent.cid, parent.sent_at))
    return replace(post, text=content.parts_of(planned)[index].text, part=index, reply_to=reply_to, media=media,
                   content_warning=content.warning_of(planned, index),
                   idempotency_key=lifecycle.part_key(state.share_id, index))
