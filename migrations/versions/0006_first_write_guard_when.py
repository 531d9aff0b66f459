"""The first-write guard fires only in a transaction that already holds an id.

The common append is a statement of its own (autocommit) or the first write of its
unit of work: no transaction id is assigned yet when the statement starts, so the
guard has nothing to check. A WHEN condition on the trigger makes the executor skip
the PL/pgSQL call there, which was most of the guard's cost per append. The function
is unchanged and still checks for itself.

Revision ID: 0006_first_write_guard_when
Revises: 0005_lighter_first_write_guard
Create Date: 2026-11-25
"""

from __future__ import annotations

from migrations.helpers import run

revision = "0006_first_write_guard_when"
down_revision = "0005_lighter_first_write_guard"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run("""
    DROP TRIGGER events_first_write ON events;
    CREATE TRIGGER events_first_write
        BEFORE INSERT ON events
        FOR EACH STATEMENT
        WHEN (pg_current_xact_id_if_assigned() IS NOT NULL)
        EXECUTE FUNCTION events_guard_first_write();
    ALTER TABLE events ENABLE ALWAYS TRIGGER events_first_write;
    """)


def downgrade() -> None:
    run("""
    DROP TRIGGER events_first_write ON events;
    CREATE TRIGGER events_first_write
        BEFORE INSERT ON events
        FOR EACH STATEMENT EXECUTE FUNCTION events_guard_first_write();
    ALTER TABLE events ENABLE ALWAYS TRIGGER events_first_write;
    """)
