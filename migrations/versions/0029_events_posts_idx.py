"""Events: the posts recorded for shares and answers, by their id on the network
(``events_posts_idx``).

A look-up for an attempt whose outcome is unknown finds a post by the share's text (Mastodon
cannot be asked by idempotency key). Two shares with the same text on one account would
match each other's posts: the worker now passes over a post already recorded for another
share or answer, and asks this index which. Partial: only the events that record a post.

Built ``CONCURRENTLY``, outside the migration's transaction: the log keeps taking writes
while a large one is indexed.

Revision ID: 0029_events_posts_idx
Revises: 0028_replies_assignee_idx
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

from migrations.helpers import run

revision = "0029_events_posts_idx"
down_revision = "0028_replies_assignee_idx"
branch_labels = None
depends_on = None

POST_EVENTS = "('ShareSent', 'SharePartSent', 'DuplicatePosted', 'ReplyAnswered')"


def upgrade() -> None:
    with op.get_context().autocommit_block():
        # An earlier build that was interrupted leaves an invalid index of this name.
        run("DROP INDEX CONCURRENTLY IF EXISTS events_posts_idx;")
        run(f"CREATE INDEX CONCURRENTLY events_posts_idx ON events ((data->>'external_id'))"
            f" WHERE type IN {POST_EVENTS};")


def downgrade() -> None:
    with op.get_context().autocommit_block():
        run("DROP INDEX CONCURRENTLY IF EXISTS events_posts_idx;")
