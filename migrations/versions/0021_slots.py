"""Queue slots: which of an account's slots a share holds.

A share planned with ``"scheduled_at": "next_slot"`` claims its slot in the planning
transaction, after its ``SharePlanned`` (``slot: true``) and beside its schedule rows; the
claim goes when the share is cancelled or rescheduled to another time, in the transaction
of that event. The primary key makes two shares on one slot impossible, whatever the code
above it does; the table is an inline projection of the share streams (like ``schedule``),
which ``projections rebuild`` leaves alone.

Revision ID: 0021_slots
Revises: 0020_reply_sla_business
Create Date: 2026-12-06
"""

from __future__ import annotations

from migrations.helpers import run

revision = "0021_slots"
down_revision = "0020_reply_sla_business"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run("""
    CREATE TABLE slot_claims (
        account_id uuid NOT NULL,
        slot_at timestamptz NOT NULL,
        workspace_id text NOT NULL,
        share_id uuid NOT NULL,
        claimed_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (account_id, slot_at),
        CONSTRAINT slot_claims_share_key UNIQUE (share_id)
    );

    DO $$
    BEGIN
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'followthrough_writer') THEN
            GRANT SELECT, INSERT, DELETE ON slot_claims TO followthrough_writer;
        END IF;
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'followthrough_reader') THEN
            GRANT SELECT ON slot_claims TO followthrough_reader;
        END IF;
    END $$;
    """)


def downgrade() -> None:
    run("DROP TABLE slot_claims;")
