-- Queries over the replies read model (rm_replies), kept by the shares projection's fold.

-- name: inbox
-- Newest first by when the reply was collected (then id): the cursor is the last row's
-- (collected_at, id). The owner is that of the share's current task: the first not done
-- nor cancelled by due time, else its last task. The assignee: whom the reply was assigned
-- to (ReplyAssigned), else that owner. The page's rows are chosen first; their owner and
-- SLA are read for them alone. ``sla``: reply_sla_state (migration 0020), the at-risk point
-- in business time when the step the reply is due by is on the business clock.
WITH current_owner AS (
    -- share_owner()'s order, for every share of the workspace at once (the owner filter)
    SELECT DISTINCT ON (t.share_id) t.share_id, t.owner
    FROM rm_response_tasks t
    WHERE t.workspace_id = %(workspace_id)s
    ORDER BY t.share_id, (t.status IN ('done', 'cancelled')), t.due_at NULLS LAST, t.after_seconds DESC
), page AS (
    SELECT r.id, r.collected_at
    FROM rm_replies r
    WHERE r.workspace_id = %(workspace_id)s
      AND (%(state)s::text IS NULL OR r.state = %(state)s::text)
      AND (%(account_id)s::uuid IS NULL OR r.account_id = %(account_id)s::uuid)
      AND (%(share_id)s::uuid IS NULL OR r.share_id = %(share_id)s::uuid)
      AND (%(owner)s::text IS NULL OR r.share_id IN (SELECT share_id FROM current_owner WHERE owner = %(owner)s::text))
      AND (%(assignee)s::text IS NULL OR r.assignee = %(assignee)s::text
           OR (r.assignee IS NULL
               AND r.share_id IN (SELECT share_id FROM current_owner WHERE owner = %(assignee)s::text)))
      AND (%(cursor_at)s::timestamptz IS NULL OR (r.collected_at, r.id) < (%(cursor_at)s::timestamptz, %(cursor_id)s::uuid))
    ORDER BY r.collected_at DESC, r.id DESC
    LIMIT %(limit)s
)
SELECT r.id, r.share_id, r.account_id, r.account_name, r.channel, r.author, r.text, r.url, r.received_at,
       r.collected_at, r.state, r.answer_text, r.answer_status, r.answer_error, r.answer_url, r.answered_at,
       r.answered_natively, r.dismissed_at, r.dismiss_reason, r.parent_id, o.owner,
       coalesce(r.assignee, o.owner) AS assignee, r.assignee IS NOT NULL AS assigned,
       CASE WHEN r.state NOT IN ('answered', 'dismissed') THEN d.due_at END AS sla_due_at,
       CASE WHEN r.state NOT IN ('answered', 'dismissed')
            THEN reply_sla_state(r.workspace_id, r.share_id, r.received_at, d.due_at, now(), %(at_risk)s::float8)
       END AS sla
