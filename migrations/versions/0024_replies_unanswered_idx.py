"""Replies: the workspace's unanswered replies newest first by index (``rm_replies_unanswered_idx``).

The replies page ranks the unanswered first (breached, then at risk, then the newest by the
network's time). It read every unanswered reply of the workspace, with its due time, to
rank them (75 of 83 ms over 20,000 replies; ``bench/desk.py``). With this index it reads the
breached newest first and stops at the page's count, and the not yet due by the ranges
that can hold them (received within the reply window; under a task still to come). Partial:
a reply leaves it when answered or dismissed, as it changes its row in the inbox index.

Revision ID: 0024_replies_unanswered_idx
Revises: 0023_media
Create Date: 2026-12-06
"""

from __future__ import annotations

from migrations.helpers import run

revision = "0024_replies_unanswered_idx"
down_revision = "0023_media"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run("""
    CREATE INDEX rm_replies_unanswered_idx ON rm_replies (workspace_id, received_at DESC, id DESC)
        WHERE state = 'unanswered';
    """)


def downgrade() -> None:
    run("DROP INDEX rm_replies_unanswered_idx;")
