"""The follow-through's decisions, pure: what a look at the thread records, answering
and dismissing a reply, an answer's call and its outcome, and the ``answer_replies``
tasks that settle from what happened.

An answer goes out like a share: its attempt is recorded before the call, with an
idempotency key derived from the share and the reply, and an attempt whose outcome is
unknown looks for the answer before posting again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from uuid import UUID

from events.catalogue import (
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
    ResponseTaskCompleted,
)
from events.records import NewEvent

from scheduler.domain.replies import ANSWER_REPLIES, DEFAULT_CADENCE, TaskDue, next_look
from scheduler.domain.retry import GiveUp, RetryPolicy
from scheduler.domain.share.state import ShareState, TaskState, event_id, fold
from scheduler.domain.share.thread import LookLedger, ReplyState, with_looks
from scheduler.errors import ConflictError, InvalidInputError, NotFoundError

SETTLED_BY = "followthrough"
MAX_ANSWER_CHARS = 5000


@dataclass(frozen=True, slots=True)
class ThreadPost:
    """A post in the thread under a share, as a channel reads it. ``parent_id`` None: it
    answers the share's post itself. ``by_account``: written by the share's own account."""

    reply_id: str
    parent_id: str | None
    author: str
    text: str
    url: str | None
    created_at: datetime
    by_account: bool = False
    author_name: str | None = None  # the name the author shows (display name), where the network has one


@dataclass(frozen=True, slots=True)
class AnswerCall:
    """Append ``events`` (the attempt), then call the channel for ``reply``."""

    events: tuple[NewEvent, ...]
    reply: ReplyState
    attempt: int
    idempotency_key: str
    reconcile: bool


def answer_key(share_id: UUID, reply_id: str) -> str:
    """The idempotency key of the answer to one reply, the same on every attempt."""
    return f"followthrough-{share_id}-answer-{hashlib.sha256(reply_id.encode()).hexdigest()[:16]}"


def _new(state: ShareState, name: str, event: Event) -> NewEvent:
    assert state.share_id is not None
    return NewEvent(event=event, event_id=event_id(state.share_id, name))


def _same_text(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


# --- looking -------------------------------------------------------------------------


def open_tasks(tasks: tuple[TaskState, ...]) -> tuple[TaskDue, ...]:
    return tuple(TaskDue(t.due_at, t.kind == ANSWER_REPLIES) for t in tasks
                 if t.due_at is not None and t.completed_at is None and not t.cancelled)


def first_look(state: ShareState, sent_at: datetime, tasks: tuple[TaskState, ...] | None = None) -> datetime | None:
    """The first look after the post, for a state whose tasks count from ``sent_at`` (or with
    ``tasks``, those of the state once sent, given without folding the send into it)."""
    cadence = (state.planned.reply_cadence if state.planned else None) or DEFAULT_CADENCE
    return next_look(cadence, sent_at=sent_at, now=sent_at, empty_looks=0,
                     tasks=open_tasks(state.tasks if tasks is None else tasks))


@dataclass(frozen=True, slots=True)
class Look:
    """What one look at the thread found (``looked``: its figures, recorded or not) and the
    events it appends (``events``; empty when the look changed nothing: it is then only
    counted beside the log, and its next look written to the schedule without an event)."""

    looked: RepliesLooked
    events: tuple[NewEvent, ...]

    @property
    def recorded(self) -> bool:
        return bool(self.events)


def looks_counted(state: ShareState, ledger: LookLedger | None) -> ShareState:
    """The share with every look counted (``reply_looks``), not only the recorded ones."""
    return replace(state, thread=with_looks(state.thread, ledger))


def record_look(
    state: ShareState,
    posts: Sequence[ThreadPost] | None,
    *,
    now: datetime,
    error: str | None = None,
    retry_after: timedelta | None = None,
    engagement: Engagement | None = None,
) -> Look | None:
    """A look at the thread: its new replies, the answers the account wrote itself, the
    tasks that settle now, and when to look next. ``posts`` None: the channel cannot read
    replies (no more looks; the tasks stay manual); with ``error``: the look failed.
    None: the share is not sent (no look).

    ``state`` should count every look (``looks_counted``): the back-off follows the empty
    looks in a row. The look is an event (``RepliesLooked``, with what it wrote) only when
    it changed something: new replies, the account's own answers found, tasks settled, or
    its error state (an error appearing, clearing or changing; the channel turning out not
    to read replies), or the post's counts (``engagement``, read by the look; None: not read)
    differing from the last recorded ones (from zero when none are). Otherwise it appends nothing. A recorded look
    carries the counts it read, changed or not.
    """
    if state.share_id is None or state.sent is None or state.status != "sent":
        return None
    events: list[NewEvent] = []
    found = new = 0
    if posts is not None and error is None:
        found = sum(1 for p in posts if not p.by_account)
        events.extend(_new_replies(state, posts, now))
        new = len(events)
        events.extend(_own_answers(fold((e.event for e in events), state), posts))
    events.extend(settle_tasks(fold((e.event for e in events), state), now=now))
    collected = posts is not None or error is not None
    empty = 0 if new else state.thread.empty_looks + 1
    cadence = (state.planned.reply_cadence if state.planned else None) or DEFAULT_CADENCE
    following = next_look(cadence, sent_at=state.sent.sent_at, now=now, empty_looks=empty,
                          tasks=open_tasks(fold((e.event for e in events), state).tasks), retry_after=retry_after)
    if error is not None and following is None:
        following = now + (retry_after or timedelta(seconds=cadence.bands[0][1]))  # one more try
    read = engagement if error is None else None
    looked = RepliesLooked(looked_at=now, found=found, new=new, empty_looks=empty,
                           next_look_at=following if collected else None, collected=collected, error=error,
                           engagement=read)
    cannot_read = not collected and state.thread.collected is not False
    counts_changed = read is not None and _counts_changed(read, state.thread.engagement)
    changed = bool(events) or error != state.thread.last_error or cannot_read or counts_changed
    if not changed:
        return Look(looked, ())
    events.append(_new(state, f"look-{state.version}", looked))
    return Look(looked, tuple(events))


def _counts_changed(read: Engagement, recorded: Engagement | None) -> bool:
    """Counts differ from the last recorded ones; with none recorded, from zero (a post no
    one has engaged with records nothing: its first looks stay empty looks)."""
    if recorded is None:
        return any((read.replies, read.reposts, read.likes, read.quotes))
    return read != recorded


def _new_replies(state: ShareState, posts: Sequence[ThreadPost], now: datetime) -> list[NewEvent]:
    ours = {r.answer_external_id for r in state.thread.replies if r.answer_external_id}
    seen = set(state.replies)
    fresh = []
    for post in sorted(posts, key=lambda p: p.created_at):
        if post.by_account or post.reply_id in seen or post.reply_id in ours:
            continue
        seen.add(post.reply_id)
        received = ResponseReceived(reply_id=post.reply_id, author=post.author, author_name=post.author_name or None,
                                    text=post.text, url=post.url,
                                    received_at=post.created_at, parent_id=post.parent_id, collected_at=now)
        fresh.append(_new(state, f"reply-{post.reply_id}", received))
    return fresh


def _own_answers(state: ShareState, posts: Sequence[ThreadPost]) -> list[NewEvent]:
    """The account's own posts in the thread that answer a recorded reply: ours found
    (an answer whose outcome was unknown), or written in the network's own app."""
    ours = {r.answer_external_id for r in state.thread.replies if r.answer_external_id}
    answered: list[NewEvent] = []
    done: set[str] = set()
    for post in sorted(posts, key=lambda p: p.created_at):
        reply = state.thread.reply(post.parent_id) if post.by_account and post.parent_id else None
        if reply is None or post.reply_id in ours or reply.answered_at is not None or reply.reply_id in done:
            continue
        ours_pending = reply.answer_pending and reply.answer_text is not None and _same_text(reply.answer_text,
                                                                                             post.text)
        event = ReplyAnswered(reply_id=reply.reply_id, external_id=post.reply_id, url=post.url,
                              answered_at=post.created_at,
                              attempt=(reply.answer_attempt or None) if ours_pending else None,
                              native=not ours_pending, reconciled=ours_pending)
        answered.append(_new(state, f"answered-{reply.reply_id}", event))
        done.add(reply.reply_id)
    return answered


