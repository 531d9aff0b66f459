-- The schedule rows of a share's follow-through: letting the answer row go once nothing
-- is pending, and the looks' per-account budget (the answers' call lease: call_lease.sql).

-- name: lock_answer_row
SELECT id FROM schedule WHERE kind = 'answer' AND share_id = %(share_id)s FOR UPDATE

-- name: stream_head
-- A statement of its own (READ COMMITTED: a fresh snapshot), once the row is locked: an
-- answer asked for meanwhile has committed by now, or writes its row after us.
SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = %(stream_id)s

-- name: answers_done
DELETE FROM schedule WHERE kind = 'answer' AND share_id = %(share_id)s

-- name: answers_later
UPDATE schedule
SET due_at = %(due_at)s, lease_until = NULL, dispatched_at = NULL, dispatch_count = 0, holder_attempt = 0,
    updated_at = now()
WHERE kind = 'answer' AND share_id = %(share_id)s

-- name: postpone_look
UPDATE schedule
SET due_at = %(due_at)s, lease_until = NULL, dispatched_at = NULL, dispatch_count = 0, holder_attempt = 0,
    updated_at = now()
WHERE kind = 'check_replies' AND share_id = %(share_id)s

-- name: take_look_budget
-- One look of the account's hourly budget; returns the looks taken in this hour so far.
INSERT INTO reply_look_budget (account_id, hour, looks)
VALUES (%(account_id)s, date_trunc('hour', %(now)s::timestamptz), 1)
ON CONFLICT (account_id, hour) DO UPDATE SET looks = reply_look_budget.looks + 1
RETURNING looks
