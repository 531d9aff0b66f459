-- Queries over the replies read model (rm_replies), kept by the shares projection's fold.

-- name: inbox
-- Newest first by when the reply was collected (then id): the cursor is the last row's
-- (collected_at, id). The owner is that of the share's current task: the first not done
-- nor cancelled by due time, else its last task. ``sla``: reply_sla_state (migration 0020),
-- the at-risk point in business time when the step the reply is due by is on the business clock.
SELECT r.id, r.share_id, r.account_id, r.account_name, r.channel, r.author, r.text, r.url, r.received_at,
       r.collected_at, r.state, r.answer_text, r.answer_status, r.answer_error, r.answer_url, r.answered_at,
       r.answered_natively, r.dismissed_at, r.dismiss_reason, r.parent_id, o.owner,
       CASE WHEN r.state NOT IN ('answered', 'dismissed') THEN d.due_at END AS sla_due_at,
       CASE WHEN r.state NOT IN ('answered', 'dismissed')
            THEN reply_sla_state(r.workspace_id, r.share_id, r.received_at, d.due_at, now(), %(at_risk)s::float8)
       END AS sla
FROM rm_replies r
LEFT JOIN LATERAL (
    SELECT t.owner FROM rm_response_tasks t
    WHERE t.share_id = r.share_id
    ORDER BY (t.status IN ('done', 'cancelled')), t.due_at NULLS LAST, t.after_seconds DESC
    LIMIT 1
) o ON true
CROSS JOIN LATERAL (
    -- due by the share's first answer_replies task after it came, else after the reply window
    -- (OFFSET 0: a column, not the call copied into each use of it in reply_sla_state's body:
    -- /metrics' SLA read took 8 against 2 s with 20,000 replies not yet due)
    SELECT reply_sla_due_at(r.share_id, r.received_at, %(reply_sla_seconds)s::float8) AS due_at OFFSET 0
) d
WHERE r.workspace_id = %(workspace_id)s
  AND (%(state)s::text IS NULL OR r.state = %(state)s::text)
  AND (%(account_id)s::uuid IS NULL OR r.account_id = %(account_id)s::uuid)
  AND (%(share_id)s::uuid IS NULL OR r.share_id = %(share_id)s::uuid)
  AND (%(owner)s::text IS NULL OR o.owner = %(owner)s::text)
  AND (%(cursor_at)s::timestamptz IS NULL OR (r.collected_at, r.id) < (%(cursor_at)s::timestamptz, %(cursor_id)s::uuid))
ORDER BY r.collected_at DESC, r.id DESC
LIMIT %(limit)s

-- name: share_of_reply
SELECT share_id, network_reply_id FROM rm_replies WHERE id = %(id)s AND workspace_id = %(workspace_id)s

-- name: reply_figures
-- Replies received and answered, and the seconds from a reply to its answer (the reply's
-- network time to the answer's; reply_answer_time, migration 0016: in its owner's business
-- time when the answer_replies step it is answered for is on the business clock, else on
-- the wall clock; ``clock_to_answer``: wall, business or mixed over the answered replies,
-- NULL with none), grouped like the follow-through rows (the
-- owner: of the share's current task; the day: of the reply's collection). ``hours``:
-- all, or only the replies written inside (business) or outside (off) their owner's
-- business hours as the calendar stood then (migration 0013; no calendar: all business).
SELECT CASE %(by)s
           WHEN 'account' THEN r.account_name
           WHEN 'owner' THEN o.owner
           WHEN 'channel' THEN r.channel
           WHEN 'day' THEN to_char(r.collected_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')
           WHEN 'week' THEN to_char(date_trunc('week', r.collected_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD')
           ELSE r.workspace_id
       END AS key,
       count(*) AS replies_received,
       count(*) FILTER (WHERE r.state = 'answered') AS replies_answered,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY a.seconds)
           FILTER (WHERE r.state = 'answered') AS median_seconds_to_answer,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY a.seconds)
           FILTER (WHERE r.state = 'answered') AS p90_seconds_to_answer,
       CASE WHEN count(*) FILTER (WHERE r.state = 'answered') = 0 THEN NULL
            WHEN bool_and(a.clock = 'business') FILTER (WHERE r.state = 'answered') THEN 'business'
            WHEN bool_or(a.clock = 'business') FILTER (WHERE r.state = 'answered') THEN 'mixed'
            ELSE 'wall' END AS clock_to_answer
FROM rm_replies r
LEFT JOIN LATERAL (
    -- the owner, only when the key or the hours need it (the audit's by=workspace read: 0.07
    -- against 0.01 s on 20,000 replies)
    SELECT t.owner FROM rm_response_tasks t
    WHERE t.share_id = r.share_id AND (%(by)s::text = 'owner' OR %(hours)s::text <> 'all')
    ORDER BY (t.status IN ('done', 'cancelled')), t.due_at NULLS LAST, t.after_seconds DESC
    LIMIT 1
) o ON true
-- A workspace without calendars has no business step: its times are the wall clock's
-- without a look at each reply's step (profiled: the look cost the audit 0.3 s on 20,000
-- replies); with calendars, reply_answer_time once a reply (0.3 s on 20,000 answered).
CROSS JOIN (SELECT EXISTS (SELECT FROM events e WHERE e.stream_id = 'calendars-' || %(workspace_id)s::text)
            AS calendars) AS w
LEFT JOIN LATERAL (
    SELECT x.seconds, x.clock
    FROM reply_answer_time(r.workspace_id, r.share_id, r.received_at, r.answered_at) x
    WHERE w.calendars
    UNION ALL
    SELECT extract(epoch FROM r.answered_at - r.received_at)::float8, 'wall' WHERE NOT w.calendars
) a ON r.state = 'answered'
WHERE r.workspace_id = %(workspace_id)s
  AND (%(from)s::timestamptz IS NULL OR r.collected_at >= %(from)s::timestamptz)
  AND (%(to)s::timestamptz IS NULL OR r.collected_at < %(to)s::timestamptz)
  AND (%(hours)s::text = 'all'
       OR coalesce(in_business_hours(r.received_at, calendar_at(r.workspace_id, o.owner, r.received_at)), true)
          = (%(hours)s::text = 'business'))
GROUP BY 1
