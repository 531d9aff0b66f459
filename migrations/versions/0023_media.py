"""The media library: uploaded images and videos, content-addressed per workspace.

``media_blobs`` holds each distinct file of a workspace once, keyed by the SHA-256 of the
stored bytes (after location metadata was removed); ``media`` holds one row per upload (its
own id, alt text and focus point) pointing at its blob, so the same bytes uploaded twice are
stored once and counted once against the workspace's quota. ``media_uses`` records, in the
planning transaction of a share, which items it attaches: an item is not deleted while a share
that is not yet sent (or cancelled) uses it.

The bytes are ``bytea`` with ``STORAGE EXTERNAL``: TOASTed out of line, without PostgreSQL
trying to compress formats that are compressed already.

Revision ID: 0023_media
Revises: 0022_share_owner
Create Date: 2026-12-06
"""

from __future__ import annotations

from migrations.helpers import run

revision = "0023_media"
down_revision = "0022_share_owner"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run("""
    CREATE TABLE media_blobs (
        workspace_id text NOT NULL REFERENCES workspaces (id),
        sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
        mime text NOT NULL,
        bytes integer NOT NULL CHECK (bytes > 0),
        content bytea NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (workspace_id, sha256)
    );
    ALTER TABLE media_blobs ALTER COLUMN content SET STORAGE EXTERNAL;

    CREATE TABLE media (
        id uuid PRIMARY KEY,
        workspace_id text NOT NULL,
        sha256 text NOT NULL,
        kind text NOT NULL CHECK (kind IN ('image', 'gif', 'video')),
        width integer NOT NULL CHECK (width > 0),
        height integer NOT NULL CHECK (height > 0),
        alt text NOT NULL DEFAULT '',
        focus_x real CHECK (focus_x BETWEEN -1 AND 1),
        focus_y real CHECK (focus_y BETWEEN -1 AND 1),
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        FOREIGN KEY (workspace_id, sha256) REFERENCES media_blobs (workspace_id, sha256)
    );
    CREATE INDEX media_workspace_idx ON media (workspace_id, created_at DESC, id DESC);
    CREATE INDEX media_blob_idx ON media (workspace_id, sha256);

    CREATE TABLE media_uses (
        media_id uuid NOT NULL REFERENCES media (id) ON DELETE CASCADE,
        share_id uuid NOT NULL,
        PRIMARY KEY (media_id, share_id)
    );

    DO $$
    BEGIN
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'followthrough_writer') THEN
            GRANT SELECT, INSERT, UPDATE, DELETE ON media_blobs, media, media_uses TO followthrough_writer;
        END IF;
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'followthrough_reader') THEN
            GRANT SELECT ON media, media_uses TO followthrough_reader;
        END IF;
    END $$;
    """)


def downgrade() -> None:
    run("DROP TABLE media_uses; DROP TABLE media; DROP TABLE media_blobs;")
