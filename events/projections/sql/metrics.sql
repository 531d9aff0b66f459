-- Figures for operators across all workspaces, computed when Prometheus scrapes.

-- name: shares_by_status
SELECT status, count(*) FROM rm_shares GROUP BY status

-- name: tasks_by_state
SELECT state, count(*) FROM response_inbox GROUP BY state

-- name: duplicates
SELECT coalesce(sum(duplicate_posts), 0), coalesce(sum(duplicates_removed), 0) FROM rm_shares

-- name: integrity
SELECT sent_shares_without_response_tasks FROM integrity

-- name: lateness
SELECT coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY lateness_ms), 0),
       coalesce(percentile_cont(0.99) WITHIN GROUP (ORDER BY lateness_ms), 0)
FROM rm_shares
WHERE sent_at > now() - interval '1 hour'

-- name: schedule_counts
SELECT kind,
       count(*) FILTER (WHERE lease_until IS NULL AND due_at <= clock_timestamp()) AS due,
       count(*) FILTER (WHERE lease_until IS NOT NULL) AS leased,
       count(*) AS total
FROM schedule
GROUP BY kind

-- name: followthrough_by_workspace
-- Follow-through per workspace over the tasks due in the last 30 days (and those open
-- now): the counts behind the rate, and the rate itself (followthrough_rate: NULL when nothing is settled).
SELECT workspace_id,
       count(*) FILTER (WHERE state = 'open') AS open,
       count(*) FILTER (WHERE state = 'done' AND done_on_time) AS done_on_time,
       count(*) FILTER (WHERE state = 'done' AND NOT done_on_time) AS done_late,
       count(*) FILTER (WHERE state = 'overdue') AS overdue,
       followthrough_rate(count(*) FILTER (WHERE state = 'done' AND done_on_time),
                          count(*) FILTER (WHERE state = 'done' AND NOT done_on_time),
                          count(*) FILTER (WHERE state = 'overdue')) AS rate
FROM response_inbox
WHERE state IN ('open', 'done', 'overdue')
  AND due_at >= now() - interval '30 days'
GROUP BY workspace_id
ORDER BY workspace_id

-- name: sla
-- Open work by SLA state (sla_state, migration 0012): open and overdue tasks (started when
-- their share was sent) and unanswered replies (due by the share's next answer_replies
-- task, else after the reply window), as the API's lists show them (a task's at-risk point
-- in business time on the business clock: task_sla_state, migration 0016; a reply's, when
-- the step it is due by is on the business clock: reply_sla_state, migration 0020).
SELECT 'task' AS kind,
       task_sla_state(i.workspace_id, i.share_id, i.task_id, i.owner, i.after_seconds, s.sent_at, i.due_at, now(), %(at_risk)s::float8) AS state,
       count(*)
FROM response_inbox i
LEFT JOIN rm_shares s ON s.share_id = i.share_id
WHERE i.state IN ('open', 'overdue')
GROUP BY 2
UNION ALL
-- reply_sla_state only while the reply is not past due in a workspace with calendars (else
-- the wall clock's sla_state, the same answer): calling reply_sla_state for each of 20,000
-- replies past due added about 0.3 s to this read; so gated it reads as fast as before
SELECT 'reply',
       CASE WHEN now() <= d.due_at AND EXISTS (SELECT FROM events e WHERE e.stream_id = 'calendars-' || r.workspace_id)
            THEN reply_sla_state(r.workspace_id, r.share_id, r.received_at, d.due_at, now(), %(at_risk)s::float8)
            ELSE sla_state(r.received_at, d.due_at, now(), %(at_risk)s::float8) END,
       count(*)
FROM rm_replies r
CROSS JOIN LATERAL (
    -- due by the share's first answer_replies task after it came, else after the reply window
    -- (OFFSET 0: a column, not the call copied into each use of it in reply_sla_state's body:
    -- /metrics' SLA read took 8 against 2 s with 20,000 replies not yet due)
    SELECT reply_sla_due_at(r.share_id, r.received_at, %(reply_sla_seconds)s::float8) AS due_at OFFSET 0
) d
WHERE r.state = 'unanswered'
GROUP BY 2
