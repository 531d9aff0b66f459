"""The owner of a share's current task, defined once: ``share_owner(share_id)``.

The replies list, the replies page, the reply figures and the SLA webhooks each picked it
with the same subquery (the first task not done nor cancelled by due time, the longest step
first when due together, else the last one). The workspace-wide filters keep a set-based
form of the same order (``DISTINCT ON``, in ``replies.sql``), and views built from a share's
stream its Python twin (``scheduler.api.replies.current_owner``).

Revision ID: 0022_share_owner
Revises: 0021_slots
Create Date: 2026-12-06
"""

from __future__ import annotations

from migrations.helpers import run

revision = "0022_share_owner"
down_revision = "0021_slots"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run("""
    -- STABLE, reading rm_response_tasks by name when called (a rebuild's swap of the table
    -- needs no rebinding), as reply_sla_due_at does.
    CREATE FUNCTION share_owner(share_id uuid)
    RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
        SELECT t.owner
        FROM rm_response_tasks t
        WHERE t.share_id = share_owner.share_id
        ORDER BY (t.status IN ('done', 'cancelled')), t.due_at NULLS LAST, t.after_seconds DESC
        LIMIT 1
    $$;

    COMMENT ON FUNCTION share_owner(uuid) IS
        'The owner of the share''s current task: the first not done nor cancelled by due time, else its last';
    """)


def downgrade() -> None:
    run("DROP FUNCTION share_owner(uuid);")
