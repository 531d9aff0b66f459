"""The event log: append-only, gap-safe ordering by (epoch, transaction id, position).

Revision ID: 0001_event_log
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from migrations.helpers import run

revision = "0001_event_log"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    run("""
    -- Group roles (cluster-wide, created once): the application logs in as a member of
    -- followthrough_writer, dashboards as a member of followthrough_reader; the role
    -- that runs migrations owns the tables. Skipped quietly where we may not create roles.
    DO $$
    BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'followthrough_writer') THEN
            CREATE ROLE followthrough_writer NOLOGIN;
        END IF;
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'followthrough_reader') THEN
            CREATE ROLE followthrough_reader NOLOGIN;
        END IF;
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE NOTICE 'cannot create roles here; create followthrough_writer and followthrough_reader by hand';
    END $$;

    -- The log epoch: bumped after a restore or logical migration, which restarts
    -- transaction ids, so new events still sort after every existing checkpoint.
    CREATE TABLE log_epoch (
        singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        epoch integer NOT NULL DEFAULT 1 CHECK (epoch > 0),
        bumped_at timestamptz NOT NULL DEFAULT now(),
        reason text NOT NULL DEFAULT 'created'
    );
    INSERT INTO log_epoch DEFAULT VALUES;

    CREATE FUNCTION current_log_epoch() RETURNS integer
        LANGUAGE sql STABLE AS $$ SELECT epoch FROM log_epoch $$;

    CREATE TABLE events (
        position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        event_id uuid NOT NULL,
        stream_id text NOT NULL,
        stream_version integer NOT NULL CHECK (stream_version > 0),
        type text NOT NULL,
        schema_version smallint NOT NULL CHECK (schema_version > 0),
        data jsonb NOT NULL,
        metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
        workspace_id text NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now(),
        epoch integer NOT NULL DEFAULT current_log_epoch(),
        tx_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
        CONSTRAINT events_event_id_key UNIQUE (event_id),
        CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version)
    );
    CREATE INDEX events_log_order_idx ON events (epoch, tx_id, position);

    COMMENT ON TABLE events IS
        'Append-only event log. Read the whole log in (epoch, tx_id, position) order, '
        'only below pg_snapshot_xmin(pg_current_snapshot()).';

    -- Append-only, by the database: every UPDATE, DELETE and TRUNCATE fails, whoever
    -- runs it. ENABLE ALWAYS keeps the triggers firing under
    -- session_replication_role = replica, which would otherwise skip them.
    CREATE FUNCTION events_refuse_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'events is append-only: % refused', TG_OP
            USING ERRCODE = 'FT002',
                  HINT = 'Correct the record by appending a new event.';
    END $$;
    CREATE TRIGGER events_append_only
        BEFORE UPDATE OR DELETE OR TRUNCATE ON events
        FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();
    ALTER TABLE events ENABLE ALWAYS TRIGGER events_append_only;

    -- An event insert must be the first write of its transaction: the transaction id
    -- is assigned at the first write, and a transaction that wrote something else
    -- first could sort a stream's version n+1 before version n in the log order.
    CREATE FUNCTION events_guard_first_write() RETURNS trigger
        LANGUAGE plpgsql AS $$
    BEGIN
        IF pg_current_xact_id_if_assigned() IS NOT NULL
           AND coalesce(current_setting('followthrough.appending', true), '') <> 'on' THEN
            RAISE EXCEPTION 'an event append must be the first write of its transaction'
                USING ERRCODE = 'FT001',
                      HINT = 'Append the events first, then write the other tables.';
        END IF;
        PERFORM set_config('followthrough.appending', 'on', true);
        RETURN NULL;
    END $$;
    CREATE TRIGGER events_first_write
        BEFORE INSERT ON events
        FOR EACH STATEMENT EXECUTE FUNCTION events_guard_first_write();
    ALTER TABLE events ENABLE ALWAYS TRIGGER events_first_write;

    REVOKE ALL ON events, log_epoch FROM PUBLIC;
    DO $$
    BEGIN
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'followthrough_writer') THEN
            GRANT SELECT, INSERT ON events TO followthrough_writer;
            GRANT SELECT ON log_epoch TO followthrough_writer;
        END IF;
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'followthrough_reader') THEN
            GRANT SELECT ON events, log_epoch TO followthrough_reader;
        END IF;
    END $$;
    """)


def downgrade() -> None:
    run("""
    DROP TABLE events;
    DROP FUNCTION events_guard_first_write();
    DROP FUNCTION events_refuse_change();
    DROP FUNCTION current_log_epoch();
    DROP TABLE log_epoch;
    """)
