-- Rebuilding a projection into fresh tables and swapping them in (projections/rebuild.py).
-- Table and index names are passed as regclass/text values here and as identifiers
-- (psycopg.sql) in the DDL the module composes.

-- name: try_rebuild_lock
-- One rebuild of a projection at a time (the live projector's lock is another key).
SELECT pg_try_advisory_lock(hashtext('followthrough:projection-rebuild:' || %(name)s))

-- name: rebuild_unlock
SELECT pg_advisory_unlock(hashtext('followthrough:projection-rebuild:' || %(name)s))

-- name: events_to_read
-- How many events a rebuild reads (for its progress bar): every one of its types.
SELECT count(*) FROM events WHERE %(types)s::text[] IS NULL OR type = ANY(%(types)s::text[])

-- name: last_visible
-- Where a parallel rebuild's workers stop: the last of its events below the horizon
-- (every transaction up to it has ended), read backwards along the log's order.
WITH horizon AS (
    SELECT (SELECT epoch FROM log_epoch) AS epoch,
           pg_snapshot_xmin(pg_current_snapshot()) AS xmin
)
SELECT events.epoch, events.tx_id, events.position
FROM events, horizon
WHERE (events.epoch, tx_id) < (horizon.epoch, horizon.xmin)
  AND (%(types)s::text[] IS NULL OR type = ANY(%(types)s::text[]))
ORDER BY events.epoch DESC, events.tx_id DESC, events.position DESC
LIMIT 1

-- name: dependent_views
-- Plain views that read the table directly: rebound to the rebuilt table at the swap.
SELECT DISTINCT n.nspname, v.relname, pg_get_viewdef(v.oid)
FROM pg_depend d
JOIN pg_rewrite r ON r.oid = d.objid
JOIN pg_class v ON v.oid = r.ev_class
JOIN pg_namespace n ON n.oid = v.relnamespace
WHERE d.classid = 'pg_rewrite'::regclass
  AND d.refclassid = 'pg_class'::regclass
  AND d.refobjid = %(table)s::regclass
  AND v.oid <> %(table)s::regclass
  AND v.relkind = 'v'

-- name: indexes
SELECT i.relname, pg_get_indexdef(i.oid)
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
WHERE x.indrelid = %(table)s::regclass

-- name: grants
-- The table's privileges as (grantee, privilege); grantee NULL means PUBLIC.
SELECT r.rolname, a.privilege_type
FROM pg_class c, aclexplode(c.relacl) a
LEFT JOIN pg_roles r ON r.oid = a.grantee
WHERE c.oid = %(table)s::regclass

-- name: set_lock_timeout
-- For the rest of the transaction (or savepoint); returns the setting it replaces.
SELECT current_setting('lock_timeout'), set_config('lock_timeout', %(timeout)s, true)

-- name: storage_parameters
SELECT reloptions FROM pg_class WHERE oid = %(table)s::regclass
