"""Replies: the inbox read model, answers on the schedule, the budget of looks.

``rm_replies``: one row per reply collected under a sent share (its id derived from the
share and the network's reply id), with its answer or dismissal: the inbox of
``GET /v1/replies`` and a documented read API for dashboards. ``rm_shares`` gains the
share's answered count and its looks (last, next, and whether replies are collected).

``schedule`` gains the kind ``answer`` (a share's answers waiting to be published).
``reply_look_budget`` counts each account's looks per hour (its ``budget_per_hour``).
Shares sent in the week before this revision get a first look at once.

Revision ID: 0009_replies_inbox
Revises: 0008_webhooks_out
Create Date: 2026-11-30
"""

from __future__ import annotations

from migrations.helpers import run

revision = "0009_replies_inbox"
down_revision = "0008_webhooks_out"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run("""
    ALTER TABLE schedule DROP CONSTRAINT schedule_kind_check;
    ALTER TABLE schedule ADD CONSTRAINT schedule_kind_check
        CHECK (kind IN ('publish', 'check_replies', 'answer'));

    CREATE TABLE reply_look_budget (
        account_id uuid NOT NULL,
        hour timestamptz NOT NULL,
        looks integer NOT NULL,
        PRIMARY KEY (account_id, hour)
    );

    ALTER TABLE rm_shares ADD COLUMN replies_answered integer NOT NULL DEFAULT 0;
    ALTER TABLE rm_shares ADD COLUMN last_look_at timestamptz;
    ALTER TABLE rm_shares ADD COLUMN next_look_at timestamptz;
    ALTER TABLE rm_shares ADD COLUMN replies_collected boolean;

    CREATE TABLE rm_replies (
        id uuid PRIMARY KEY,
        share_id uuid NOT NULL,
        workspace_id text NOT NULL,
        account_id uuid NOT NULL,
        account_name text NOT NULL,
        channel text NOT NULL,
        network_reply_id text NOT NULL,
        parent_id text,
        author text NOT NULL,
        text text NOT NULL,
        url text,
        received_at timestamptz NOT NULL,
        collected_at timestamptz NOT NULL,
        state text NOT NULL CHECK (state IN ('unanswered', 'answered', 'dismissed')),
        answer_text text,
        answer_status text,
        answer_error text,
        answer_url text,
        answer_external_id text,
        answered_natively boolean NOT NULL DEFAULT false,
        answered_at timestamptz,
        dismissed_at timestamptz,
        dismiss_reason text,
        handled_by text,
        CONSTRAINT rm_replies_share_reply_key UNIQUE (share_id, network_reply_id)
    );
    CREATE INDEX rm_replies_inbox_idx ON rm_replies (workspace_id, state, collected_at DESC, id DESC);

    -- Shares sent in the last week, before replies were collected: a first look now.
    INSERT INTO schedule (workspace_id, kind, share_id, due_at)
    SELECT workspace_id, 'check_replies', share_id, now()
    FROM rm_shares
    WHERE status = 'sent' AND sent_at > now() - interval '7 days'
    ON CONFLICT (kind, share_id) DO NOTHING;

    DO $$
    BEGIN
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'followthrough_writer') THEN
            GRANT SELECT, INSERT, UPDATE, DELETE ON rm_replies, reply_look_budget TO followthrough_writer;
        END IF;
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'followthrough_reader') THEN
            GRANT SELECT ON rm_replies TO followthrough_reader;
        END IF;
    END $$;
    """)


def downgrade() -> None:
    run("""
    DROP TABLE rm_replies;
    ALTER TABLE rm_shares DROP COLUMN replies_collected;
    ALTER TABLE rm_shares DROP COLUMN next_look_at;
    ALTER TABLE rm_shares DROP COLUMN last_look_at;
    ALTER TABLE rm_shares DROP COLUMN replies_answered;
    DROP TABLE reply_look_budget;
    DELETE FROM schedule WHERE kind = 'answer';
    ALTER TABLE schedule DROP CONSTRAINT schedule_kind_check;
    ALTER TABLE schedule ADD CONSTRAINT schedule_kind_check CHECK (kind IN ('publish', 'check_replies'));
    """)
