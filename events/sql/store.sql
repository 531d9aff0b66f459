-- Queries of the event store. Every append is one statement: in autocommit mode it
-- is its own transaction (one round trip), inside a unit of work it is that unit's
-- first write (enforced by the events_first_write trigger).

-- name: append
-- Appends a batch to one stream. With an expected version: only if the stream's head is
-- there. Without one (NULL): at whatever the head is, unless any of the event ids is
-- stored already (then nothing is written and the caller checks for an idempotent retry).
-- Returns the head version it saw and the last version written (NULL when nothing was).
WITH head AS (
    SELECT coalesce(max(stream_version), 0) AS version
    FROM events
    WHERE stream_id = %(stream_id)s
), ins AS (
    INSERT INTO events (event_id, stream_id, stream_version, type, schema_version,
                        data, metadata, workspace_id, epoch)
    SELECT e.event_id, %(stream_id)s, head.version + e.ord::int, e.type, e.schema_version,
           e.data::jsonb, e.metadata::jsonb, %(workspace_id)s, (SELECT epoch FROM log_epoch)
    FROM head,
         unnest(%(event_ids)b::uuid[], %(types)b::text[], %(schema_versions)b::int2[],
                %(data)b::text[], %(metadata)b::text[])
             WITH ORDINALITY AS e(event_id, type, schema_version, data, metadata, ord)
    WHERE CASE WHEN %(expected)s::int IS NULL
               THEN NOT EXISTS (SELECT 1 FROM events WHERE event_id = ANY(%(event_ids)b::uuid[]))
               ELSE head.version = %(expected)s::int
          END
    RETURNING stream_version
)
SELECT (SELECT version FROM head), (SELECT max(stream_version) FROM ins)

-- name: stored_ids
SELECT event_id, stream_id, stream_version
FROM events
WHERE event_id = ANY(%(event_ids)b::uuid[])

-- name: head_version
SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = %(stream_id)s

-- name: read_stream
SELECT position, event_id, stream_id, stream_version, type, schema_version,
       data::text, metadata::text, workspace_id, recorded_at, epoch, tx_id
FROM events
WHERE stream_id = %(stream_id)s AND stream_version > %(after_version)s
ORDER BY stream_version

