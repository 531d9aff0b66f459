"""Replies: the name their author shows (``rm_replies.author_name``), and the newest first by index.

A reply's author was only a handle (``ana@example.social``, ``ana.bsky.social``); the
replies page shows the name beside it, as the network does (Mastodon's ``display_name``,
Bluesky's ``displayName``; ``followthrough console reply --name``). NULL where the network
gave none, and for replies collected before this revision (their events carry no name).

And ``rm_replies_newest_idx``: the workspace's replies newest collected first, the order of
``GET /v1/replies`` without a state (it read and sorted every reply of the workspace: 18 ms
of 23 over 20,000 replies; ``bench/desk.py``). ``collected_at`` never changes, so answers and
dismissals update their rows as before (heap-only where they did).

Revision ID: 0017_reply_author_name
Revises: 0016_business_time
Create Date: 2026-12-06
"""

from __future__ import annotations

from migrations.helpers import run

revision = "0017_reply_author_name"
down_revision = "0016_business_time"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run("""
    ALTER TABLE rm_replies ADD COLUMN author_name text;
    CREATE INDEX rm_replies_newest_idx ON rm_replies (workspace_id, collected_at DESC, id DESC);
    """)


def downgrade() -> None:
    run("DROP INDEX rm_replies_newest_idx; ALTER TABLE rm_replies DROP COLUMN author_name;")
