"""Executing shares: the one place that calls a network to publish.

Order, always, for each share: decide -> take the share's call lease -> append the
attempt and the response tasks (one atomic append, with the expected version) -> call
the channel, the lease extended right before every request that may publish -> record
the outcome as soon as the call returns.

The lease is what makes a look-up for an unknown outcome mean something: another
attempt may start only once the lease has run out, when no earlier request can still
be in flight. A message of many shares (the dispatcher groups work due together)
claims and starts them in a few statements, then runs their calls concurrently
(``Runtime.calls``) and records each batch of outcomes as it completes.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
import traceback
from collections import Counter, deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import cached_property, partial
from types import FrameType
from typing import Any
from uuid import UUID

import structlog

from events.catalogue import SharedMedia, ShareSent
from events.errors import ConcurrencyError
from events.records import NewEvent, StreamAppend
from scheduler.domain import content
from scheduler.domain import share as lifecycle
from scheduler.domain.frozen import replacer
from scheduler.domain.share import Hold, Lookup, Publish, ReviewOverdue, ShareState, Skip, Wait
from scheduler.errors import NotFoundError
from scheduler.services import calendars, call_lease, media
from scheduler.services.post_owners import PostOwners
from workers.channels import (
    Attachment,
    LeaseLost,
    PermanentChannelError,
    Post,
    Published,
    TransientChannelError,
)
from workers.context import bound, share_context
from workers.delivery import Conn, Delivery
from workers.lease import LeaseKeeper
from workers.outcomes import log_sent, record_failure, record_sent, sent_time
from workers.runtime import Runtime
from workers.threads import publish_thread

__all__ = ["execute_share", "execute_shares"]

log = structlog.get_logger("workers.execution")

WAIT_ROUNDS = 3
_post_with = replacer(Post)  # once a call: dataclasses.replace cost ten times as much
# Outcomes returning no more than this far apart are recorded together, for at most the
# second figure: one commit for a fast channel's group instead of one per share.
GATHER_QUIET_SECONDS = 0.005
GATHER_MAX_SECONDS = 0.05
# A group's calls due within a tick of each other start together, at most a tick late: its
# thread wakes once a tick rather than once a share (at hundreds of shares a second, the
# wake-ups of a process's group threads cost more CPU than their shares' own work).
CALL_TICK_SECONDS = 0.004


@dataclass
class Ready:
    """A share whose attempt is decided (and, once started, recorded with its lease held)."""

    delivery: Delivery
    state: ShareState
    decision: Publish | Hold
    post: Post
    claimed_at: float = 0.0
    # Handed out ahead of its due time (the dispatcher's lead): decided and recorded now,
    # its call waits for this moment.
    not_before: datetime | None = None
    # The thread running its call, once it runs (``delivery_running_long`` shows its stack).
    thread: int | None = None

    @cached_property
    def context(self) -> dict[str, object]:
        """Whose share this is, for its lines: built once, though bound for its call and logged with its outcome."""
        return {"share_id": str(self.delivery.share_id),
                **share_context(self.delivery.workspace_id, self.state, self.post.account_config)}


@dataclass
class Called:
    """What one network call did."""

    ready: Ready
    started: datetime
    published: Published | None = None
    reconciled: bool = False
    error: PermanentChannelError | TransientChannelError | None = None
    lost: bool = False
    # The events that record the post, when it goes with others in one transaction.
    sent_events: tuple[NewEvent, ...] = field(default=())
    # A thread records each part as it goes (``workers.threads``): its outcome, already recorded.
    outcome: str | None = None


def execute_share(rt: Runtime, share_id: UUID, *, message_id: str | None = None) -> str:
    """Run one delivery of one share. Returns the name of its outcome (also its log event)."""
    return execute_shares(rt, [share_id], message_id=message_id)[share_id]


def execute_shares(rt: Runtime, share_ids: Sequence[UUID], *, message_id: str | None = None) -> dict[UUID, str]:
    """Run one delivery of several shares due together; each share's outcome by id."""
    ids = list(dict.fromkeys(share_ids))
    outcomes: dict[UUID, str] = {}
    with rt.deliveries.running(message_id, len(ids)) as running, rt.pool.connection() as conn:
        running.backend_pid = conn.info.backend_pid
        deliveries = [Delivery(rt, conn, share_id, message_id) for share_id in ids]
        histories = rt.store.read_streams([d.stream_id for d in deliveries], conn=conn)
        ready: list[Ready] = []
        for d in deliveries:
            share_id = d.share_id
            history = histories.get(d.stream_id, [])
            d.workspace_id = history[0].workspace_id if history else ""
            decided = _decide(d, lifecycle.fold(r.event for r in history))
            if isinstance(decided, str):
                outcomes[share_id] = decided
            else:
                ready.append(decided)
        started = _start(rt, conn, ready, outcomes)
        _call_all(rt, started, outcomes)
    return outcomes


