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
