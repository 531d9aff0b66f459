"""The share lifecycle, pure: ``state`` folds a stream's history, ``decisions`` decide
from a state and a command which events to append. Callers use this package's names."""

from scheduler.domain.share.decisions import (
    AttemptDecision,
    Hold,
    Publish,
    Skip,
    Wait,
    cancel,
    complete_task,
    idempotency_key,
    receive_replies,
    record_failure,
    record_sent,
    reschedule,
    response_tasks,
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
    stream_id,
)

__all__ = [
    "AttemptDecision",
    "Hold",
    "Publish",
    "ShareState",
    "Skip",
    "Status",
    "TaskState",
    "TaskStatus",
    "Wait",
    "cancel",
    "complete_task",
    "event_id",
    "evolve",
    "fold",
    "idempotency_key",
    "receive_replies",
    "record_failure",
    "record_sent",
    "reschedule",
    "response_tasks",
    "start_attempt",
    "stream_id",
]
