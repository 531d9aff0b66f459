"""Let the application and dashboard roles read the schema version.

Every role checks ``alembic_version`` at start-up (it waits for `followthrough migrate`
rather than migrating itself); a member of followthrough_writer could not read it.

Revision ID: 0004_grant_schema_version
Revises: 0003_read_models
Create Date: 2026-11-25
"""

from __future__ import annotations

from migrations.helpers import run

revision = "0004_grant_schema_version"
down_revision = "0003_read_models"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run("""
    DO $$
    BEGIN
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'followthrough_writer') THEN
            GRANT SELECT ON alembic_version TO followthrough_writer;
        END IF;
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'followthrough_reader') THEN
            GRANT SELECT ON alembic_version TO followthrough_reader;
        END IF;
    END $$;
    """)


def downgrade() -> None:
    run("""
    DO $$
    BEGIN
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'followthrough_writer') THEN
            REVOKE SELECT ON alembic_version FROM followthrough_writer;
        END IF;
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'followthrough_reader') THEN
            REVOKE SELECT ON alembic_version FROM followthrough_reader;
        END IF;
    END $$;
    """)
