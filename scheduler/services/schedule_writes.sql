-- The schedule table's writes, made inside the unit of work that appended the events.

-- name: upsert
INSERT INTO schedule (workspace_id, kind, share_id, due_at)
VALUES (%(workspace_id)s, %(kind)s, %(share_id)s, %(due_at)s)
ON CONFLICT (kind, share_id) DO UPDATE
SET due_at = EXCLUDED.due_at, lease_until = NULL, dispatched_at = NULL, dispatch_count = 0, updated_at = now()

-- name: remove
DELETE FROM schedule WHERE kind = %(kind)s AND share_id = %(share_id)s

-- name: remove_many
DELETE FROM schedule WHERE kind = %(kind)s AND share_id = ANY(%(share_ids)s::uuid[])