# --- deciding ----------------------------------------------------------------------------


def _decide(d: Delivery, state: ShareState) -> Ready | str:
    """The share's decision; an outcome name for everything but an attempt or a hold for a
    person (those need the share's call lease first)."""
    if state.planned is not None:
        post = _post(d, state)
        lookup = _lookup(d.rt, state, post)
        decision = lifecycle.start_attempt(state, now=d.rt.clock(), in_flight_grace=timedelta(0),
                                           early_window=d.rt.early_window, lookup=lookup)
        if isinstance(decision, Publish):
            return Ready(d, state, decision, post)  # the common case: nothing to log yet
        if isinstance(decision, Wait):
            # Handed out ahead: decided as at its due time, so that the attempt and its tasks
            # are in the log (with the rest of the group's, in a few statements) when the
            # moment comes, and the call then starts on time.
            at_due = lifecycle.start_attempt(state, now=decision.until, in_flight_grace=timedelta(0),
                                             early_window=d.rt.early_window, lookup=lookup)
            if isinstance(at_due, Publish):
                return Ready(d, state, at_due, post, not_before=decision.until)
    config = d.rt.accounts.get(d.conn, state.planned.account_id) if state.planned is not None else None
    with bound(share_id=str(d.share_id), stream_version=state.version,
               **share_context(d.workspace_id, state, config)):
        return _decide_otherwise(d, state)


def _decide_otherwise(d: Delivery, state: ShareState) -> Ready | str:
    """``_decide`` for the rarer cases: unknown, not due yet, skipped, held."""
    rt = d.rt
    for _ in range(WAIT_ROUNDS):
        if state.planned is None:
            log.warning("share_unknown")
            return "share_unknown"
        post = _post(d, state)
        decision = lifecycle.start_attempt(state, now=rt.clock(), in_flight_grace=timedelta(0),
                                           early_window=rt.early_window, lookup=_lookup(rt, state, post))
        if not isinstance(decision, Wait):
            break
        # Handed out a moment early: wait for the due time, then read the stream again
        # (it may have been rescheduled or cancelled meanwhile).
        rt.sleep(max(0.0, (decision.until - rt.clock()).total_seconds()))
        state, _ = d.load()
    else:
        log.info("share_skipped", reason="still not due after waiting")
        return "share_skipped"
    if isinstance(decision, Skip):
        log.info("share_skipped", reason=decision.reason, status=state.status)
        return "share_skipped"
    if isinstance(decision, ReviewOverdue):
        return _review_overdue(d, state, decision)
    if isinstance(decision, Hold) and not _holds_for_unknown_outcome(decision):
        return _hold(d, state, decision)  # too late: no attempt was ever made, nothing can be in flight
    return Ready(d, state, decision, post)


def _holds_for_unknown_outcome(decision: Hold) -> bool:
    return any(getattr(e.event, "outcome_unknown", False) for e in decision.events)


def _lookup(rt: Runtime, state: ShareState, post: Post) -> Lookup:
    """Whether the channel can look for an earlier attempt's post on this account."""
    assert state.planned is not None
    config = post.account_config
    try:
        can_look_up = rt.publishers.for_channel(state.planned.channel).can_find(post)
    except PermanentChannelError:
        can_look_up = True  # no such channel here: the attempt fails with that reason
    candidate = config.get("profile_url") or config.get("base_url") or config.get("service")
    return Lookup(can_look_up=can_look_up, resend_unknown=config.get("on_unknown_outcome") == "resend",
                  candidate_url=candidate if isinstance(candidate, str) else None)


def _post(d: Delivery, state: ShareState) -> Post:
    rt, planned = d.rt, state.planned
    assert planned is not None
    assert state.share_id is not None
    return Post(share_id=d.share_id, workspace_id=d.workspace_id, account_name=planned.account_name,
                account_config=rt.accounts.get(d.conn, planned.account_id), text=planned.text,
                scheduled_at=state.scheduled_at or planned.scheduled_at,
                idempotency_key=lifecycle.idempotency_key(state.share_id), attempt=state.attempts + 1,
                content_warning=content.warning_of(planned, 0), language=planned.language)


