"""The share lifecycle, pure: ``state`` folds a stream's history, ``decisions`` (publishing)
and ``changes`` (cancel, reschedule, tasks, replies) decide from a state and a command which
events to append. Callers use this package's names."""

from events.ids import reply_uuid, stream_id

from scheduler.domain.share.answers import (
    AnswerCall,
    ThreadPost,
    answer_key,
    dismiss,
    next_answer_at,
    record_answer,
    record_answer_failure,
    record_look,
    request_answer,
    settle_tasks,
    start_answer,
)
from scheduler.domain.share.changes import cancel, complete_task, receive_replies, reschedule, response_tasks
from scheduler.domain.share.decisions import (
    AttemptDecision,
    Hold,
    Lookup,
    Publish,
    Skip,
    Wait,
    duplicate_removed,
    idempotency_key,
    mark_sent,
    record_failure,
    record_sent,
    start_attempt,
)
from scheduler.domain.share.state import (
    ShareState,
    Status,
    TaskState,
    TaskStatus,
    event_id,
    evolve,
    fold,
)

__all__ = [
    "AnswerCall",
    "AttemptDecision",
    "Hold",
    "Lookup",
    "Publish",
    "ShareState",
    "Skip",
    "Status",
    "TaskState",
    "TaskStatus",
    "ThreadPost",
    "Wait",
    "answer_key",
    "cancel",
    "complete_task",
    "dismiss",
    "duplicate_removed",
    "event_id",
    "evolve",
    "fold",
    "idempotency_key",
    "mark_sent",
    "next_answer_at",
    "receive_replies",
    "record_answer",
    "record_answer_failure",
    "record_failure",
    "record_look",
    "record_sent",
    "reply_uuid",
    "request_answer",
    "reschedule",
    "response_tasks",
    "settle_tasks",
    "start_answer",
    "start_attempt",
    "stream_id",
]