# --- the tasks that settle from what happened ---------------------------------------


def settle_tasks(state: ShareState, *, now: datetime) -> tuple[NewEvent, ...]:
    """Each ``answer_replies`` task past its due time whose replies (those collected
    before the due time) are all answered or dismissed: done when the last of them was
    handled (on time when that was by the due time, else late), at its due time when
    no reply came."""
    events = []
    for task in state.tasks:
        if task.kind != ANSWER_REPLIES or task.due_at is None or task.completed_at is not None or task.cancelled:
            continue
        if now < task.due_at:
            continue
        owed = [r for r in state.thread.replies if r.collected_at < task.due_at]
        handled = [r.handled_at for r in owed]
        if any(h is None for h in handled):
            continue
        completed_at = max((h for h in handled if h is not None), default=task.due_at)
        note = f"{len(owed)} replies received before the due time, all answered or dismissed"
        events.append(_new(state, f"task-completed-{task.task_id}", ResponseTaskCompleted(
            task_id=task.task_id, completed_at=completed_at, completed_by=SETTLED_BY, note=note)))
    return tuple(events)


# --- answering and dismissing (a person, through the API) ---------------------------


def _reply_or_404(state: ShareState, reply_id: str) -> ReplyState:
    reply = state.thread.reply(reply_id)
    if state.share_id is None or reply is None:
        raise NotFoundError("reply", reply_id)
    return reply


