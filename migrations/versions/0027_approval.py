"""Never published without approval where approval is required, held by the database.

A share planned on an account that requires approval carries ``approval_required`` in its
``SharePlanned`` (version 1 of its stream). The first write of a publish is the attempt's
append (``ShareAttemptStarted``, with the response tasks): a row trigger on that type alone
refuses it (FT003) unless the last review event of the stream (``ShareApproved``,
``ShareRejected``, ``ShareReviewRequested``) is an approval. Other appends skip the trigger
on its WHEN condition; an attempt costs one look at the stream's first event, and, for a share
that needs approval, a backward walk of its (short, unpublished) stream. ``followthrough
audit`` recounts the same rule from the log (a ``ShareSent`` without a standing approval).

Revision ID: 0027_approval
Revises: 0026_posts
Create Date: 2026-12-06
"""

from __future__ import annotations

from migrations.helpers import run

revision = "0027_approval"
down_revision = "0026_posts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run("""
    CREATE FUNCTION events_guard_approval() RETURNS trigger
        LANGUAGE plpgsql AS $$
    BEGIN
        IF EXISTS (SELECT 1 FROM events p
                   WHERE p.stream_id = NEW.stream_id AND p.stream_version = 1 AND p.type = 'SharePlanned'
                     AND p.data->>'approval_required' = 'true')
           AND coalesce((SELECT r.type FROM events r
                         WHERE r.stream_id = NEW.stream_id
                           AND r.type IN ('ShareApproved', 'ShareRejected', 'ShareReviewRequested')
                         ORDER BY r.stream_version DESC LIMIT 1), '') <> 'ShareApproved' THEN
            RAISE EXCEPTION 'share stream % needs an approval before it is published', NEW.stream_id
                USING ERRCODE = 'FT003',
                      HINT = 'Its account requires approval: an approver approves it (POST /v1/shares/{id}/approve).';
        END IF;
        RETURN NEW;
    END $$;
    CREATE TRIGGER events_approval_guard
        BEFORE INSERT ON events
        FOR EACH ROW
        WHEN (NEW.type = 'ShareAttemptStarted')
        EXECUTE FUNCTION events_guard_approval();
    -- Fires under session_replication_role = replica too, as the log's other guards do.
    ALTER TABLE events ENABLE ALWAYS TRIGGER events_approval_guard;
    """)


def downgrade() -> None:
    run("""
    DROP TRIGGER events_approval_guard ON events;
    DROP FUNCTION events_guard_approval();
    """)
