"""A lighter first-write guard: no per-append set_config.

The common append is the first (and only) write of its transaction, so the guard
now costs one function call there. Only when the transaction already holds an id
does it look for events this transaction appended (index on epoch, tx_id): a
second append in the same unit of work is allowed, any other earlier write refused.

Revision ID: 0005_lighter_first_write_guard
Revises: 0004_grant_schema_version
Create Date: 2026-11-25
"""

from __future__ import annotations

from migrations.helpers import run

revision = "0005_lighter_first_write_guard"
down_revision = "0004_grant_schema_version"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run("""
    CREATE OR REPLACE FUNCTION events_guard_first_write() RETURNS trigger
        LANGUAGE plpgsql AS $$
    BEGIN
        -- Nested IFs, not AND: pg_current_xact_id() assigns an id when called, so it must
        -- run only once the transaction has one.
        IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
            IF NOT EXISTS (SELECT 1 FROM events
                           WHERE epoch = current_log_epoch() AND tx_id = pg_current_xact_id()) THEN
                RAISE EXCEPTION 'an event append must be the first write of its transaction'
                    USING ERRCODE = 'FT001',
                          HINT = 'Append the events first, then write the other tables.';
            END IF;
        END IF;
        RETURN NULL;
    END $$;
    """)


def downgrade() -> None:
    run("""
    CREATE OR REPLACE FUNCTION events_guard_first_write() RETURNS trigger
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
    """)
