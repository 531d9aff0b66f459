"""Approval of a share, as pure functions: approve, reject, and the review a change asks for
again. Who may review comes from the account's setting (``scheduler.domain.approval``) as it
stands now; whether the share needs it, from the share's plan (the setting when it was planned)."""

from __future__ import annotations

from datetime import datetime

from events.catalogue import ShareApproved, SharePlanned, ShareRejected, ShareReviewRequested
from events.records import NewEvent

from scheduler.domain.approval import Approval, check_reviewer
from scheduler.domain.share.state import IN_REVIEW, ShareState, new_event
from scheduler.errors import ConflictError, InvalidInputError, NotFoundError

MAX_REASON = 1000


def _reviewable(state: ShareState, approval: Approval, *, by: str, author: str | None) -> SharePlanned:
    planned = state.planned
    if state.share_id is None or planned is None:
        raise NotFoundError("share", "?")
    if not planned.approval_required:
        raise ConflictError(f"account {planned.account_name!r} did not require approval when this share was planned: "
                            "there is nothing to review")
    check_reviewer(approval, person=by, author=author, account=planned.account_name)
    return planned


def approve(state: ShareState, approval: Approval, *, by: str, author: str | None,
            now: datetime) -> tuple[NewEvent, ...]:
    """``by`` approves the share (planned by ``author``): it goes out at its time, or at once
    when its time has passed (late, under the account's late policy). Approving an approved
    share again changes nothing."""
    _reviewable(state, approval, by=by, author=author)
    assert state.share_id is not None
    if state.review == "approved":
        return ()
    if state.status not in IN_REVIEW:
        hint = ": change it to send it back to review" if state.status == "rejected" else ""
        raise ConflictError(f"a share that is {state.status} cannot be approved{hint}")
    due = state.scheduled_at or now
    return (new_event(state.share_id, f"approved-{state.version}",
                      ShareApproved(approved_by=by, approved_at=now, publish_at=max(due, now))),)


def reject(state: ShareState, approval: Approval, *, by: str, author: str | None, reason: str,
           now: datetime) -> tuple[NewEvent, ...]:
    """``by`` refuses the share, saying why: it is not published. An approved share not yet
    published may still be rejected; rejecting a rejected share again changes nothing."""
    _reviewable(state, approval, by=by, author=author)
    assert state.share_id is not None
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON:
        raise InvalidInputError("reason", f"must say why (1-{MAX_REASON} characters): the author reads it")
    if state.status == "rejected":
        return ()
    if state.status not in (*IN_REVIEW, "planned"):
        raise ConflictError(f"a share that is {state.status} cannot be rejected")
    return (new_event(state.share_id, f"rejected-{state.version}",
                      ShareRejected(rejected_by=by, rejected_at=now, reason=reason)),)


def review_again(state: ShareState, what: str) -> tuple[NewEvent, ...]:
    """The events a change of ``what`` (text, media, time) adds: back to review for a share
    that needs approval and was approved or rejected (a share in review stays so)."""
    if state.share_id is None or state.planned is None or not state.planned.approval_required:
        return ()
    if state.review not in ("approved", "rejected"):
        return ()
    return (new_event(state.share_id, f"review-requested-{state.version}",
                      ShareReviewRequested(reason=f"its {what} changed")),)
