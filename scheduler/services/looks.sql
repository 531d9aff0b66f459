-- Every look at a share's thread, recorded or not (``reply_looks``, migration 0015), and the
-- look that changed nothing: its next look moved on the schedule without an event.

-- name: ledger
SELECT looks, last_look_at, next_look_at, empty_looks, last_error FROM reply_looks WHERE share_id = %(share_id)s

-- name: count_look
-- ``looks``: the count a share without a row starts from (its recorded looks, this one included).
INSERT INTO reply_looks (share_id, workspace_id, looks, last_look_at, next_look_at, empty_looks, last_error)
VALUES (%(share_id)s, %(workspace_id)s, %(looks)s, %(looked_at)s, %(next_look_at)s, %(empty_looks)s, %(error)s)
ON CONFLICT (share_id) DO UPDATE
SET looks = reply_looks.looks + 1, last_look_at = EXCLUDED.last_look_at, next_look_at = EXCLUDED.next_look_at,
    empty_looks = EXCLUDED.empty_looks, last_error = EXCLUDED.last_error, updated_at = now()

-- name: hold_look_row
-- The share's check_replies row, there (as it was, or made for the look) and locked: every
-- writer of the row (an event's schedule write, another look) goes one after the other.
INSERT INTO schedule (workspace_id, kind, share_id, due_at)
VALUES (%(workspace_id)s, 'check_replies', %(share_id)s, %(due_at)s)
ON CONFLICT (kind, share_id) DO NOTHING

-- name: lock_look_row
SELECT id FROM schedule WHERE kind = 'check_replies' AND share_id = %(share_id)s FOR UPDATE

-- name: stream_head
-- A statement of its own (READ COMMITTED: a fresh snapshot), once the row is locked: an
-- event appended meanwhile has committed by now, or writes its schedule row after us.
SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = %(stream_id)s

-- name: look_later
UPDATE schedule
SET due_at = %(due_at)s, lease_until = NULL, dispatched_at = NULL, dispatch_count = 0, holder_attempt = 0,
    updated_at = now()
WHERE kind = 'check_replies' AND share_id = %(share_id)s

-- name: looks_done
DELETE FROM schedule WHERE kind = 'check_replies' AND share_id = %(share_id)s

-- name: looks_of_shares
-- Every look of each share (its row), for pages that list shares.
SELECT share_id, looks, last_look_at, next_look_at, empty_looks, last_error
FROM reply_looks WHERE share_id = ANY(%(share_ids)s::uuid[])
