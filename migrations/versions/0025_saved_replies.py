"""Saved replies: a workspace's ready answers (``POST /v1/saved-replies``), configuration
like its tokens and webhook endpoints (a table, not events). A name is unique per workspace.

Revision ID: 0025_saved_replies
Revises: 0024_replies_unanswered_idx
Create Date: 2026-12-06
"""

from __future__ import annotations

from migrations.helpers import run

revision = "0025_saved_replies"
down_revision = "0024_replies_unanswered_idx"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run("""
    CREATE TABLE saved_replies (
        id uuid PRIMARY KEY,
        workspace_id text NOT NULL REFERENCES workspaces (id),
        name text NOT NULL,
        text text NOT NULL,
        created_by text,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT saved_replies_name_key UNIQUE (workspace_id, name)
    );
    COMMENT ON TABLE saved_replies IS
        'ready answers of a workspace; {author} and {account} are filled when one is used';

    DO $$
    BEGIN
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'followthrough_writer') THEN
            GRANT SELECT, INSERT, DELETE ON saved_replies TO followthrough_writer;
        END IF;
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'followthrough_reader') THEN
            GRANT SELECT ON saved_replies TO followthrough_reader;
        END IF;
    END $$;
    """)


def downgrade() -> None:
    run("DROP TABLE saved_replies;")
