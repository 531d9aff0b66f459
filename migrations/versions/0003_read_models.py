"""Read models: shares, response tasks (the inbox), follow-through views, integrity.

These tables and views are a documented read API for dashboards.

Revision ID: 0003_read_models
Revises: 0002_workspaces_and_schedule
Create Date: 2026-11-25
"""

from __future__ import annotations

from migrations.helpers import run

revision = "0003_read_models"
down_revision = "0002_workspaces_and_schedule"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run("""
    CREATE TABLE projection_checkpoints (
        name text PRIMARY KEY,
        epoch integer NOT NULL DEFAULT 0,
        tx_id xid8 NOT NULL DEFAULT '0'::xid8,
        position bigint NOT NULL DEFAULT 0,
        events_applied bigint NOT NULL DEFAULT 0,
        updated_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE rm_shares (
        share_id uuid PRIMARY KEY,
        workspace_id text NOT NULL,
        account_id uuid NOT NULL,
        account_name text NOT NULL,
        channel text NOT NULL,
        text text NOT NULL,
        status text NOT NULL,
        scheduled_at timestamptz NOT NULL,
        planned_at timestamptz NOT NULL,
        sent_at timestamptz,
        lateness_ms bigint,
        attempts integer NOT NULL DEFAULT 0,
        next_attempt_at timestamptz,
        last_error text,
        external_id text,
        url text,
        tasks_recorded boolean NOT NULL DEFAULT false,
        sent_without_tasks boolean NOT NULL DEFAULT false,
        replies_received integer NOT NULL DEFAULT 0,
        version integer NOT NULL,
        updated_at timestamptz NOT NULL
    );
    CREATE INDEX rm_shares_workspace_idx ON rm_shares (workspace_id, scheduled_at);

    CREATE TABLE rm_response_tasks (
        task_id uuid PRIMARY KEY,
        share_id uuid NOT NULL,
        workspace_id text NOT NULL,
        account_id uuid NOT NULL,
        account_name text NOT NULL,
        channel text NOT NULL,
        kind text NOT NULL,
        owner text NOT NULL,
        after_seconds integer NOT NULL,
        due_at timestamptz,
        status text NOT NULL CHECK (status IN ('pending', 'open', 'done', 'cancelled')),
        completed_at timestamptz,
        completed_by text,
        recorded_at timestamptz NOT NULL
    );
    CREATE INDEX rm_response_tasks_share_idx ON rm_response_tasks (share_id);
    CREATE INDEX rm_response_tasks_due_idx ON rm_response_tasks (workspace_id, due_at);

    -- The inbox with time applied: a task is open until its due time, then overdue.
    CREATE VIEW response_inbox AS
    SELECT t.*,
           CASE WHEN t.status = 'open' AND t.due_at <= now() THEN 'overdue' ELSE t.status END AS state,
           CASE WHEN t.status = 'done' THEN t.completed_at <= t.due_at END AS done_on_time
    FROM rm_response_tasks t;

    -- Follow-through per workspace, account, channel, owner and day of the due time.
    CREATE VIEW followthrough_daily AS
    SELECT workspace_id, account_id, account_name, channel, owner,
           (date_trunc('day', due_at AT TIME ZONE 'UTC'))::date AS day,
           count(*) FILTER (WHERE state = 'open') AS open,
           count(*) FILTER (WHERE state = 'done' AND done_on_time) AS done_on_time,
           count(*) FILTER (WHERE state = 'done' AND NOT done_on_time) AS done_late,
           count(*) FILTER (WHERE state = 'overdue') AS overdue,
           (count(*) FILTER (WHERE state = 'done' AND done_on_time))::float8
             / nullif(count(*) FILTER (WHERE state IN ('done', 'overdue')), 0) AS rate
    FROM response_inbox
    WHERE state IN ('open', 'done', 'overdue')
    GROUP BY 1, 2, 3, 4, 5, 6;

    -- Must always be 0: shares sent without their response tasks recorded first.
    CREATE VIEW integrity AS
    SELECT count(*) FILTER (WHERE sent_without_tasks) AS sent_shares_without_response_tasks
    FROM rm_shares;

    DO $$
    BEGIN
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'followthrough_writer') THEN
            GRANT SELECT, INSERT, UPDATE, DELETE
                ON projection_checkpoints, rm_shares, rm_response_tasks TO followthrough_writer;
            GRANT SELECT ON response_inbox, followthrough_daily, integrity TO followthrough_writer;
        END IF;
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'followthrough_reader') THEN
            GRANT SELECT ON projection_checkpoints, rm_shares, rm_response_tasks,
                            response_inbox, followthrough_daily, integrity TO followthrough_reader;
        END IF;
    END $$;
    """)


def downgrade() -> None:
    run("""
    DROP VIEW integrity;
    DROP VIEW followthrough_daily;
    DROP VIEW response_inbox;
    DROP TABLE rm_response_tasks;
    DROP TABLE rm_shares;
    DROP TABLE projection_checkpoints;
    """)
