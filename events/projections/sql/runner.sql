-- name: checkpoint
SELECT epoch, tx_id::text, position FROM projection_checkpoints WHERE name = %(name)s

-- name: save_checkpoint
INSERT INTO projection_checkpoints AS c (name, epoch, tx_id, position, events_applied, updated_at)
VALUES (%(name)s, %(epoch)s, %(tx_id)s::text::xid8, %(position)s, %(applied)s, now())
ON CONFLICT (name) DO UPDATE
SET epoch = EXCLUDED.epoch, tx_id = EXCLUDED.tx_id, position = EXCLUDED.position,
    events_applied = c.events_applied + EXCLUDED.events_applied, updated_at = now()

-- name: lags
SELECT name, epoch, tx_id::text, position, events_applied, updated_at FROM projection_checkpoints ORDER BY name

-- name: ensure_checkpoint
INSERT INTO projection_checkpoints (name) VALUES (%(name)s) ON CONFLICT (name) DO NOTHING

-- name: lock_checkpoint
-- Taken first by every live step and by the swap: a live step waits while the swap
-- runs, then reads the checkpoint the swap left (never applies an event twice).
SELECT epoch, tx_id::text, position FROM projection_checkpoints WHERE name = %(name)s FOR UPDATE

-- name: set_checkpoint
UPDATE projection_checkpoints
SET epoch = %(epoch)s, tx_id = %(tx_id)s::text::xid8, position = %(position)s,
    events_applied = %(applied)s, updated_at = now()
WHERE name = %(name)s

-- name: left_after
-- Whether the log holds an event the projection uses after its checkpoint (committed,
-- whether or not the log's horizon has passed it yet).
SELECT EXISTS (
    SELECT 1 FROM events
    WHERE (epoch, tx_id, position) > (%(epoch)s, %(tx_id)s::text::xid8, %(position)s)
      AND (%(types)s::text[] IS NULL OR type = ANY(%(types)s::text[]))
)

-- name: visible_head
-- The last event of the whole log below the horizon, if it is after this checkpoint:
-- a projection that reads only some types passes over the rest up to here, so its
-- checkpoint (and its lag) follows the log on a quiet system too.
WITH horizon AS (
    SELECT (SELECT epoch FROM log_epoch) AS epoch,
           pg_snapshot_xmin(pg_current_snapshot()) AS xmin
)
SELECT events.epoch, events.tx_id::text, events.position
FROM events, horizon
WHERE (events.epoch, tx_id) < (horizon.epoch, horizon.xmin)
  AND (events.epoch, tx_id, position) > (%(epoch)s, %(tx_id)s::text::xid8, %(position)s)
ORDER BY events.epoch DESC, events.tx_id DESC, events.position DESC
LIMIT 1

-- name: lags_behind
-- Each follower's checkpoint (every one saved, and each of the names given even before
-- its first), the events after it and the age of the oldest of them: its lag.
WITH followers AS (
    SELECT name, epoch, tx_id, position, events_applied, updated_at FROM projection_checkpoints
    UNION ALL
    SELECT wanted, 0, '0'::xid8, 0, 0, NULL
    FROM unnest(%(names)s::text[]) AS wanted
    WHERE wanted NOT IN (SELECT name FROM projection_checkpoints)
)
SELECT f.name, f.epoch, f.tx_id::text, f.position, f.events_applied, f.updated_at, behind.n, behind.age
FROM followers AS f
CROSS JOIN LATERAL (
    SELECT count(*) AS n, extract(epoch FROM now() - min(e.recorded_at)) AS age
    FROM events AS e
    WHERE (e.epoch, e.tx_id, e.position) > (f.epoch, f.tx_id, f.position)
) AS behind
ORDER BY f.name