def _hold(d: Delivery, state: ShareState, decision: Hold) -> str:
    try:
        d.commit(decision.events, expected_version=state.version)
    except ConcurrencyError:
        log.info("share_duplicate_delivery", stage="hold")
        return "share_duplicate_delivery"
    held = decision.events[0].event
    log.warning("share_held", reason=getattr(held, "reason", None),
                outcome_unknown=getattr(held, "outcome_unknown", False),
                candidate_url=getattr(held, "candidate_url", None))
    return "share_held"


def _review_overdue(d: Delivery, state: ShareState, decision: ReviewOverdue) -> str:
    """Due while in review: recorded, and nothing published (an approval writes it due again)."""
    try:
        d.commit(decision.events, expected_version=state.version)
    except ConcurrencyError:
        log.info("share_duplicate_delivery", stage="review_overdue")
        return "share_duplicate_delivery"
    log.warning("share_review_overdue", scheduled_at=str(state.scheduled_at))
    return "share_review_overdue"


# --- starting: the lease, then the attempt ---------------------------------------------


def _start(rt: Runtime, conn: Conn, ready: list[Ready], outcomes: dict[UUID, str]) -> list[Ready]:
    """Take each share's call lease, then record the attempts (and tasks) of those taken.
    Returns the shares whose attempt this delivery owns: only those may call the network."""
    taken = call_lease.claim(conn, "publish", [(r.delivery.share_id, r.state.attempts + 1) for r in ready],
                             budget_seconds=rt.config.call_budget_seconds)
    claimed_at = time.monotonic()
    mine: list[Ready] = []
    for r in ready:
        if r.delivery.share_id in taken and isinstance(r.decision, Publish):
            r.claimed_at = claimed_at
            mine.append(r)
            continue
        with bound(**r.context):
            if r.delivery.share_id not in taken:
                # Another attempt holds the lease: one of its requests may still be in flight.
                log.info("share_skipped", reason="an attempt holds the share's lease", status=r.state.status)
                outcomes[r.delivery.share_id] = "share_skipped"
            else:
                assert isinstance(r.decision, Hold)
                outcomes[r.delivery.share_id] = _hold(r.delivery, r.state, r.decision)
    return _record_attempts(rt, conn, mine, outcomes)


def _record_attempts(rt: Runtime, conn: Conn, mine: list[Ready], outcomes: dict[UUID, str]) -> list[Ready]:
    if len(mine) > 1:
        batch = [(r.delivery.share_id, StreamAppend(r.delivery.stream_id, r.delivery.stamp(r.decision.events),
                                                    r.state.version, r.delivery.workspace_id)) for r in mine]
        try:
            written = rt.streams.commit_many(conn, batch)
        except ConcurrencyError:
            pass  # a concurrent delivery raced for one of them: record each on its own below
        else:
            return [r for r in (_attempted(r, written.get(r.delivery.stream_id), outcomes) for r in mine)
                    if r is not None]
    started = []
    for r in mine:
        try:
            result = r.delivery.commit(r.decision.events, expected_version=r.state.version)
            version = result.version if result.written == len(r.decision.events) else None
        except ConcurrencyError:
            version = None
        if (attempted := _attempted(r, version, outcomes)) is not None:
            started.append(attempted)
    return started


def _attempted(r: Ready, version: int | None, outcomes: dict[UUID, str]) -> Ready | None:
    """The share once this delivery's attempt (and tasks) are in the log at ``version``;
    None when another delivery's write got there first (it owns the attempt)."""
    if version is None:
        log.info("share_duplicate_delivery", stage="attempt", share_id=str(r.delivery.share_id))
        outcomes[r.delivery.share_id] = "share_duplicate_delivery"
        return None
    r.state = lifecycle.folded_at((e.event for e in r.decision.events), r.state, version)
    return r


# --- calling, and recording each outcome as it comes --------------------------------------


