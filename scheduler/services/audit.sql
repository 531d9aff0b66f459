-- The audit's reads of the read models, all inside one REPEATABLE READ snapshot so that
-- the projection's checkpoint and the rows it wrote with it are seen together.

-- name: begin_snapshot
BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY

-- name: no_jit
-- JIT compiling the log's scan costs more than it saves on a streamed read (measured).
SET LOCAL jit = off

-- name: end_snapshot
ROLLBACK

-- name: checkpoint
SELECT epoch, tx_id::text, position, now() FROM projection_checkpoints WHERE name = %(name)s

-- name: now
SELECT now()

-- name: unprojected
-- Events after the checkpoint that the audit leaves for the next run (projector lag):
-- those of the types the projection applies (NULL: every type).
SELECT count(*) FROM events
WHERE (epoch, tx_id, position) > (%(epoch)s, %(tx_id)s::text::xid8, %(position)s)
  AND stream_id LIKE 'share-%%' AND (%(types)s::text[] IS NULL OR type = ANY(%(types)s::text[]))
  AND (%(workspace_id)s::text IS NULL OR workspace_id = %(workspace_id)s)

-- name: log_upto
-- Every event of the share streams at or before the projection's checkpoint, whatever its
-- type, in log order. Every one of them is committed (the checkpoint was taken below the
-- log's horizon) and visible here; a stream's events sort in version order (an append is
-- its transaction's first write), so what is read of a stream is a whole prefix of it.
SELECT position, stream_id, stream_version, type, workspace_id, data::text
FROM events
WHERE (epoch, tx_id, position) <= (%(epoch)s, %(tx_id)s::text::xid8, %(position)s)
  AND stream_id LIKE 'share-%%'
  AND (%(workspace_id)s::text IS NULL OR workspace_id = %(workspace_id)s)
ORDER BY epoch, tx_id, position

-- name: calendars
-- The calendars streams (a workspace's calendars and its owners' choices), in order: the
-- recount reads the calendar a business step's replies were answered in.
SELECT stream_id, recorded_at, type, data::text
FROM events
WHERE stream_id = ANY(%(streams)s::text[])
ORDER BY stream_id, stream_version

-- name: shares
-- Columns in the order of recount.SHARE_FIELDS, after the key and the workspace.
SELECT share_id::text, workspace_id, status, account_id::text, scheduled_at, attempts, sent_at, lateness_ms,
       url, external_id, tasks_recorded, sent_without_tasks, replies_received, duplicate_posts, duplicates_removed,
       replies_answered, last_look_at, next_look_at, replies_collected,
       engagement_replies, engagement_reposts, engagement_likes, engagement_quotes, engagement_at
FROM rm_shares
WHERE %(workspace_id)s::text IS NULL OR workspace_id = %(workspace_id)s

-- name: tasks
-- Columns in the order of recount.TASK_FIELDS, after the key and the workspace.
SELECT task_id::text, workspace_id, share_id::text, status, kind, owner, due_at, completed_at
FROM rm_response_tasks
WHERE %(workspace_id)s::text IS NULL OR workspace_id = %(workspace_id)s

-- name: replies
-- Columns in the order of recount_replies.REPLY_FIELDS, after the key (share/network reply id) and the workspace.
SELECT share_id::text || '/' || network_reply_id, workspace_id, share_id::text, state, received_at, collected_at,
       answered_at, dismissed_at, answered_natively, assignee
FROM rm_replies
WHERE %(workspace_id)s::text IS NULL OR workspace_id = %(workspace_id)s

-- name: daily
SELECT workspace_id, account_id::text, owner, day,
       sum(open)::int, sum(done_on_time)::int, sum(done_late)::int, sum(overdue)::int,
       followthrough_rate(sum(done_on_time)::bigint, sum(done_late)::bigint, sum(overdue)::bigint)
FROM followthrough_daily
WHERE %(workspace_id)s::text IS NULL OR workspace_id = %(workspace_id)s
GROUP BY 1, 2, 3, 4

-- name: integrity
SELECT sent_shares_without_response_tasks FROM integrity
