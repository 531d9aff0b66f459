"""Publishing answers to replies: the same exactly-once path as a share's post.

Order, for each answer due on a share (one after the other, under the share's answer
lease): decide -> take the lease (``call_lease``, on the ``answer`` row) ->
append the attempt (expected version) -> call the channel, the lease extended right
before every request that may publish, looking for the answer first when an earlier
attempt's outcome is unknown -> record the outcome. When no answer is due, the row is
let go (or made due at the next retry), unless the stream moved meanwhile.
"""

from __future__ import annotations

import time
from uuid import UUID

import structlog

from events.errors import ConcurrencyError
from scheduler.domain import share as lifecycle
from scheduler.domain.share import AnswerCall, ShareState
from scheduler.services import call_lease
from scheduler.services.answer_queue import release_answers
from workers.channels import (
    Answer,
    LeaseLost,
    PermanentChannelError,
    Published,
    ThreadReader,
    TransientChannelError,
)
from workers.collection import share_post
from workers.context import bound, share_context
from workers.delivery import Delivery
from workers.lease import LeaseKeeper
from workers.runtime import Runtime

log = structlog.get_logger("workers.answering")

MAX_ROUNDS = 50


def publish_answers(rt: Runtime, share_id: UUID, *, message_id: str | None = None) -> str:
    """Publish every answer due on the share; the name of the last outcome."""
    outcome = "answers_idle"
    with rt.pool.connection() as conn, bound(share_id=str(share_id)):
        d = Delivery(rt, conn, share_id, message_id)
        for _ in range(MAX_ROUNDS):
            state, _ = d.load()
            call = lifecycle.start_answer(state, now=rt.clock())
            if call is None:
                if release_answers(conn, share_id, version=state.version, next_at=lifecycle.next_answer_at(state)):
                    return outcome
                continue  # an answer was asked for meanwhile
            if not call_lease.claim(conn, "answer", [(share_id, call.attempt)],
                                    budget_seconds=rt.config.call_budget_seconds, same_attempt=True):
                log.info("answer_skipped", reason="an attempt holds the share's answer lease")
                return "answer_skipped"
            claimed_at = time.monotonic()
            try:
                version = d.commit(call.events, expected_version=state.version).version
            except ConcurrencyError:
                continue  # the stream moved (a reply, a request): decide again
            started = lifecycle.folded_at((e.event for e in call.events), state, version)
            outcome = _call(rt, d, started, call, claimed_at)
            if outcome == "answer_lease_lost":
                return outcome
    return outcome


def _call(rt: Runtime, d: Delivery, state: ShareState, call: AnswerCall, claimed_at: float) -> str:
    reply = call.reply
    assert reply.answer_text is not None
    assert state.planned is not None
    answer = Answer(post=share_post(d, state), reply_id=reply.reply_id, text=reply.answer_text,
                    idempotency_key=call.idempotency_key, attempt=call.attempt,
                    requested_at=reply.answer_requested_at or rt.clock(),
                    before_write=LeaseKeeper(rt.pool, "answer", d.share_id, call.attempt,
                                             budget_seconds=rt.config.call_budget_seconds, claimed_at=claimed_at))
    context = share_context(d.workspace_id, state, answer.post.account_config)
    with bound(reply_id=reply.reply_id, attempt=call.attempt, **context):
        try:
            channel = rt.publishers.for_channel(state.planned.channel)
            if not isinstance(channel, ThreadReader):
                raise PermanentChannelError(f"{state.planned.channel} cannot answer replies")
            found = channel.find_answer(answer) if call.reconcile else None
            published = found or channel.answer(answer)
        except LeaseLost:
            log.warning("answer_lease_lost", reason="another attempt took the share's answers over")
            return "answer_lease_lost"
        except (PermanentChannelError, TransientChannelError) as exc:
            return _failed(rt, d, state, call, exc)
        return _answered(rt, d, state, call, published, reconciled=found is not None)


def _answered(rt: Runtime, d: Delivery, state: ShareState, call: AnswerCall, published: Published, *,
              reconciled: bool) -> str:
    answered_at = published.created_at or rt.clock()
    _, written = d.change(
        lambda s: lifecycle.record_answer(s, reply_id=call.reply.reply_id, attempt=call.attempt,
                                          external_id=published.external_id, url=published.url,
                                          answered_at=answered_at, reconciled=reconciled, now=rt.clock()),
        state=state,
    )
    if not written:
        log.info("answer_already_recorded", external_id=published.external_id)
        return "answer_already_recorded"
    log.info("reply_answered", channel=state.planned.channel if state.planned else None,
             external_id=published.external_id, url=published.url, reconciled=reconciled,
             seconds_to_answer=round((answered_at - call.reply.received_at).total_seconds(), 3),
             tasks_settled=sum(1 for e in written if e.event.type_name == "ResponseTaskCompleted"))
    return "reply_answered"


def _failed(rt: Runtime, d: Delivery, state: ShareState, call: AnswerCall,
            exc: PermanentChannelError | TransientChannelError) -> str:
    transient = isinstance(exc, TransientChannelError)
    unknown = transient and getattr(exc, "outcome_unknown", False)
    after, written = d.change(
        lambda s: lifecycle.record_answer_failure(
            s, reply_id=call.reply.reply_id, attempt=call.attempt, reason=exc.reason, retryable=transient,
            outcome_unknown=unknown, now=rt.clock(), policy=rt.retry_policy, random=rt.random(),
            retry_after=getattr(exc, "retry_after", None)),
        state=state,
    )
    if not written:
        return _outcome_too_late(after, call, exc)
    failed = written[0].event
    next_at = getattr(failed, "next_attempt_at", None)
    if next_at is not None:
        log.warning("answer_retry_scheduled", reason=exc.reason, next_attempt_at=next_at.isoformat(),
                    outcome_unknown=unknown)
        return "answer_retry_scheduled"
    log.error("answer_failed", reason=exc.reason, retryable=transient, **({"hint": exc.hint} if exc.hint else {}))
    return "answer_failed"


def _outcome_too_late(state: ShareState, call: AnswerCall, exc: PermanentChannelError | TransientChannelError) -> str:
    """A call's failure that counts no more: its reply was settled meanwhile (answered,
    say by a look that found the answer in the thread, or dismissed), or a later attempt
    holds the answer. Nothing is wrong: an info line, not an error."""
    reply = state.thread.reply(call.reply.reply_id)
    settled = reply is not None and reply.inbox_state != "unanswered"
    log.info("answer_outcome_after_settled" if settled else "answer_outcome_superseded", reason=exc.reason,
             reply_state=reply.inbox_state if reply else None,
             latest_attempt=reply.answer_attempt if reply else None)
    return "answer_outcome_after_settled" if settled else "answer_outcome_superseded"
