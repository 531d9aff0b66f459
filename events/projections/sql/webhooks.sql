-- name: subscriptions
-- Which (workspace, event type) pairs some enabled endpoint asked for: one look per batch.
SELECT DISTINCT workspace_id, unnest(events) FROM webhook_endpoints WHERE state = 'enabled'

-- name: share_context
-- The share an event belongs to, as it was planned (its first event).
SELECT data->>'account_id', data->>'account_name', data->>'channel', data->>'scheduled_at'
FROM events
WHERE stream_id = %(stream_id)s AND stream_version = 1

-- name: enqueue
-- One delivery per enabled endpoint of the workspace that asked for this type and existed
-- when the event was recorded (a new endpoint gets no backlog). The id is stable per
-- (endpoint, event): it is the ``webhook-id`` receivers de-duplicate on.
INSERT INTO webhook_deliveries (id, endpoint_id, workspace_id, event_type, event_key, payload, due_at)
SELECT md5(e.id::text || ':' || %(event_key)s)::uuid, e.id, e.workspace_id, %(event_type)s, %(event_key)s,
       %(payload)s::jsonb, clock_timestamp()
FROM webhook_endpoints e
WHERE e.workspace_id = %(workspace_id)s AND e.state = 'enabled' AND %(event_type)s = ANY(e.events)
  AND e.created_at <= %(recorded_at)s
ON CONFLICT (endpoint_id, event_key) DO NOTHING

-- name: wake
SELECT pg_notify('followthrough_webhooks', '')

