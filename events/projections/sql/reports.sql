-- name: followthrough
-- Follow-through over the tasks whose due time falls in [from, to), grouped by the
-- key asked for (a week is keyed by its Monday). The rate is followthrough_rate()
-- (migration 0011), rounded for reading. Time to respond counts from the post's publish
-- (its share's sent_at) to the task's completion; time to first look from the publish to
-- the first check_replies task completed on its share (a person looked at the replies),
-- counted where that task falls. Both in wall-clock seconds. By post: the shares planned
-- as one post's (POST /v1/posts), keyed by the post's id; a share planned alone is in no row.
SELECT CASE %(by)s
           WHEN 'account' THEN account_name
           WHEN 'owner' THEN owner
           WHEN 'channel' THEN channel
           WHEN 'day' THEN to_char(due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')
           WHEN 'week' THEN to_char(date_trunc('week', due_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD')
           WHEN 'post' THEN post_id::text
           ELSE workspace_id
       END AS key,
       count(*) FILTER (WHERE state = 'open') AS open,
       count(*) FILTER (WHERE state = 'done' AND done_on_time) AS done_on_time,
       count(*) FILTER (WHERE state = 'done' AND NOT done_on_time) AS done_late,
       count(*) FILTER (WHERE state = 'overdue') AS overdue,
       round(followthrough_rate(count(*) FILTER (WHERE state = 'done' AND done_on_time),
                                count(*) FILTER (WHERE state = 'done' AND NOT done_on_time),
                                count(*) FILTER (WHERE state = 'overdue'))::numeric, 4)::float8 AS rate,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - started_at))
           FILTER (WHERE state = 'done') AS median_seconds_to_complete,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - started_at))
           FILTER (WHERE state = 'done') AS p90_seconds_to_complete,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - started_at))
           FILTER (WHERE kind = 'check_replies' AND state = 'done' AND completed_at = first_check_at)
           AS median_seconds_to_first_look
FROM (
    SELECT i.*, s.post_id,
           -- A task on the business clock is not due after_seconds after the send: its share's
           -- sent_at is where it started (the same for a wall task).
           coalesce(s.sent_at, i.due_at - make_interval(secs => i.after_seconds)) AS started_at,
           min(i.completed_at) FILTER (WHERE i.kind = 'check_replies' AND i.state = 'done')
               OVER (PARTITION BY i.share_id) AS first_check_at
    FROM response_inbox i
    LEFT JOIN rm_shares s ON s.share_id = i.share_id
    WHERE i.workspace_id = %(workspace_id)s
) AS t
WHERE state IN ('open', 'done', 'overdue')
  AND (%(by)s <> 'post' OR post_id IS NOT NULL)
  AND (%(from)s::timestamptz IS NULL OR due_at >= %(from)s::timestamptz)
  AND (%(to)s::timestamptz IS NULL OR due_at < %(to)s::timestamptz)
GROUP BY 1
ORDER BY 1

-- name: engagement
-- Engagement totals per follow-through key (no owner: a post's counts are its account's),
-- summed from engagement_daily (migration 0018, the one formula; Grafana sums it too): the
-- counts of the posts sent on the days that start in [from, to) (UTC).
SELECT CASE %(by)s
           WHEN 'account' THEN account_name
           WHEN 'channel' THEN channel
           WHEN 'day' THEN to_char(day, 'YYYY-MM-DD')
           WHEN 'week' THEN to_char(date_trunc('week', day), 'YYYY-MM-DD')
           WHEN 'post' THEN post_id::text
           ELSE workspace_id
       END AS key,
       sum(replies)::bigint AS engagement_replies,
       sum(reposts)::bigint AS engagement_reposts,
       sum(likes)::bigint AS engagement_likes,
       sum(quotes)::bigint AS engagement_quotes
FROM engagement_daily
WHERE workspace_id = %(workspace_id)s
  AND %(by)s <> 'owner'
  AND (%(by)s <> 'post' OR post_id IS NOT NULL)
  AND (%(from)s::timestamptz IS NULL OR day::timestamp AT TIME ZONE 'UTC' >= %(from)s::timestamptz)
  AND (%(to)s::timestamptz IS NULL OR day::timestamp AT TIME ZONE 'UTC' < %(to)s::timestamptz)
GROUP BY 1
ORDER BY 1

-- name: inbox
-- ``sla``: of an open or overdue task (it starts when its share was sent; task_sla_state,
-- 0015: the at-risk point in business time for a task on the business clock).
SELECT i.task_id, i.share_id, i.account_name, i.channel, i.kind, i.owner, i.due_at, i.state, i.completed_at,
       CASE WHEN i.state IN ('open', 'overdue')
            THEN task_sla_state(i.workspace_id, i.share_id, i.task_id, i.owner, i.after_seconds, s.sent_at, i.due_at, now(), %(at_risk)s::float8) END AS sla
FROM response_inbox i
LEFT JOIN rm_shares s ON s.share_id = i.share_id
WHERE i.workspace_id = %(workspace_id)s
  AND i.state = ANY(%(states)s::text[])
  AND (%(owner)s::text IS NULL OR i.owner = %(owner)s::text)
ORDER BY i.due_at NULLS LAST, i.task_id
LIMIT %(limit)s

-- name: integrity
SELECT count(*) FILTER (WHERE sent_without_tasks) FROM rm_shares WHERE workspace_id = %(workspace_id)s

-- name: shares
SELECT share_id, account_name, channel, status, scheduled_at, sent_at, lateness_ms, attempts, url
FROM rm_shares
WHERE workspace_id = %(workspace_id)s
  AND (%(status)s::text IS NULL OR status = %(status)s::text)
ORDER BY scheduled_at DESC, share_id
LIMIT %(limit)s
