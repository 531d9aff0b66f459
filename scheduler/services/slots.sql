-- name: lock
-- Session lock: one next_slot planner per account at a time (held across its plan's
-- transaction, which must begin with the event append; an advisory lock takes no
-- transaction id). The claims' primary key guards the slots whatever happens.
SELECT pg_advisory_lock(%(class)s, hashtext(%(account_id)s))

-- name: unlock
SELECT pg_advisory_unlock(%(class)s, hashtext(%(account_id)s))

-- name: taken
SELECT slot_at, share_id FROM slot_claims
WHERE account_id = %(account_id)s AND slot_at >= %(start)s AND slot_at < %(end)s
ORDER BY slot_at

-- name: claim
INSERT INTO slot_claims (account_id, slot_at, workspace_id, share_id)
VALUES (%(account_id)s, %(slot_at)s, %(workspace_id)s, %(share_id)s)

-- name: release
-- A cancelled share (keep NULL), or one rescheduled to another time than its slot.
DELETE FROM slot_claims
WHERE share_id = %(share_id)s AND (%(keep)s::timestamptz IS NULL OR slot_at <> %(keep)s::timestamptz)