def request_answer(state: ShareState, *, reply_id: str, text: str, by: str, now: datetime) -> tuple[NewEvent, ...]:
    reply = _reply_or_404(state, reply_id)
    if not text.strip():
        raise InvalidInputError("text", "must not be empty")
    if len(text) > MAX_ANSWER_CHARS:
        raise InvalidInputError("text", f"must be at most {MAX_ANSWER_CHARS} characters")
    if reply.answered_at is not None:
        raise ConflictError("this reply is already answered", field="text")
    if reply.answer_pending:
        if reply.answer_text == text:
            return ()  # the same answer asked for twice is asked for once
        raise ConflictError("an answer to this reply is being published", field="text")
    requested = ReplyAnswerRequested(reply_id=reply_id, text=text, requested_by=by, requested_at=now)
    return (_new(state, f"answer-requested-{reply_id}-{state.version}", requested),)


def dismiss(state: ShareState, *, reply_id: str, reason: str, by: str, now: datetime) -> tuple[NewEvent, ...]:
    reply = _reply_or_404(state, reply_id)
    if reply.dismissed_at is not None:
        return ()
    if reply.answered_at is not None or reply.answer_pending:
        raise ConflictError("this reply is answered, or its answer is being published")
    dismissed = _new(state, f"dismissed-{reply_id}",
                     ReplyDismissed(reply_id=reply_id, reason=reason, dismissed_by=by, dismissed_at=now))
    return (dismissed, *settle_tasks(fold([dismissed.event], state), now=now))


def assign(state: ShareState, *, reply_id: str, assignee: str, by: str, now: datetime) -> tuple[NewEvent, ...]:
    """Give a reply to ``assignee`` to answer; assigning it to whom it is assigned already
    writes nothing. (Its owner until then: the share's current task's.)"""
    reply = _reply_or_404(state, reply_id)
    if reply.assignee == assignee:
        return ()
    assigned = ReplyAssigned(reply_id=reply_id, assignee=assignee, assigned_by=by, assigned_at=now)
    return (_new(state, f"assigned-{reply_id}-{state.version}", assigned),)


# --- publishing an answer (the worker) ----------------------------------------------


def start_answer(state: ShareState, *, now: datetime) -> AnswerCall | None:
    """The next answer to call the network for, its attempt recorded first; None when
    no answer is due."""
    if state.share_id is None or state.status != "sent":
        return None
    due = [r for r in state.thread.replies if r.answer_pending
           and (r.answer_status == "sending" or (r.answer_next_at is not None and r.answer_next_at <= now))]
    if not due:
        return None
    reply = min(due, key=lambda r: (r.answer_requested_at or now, r.reply_id))
    attempt = state.thread.answer_attempts + 1
    reconcile = reply.answer_status == "sending" or reply.answer_outcome_unknown
    key = answer_key(state.share_id, reply.reply_id)
    # A fresh event id: two deliveries racing for the same attempt must not pass for one.
    started = ReplyAnswerAttemptStarted(reply_id=reply.reply_id, attempt=attempt, started_at=now,
                                        idempotency_key=key, reconcile=reconcile)
    return AnswerCall((NewEvent(event=started),), reply, attempt, key, reconcile)


def record_answer(state: ShareState, *, reply_id: str, attempt: int, external_id: str, url: str | None,
                  answered_at: datetime, reconciled: bool, now: datetime) -> tuple[NewEvent, ...]:
    reply = state.thread.reply(reply_id)
    if reply is None or reply.answered_at is not None:
        return ()
    answered = _new(state, f"answered-{reply_id}", ReplyAnswered(
        reply_id=reply_id, external_id=external_id, url=url, answered_at=answered_at, attempt=attempt,
        reconciled=reconciled))
    return (answered, *settle_tasks(fold([answered.event], state), now=now))


def record_answer_failure(state: ShareState, *, reply_id: str, attempt: int, reason: str, retryable: bool,
                          outcome_unknown: bool, now: datetime, policy: RetryPolicy, random: float,
                          retry_after: timedelta | None = None) -> tuple[NewEvent, ...]:
    """Only the latest attempt's failure counts; after the last, the answer is given up
    (the reply stays unanswered: a person may answer again)."""
    reply = state.thread.reply(reply_id)
    if reply is None or reply.answer_status != "sending" or reply.answer_attempt != attempt:
        return ()
    decision = policy.decide(attempt=reply.answer_failures + 1, retryable=retryable, now=now, random=random,
                             retry_after=retry_after)
    failed = ReplyAnswerFailed(reply_id=reply_id, attempt=attempt, failed_at=now, reason=reason,
                               retryable=retryable and not isinstance(decision, GiveUp),
                               outcome_unknown=outcome_unknown,
                               next_attempt_at=None if isinstance(decision, GiveUp) else decision.at)
    return (_new(state, f"answer-failed-{attempt}", failed),)


def next_answer_at(state: ShareState) -> datetime | None:
    """When the share's answer queue needs a worker again (None: nothing pending)."""
    times = [r.answer_next_at or r.answer_started_at for r in state.thread.replies if r.answer_pending]
    present = [t for t in times if t is not None]
    return min(present) if present else None
