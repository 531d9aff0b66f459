"""A post's engagement: its counts as the looks read them, and their totals.

- ``rm_shares`` gains ``engagement_replies``, ``engagement_reposts``, ``engagement_likes``,
  ``engagement_quotes`` (NULL: not read; quotes NULL also where the network does not count
  them) and ``engagement_at``: the counts of the share's last recorded look that read them
  (``RepliesLooked.engagement``), and that look's time. Projected like every column of the
  table (the live projector and ``projections rebuild`` fold the same events); a share
  looked at before this revision has NULLs until a look records its counts.
- ``engagement_daily``: the one formula of the totals: per workspace, account, channel and
  day the post was sent (UTC), the shares whose counts were read and the sums of their
  counts. The follow-through report (``GET /v1/followthrough``, the dashboard, the CLI) and
  the Grafana panel sum it.

Revision ID: 0018_engagement
Revises: 0017_reply_author_name
Create Date: 2026-12-06
"""

from __future__ import annotations

from migrations.helpers import run

revision = "0018_engagement"
down_revision = "0017_reply_author_name"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run("""
    ALTER TABLE rm_shares
        ADD COLUMN engagement_replies integer,
        ADD COLUMN engagement_reposts integer,
        ADD COLUMN engagement_likes integer,
        ADD COLUMN engagement_quotes integer,
        ADD COLUMN engagement_at timestamptz;

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
    """)


def downgrade() -> None:
    run("""
    DROP VIEW engagement_daily;
    ALTER TABLE rm_shares
        DROP COLUMN engagement_replies, DROP COLUMN engagement_reposts, DROP COLUMN engagement_likes,
        DROP COLUMN engagement_quotes, DROP COLUMN engagement_at;
    """)