-- name: enqueue_overdue
-- Tasks whose due time passed without completion: one ``task.overdue`` per task and
-- endpoint (the unique (endpoint, event key) makes a second sweep a no-op). Only tasks
-- due after the endpoint was created, and within the look-back (a sweep after a long
-- outage still finds them; an endpoint is not flooded with a year of old tasks).
INSERT INTO webhook_deliveries (id, endpoint_id, workspace_id, event_type, event_key, payload, due_at)
SELECT md5(e.id::text || ':task.overdue:' || t.task_id::text)::uuid, e.id, e.workspace_id, 'task.overdue',
       'task.overdue:' || t.task_id::text,
       jsonb_build_object(
           'type', 'task.overdue',
           'timestamp', to_char(t.due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
           'data', jsonb_build_object(
               'task_id', t.task_id, 'share_id', t.share_id, 'kind', t.kind, 'owner', t.owner,
               'due_at', to_char(t.due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
               'account_id', t.account_id, 'account_name', t.account_name, 'channel', t.channel,
               'url', s.url)),
       clock_timestamp()
FROM rm_response_tasks t
JOIN webhook_endpoints e
  ON e.workspace_id = t.workspace_id AND e.state = 'enabled' AND 'task.overdue' = ANY(e.events)
LEFT JOIN rm_shares s ON s.share_id = t.share_id
WHERE t.status = 'open'
  AND t.due_at <= clock_timestamp()
  AND t.due_at > clock_timestamp() - make_interval(secs => %(lookback_seconds)s)
  AND t.due_at >= e.created_at
  AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d
                  WHERE d.endpoint_id = e.id AND d.event_key = 'task.overdue:' || t.task_id::text)
ON CONFLICT (endpoint_id, event_key) DO NOTHING

-- name: reply_context
-- The reply an answer answers, as it was received (its ResponseReceived on the stream).
SELECT data->>'author', data->>'text', data->>'url', data->>'received_at'
FROM events
WHERE stream_id = %(stream_id)s AND type = 'ResponseReceived' AND data->>'reply_id' = %(reply_id)s
ORDER BY stream_version
LIMIT 1

-- name: enqueue_reply_sla
-- Unanswered replies that reached a point of their SLA (reply_sla_due_at, migration 0012;
-- reply_sla_state, migration 0020: the at-risk point in business time when the step the
-- reply is due by is on the business clock): one ``reply.sla_at_risk`` and one
-- ``reply.sla_breached`` per reply and endpoint at most (the unique (endpoint, event key)
-- makes a second sweep, a restart or a second deliverer a no-op). A sweep tells the state
-- it finds: a reply first seen breached is told breached only. Only replies whose due time
-- is after the endpoint was created (a new endpoint gets no backlog) and within the
-- look-back; only workspaces with an endpoint that asked for either. Each reply's due time
-- and state are worked out once (materialized; inlined, the planner called reply_sla_state
-- up to three times a row), reply_sla_state only for a reply not yet past its due time in
-- a workspace with calendars (else the wall clock's sla_state, the same answer). With
-- 20,000 unanswered replies past due (bench/audit.py's database): the sweep that enqueues
-- them 1.4 s (4.1 s before), each later sweep 0.48 s (2.8 s before).
WITH moment AS MATERIALIZED (
    SELECT clock_timestamp() AS at
), subscribed AS (
    SELECT DISTINCT workspace_id FROM webhook_endpoints
    WHERE state = 'enabled' AND events && ARRAY['reply.sla_at_risk', 'reply.sla_breached']::text[]
), due AS MATERIALIZED (
    SELECT r.*, reply_sla_due_at(r.share_id, r.received_at, %(reply_sla_seconds)s::float8) AS due_at
    FROM rm_replies r
    JOIN subscribed w ON w.workspace_id = r.workspace_id
    WHERE r.state = 'unanswered'
), found AS MATERIALIZED (
    SELECT d.*, m.at,
           'reply.sla_' || CASE
               WHEN m.at <= d.due_at AND EXISTS (SELECT FROM events e WHERE e.stream_id = 'calendars-' || d.workspace_id)
               THEN reply_sla_state(d.workspace_id, d.share_id, d.received_at, d.due_at, m.at, %(at_risk)s::float8)
               ELSE sla_state(d.received_at, d.due_at, m.at, %(at_risk)s::float8) END AS event_type
    FROM due d CROSS JOIN moment m
    WHERE d.due_at > m.at - make_interval(secs => %(lookback_seconds)s)
)
INSERT INTO webhook_deliveries (id, endpoint_id, workspace_id, event_type, event_key, payload, due_at)
SELECT md5(e.id::text || ':' || f.event_type || ':' || f.id::text)::uuid, e.id, e.workspace_id, f.event_type,
       f.event_type || ':' || f.id::text,
       jsonb_build_object(
           'type', f.event_type,
           'timestamp', to_char(CASE WHEN f.event_type = 'reply.sla_breached' THEN f.due_at ELSE f.at END
                                AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
           'data', jsonb_build_object(
               'id', f.id, 'reply_id', f.network_reply_id, 'share_id', f.share_id,
               'account_id', f.account_id, 'account_name', f.account_name, 'channel', f.channel,
               'owner', o.owner, 'author', f.author, 'text', f.text, 'url', f.url,
               'received_at', to_char(f.received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
               'sla', substr(f.event_type, length('reply.sla_') + 1),
               'sla_due_at', to_char(f.due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
               'post_url', s.url)),
       clock_timestamp()
FROM found f
JOIN webhook_endpoints e
  ON e.workspace_id = f.workspace_id AND e.state = 'enabled' AND f.event_type = ANY(e.events)
LEFT JOIN rm_shares s ON s.share_id = f.share_id
-- the owner, as the replies list shows it: of the share's current task
CROSS JOIN LATERAL (SELECT share_owner(f.share_id) AS owner) o
WHERE f.event_type IN ('reply.sla_at_risk', 'reply.sla_breached')
  AND f.due_at >= e.created_at
  AND NOT EXISTS (SELECT 1 FROM webhook_deliveries x
                  WHERE x.endpoint_id = e.id AND x.event_key = f.event_type || ':' || f.id::text)
ON CONFLICT (endpoint_id, event_key) DO NOTHING

-- name: delivery_counts
SELECT status, count(*) FROM webhook_deliveries GROUP BY status

-- name: backlog
-- Deliveries to enabled endpoints that are due now, and how long the oldest has waited.
SELECT count(*), coalesce(extract(epoch FROM clock_timestamp() - min(d.due_at)), 0)
FROM webhook_deliveries d
JOIN webhook_endpoints e ON e.id = d.endpoint_id AND e.state = 'enabled'
WHERE d.status = 'pending' AND d.due_at <= clock_timestamp()

-- name: endpoint_counts
SELECT state, count(*) FROM webhook_endpoints WHERE state <> 'deleted' GROUP BY state
