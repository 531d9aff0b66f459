"""People: a token's owner, and who a reply is assigned to.

- ``api_tokens.owner``: the person a token belongs to (NULL: none). The events a token
  causes record it as their actor (the token's label when it has none).
- ``rm_replies.assignee``: the person a reply was assigned to (``ReplyAssigned`` on the
  share's stream; NULL: never assigned, its owner is then that of the share's current
  task). A column of the shares projection: ``projections rebuild`` fills it from the log;
  a reply assigned before this revision cannot exist (the event is new with it).

Revision ID: 0019_token_owner
Revises: 0018_engagement
Create Date: 2026-12-06
"""

from __future__ import annotations

from migrations.helpers import run

revision = "0019_token_owner"
down_revision = "0018_engagement"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run("""
    ALTER TABLE api_tokens ADD COLUMN owner text;
    COMMENT ON COLUMN api_tokens.owner IS 'the person the token belongs to: the actor of the events it causes';
    ALTER TABLE rm_replies ADD COLUMN assignee text;
    COMMENT ON COLUMN rm_replies.assignee IS 'the person the reply was assigned to (ReplyAssigned); NULL: never';
    """)


def downgrade() -> None:
    run("""
    ALTER TABLE rm_replies DROP COLUMN assignee;
    ALTER TABLE api_tokens DROP COLUMN owner;
    """)
