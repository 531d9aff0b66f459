"""Call leases on the schedule, and duplicate posts in the shares read model.

``schedule.holder_attempt``: the attempt that holds a share's lease for a network call
(0: handed out, no call yet). A worker claims the lease before an attempt and extends it
right before every request that may publish; another attempt may start only once the
lease has run out, when no earlier request can still be in flight. The dispatcher resets
it when it hands a row out again (the lease ran out).

``rm_shares.duplicate_posts``: extra posts an attempt made for a share already sent
(``DuplicatePosted``), for the share view, dashboards and /metrics; ``duplicates_removed``
those deleted again through the channel.

Revision ID: 0007_call_leases_and_duplicates
Revises: 0006_first_write_guard_when
Create Date: 2026-11-30
"""

from __future__ import annotations

from migrations.helpers import run

revision = "0007_call_leases_and_duplicates"
down_revision = "0006_first_write_guard_when"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run("""
    ALTER TABLE schedule ADD COLUMN holder_attempt integer NOT NULL DEFAULT 0;
    ALTER TABLE rm_shares ADD COLUMN duplicate_posts integer NOT NULL DEFAULT 0;
    ALTER TABLE rm_shares ADD COLUMN duplicates_removed integer NOT NULL DEFAULT 0;
    """)


def downgrade() -> None:
    run("""
    ALTER TABLE rm_shares DROP COLUMN duplicates_removed;
    ALTER TABLE rm_shares DROP COLUMN duplicate_posts;
    ALTER TABLE schedule DROP COLUMN holder_attempt;
    """)
