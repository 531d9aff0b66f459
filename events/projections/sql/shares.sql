-- name: planned
INSERT INTO rm_shares (share_id, workspace_id, account_id, account_name, channel, text, status,
                       scheduled_at, planned_at, version, updated_at)
VALUES (%(share_id)s, %(workspace_id)s, %(account_id)s, %(account_name)s, %(channel)s, %(text)s,
        'planned', %(scheduled_at)s, %(at)s, %(version)s, %(at)s)

-- name: rescheduled
UPDATE rm_shares
SET scheduled_at = %(scheduled_at)s,
    status = CASE WHEN status = 'held' THEN 'planned' ELSE status END,
    version = %(version)s, updated_at = %(at)s
WHERE share_id = %(share_id)s

-- name: status
UPDATE rm_shares SET status = %(status)s, version = %(version)s, updated_at = %(at)s,
    next_attempt_at = NULL,
    last_error = coalesce(%(error)s, last_error)
WHERE share_id = %(share_id)s

-- name: attempt_started
UPDATE rm_shares SET status = 'sending', attempts = %(attempt)s, next_attempt_at = NULL,
    version = %(version)s, updated_at = %(at)s
WHERE share_id = %(share_id)s

-- name: tasks_recorded
UPDATE rm_shares SET tasks_recorded = true, version = %(version)s, updated_at = %(at)s
WHERE share_id = %(share_id)s

-- name: task_insert
INSERT INTO rm_response_tasks (task_id, share_id, workspace_id, account_id, account_name, channel,
                               kind, owner, after_seconds, status, recorded_at)
SELECT %(task_id)s, s.share_id, s.workspace_id, s.account_id, s.account_name, s.channel,
       %(kind)s, %(owner)s, %(after_seconds)s, 'pending', %(at)s
FROM rm_shares s WHERE s.share_id = %(share_id)s
-- Recorded again (a post that landed after its share was given up): owed once more.
ON CONFLICT (task_id) DO UPDATE
SET status = 'pending', due_at = NULL, completed_at = NULL, completed_by = NULL, recorded_at = EXCLUDED.recorded_at

-- name: sent
UPDATE rm_shares
SET status = 'sent', sent_at = %(sent_at)s, lateness_ms = %(lateness_ms)s, url = %(url)s,
    external_id = %(external_id)s, attempts = %(attempt)s, next_attempt_at = NULL, last_error = NULL,
    sent_without_tasks = NOT tasks_recorded, version = %(version)s, updated_at = %(at)s
WHERE share_id = %(share_id)s

-- name: tasks_open
UPDATE rm_response_tasks
SET due_at = %(sent_at)s + make_interval(secs => after_seconds), status = 'open'
WHERE share_id = %(share_id)s AND status = 'pending'

-- name: failed
UPDATE rm_shares
SET status = 'failed', last_error = %(reason)s, next_attempt_at = %(next_attempt_at)s,
    version = %(version)s, updated_at = %(at)s
WHERE share_id = %(share_id)s

-- name: tasks_cancelled
UPDATE rm_response_tasks SET status = 'cancelled'
WHERE task_id = ANY(%(task_ids)s::uuid[]) AND status IN ('pending', 'open')

-- name: task_completed
UPDATE rm_response_tasks
SET status = 'done', completed_at = %(completed_at)s, completed_by = %(completed_by)s
WHERE task_id = %(task_id)s

-- name: reply
UPDATE rm_shares SET replies_received = replies_received + 1, version = %(version)s, updated_at = %(at)s
WHERE share_id = %(share_id)s

-- name: touch
UPDATE rm_shares SET version = %(version)s, updated_at = %(at)s WHERE share_id = %(share_id)s

-- name: duplicate_posted
UPDATE rm_shares
SET duplicate_posts = duplicate_posts + 1, version = %(version)s, updated_at = %(at)s
WHERE share_id = %(share_id)s

-- name: duplicate_removed
UPDATE rm_shares
SET duplicates_removed = duplicates_removed + 1, version = %(version)s, updated_at = %(at)s
WHERE share_id = %(share_id)s

-- name: table_columns
-- A table's columns (the rebuild checks that its fold fills every one).
SELECT attname FROM pg_attribute
WHERE attrelid = %(table)s::regclass AND attnum > 0 AND NOT attisdropped

-- name: column_types
-- The types of the named columns of a table, in the order named (for a binary COPY).
SELECT format_type(a.atttypid, a.atttypmod)
FROM unnest(%(columns)s::text[]) WITH ORDINALITY AS c(name, n)
JOIN pg_attribute a ON a.attrelid = %(table)s::regclass AND a.attname = c.name AND NOT a.attisdropped
ORDER BY c.n
