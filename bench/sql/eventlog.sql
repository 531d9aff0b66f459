-- Queries of the event-log benchmark (bench/eventlog.py).

-- name: create_raw_table
-- The raw baseline's table: the shape of `events` (columns, defaults such as
-- pg_current_xact_id() and current_log_epoch(), identity, primary key, both unique
-- constraints, the log-order index, checks) without its triggers.
CREATE TABLE bench_raw (LIKE events INCLUDING DEFAULTS INCLUDING INDEXES INCLUDING IDENTITY INCLUDING CONSTRAINTS)

-- name: table_shape
-- What makes two tables equally costly to write: columns with types, defaults and
-- identity, indexes (unique or not, their columns) and checks. Names left out.
SELECT 'column ' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
       || CASE WHEN a.attidentity <> '' THEN ' identity ' || a.attidentity::text ELSE '' END
       || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
FROM pg_attribute a
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = %(table)s::regclass AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'index ' || CASE WHEN i.indisprimary THEN 'primary ' WHEN i.indisunique THEN 'unique ' ELSE '' END
       || substring(pg_get_indexdef(i.indexrelid) FROM ' USING (.*)$')
FROM pg_index i
WHERE i.indrelid = %(table)s::regclass
UNION ALL
SELECT 'check ' || pg_get_constraintdef(c.oid)
FROM pg_constraint c
WHERE c.conrelid = %(table)s::regclass AND c.contype = 'c'

-- name: user_triggers
SELECT count(*) FROM pg_trigger WHERE tgrelid = %(table)s::regclass AND NOT tgisinternal

-- name: raw_insert
-- One event row, as plain as psycopg can write it; defaults fill the rest.
INSERT INTO bench_raw (event_id, stream_id, stream_version, type, schema_version, data, metadata, workspace_id)
VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s)

-- name: raw_read
-- The same columns as the store's reads, by position, jsonb left to psycopg's loader.
SELECT position, event_id, stream_id, stream_version, type, schema_version,
       data, metadata, workspace_id, recorded_at, epoch, tx_id
FROM events
WHERE position > %(after)s
ORDER BY position
LIMIT %(limit)s

-- name: count_events
SELECT count(*) FROM events

-- name: bulk_load
-- Appends `count` events as share streams of two (SharePlanned v1, ShareSent v2) in
-- one statement, the first write of its transaction (as the first-write trigger
-- wants). Payloads are the templates (real events encoded by the codec) with the
-- identifiers made unique per share, so rows have the store's size and decode.
WITH shares AS (
    SELECT g, gen_random_uuid() AS share_id
    FROM generate_series(1, (%(count)s + 1) / 2) AS g
)
INSERT INTO events (event_id, stream_id, stream_version, type, schema_version,
                    data, metadata, workspace_id)
SELECT gen_random_uuid(), 'share-' || shares.share_id, v.version, v.type, v.schema_version,
       v.data, %(metadata)s::jsonb || jsonb_build_object('correlation_id', shares.share_id),
       %(workspace_id)s
FROM shares
CROSS JOIN LATERAL (
    VALUES (1, %(planned_type)s, %(planned_version)s::int2,
            %(planned)s::jsonb || jsonb_build_object('share_id', shares.share_id)),
           (2, %(sent_type)s, %(sent_version)s::int2,
            %(sent)s::jsonb || jsonb_build_object('external_id', (113000000000000000 + shares.g)::text))
) AS v(version, type, schema_version, data)
ORDER BY shares.g, v.version
LIMIT %(count)s
