-- name: insert_endpoint
INSERT INTO webhook_endpoints (id, workspace_id, url, events, description, secret)
VALUES (%(id)s, %(workspace_id)s, %(url)s, %(events)s, %(description)s, %(secret)s)
RETURNING id

-- name: count_endpoints
SELECT count(*) FROM webhook_endpoints WHERE workspace_id = %(workspace_id)s AND state <> 'deleted'

-- name: list_endpoints
-- Each endpoint with its last delivery's outcome (the secret is never read here).
SELECT e.id, e.url, e.events, e.description, e.state, e.disabled_reason, e.disabled_at,
       e.consecutive_failures, e.failing_since, e.paused_until, e.created_at,
       last.id AS last_delivery_id, last.event_type AS last_event_type, last.status AS last_delivery_status,
       last.last_status AS last_http_status, last.last_error, last.last_attempt_at
FROM webhook_endpoints e
LEFT JOIN LATERAL (
    SELECT d.id, d.event_type, d.status, d.last_status, d.last_error, d.last_attempt_at
    FROM webhook_deliveries d
    WHERE d.endpoint_id = e.id AND d.last_attempt_at IS NOT NULL
    ORDER BY d.last_attempt_at DESC
    LIMIT 1
) last ON true
WHERE e.workspace_id = %(workspace_id)s AND e.state <> 'deleted'
  AND (%(id)s::uuid IS NULL OR e.id = %(id)s::uuid)
ORDER BY e.created_at, e.id

