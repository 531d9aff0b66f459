"""Posts: one text to several accounts, a share per account.

- ``post_shares``: post -> its shares, in the request's order, written in the post's own
  transaction (the shares' unit of work, like ``share_tasks``), so ``GET /v1/posts/{id}``
  finds every share at once, without waiting for the read models. An inline index of the
  shares' ``SharePlanned.post_id``, which ``projections rebuild`` leaves alone.
- ``rm_shares.post_id``: the post a share belongs to (NULL: planned alone), projected from
  ``SharePlanned`` like every column of the table.
- ``engagement_daily`` gains ``post_id`` (its last column; rows of one day split by post,
  every sum unchanged) so that ``GET /v1/followthrough?by=post`` sums the one formula.

Revision ID: 0026_posts
Revises: 0025_saved_replies
Create Date: 2026-12-06
"""

from __future__ import annotations

from migrations.helpers import run

revision = "0026_posts"
down_revision = "0025_saved_replies"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run("""
    CREATE TABLE post_shares (
        post_id uuid NOT NULL,
        position integer NOT NULL,
        share_id uuid NOT NULL UNIQUE,
        workspace_id text NOT NULL,
        PRIMARY KEY (post_id, position)
    );
    COMMENT ON TABLE post_shares IS 'post -> its shares in order, written with the post''s plan';

    ALTER TABLE rm_shares ADD COLUMN post_id uuid;
    CREATE INDEX rm_shares_post_idx ON rm_shares (post_id) WHERE post_id IS NOT NULL;

    CREATE OR REPLACE VIEW engagement_daily AS
    SELECT workspace_id, account_id, account_name, channel,
           (date_trunc('day', sent_at AT TIME ZONE 'UTC'))::date AS day,
           count(*) AS shares_read,
           sum(engagement_replies)::bigint AS replies,
           sum(engagement_reposts)::bigint AS reposts,
           sum(engagement_likes)::bigint AS likes,
           coalesce(sum(engagement_quotes), 0)::bigint AS quotes,
           post_id
    FROM rm_shares
    WHERE sent_at IS NOT NULL AND engagement_at IS NOT NULL
    GROUP BY 1, 2, 3, 4, 5, post_id;

    DO $$
    BEGIN
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'followthrough_writer') THEN
            GRANT SELECT, INSERT ON post_shares TO followthrough_writer;
        END IF;
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'followthrough_reader') THEN
            GRANT SELECT ON post_shares TO followthrough_reader;
        END IF;
    END $$;
    """)


def downgrade() -> None:
    run("""
    DROP VIEW engagement_daily;
    CREATE VIEW engagement_daily AS
    SELECT workspace_id, account_id, account_name, channel,
           (date_trunc('day', sent_at AT TIME ZONE 'UTC'))::date AS day,
           count(*) AS shares_read,
           sum(engagement_replies)::bigint AS replies,
           sum(engagement_reposts)::bigint AS reposts,
           sum(engagement_likes)::bigint AS likes,
           coalesce(sum(engagement_quotes), 0)::bigint AS quotes
    FROM rm_shares
    WHERE sent_at IS NOT NULL AND engagement_at IS NOT NULL
    GROUP BY 1, 2, 3, 4, 5;
    DO $$
    BEGIN
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'followthrough_writer') THEN
            GRANT SELECT ON engagement_daily TO followthrough_writer;
        END IF;
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'followthrough_reader') THEN
            GRANT SELECT ON engagement_daily TO followthrough_reader;
        END IF;
    END $$;
    DROP INDEX rm_shares_post_idx;
    ALTER TABLE rm_shares DROP COLUMN post_id;
    DROP TABLE post_shares;
    """)