-- name: read_all
-- The whole log after a checkpoint, gap-safe: only transactions older than the oldest
-- one still running (below the snapshot's xmin) are read, so a slow committer can
-- delay a follower but never be skipped. Older epochs are complete by definition.
WITH horizon AS (
    SELECT (SELECT epoch FROM log_epoch) AS epoch,
           pg_snapshot_xmin(pg_current_snapshot()) AS xmin
)
SELECT position, event_id, stream_id, stream_version, type, schema_version,
       data::text, metadata::text, workspace_id, recorded_at, events.epoch, events.tx_id
FROM events, horizon
WHERE (events.epoch, tx_id, position) > (%(epoch)s, %(tx_id)s::text::xid8, %(position)s)
  AND (events.epoch, tx_id) < (horizon.epoch, horizon.xmin)
  AND (%(types)s::text[] IS NULL OR type = ANY(%(types)s::text[]))
-- Qualified: the horizon has an epoch column too.
ORDER BY events.epoch, events.tx_id, events.position
LIMIT %(limit)s

-- name: read_partition
-- One of ``parts`` partitions of the log (its streams, split by a hash of their id),
-- after a checkpoint and up to another: a parallel rebuild's workers each read one.
-- The upper bound was below the horizon when it was taken, so every transaction up to
-- it has ended: no horizon here.
SELECT position, event_id, stream_id, stream_version, type, schema_version,
       data::text, metadata::text, workspace_id, recorded_at, epoch, tx_id
FROM events
WHERE (epoch, tx_id, position) > (%(epoch)s, %(tx_id)s::text::xid8, %(position)s)
  AND (epoch, tx_id, position) <= (%(until_epoch)s, %(until_tx_id)s::text::xid8, %(until_position)s)
  AND (%(types)s::text[] IS NULL OR type = ANY(%(types)s::text[]))
  AND abs(hashtext(stream_id) %% %(parts)s) = %(part)s
ORDER BY epoch, tx_id, position
LIMIT %(limit)s

-- name: horizon
-- For operators: the current epoch, the horizon, the oldest running transaction
-- that holds it, and how long committed events have been held behind it.
WITH horizon AS (
    SELECT (SELECT epoch FROM log_epoch) AS epoch,
           pg_snapshot_xmin(pg_current_snapshot()) AS xmin
)
SELECT horizon.epoch,
       horizon.xmin::text,
       (SELECT extract(epoch FROM now() - min(xact_start))
          FROM pg_stat_activity
         WHERE backend_xid IS NOT NULL),
       (SELECT extract(epoch FROM now() - min(recorded_at))
          FROM events
         WHERE events.epoch = horizon.epoch AND tx_id >= horizon.xmin)
FROM horizon

-- name: bump_epoch
UPDATE log_epoch SET epoch = epoch + 1, bumped_at = now(), reason = %(reason)s
RETURNING epoch

-- name: append_many
-- Appends to many streams in one statement, each stream all-or-nothing: a stream is
-- written only if its head is at the version the caller expected. Returns, per stream,
-- the head it saw and the last version written (NULL: not written). A concurrent
-- append racing for the same version still fails the whole statement (unique key).
-- The rows come as one JSON array (``codec.append_rows``): one parameter instead of nine
-- arrays, which psycopg dumped element by element. What was written is grouped once and
-- joined (a subquery per stream scanned every written row again: 50 streams x 100 rows).
WITH input AS (
    SELECT *
    FROM jsonb_to_recordset(%(rows)s::jsonb)
        AS i(stream_id text, expected int, event_id uuid, type text, schema_version int2, data jsonb,
             metadata jsonb, workspace_id text, ord int)
), heads AS (
    SELECT s.stream_id,
           coalesce((SELECT max(e.stream_version) FROM events e WHERE e.stream_id = s.stream_id), 0) AS version
    FROM (SELECT DISTINCT stream_id FROM input) s
), ins AS (
    INSERT INTO events (event_id, stream_id, stream_version, type, schema_version,
                        data, metadata, workspace_id, epoch)
    SELECT i.event_id, i.stream_id, h.version + i.ord, i.type, i.schema_version,
           i.data, i.metadata, i.workspace_id, (SELECT epoch FROM log_epoch)
    FROM input i JOIN heads h ON h.stream_id = i.stream_id
    WHERE h.version = i.expected
    RETURNING stream_id, stream_version
)
SELECT h.stream_id, h.version, written.last
FROM heads h
LEFT JOIN (SELECT stream_id, max(stream_version) AS last FROM ins GROUP BY stream_id) AS written
    ON written.stream_id = h.stream_id

-- name: read_streams
-- Each stream read on its own through (stream_id, stream_version)'s index, already in order
-- (the last ORDER BY makes that order the statement's, not the plan's: a sort of a few rows).
-- Written as ``stream_id = ANY(...)``, a table never analyzed (autovacuum off) was estimated
-- at one row in two hundred a stream, and a group's read became a scan of the whole log (12 ms
-- instead of 0.2). OFFSET 0 keeps the lookup per stream: the planner cannot make it a join.
SELECT e.position, e.event_id, e.stream_id, e.stream_version, e.type, e.schema_version,
       e.data::text, e.metadata::text, e.workspace_id, e.recorded_at, e.epoch, e.tx_id
FROM unnest(%(stream_ids)b::text[]) AS s(stream_id)
CROSS JOIN LATERAL (
    SELECT * FROM events WHERE events.stream_id = s.stream_id ORDER BY stream_version OFFSET 0
) AS e
ORDER BY e.stream_id, e.stream_version

-- name: append_one
-- The common case, one event at an expected version, in its plainest form (positional
-- parameters, each sent once). The unique (stream_id, stream_version) key refuses it if
-- the stream moved past the expected version, and the EXISTS refuses it (no row) if the
-- stream has not reached it. RETURNING, not the row count: in pipeline mode only a
-- fetch waits for the result.
INSERT INTO events (event_id, stream_id, stream_version, type, schema_version,
                    data, metadata, workspace_id, epoch)
SELECT v.event_id, v.stream_id, v.expected + 1, v.type, v.schema_version,
       v.data::jsonb, v.metadata::jsonb, v.workspace_id, (SELECT epoch FROM log_epoch)
FROM (VALUES (%s::uuid, %s::text, %s::int, %s::text, %s::int2, %s::text, %s::text, %s::text))
    AS v(event_id, stream_id, expected, type, schema_version, data, metadata, workspace_id)
WHERE v.expected = 0
   OR EXISTS (SELECT 1 FROM events e WHERE e.stream_id = v.stream_id AND e.stream_version = v.expected)
RETURNING stream_version
