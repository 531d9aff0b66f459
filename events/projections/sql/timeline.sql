-- Queries behind the dashboard's Shares and Health pages (one workspace each).

-- name: timeline
-- Shares scheduled in [from, to), newest first, with what happened to each.
SELECT share_id, account_name, channel, status, scheduled_at, sent_at, lateness_ms, attempts,
       next_attempt_at, last_error, url, left(text, 140) AS text, duplicate_posts
FROM rm_shares
WHERE workspace_id = %(workspace_id)s
  AND (%(statuses)s::text[] IS NULL OR status = ANY(%(statuses)s::text[]))
  AND (%(from)s::timestamptz IS NULL OR scheduled_at >= %(from)s::timestamptz)
  AND (%(to)s::timestamptz IS NULL OR scheduled_at < %(to)s::timestamptz)
ORDER BY scheduled_at DESC, share_id
LIMIT %(limit)s

-- name: status_counts
SELECT status, count(*) FROM rm_shares WHERE workspace_id = %(workspace_id)s GROUP BY status

-- name: duplicates
SELECT coalesce(sum(duplicate_posts), 0), coalesce(sum(duplicates_removed), 0)
FROM rm_shares WHERE workspace_id = %(workspace_id)s

-- name: overdue_tasks
SELECT count(*) FROM response_inbox WHERE workspace_id = %(workspace_id)s AND state = 'overdue'

-- name: task_status
SELECT status FROM rm_response_tasks WHERE task_id = %(task_id)s AND workspace_id = %(workspace_id)s

-- name: in_review
-- Shares waiting for a review (in review, or past due in review), soonest first, with their
-- author: the actor of their plan (the log's first event of the stream, by its unique key).
SELECT s.share_id, s.account_id, s.account_name, s.channel, s.status, s.scheduled_at, s.text,
       e.metadata->>'actor' AS author
FROM rm_shares s
JOIN events e ON e.stream_id = 'share-' || s.share_id AND e.stream_version = 1
WHERE s.workspace_id = %(workspace_id)s AND s.status IN ('in_review', 'review_overdue')
ORDER BY s.scheduled_at, s.share_id
LIMIT %(limit)s

-- name: share_status
SELECT status FROM rm_shares WHERE share_id = %(share_id)s AND workspace_id = %(workspace_id)s