def _call_all(rt: Runtime, started: list[Ready], outcomes: dict[UUID, str]) -> None:
    if rt.calls is None or len(started) < 2:
        for r in started:
            if (wait := _seconds_until(rt, r)) > 0:
                rt.sleep(wait)
            _record(rt, [_call(rt, r)], outcomes)
        return
    # Each call hands itself in as it returns (one queue: no waiting on every pending call
    # again after each return). Calls handed out ahead go out at their own due times.
    returned: queue.SimpleQueue[Future[Called]] = queue.SimpleQueue()
    waiting = deque(sorted(started, key=lambda r: _seconds_until(rt, r)))
    submitted: list[tuple[Ready, Future[Called]]] = []
    if (running := rt.deliveries.current()) is not None:
        running.progress = partial(_progress, submitted, waiting, returned)
    gathered = _Gathered()
    left = len(started)
    while left:
        while waiting and _seconds_until(rt, waiting[0]) <= 0:
            r = waiting.popleft()
            submitted.append((r, call := rt.calls.submit(_call, rt, r)))
            call.add_done_callback(returned.put)
        with contextlib.suppress(queue.Empty):
            while True:
                gathered.add(returned.get_nowait())
        if gathered.calls and (len(gathered.calls) == left or gathered.seconds_left() <= 0):
            _record(rt, [f.result() for f in gathered.calls], outcomes)  # a worker dying mid-call raises here
            left -= len(gathered.calls)
            gathered = _Gathered()
            continue
        waits = [gathered.seconds_left()] if gathered.calls else []
        if waiting:
            # While calls are still to start, the thread wakes for the next due time (at least
            # a tick on), not for each call that returns: its returns are taken in then.
            waits.append(max(_seconds_until(rt, waiting[0]), CALL_TICK_SECONDS))
            if left - len(waiting) > len(gathered.calls):  # calls out: their outcomes wait a while at most
                waits.append(GATHER_MAX_SECONDS)
            time.sleep(min(waits))
            continue
        with contextlib.suppress(queue.Empty):  # nothing returned: the batch is ripe
            gathered.add(returned.get(timeout=min(waits) if waits else None))


@dataclass
class _Gathered:
    """Outcomes to record in one commit: those returning within moments of each other (a fast
    channel's whole group, typically); a slow call's outcome waits for nobody."""

    calls: list[Future[Called]] = field(default_factory=list)
    first: float = 0.0
    last: float = 0.0

    def add(self, call: Future[Called]) -> None:
        self.last = time.monotonic()
        self.first = self.first or self.last
        self.calls.append(call)

    def seconds_left(self) -> float:
        """Until this batch is recorded: a quiet moment after the last, or at most a while."""
        ripe = min(self.last + GATHER_QUIET_SECONDS, self.first + GATHER_MAX_SECONDS)
        return max(0.0, ripe - time.monotonic())


def _progress(submitted: list[tuple[Ready, Future[Called]]], waiting: deque[Ready],
              returned: queue.SimpleQueue[Future[Called]], frames: dict[int, FrameType]) -> dict[str, Any]:
    """How far a group's calls got, for ``delivery_running_long``: started or still to start,
    queued for a call thread, running (with where their threads are), finished, and finished
    but not yet taken in by the group's thread."""
    calls = list(submitted)
    running = [r for r, call in calls if call.running()]
    stacks = Counter("".join(traceback.format_stack(frames[r.thread])[-8:])
                     for r in running if r.thread is not None and r.thread in frames)
    return {"started": len(calls), "to_start": len(waiting),
            "queued": sum(1 for _, call in calls if not call.running() and not call.done()),
            "running": len(running), "finished": sum(1 for _, call in calls if call.done()),
            "finished_not_taken_in": returned.qsize(),
            "running_stacks": [f"{n} call(s) at:\n{stack}" for stack, n in stacks.most_common(3)]}


def _seconds_until(rt: Runtime, r: Ready) -> float:
    """How long until the call may start: 0 for a share already due."""
    return 0.0 if r.not_before is None else max(0.0, (r.not_before - rt.clock()).total_seconds())


def _call(rt: Runtime, r: Ready) -> Called:
    """Publish (looking for an earlier post first when the last outcome is unknown)."""
    r.thread = threading.get_ident()
    decision = r.decision
    assert isinstance(decision, Publish)
    d, planned = r.delivery, r.state.planned
    assert planned is not None
    post = _post_with(r.post, attempt=decision.attempt, idempotency_key=decision.idempotency_key,
                      before_write=LeaseKeeper(rt.pool, "publish", d.share_id, r.state.attempts,
                                               budget_seconds=rt.config.call_budget_seconds, claimed_at=r.claimed_at),
                      taken=PostOwners(rt.pool, d.workspace_id, d.stream_id) if decision.reconcile else None)
    started = rt.clock()
    with bound(attempt=decision.attempt, **r.context):
        log.debug("share_publishing", channel=planned.channel, reconcile=decision.reconcile,
                  lateness_ms=int((started - post.scheduled_at) / timedelta(milliseconds=1)))
        try:
            publisher = rt.publishers.for_channel(planned.channel)
            if content.is_thread(planned):
                # Each part's media are read just before that part goes out.
                thread = publish_thread(rt, d, r.state, post, publisher, reconcile=decision.reconcile,
                                        load=partial(load_media, rt, d.workspace_id))
                r.state = thread.state
                return Called(r, started, error=thread.error, lost=thread.lost, outcome=thread.outcome)
            if planned.media:
                post = replace(post, media=load_media(rt, d.workspace_id, planned.media))
            found = publisher.find(post) if decision.reconcile else None
            published = found or publisher.publish(post)
        except LeaseLost:
            return Called(r, started, lost=True)
        except (PermanentChannelError, TransientChannelError) as exc:
            return Called(r, started, error=exc)
        except Exception as exc:  # a fault of ours (or a library's), in this share's call only
            # Recorded as this share's outcome, unknown (the post may be out): the group's other
            # outcomes are recorded as usual, instead of waiting for their leases to run out.
            log.error("share_call_error", error_type=type(exc).__name__, exc_info=True)
            return Called(r, started, error=TransientChannelError(
                f"unexpected {type(exc).__name__} in the worker during the call: its outcome is unknown",
                outcome_unknown=True))
    return Called(r, started, published=published, reconciled=found is not None)


