"""Workspaces, hashed API tokens, accounts, idempotency keys, and the schedule.

The schedule is an inline projection of the log: written in the same transaction
as the events that change it (after them: the event insert is the first write),
so it is never behind the log.

Revision ID: 0002_workspaces_and_schedule
Revises: 0001_event_log
Create Date: 2026-11-25
"""

from __future__ import annotations

from migrations.helpers import run

revision = "0002_workspaces_and_schedule"
down_revision = "0001_event_log"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run("""
    CREATE TABLE workspaces (
        id text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
        created_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE api_tokens (
        id uuid PRIMARY KEY,
        workspace_id text NOT NULL REFERENCES workspaces (id),
        scope text NOT NULL CHECK (scope IN ('read', 'write')),
        token_hash bytea NOT NULL UNIQUE,
        label text NOT NULL DEFAULT '',
        created_at timestamptz NOT NULL DEFAULT now(),
        revoked_at timestamptz
    );
    COMMENT ON COLUMN api_tokens.token_hash IS 'sha256 of the token; the token itself is never stored';

    CREATE TABLE accounts (
        id uuid PRIMARY KEY,
        workspace_id text NOT NULL REFERENCES workspaces (id),
        name text NOT NULL,
        channel text NOT NULL,
        config jsonb NOT NULL DEFAULT '{}'::jsonb,
        default_response_plan jsonb,
        late_policy text NOT NULL DEFAULT 'send' CHECK (late_policy IN ('send', 'hold')),
        max_lateness_seconds integer CHECK (max_lateness_seconds > 0),
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT accounts_workspace_name_key UNIQUE (workspace_id, name)
    );

    CREATE TABLE idempotency_keys (
        workspace_id text NOT NULL,
        key text NOT NULL,
        request_hash text NOT NULL,
        status_code integer NOT NULL,
        response jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (workspace_id, key)
    );

    CREATE TABLE schedule (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        workspace_id text NOT NULL,
        kind text NOT NULL CHECK (kind IN ('publish', 'check_replies')),
        share_id uuid NOT NULL,
        due_at timestamptz NOT NULL,
        dispatched_at timestamptz,
        lease_until timestamptz,
        dispatch_count integer NOT NULL DEFAULT 0,
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT schedule_kind_share_key UNIQUE (kind, share_id)
    );
    -- Due work not yet handed out, and work handed out whose lease runs out.
    CREATE INDEX schedule_due_idx ON schedule (due_at) WHERE lease_until IS NULL;
    CREATE INDEX schedule_lease_idx ON schedule (lease_until) WHERE lease_until IS NOT NULL;

    DO $$
    BEGIN
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'followthrough_writer') THEN
            GRANT SELECT, INSERT, UPDATE, DELETE
                ON workspaces, api_tokens, accounts, idempotency_keys, schedule
                TO followthrough_writer;
        END IF;
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'followthrough_reader') THEN
            GRANT SELECT ON workspaces, accounts, schedule TO followthrough_reader;
        END IF;
    END $$;
    """)


def downgrade() -> None:
    run("""
    DROP TABLE schedule;
    DROP TABLE idempotency_keys;
    DROP TABLE accounts;
    DROP TABLE api_tokens;
    DROP TABLE workspaces;
    """)
