"""Webhooks out: endpoints per workspace, their outbox of deliveries, and each attempt.

``webhook_endpoints``: a workspace's receivers (url, the event types it asked for, its
signing secret, ``enabled`` / ``disabled`` / ``deleted``, and its run of failures).
The secret is never granted to ``followthrough_reader``: dashboards see the endpoints
through column grants that leave it out.

``webhook_deliveries``: the outbox, written by the ``webhooks`` projection in the same
transaction as its checkpoint (and by the overdue-task sweep). One row per (endpoint,
event): its id is the stable ``webhook-id`` receivers de-duplicate on. A row is due at
``due_at``; a deliverer claims it with a lease (``lease_until``) so a dead deliverer's
row comes back. Its own table rather than a new kind in ``schedule``: deliveries are
many per event, carry their payload and attempts, and are retried on their own
backoff, none of which the share schedule has.

While an endpoint fails (``consecutive_failures`` > 0) it is probed with one delivery at a
time, after a pause that grows with its run of failures (``paused_until``): the other
events wait for it to answer instead of each spending its attempts on a receiver that is
down. Its first success lets them all go.

``webhook_attempts``: every attempt's answer, for ``GET /v1/webhooks/{id}/deliveries``.

Revision ID: 0008_webhooks_out
Revises: 0007_call_leases_and_duplicates
Create Date: 2026-11-30
"""

from __future__ import annotations

from migrations.helpers import run

revision = "0008_webhooks_out"
down_revision = "0007_call_leases_and_duplicates"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run("""
    CREATE TABLE webhook_endpoints (
        id uuid PRIMARY KEY,
        workspace_id text NOT NULL REFERENCES workspaces (id),
        url text NOT NULL,
        events text[] NOT NULL CHECK (cardinality(events) > 0),
        description text NOT NULL DEFAULT '',
        secret text NOT NULL,
        state text NOT NULL DEFAULT 'enabled' CHECK (state IN ('enabled', 'disabled', 'deleted')),
        disabled_reason text,
        disabled_at timestamptz,
        deleted_at timestamptz,
        consecutive_failures integer NOT NULL DEFAULT 0,
        failing_since timestamptz,
        paused_until timestamptz,
        created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX webhook_endpoints_workspace_idx ON webhook_endpoints (workspace_id) WHERE state <> 'deleted';

    CREATE TABLE webhook_deliveries (
        id uuid PRIMARY KEY,
        endpoint_id uuid NOT NULL REFERENCES webhook_endpoints (id),
        workspace_id text NOT NULL,
        event_type text NOT NULL,
        event_key text NOT NULL,
        payload jsonb NOT NULL,
        status text NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending', 'delivered', 'failed', 'cancelled')),
        attempts integer NOT NULL DEFAULT 0,
        due_at timestamptz NOT NULL,
        lease_until timestamptz,
        last_status integer,
        last_error text,
        last_attempt_at timestamptz,
        delivered_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (endpoint_id, event_key)
    );
    CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (due_at) WHERE status = 'pending';
    CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, created_at DESC);

    CREATE TABLE webhook_attempts (
        delivery_id uuid NOT NULL REFERENCES webhook_deliveries (id),
        attempt integer NOT NULL,
        attempted_at timestamptz NOT NULL,
        http_status integer,
        error text,
        duration_ms integer NOT NULL,
        PRIMARY KEY (delivery_id, attempt)
    );

    DO $$
    BEGIN
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'followthrough_writer') THEN
            GRANT SELECT, INSERT, UPDATE, DELETE
                ON webhook_endpoints, webhook_deliveries, webhook_attempts TO followthrough_writer;
        END IF;
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'followthrough_reader') THEN
            GRANT SELECT (id, workspace_id, url, events, description, state, disabled_reason, disabled_at,
                          deleted_at, consecutive_failures, failing_since, paused_until, created_at)
                ON webhook_endpoints TO followthrough_reader;
            GRANT SELECT ON webhook_deliveries, webhook_attempts TO followthrough_reader;
        END IF;
    END $$;
    """)


def downgrade() -> None:
    run("""
    DROP TABLE webhook_attempts;
    DROP TABLE webhook_deliveries;
    DROP TABLE webhook_endpoints;
    """)