def load_media(rt: Runtime, workspace_id: str, shared: Sequence[SharedMedia]) -> tuple[Attachment, ...]:
    """The share's media with their bytes, read now (on a connection of its own: the call may run
    on another thread), with the alt each was planned with. The library keeps an item while a
    share that is not sent uses it, so one missing is a fault no retry mends."""
    found = []
    with rt.pool.connection() as conn:
        for item in shared:
            try:
                c = media.for_publishing(conn, workspace_id, item.media_id)
            except NotFoundError:
                raise PermanentChannelError(f"media {item.media_id} is no longer in the library") from None
            found.append(Attachment(media_id=c.id, kind=c.kind, mime=c.mime, data=c.data, width=c.width,
                                    height=c.height, alt=item.alt, focus=c.focus, sha256=c.sha256))
    return tuple(found)


def _record(rt: Runtime, called: list[Called], outcomes: dict[UUID, str]) -> None:
    """Record a batch of outcomes: the posts together in one transaction, anything else
    (a failure, a lost lease, a stream that moved) share by share."""
    sent = [c for c in called if c.published is not None]
    written: dict[str, int | None] = {}
    if sent:
        batch = [(c.ready.delivery.share_id, _sent_append(c)) for c in sent]
        try:
            written = rt.streams.commit_many(sent[0].ready.delivery.conn, batch)
        except ConcurrencyError:
            written = {}  # rolled back: record each on its own below
    for c in called:
        d = c.ready.delivery
        if c.outcome is not None:
            outcomes[d.share_id] = c.outcome
            continue
        sent_event = c.sent_events[-1].event if c.sent_events else None
        version = written.get(d.stream_id)
        if version is not None and c.published is not None and isinstance(sent_event, ShareSent):
            # The common case, recorded with the others: its one line, without binding a context.
            log_sent(c.published, sent_event, version=version, reconciled=c.reconciled,
                     attempt=c.ready.state.attempts, **c.ready.context)
            outcomes[d.share_id] = "share_sent"
            continue
        hint = c.error.hint if c.error is not None else None
        with bound(attempt=c.ready.state.attempts, **c.ready.context, **({"hint": hint} if hint else {})):
            outcomes[d.share_id] = _settle(c, version)


def _sent_append(c: Called) -> StreamAppend:
    assert c.published is not None
    state, d = c.ready.state, c.ready.delivery
    c.sent_events = lifecycle.record_sent(state, attempt=state.attempts, external_id=c.published.external_id,
                                          url=c.published.url, sent_at=sent_time(c.published, c.started),
                                          reconciled=c.reconciled, now=d.rt.clock(),
                                          calendars=calendars.for_share(d.rt.store, d.conn, d.workspace_id, state))
    return StreamAppend(d.stream_id, d.stamp(c.sent_events), state.version, d.workspace_id)


def _settle(c: Called, version: int | None) -> str:
    d, state = c.ready.delivery, c.ready.state
    if c.lost:
        log.warning("share_lease_lost", reason="another attempt took the share over before a request")
        return "share_lease_lost"
    if c.error is not None:
        retryable = isinstance(c.error, TransientChannelError)
        return record_failure(
            d, state, state.attempts, c.error.reason, retryable=retryable,
            outcome_unknown=retryable and getattr(c.error, "outcome_unknown", False),
            retry_after=getattr(c.error, "retry_after", None),
        )
    assert c.published is not None
    sent = c.sent_events[-1].event if c.sent_events else None
    if version is not None and isinstance(sent, ShareSent):
        log_sent(c.published, sent, version=version, reconciled=c.reconciled)
        return "share_sent"
    return record_sent(d, state, state.attempts, c.published, reconciled=c.reconciled, started=c.started,
                       post=c.ready.post)