FROM page p
JOIN rm_replies r ON r.id = p.id
CROSS JOIN LATERAL (SELECT share_owner(r.share_id) AS owner) o
CROSS JOIN LATERAL (
    -- due by the share's first answer_replies task after it came, else after the reply window
    -- (OFFSET 0: a column, not the call copied into each use of it in reply_sla_state's body:
    -- /metrics' SLA read took 8 against 2 s with 20,000 replies not yet due)
    SELECT reply_sla_due_at(r.share_id, r.received_at, %(reply_sla_seconds)s::float8) AS due_at OFFSET 0
) d
ORDER BY p.collected_at DESC, p.id DESC

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
           WHEN 'post' THEN p.post_id::text
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
CROSS JOIN LATERAL (
    -- the owner, only when the key or the hours need it (the audit's by=workspace read: 0.07
    -- against 0.01 s on 20,000 replies)
    SELECT CASE WHEN %(by)s::text = 'owner' OR %(hours)s::text <> 'all' THEN share_owner(r.share_id) END AS owner
) o
-- the share's post, only by post
CROSS JOIN LATERAL (
    SELECT CASE WHEN %(by)s::text = 'post' THEN (SELECT s.post_id FROM rm_shares s WHERE s.share_id = r.share_id)
           END AS post_id
) p
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
  AND (%(by)s::text <> 'post' OR p.post_id IS NOT NULL)
  AND (%(from)s::timestamptz IS NULL OR r.collected_at >= %(from)s::timestamptz)
  AND (%(to)s::timestamptz IS NULL OR r.collected_at < %(to)s::timestamptz)
  AND (%(hours)s::text = 'all'
       OR coalesce(in_business_hours(r.received_at, calendar_at(r.workspace_id, o.owner, r.received_at)), true)
          = (%(hours)s::text = 'business'))
GROUP BY 1

-- name: desk
-- The replies page (/dashboard/replies): the unanswered first (breached, then at risk, then
-- the newest by the network's time), then the answered and dismissed, newest collected
-- first (as the inbox); a page at a time by offset. The owner and SLA are the inbox's: the
-- due time by the share's first answer_replies task due after the reply came in, else after
-- the reply window (reply_sla_due_at's rule). A row's SLA is reply_sla_state's (business
-- time for a business step, as the inbox); the ranking orders by the wall clock's at-risk
-- point. Every part is read from an index, as many rows as the page needs, never every
-- unanswered reply: the breached newest first from rm_replies_unanswered_idx (each reply's
-- due time looked up as it is read, stopping at the page's count); the not yet due are
-- only those received within the reply window or under a share with an answer_replies
-- task still to come (index ranges on both), ranked whole; the answered and dismissed from
-- the inbox index.
-- ``assignee``: as the inbox's (assigned to them, or unassigned under a share whose
-- current task they own).
WITH current_owner AS (
    -- share_owner()'s order, for every share of the workspace at once (the owner filter)
    SELECT DISTINCT ON (t.share_id) t.share_id, t.owner
    FROM rm_response_tasks t
    WHERE t.workspace_id = %(workspace_id)s
    ORDER BY t.share_id, (t.status IN ('done', 'cancelled')), t.due_at NULLS LAST, t.after_seconds DESC
), breached AS (
    SELECT r.id, r.received_at, d.due_at
    FROM rm_replies r
    CROSS JOIN LATERAL (
        SELECT coalesce(min(t.due_at), r.received_at + make_interval(secs => %(reply_sla_seconds)s::float8)) AS due_at
        FROM rm_response_tasks t
        WHERE t.share_id = r.share_id AND t.kind = 'answer_replies' AND t.status <> 'cancelled'
          AND t.due_at >= r.received_at
    ) d
    WHERE r.workspace_id = %(workspace_id)s AND r.state = 'unanswered' AND d.due_at < now()
      AND coalesce(%(state)s::text, 'unanswered') = 'unanswered'
      AND (%(account_id)s::uuid IS NULL OR r.account_id = %(account_id)s::uuid)
      AND (%(share_id)s::uuid IS NULL OR r.share_id = %(share_id)s::uuid)
      AND (%(owner)s::text IS NULL OR r.share_id IN (SELECT share_id FROM current_owner WHERE owner = %(owner)s::text))
      AND (%(assignee)s::text IS NULL OR r.assignee = %(assignee)s::text
           OR (r.assignee IS NULL
               AND r.share_id IN (SELECT share_id FROM current_owner WHERE owner = %(assignee)s::text)))
    ORDER BY r.received_at DESC, r.id DESC
    LIMIT %(limit)s + %(offset)s
), not_due AS (
    SELECT c.id, c.received_at, d.due_at
    FROM (
        -- due after the reply window (no task due after it came) and received within it
        SELECT u.id, u.share_id, u.account_id, u.received_at, u.assignee
        FROM rm_replies u
        WHERE u.workspace_id = %(workspace_id)s AND u.state = 'unanswered'
          AND u.received_at >= now() - make_interval(secs => %(reply_sla_seconds)s::float8)
          -- (the task's workspace and lower bound implied: its range of the due index)
          AND NOT EXISTS (SELECT FROM rm_response_tasks t
                          WHERE t.share_id = u.share_id AND t.kind = 'answer_replies' AND t.status <> 'cancelled'
                            AND t.due_at >= u.received_at AND t.workspace_id = %(workspace_id)s
                            AND t.due_at >= now() - make_interval(secs => %(reply_sla_seconds)s::float8))
        UNION
        -- due by a task: one still to come (its shares as an array: their replies by the share
        -- index, however many tasks the planner guesses are to come)
        SELECT u.id, u.share_id, u.account_id, u.received_at, u.assignee
        FROM rm_replies u
        WHERE u.share_id = ANY (ARRAY(
                  SELECT t.share_id FROM rm_response_tasks t
                  WHERE t.workspace_id = %(workspace_id)s AND t.due_at >= now() AND t.kind = 'answer_replies'
                    AND t.status <> 'cancelled'))
          AND u.workspace_id = %(workspace_id)s AND u.state = 'unanswered'
    ) c
    CROSS JOIN LATERAL (
        SELECT coalesce(min(t.due_at), c.received_at + make_interval(secs => %(reply_sla_seconds)s::float8)) AS due_at
        FROM rm_response_tasks t
        WHERE t.share_id = c.share_id AND t.kind = 'answer_replies' AND t.status <> 'cancelled'
          AND t.due_at >= c.received_at
    ) d
    WHERE d.due_at >= now()
      AND coalesce(%(state)s::text, 'unanswered') = 'unanswered'
      AND (%(account_id)s::uuid IS NULL OR c.account_id = %(account_id)s::uuid)
      AND (%(share_id)s::uuid IS NULL OR c.share_id = %(share_id)s::uuid)
      AND (%(owner)s::text IS NULL OR c.share_id IN (SELECT share_id FROM current_owner WHERE owner = %(owner)s::text))
      AND (%(assignee)s::text IS NULL OR c.assignee = %(assignee)s::text
           OR (c.assignee IS NULL
               AND c.share_id IN (SELECT share_id FROM current_owner WHERE owner = %(assignee)s::text)))
), ranked AS (
    (SELECT id, 0 AS part, 0 AS rank, received_at AS at, due_at FROM breached)
    UNION ALL
    (SELECT id, 0 AS part,
            CASE WHEN sla_state(received_at, due_at, now(), %(at_risk)s::float8) = 'at_risk' THEN 1 ELSE 2 END AS rank,
            received_at AS at, due_at
     FROM not_due
     ORDER BY 3, 4 DESC, 1 DESC
     LIMIT %(limit)s + %(offset)s)
    UNION ALL
    (SELECT r.id, 1, 3, r.collected_at, NULL::timestamptz
     FROM rm_replies r
     WHERE r.workspace_id = %(workspace_id)s AND r.state = 'answered' AND coalesce(%(state)s::text, 'answered') = 'answered'
       AND (%(account_id)s::uuid IS NULL OR r.account_id = %(account_id)s::uuid)
       AND (%(share_id)s::uuid IS NULL OR r.share_id = %(share_id)s::uuid)
       AND (%(owner)s::text IS NULL OR r.share_id IN (SELECT share_id FROM current_owner WHERE owner = %(owner)s::text))
       AND (%(assignee)s::text IS NULL OR r.assignee = %(assignee)s::text
            OR (r.assignee IS NULL
                AND r.share_id IN (SELECT share_id FROM current_owner WHERE owner = %(assignee)s::text)))
     ORDER BY r.collected_at DESC, r.id DESC
     LIMIT %(limit)s + %(offset)s)
    UNION ALL
    (SELECT r.id, 1, 3, r.collected_at, NULL::timestamptz
     FROM rm_replies r
     WHERE r.workspace_id = %(workspace_id)s AND r.state = 'dismissed' AND coalesce(%(state)s::text, 'dismissed') = 'dismissed'
       AND (%(account_id)s::uuid IS NULL OR r.account_id = %(account_id)s::uuid)
       AND (%(share_id)s::uuid IS NULL OR r.share_id = %(share_id)s::uuid)
       AND (%(owner)s::text IS NULL OR r.share_id IN (SELECT share_id FROM current_owner WHERE owner = %(owner)s::text))
       AND (%(assignee)s::text IS NULL OR r.assignee = %(assignee)s::text
            OR (r.assignee IS NULL
                AND r.share_id IN (SELECT share_id FROM current_owner WHERE owner = %(assignee)s::text)))
     ORDER BY r.collected_at DESC, r.id DESC
     LIMIT %(limit)s + %(offset)s)
), page AS (
    SELECT * FROM ranked ORDER BY part, rank, at DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s
)
SELECT r.id, r.share_id, r.account_id, r.account_name, r.channel, r.network_reply_id, r.author, r.author_name,
       r.text, r.url,
       r.received_at, r.collected_at, r.state, r.answer_text, r.answer_status, r.answer_error, r.answer_url,
       r.answered_at, r.answered_natively, r.dismissed_at, r.dismiss_reason, r.parent_id, o.owner,
       coalesce(r.assignee, o.owner) AS assignee, r.assignee IS NOT NULL AS assigned,
       s.text AS post_text, s.url AS post_url, s.sent_at AS post_sent_at,
       p.due_at AS sla_due_at,
       CASE WHEN r.state <> 'unanswered' THEN NULL
            -- past its due time (ranked 0) breached on either clock, as reply_sla_state has it,
            -- without a call per row (most of a busy page)
            WHEN p.rank = 0 THEN 'breached'
            ELSE reply_sla_state(r.workspace_id, r.share_id, r.received_at, p.due_at, now(), %(at_risk)s::float8)
       END AS sla
FROM page p
JOIN rm_replies r ON r.id = p.id
LEFT JOIN rm_shares s ON s.share_id = r.share_id
-- share_owner() written out: called per row it cost a sixth of the query (1 ms of 6 on a
-- page of 50), inline it is an index lookup each
LEFT JOIN LATERAL (
    SELECT t.owner
    FROM rm_response_tasks t
    WHERE t.share_id = r.share_id
    ORDER BY (t.status IN ('done', 'cancelled')), t.due_at NULLS LAST, t.after_seconds DESC
    LIMIT 1
) o ON true
ORDER BY p.part, p.rank, p.at DESC, p.id DESC

-- name: thread_above
-- The replies above the given ones in their threads (each parent up to the share's post),
-- with the answers given to them: pairs of (share_id, parent's network id).
WITH RECURSIVE up AS (
    SELECT p.share_id, p.network_reply_id, p.parent_id, p.author, p.author_name, p.text, p.url, p.received_at, p.state,
           p.answer_text, p.answer_status, p.answer_url, p.answered_natively, 1 AS depth
    FROM unnest(%(share_ids)s::uuid[], %(parent_ids)s::text[]) AS a(share_id, parent_id)
    JOIN rm_replies p ON p.share_id = a.share_id AND p.network_reply_id = a.parent_id
    WHERE p.workspace_id = %(workspace_id)s
    UNION
    SELECT p.share_id, p.network_reply_id, p.parent_id, p.author, p.author_name, p.text, p.url, p.received_at, p.state,
           p.answer_text, p.answer_status, p.answer_url, p.answered_natively, up.depth + 1
    FROM up
    JOIN rm_replies p ON p.share_id = up.share_id AND p.network_reply_id = up.parent_id
    WHERE p.workspace_id = %(workspace_id)s AND up.depth < 50
)
SELECT DISTINCT ON (share_id, network_reply_id) share_id, network_reply_id, parent_id, author, author_name, text, url,
       received_at, state, answer_text, answer_status, answer_url, answered_natively
FROM up
ORDER BY share_id, network_reply_id

-- name: owners_and_people
-- The replies page's two lists in one read of the tasks: the workspace's known people (whom
-- a reply can be assigned to: owners of its response tasks and of its live tokens, and
-- those replies were assigned to), each with whether they own a task (the owner filter's).
SELECT person, bool_or(owns) AS owns
FROM (
    SELECT owner AS person, true AS owns FROM rm_response_tasks WHERE workspace_id = %(workspace_id)s
    UNION ALL
    SELECT owner, false FROM api_tokens
    WHERE workspace_id = %(workspace_id)s AND owner IS NOT NULL AND revoked_at IS NULL
    UNION ALL
    SELECT assignee, false FROM rm_replies WHERE workspace_id = %(workspace_id)s AND assignee IS NOT NULL
) known
GROUP BY person
ORDER BY person

-- name: reply_answer
SELECT state, answer_status, assignee FROM rm_replies WHERE id = %(id)s AND workspace_id = %(workspace_id)s

-- name: people_of_reply
-- Who wrote a reply and the account it was written to (a saved reply's placeholders).
SELECT author, author_name, account_name FROM rm_replies WHERE id = %(id)s AND workspace_id = %(workspace_id)s
