-- The replies read model (rm_replies) and the share's follow-through columns in rm_shares.

-- name: received
INSERT INTO rm_replies (id, share_id, workspace_id, account_id, account_name, channel, network_reply_id,
                        parent_id, author, text, url, received_at, collected_at, state)
SELECT %(id)s, s.share_id, s.workspace_id, s.account_id, s.account_name, s.channel, %(reply_id)s,
       %(parent_id)s, %(author)s, %(text)s, %(url)s, %(received_at)s, %(collected_at)s, 'unanswered'
FROM rm_shares s WHERE s.share_id = %(share_id)s
ON CONFLICT (id) DO NOTHING

-- name: looked
UPDATE rm_shares
SET last_look_at = %(looked_at)s, next_look_at = %(next_look_at)s, replies_collected = %(collected)s,
    version = %(version)s, updated_at = %(at)s
WHERE share_id = %(share_id)s

-- name: answer_requested
UPDATE rm_replies SET answer_text = %(text)s, answer_status = 'requested', answer_error = NULL,
    handled_by = %(by)s
WHERE id = %(id)s

-- name: answer_status
UPDATE rm_replies SET answer_status = %(status)s, answer_error = coalesce(%(error)s, answer_error)
WHERE id = %(id)s AND state <> 'answered'

-- name: answered
UPDATE rm_replies
SET state = 'answered', answer_status = 'answered', answer_error = NULL, answer_url = %(url)s,
    answer_external_id = %(external_id)s, answered_at = %(answered_at)s, answered_natively = %(native)s
WHERE id = %(id)s AND state <> 'answered'
RETURNING id

-- name: share_answered
UPDATE rm_shares SET replies_answered = replies_answered + 1, version = %(version)s, updated_at = %(at)s
WHERE share_id = %(share_id)s

-- name: dismissed
UPDATE rm_replies
SET state = 'dismissed', dismissed_at = %(dismissed_at)s, dismiss_reason = %(reason)s, handled_by = %(by)s
WHERE id = %(id)s AND state = 'unanswered'

-- name: inbox
-- Newest first by when the reply was collected (then id): the cursor is the last row's
-- (collected_at, id). The owner is that of the share's current task: the first not done
-- nor cancelled by due time, else its last task.
SELECT r.id, r.share_id, r.account_id, r.account_name, r.channel, r.author, r.text, r.url, r.received_at,
       r.collected_at, r.state, r.answer_text, r.answer_status, r.answer_error, r.answer_url, r.answered_at,
       r.answered_natively, r.dismissed_at, r.dismiss_reason, r.parent_id, o.owner
FROM rm_replies r
LEFT JOIN LATERAL (
    SELECT t.owner FROM rm_response_tasks t
    WHERE t.share_id = r.share_id
    ORDER BY (t.status IN ('done', 'cancelled')), t.due_at NULLS LAST, t.after_seconds DESC
    LIMIT 1
) o ON true
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
-- Replies received and answered, and the seconds from a reply to its answer, grouped
-- like the follow-through rows (the owner: of the share's current task; the day: of
-- the reply's collection).
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
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM r.answered_at - r.received_at))
           FILTER (WHERE r.state = 'answered') AS median_seconds_to_answer,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM r.answered_at - r.received_at))
           FILTER (WHERE r.state = 'answered') AS p90_seconds_to_answer
FROM rm_replies r
LEFT JOIN LATERAL (
    SELECT t.owner FROM rm_response_tasks t
    WHERE t.share_id = r.share_id
    ORDER BY (t.status IN ('done', 'cancelled')), t.due_at NULLS LAST, t.after_seconds DESC
    LIMIT 1
) o ON true
WHERE r.workspace_id = %(workspace_id)s
  AND (%(from)s::timestamptz IS NULL OR r.collected_at >= %(from)s::timestamptz)
  AND (%(to)s::timestamptz IS NULL OR r.collected_at < %(to)s::timestamptz)
GROUP BY 1
