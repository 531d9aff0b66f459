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
