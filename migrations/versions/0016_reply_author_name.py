"""Replies: the name their author shows (``rm_replies.author_name``).

A reply's author was only a handle (``ana@example.social``, ``ana.bsky.social``); the
replies page shows the name beside it, as the network does (Mastodon's ``display_name``,
Bluesky's ``displayName``; ``followthrough console reply --name``). NULL where the network
gave none, and for replies collected before this revision until the projections are rebuilt
(``ResponseReceived`` events written before it have no name either).

Revision ID: 0016_reply_author_name
Revises: 0015_reply_looks
Create Date: 2026-12-06
"""

from __future__ import annotations

from migrations.helpers import run

revision = "0016_reply_author_name"
down_revision = "0015_reply_looks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run("ALTER TABLE rm_replies ADD COLUMN author_name text;")


def downgrade() -> None:
    run("ALTER TABLE rm_replies DROP COLUMN author_name;")
