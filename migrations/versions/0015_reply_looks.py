"""Every look at a share's thread, beside the log: ``reply_looks``.

A look at the thread under a sent share is an event (``RepliesLooked``) only when it
changed something: new replies, the account's own answers found, tasks it settled, or its
error state (appearing, clearing, changing; a channel that cannot read replies). Every
look, recorded or not, is counted here, one row per share, written by the worker in the
transaction that moves the share's ``check_replies`` schedule row: how many looks, the
last, the next (NULL: no more looks), the empty looks in a row (the cadence's back-off)
and the last look's error. Not a projection of the log: ``projections rebuild`` leaves it
(and the schedule) as it is. A share looked at before this revision has no row until its
next look, which counts on from its recorded looks.

Revision ID: 0015_reply_looks
Revises: 0014_readside_fillfactor
Create Date: 2026-12-06
"""

from __future__ import annotations

from migrations.helpers import run

revision = "0015_reply_looks"
down_revision = "0014_readside_fillfactor"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run("""
    CREATE TABLE reply_looks (
        share_id uuid PRIMARY KEY,
        workspace_id text NOT NULL,
        looks integer NOT NULL CHECK (looks >= 1),
        last_look_at timestamptz NOT NULL,
        next_look_at timestamptz,
        empty_looks integer NOT NULL CHECK (empty_looks >= 0),
        last_error text,
        updated_at timestamptz NOT NULL DEFAULT now()
    ) WITH (fillfactor = 70);

    DO $$
    BEGIN
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'followthrough_writer') THEN
            GRANT SELECT, INSERT, UPDATE, DELETE ON reply_looks TO followthrough_writer;
        END IF;
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'followthrough_reader') THEN
            GRANT SELECT ON reply_looks TO followthrough_reader;
        END IF;
    END $$;
    """)


def downgrade() -> None:
    run("DROP TABLE reply_looks;")
