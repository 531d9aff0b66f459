"""Replies: the people replies were assigned to, by index (``rm_replies_assignee_idx``).

The replies page lists the workspace's people for its Assign form and filter: task owners,
token owners and everyone a reply was ever assigned to. The last read every reply of the
workspace (a sequential scan, 8 ms over 20,000 replies on every page view; ``bench/desk.py``
prints its plan). Partial: only assigned replies are in it, a small part of them.

Revision ID: 0028_replies_assignee_idx
Revises: 0027_approval
Create Date: 2026-12-06
"""

from __future__ import annotations

from migrations.helpers import run

revision = "0028_replies_assignee_idx"
down_revision = "0027_approval"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run("""
    CREATE INDEX rm_replies_assignee_idx ON rm_replies (workspace_id, assignee)
        WHERE assignee IS NOT NULL;
    """)


def downgrade() -> None:
    run("DROP INDEX rm_replies_assignee_idx;")
