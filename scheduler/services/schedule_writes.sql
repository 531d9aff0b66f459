-- The schedule table's writes, made inside the unit of work that appended the events.
-- Arrays go in binary (%(...)b): psycopg dumps a text array element by element in Python,
-- about three times the cost.

-- name: upsert
INSERT INTO schedule (workspace_id, kind, share_id, due_at)
VALUES (%(workspace_id)s, %(kind)s, %(share_id)s, %(due_at)s)
ON CONFLICT (kind, share_id) DO UPDATE
SET due_at = EXCLUDED.due_at, lease_until = NULL, dispatched_at = NULL, dispatch_count = 0, holder_attempt = 0,
    updated_at = now()

-- name: upsert_many
-- ``upsert`` for many shares of one kind in one statement (a group's posts and their first looks).
INSERT INTO schedule (workspace_id, kind, share_id, due_at)
SELECT u.workspace_id, %(kind)s, u.share_id, u.due_at
FROM unnest(%(workspace_ids)b::text[], %(share_ids)b::uuid[], %(due_ats)b::timestamptz[])
    AS u(workspace_id, share_id, due_at)
ON CONFLICT (kind, share_id) DO UPDATE
SET due_at = EXCLUDED.due_at, lease_until = NULL, dispatched_at = NULL, dispatch_count = 0, holder_attempt = 0,
    updated_at = now()

-- name: wake
-- Due no later than due_at; a row handed out (leased) stays as it is: its worker looks
-- again before it lets the row go, and a lost one comes back when the lease runs out.
INSERT INTO schedule (workspace_id, kind, share_id, due_at)
VALUES (%(workspace_id)s, %(kind)s, %(share_id)s, %(due_at)s)
ON CONFLICT (kind, share_id) DO UPDATE
SET due_at = least(schedule.due_at, EXCLUDED.due_at), updated_at = now()
WHERE schedule.lease_until IS NULL

-- name: remove
DELETE FROM schedule WHERE kind = %(kind)s AND share_id = %(share_id)s

-- name: remove_many
-- Each row found on its own through (kind, share_id)'s unique index, as call_lease's claim
-- finds them, whatever the table's statistics (``share_id = ANY`` read every row of the
-- kind on a table not analyzed since a burst: 2.8 ms a group of 50 among 10,000 rows,
-- against 0.3 ms).
DELETE FROM schedule
WHERE id = ANY(ARRAY(
    SELECT (SELECT x.id FROM schedule x WHERE x.kind = %(kind)s AND x.share_id = i.share_id)
    FROM unnest(%(share_ids)b::uuid[]) AS i(share_id)))

-- name: index_tasks
-- A planned share's response tasks (ids fixed at planning) -> the share, for look-ups by task id.
INSERT INTO share_tasks (task_id, share_id, workspace_id)
SELECT unnest(%(task_ids)s::uuid[]), %(share_id)s, %(workspace_id)s
ON CONFLICT (task_id) DO NOTHING

-- name: share_of_task
SELECT share_id FROM share_tasks WHERE task_id = %(task_id)s AND workspace_id = %(workspace_id)s
