"""A reply's SLA state in business time: ``reply_sla_state(workspace, share_id,
received_at, due_at, at, at_risk)``.

A reply's SLA runs from its network time to its due time (``reply_sla_due_at``: the due
time of its share's first ``answer_replies`` task due at or after it came, else after the
reply window). When that step is on the business clock (``task_on_business_clock``), the
at-risk point (``at_risk`` of its time used) is measured in the business time of its
owner's calendar as it stood when the reply came (``calendar_at``; the calendar
``reply_answer_time`` counts its time to answer in), as a business task's is; otherwise,
and with no such calendar, on the wall clock. ``reply_calendar(workspace, share_id,
received_at)`` is that calendar (NULL for a reply answered for a wall step or none).
The replies list, ``/metrics`` and the API's views of a reply built from its share's
stream (``scheduler.api.replies``, tested to agree) all use this rule.

Revision ID: 0020_reply_sla_business
Revises: 0019_token_owner
Create Date: 2026-12-06
"""

from __future__ import annotations

from migrations.helpers import run

revision = "0020_reply_sla_business"
down_revision = "0019_token_owner"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run("""
    CREATE FUNCTION reply_calendar(workspace text, share_id uuid, received_at timestamptz)
    RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
        SELECT calendar_at(workspace, t.owner, received_at)
        FROM (SELECT t.task_id, t.owner FROM rm_response_tasks t
              WHERE t.share_id = reply_calendar.share_id AND t.kind = 'answer_replies'
                AND t.status <> 'cancelled' AND t.due_at >= received_at
                -- a workspace that never set a calendar has no business step: no look at the step
                AND EXISTS (SELECT FROM events e WHERE e.stream_id = 'calendars-' || workspace)
              ORDER BY t.due_at, t.task_id LIMIT 1) AS t
        WHERE task_on_business_clock(reply_calendar.share_id, t.task_id)
    $$;

    -- Past its due time a reply is breached on either clock: the calendar is looked up only
    -- while the at-risk point still matters.
    CREATE FUNCTION reply_sla_state(workspace text, share_id uuid, received_at timestamptz,
                                    due_at timestamptz, at timestamptz, at_risk double precision DEFAULT 0.75)
    RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
        SELECT sla_state(received_at, due_at, at, at_risk,
                         CASE WHEN due_at IS NOT NULL AND at <= due_at
                              THEN reply_calendar(workspace, share_id, received_at) END)
    $$;

    COMMENT ON FUNCTION reply_calendar(text, uuid, timestamptz) IS
        'The calendar of the business step a reply is answered for, as it stood when the reply came (NULL on the wall clock)';
    COMMENT ON FUNCTION reply_sla_state(text, uuid, timestamptz, timestamptz, timestamptz, double precision) IS
        'A reply''s SLA state from its network time to its due time, the at-risk point in business time for a business step';
    """)


def downgrade() -> None:
    run("""
    DROP FUNCTION reply_sla_state(text, uuid, timestamptz, timestamptz, timestamptz, double precision);
    DROP FUNCTION reply_calendar(text, uuid, timestamptz);
    """)
