"""Token lifecycle (expiry, last use) and an index of response tasks to their shares.

``api_tokens.expires_at``: a token past it no longer authenticates (NULL: never expires).
``api_tokens.last_used_at``: refreshed at most once a minute per token, so authentication
stays a read on the hot path.

``share_tasks``: task id -> share, written in the plan's own transaction (the share's unit
of work). Task ids are fixed when a share is planned, so completing a task of a share not
sent yet finds its share (409 with the reason) instead of scanning the log; the read model
``rm_response_tasks`` lags the log and cannot answer that alone. Backfilled here from every
``SharePlanned`` (task ids are uuid5 of the share id and the step's index, as in
``scheduler.domain.plans.task_id``; copied, since a migration must not change when code does).

Revision ID: 0010_api_hardening_tokens
Revises: 0009_replies_inbox
Create Date: 2026-11-30
"""

from __future__ import annotations

from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from alembic import op

from migrations.helpers import run

revision = "0010_api_hardening_tokens"
down_revision = "0009_replies_inbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run("""
    ALTER TABLE api_tokens ADD COLUMN expires_at timestamptz;
    ALTER TABLE api_tokens ADD COLUMN last_used_at timestamptz;
    CREATE INDEX api_tokens_workspace_idx ON api_tokens (workspace_id, created_at);

    CREATE TABLE share_tasks (
        task_id uuid PRIMARY KEY,
        share_id uuid NOT NULL,
        workspace_id text NOT NULL
    );
    COMMENT ON TABLE share_tasks IS 'response task id -> share, written with the share''s plan';

    DO $$
    BEGIN
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'followthrough_writer') THEN
            GRANT SELECT, INSERT ON share_tasks TO followthrough_writer;
        END IF;
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'followthrough_reader') THEN
            GRANT SELECT ON share_tasks TO followthrough_reader;
        END IF;
    END $$;
    """)
    _backfill_share_tasks()


def _backfill_share_tasks() -> None:
    driver: Any = op.get_bind().connection.driver_connection
    rows = driver.execute(
        "SELECT stream_id, workspace_id, jsonb_array_length(data->'response_plan') FROM events"
        " WHERE type = 'SharePlanned'"
    ).fetchall()
    with driver.cursor() as cur:
        cur.executemany(
            "INSERT INTO share_tasks (task_id, share_id, workspace_id) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
            [
                (uuid5(NAMESPACE_URL, f"followthrough:share:{share_id}:task:{i}"), share_id, workspace_id)
                for stream_id, workspace_id, steps in rows
                for share_id in [UUID(str(stream_id).removeprefix("share-"))]
                for i in range(steps or 0)
            ],
        )


def downgrade() -> None:
    run("""
    DROP TABLE share_tasks;
    DROP INDEX api_tokens_workspace_idx;
    ALTER TABLE api_tokens DROP COLUMN last_used_at;
    ALTER TABLE api_tokens DROP COLUMN expires_at;
    """)