-- name: delete_endpoint
-- Kept (its deliveries' history refers to it) but its secret is wiped.
UPDATE webhook_endpoints SET state = 'deleted', deleted_at = now(), secret = ''
WHERE id = %(id)s AND workspace_id = %(workspace_id)s AND state <> 'deleted'
RETURNING id

-- name: cancel_pending
UPDATE webhook_deliveries SET status = 'cancelled', lease_until = NULL
WHERE endpoint_id = %(id)s AND status = 'pending'

-- name: enable_endpoint
-- Back on after a person fixed the receiver: the run of failures starts again, and the
-- deliveries that waited are due now.
UPDATE webhook_endpoints
SET state = 'enabled', disabled_reason = NULL, disabled_at = NULL, consecutive_failures = 0, failing_since = NULL,
    paused_until = NULL
WHERE id = %(id)s AND workspace_id = %(workspace_id)s AND state <> 'deleted'
RETURNING id

-- name: due_now
UPDATE webhook_deliveries SET due_at = clock_timestamp() WHERE endpoint_id = %(id)s AND status = 'pending'

-- name: endpoint_exists
SELECT 1 FROM webhook_endpoints WHERE id = %(id)s AND workspace_id = %(workspace_id)s AND state <> 'deleted'

-- name: deliveries
SELECT d.id, d.event_type, d.event_key, d.status, d.attempts, d.due_at, d.last_status, d.last_error,
       d.last_attempt_at, d.delivered_at, d.created_at, d.payload,
       coalesce((SELECT jsonb_agg(jsonb_build_object(
                        'attempt', a.attempt, 'attempted_at', a.attempted_at, 'http_status', a.http_status,
                        'error', a.error, 'duration_ms', a.duration_ms) ORDER BY a.attempt)
                 FROM webhook_attempts a WHERE a.delivery_id = d.id), '[]'::jsonb) AS attempt_list
FROM webhook_deliveries d
WHERE d.endpoint_id = %(id)s AND (%(status)s::text IS NULL OR d.status = %(status)s::text)
ORDER BY d.created_at DESC, d.id
LIMIT %(limit)s

-- name: claim
-- Due deliveries, not leased or leased by a deliverer that is gone: all of a healthy
-- endpoint's, and one (the earliest due) of an endpoint that is failing, once its pause
-- is over and no other attempt to it is in flight. The attempt is counted at the claim:
-- a deliverer that dies mid-call has still tried. The due bound is statement_timestamp():
-- a volatile clock_timestamp() is no index bound, and the scan would read every pending
-- delivery due later.
WITH healthy AS (
    SELECT d.id
    FROM webhook_deliveries d
    JOIN webhook_endpoints e ON e.id = d.endpoint_id AND e.state = 'enabled' AND e.consecutive_failures = 0
    WHERE d.status = 'pending' AND d.due_at <= statement_timestamp()
      AND (d.lease_until IS NULL OR d.lease_until <= clock_timestamp())
    ORDER BY d.due_at
    LIMIT %(limit)s
    FOR UPDATE OF d SKIP LOCKED
), probes AS (
    SELECT probe.id
    FROM webhook_endpoints e
    CROSS JOIN LATERAL (
        SELECT d.id
        FROM webhook_deliveries d
        WHERE d.endpoint_id = e.id AND d.status = 'pending' AND d.due_at <= statement_timestamp()
          AND (d.lease_until IS NULL OR d.lease_until <= clock_timestamp())
        ORDER BY d.due_at
        LIMIT 1
        FOR UPDATE SKIP LOCKED
    ) probe
    WHERE e.state = 'enabled' AND e.consecutive_failures > 0
      AND (e.paused_until IS NULL OR e.paused_until <= clock_timestamp())
      AND NOT EXISTS (SELECT 1 FROM webhook_deliveries f
                      WHERE f.endpoint_id = e.id AND f.status = 'pending' AND f.lease_until > clock_timestamp())
    LIMIT %(limit)s
), claimed AS (
    SELECT id FROM healthy
    UNION ALL
    SELECT id FROM probes
    LIMIT %(limit)s
)
UPDATE webhook_deliveries d
SET lease_until = clock_timestamp() + make_interval(secs => %(lease_seconds)s), attempts = d.attempts + 1
FROM claimed, webhook_endpoints e
WHERE d.id = claimed.id AND e.id = d.endpoint_id
RETURNING d.id, d.endpoint_id, d.workspace_id, d.event_type, d.event_key, d.payload, d.attempts, e.url, e.secret

-- name: record_attempt
INSERT INTO webhook_attempts (delivery_id, attempt, attempted_at, http_status, error, duration_ms)
VALUES (%(id)s, %(attempt)s, %(at)s, %(http_status)s, %(error)s, %(duration_ms)s)
ON CONFLICT (delivery_id, attempt) DO NOTHING

-- name: delivered
UPDATE webhook_deliveries
SET status = 'delivered', delivered_at = %(at)s, last_attempt_at = %(at)s, last_status = %(http_status)s,
    last_error = NULL, lease_until = NULL
WHERE id = %(id)s AND status = 'pending'

-- name: endpoint_succeeded
UPDATE webhook_endpoints SET consecutive_failures = 0, failing_since = NULL, paused_until = NULL
WHERE id = %(endpoint_id)s

-- name: failed
-- Retry at ``retry_at``, or give the delivery up (``retry_at`` NULL: no attempts left).
UPDATE webhook_deliveries
SET status = CASE WHEN %(retry_at)s::timestamptz IS NULL THEN 'failed' ELSE 'pending' END,
    due_at = coalesce(%(retry_at)s::timestamptz, due_at),
    last_attempt_at = %(at)s, last_status = %(http_status)s, last_error = %(error)s, lease_until = NULL
WHERE id = %(id)s AND status = 'pending'

-- name: endpoint_failed
UPDATE webhook_endpoints
SET consecutive_failures = consecutive_failures + 1, failing_since = coalesce(failing_since, %(at)s)
WHERE id = %(endpoint_id)s AND state = 'enabled'
RETURNING consecutive_failures, failing_since

-- name: pause_endpoint
UPDATE webhook_endpoints SET paused_until = greatest(paused_until, %(until)s) WHERE id = %(endpoint_id)s

-- name: disable_endpoint
UPDATE webhook_endpoints SET state = 'disabled', disabled_reason = %(reason)s, disabled_at = %(at)s
WHERE id = %(endpoint_id)s AND state = 'enabled'
RETURNING id

-- name: prune_attempts
DELETE FROM webhook_attempts a
USING webhook_deliveries d
WHERE a.delivery_id = d.id AND d.status <> 'pending'
  AND d.created_at < clock_timestamp() - make_interval(secs => %(keep_seconds)s)

-- name: prune_deliveries
-- Settled deliveries past the retention. The overdue sweep looks back less far than this,
-- so a pruned task.overdue is never enqueued again.
DELETE FROM webhook_deliveries
WHERE status <> 'pending' AND created_at < clock_timestamp() - make_interval(secs => %(keep_seconds)s)

-- name: next_due
SELECT extract(epoch FROM min(greatest(d.due_at, e.paused_until)) - clock_timestamp())
FROM webhook_deliveries d
JOIN webhook_endpoints e ON e.id = d.endpoint_id AND e.state = 'enabled'
WHERE d.status = 'pending' AND d.lease_until IS NULL

-- name: sealed_secrets
-- Every live endpoint's sealed secret, locked until the re-sealing commits.
SELECT id, workspace_id, secret FROM webhook_endpoints
WHERE state <> 'deleted' AND secret <> ''
ORDER BY workspace_id, created_at, id
FOR UPDATE

-- name: update_secret
UPDATE webhook_endpoints SET secret = %(secret)s WHERE id = %(id)s
