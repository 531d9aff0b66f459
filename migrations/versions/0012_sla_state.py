"""SLA states, defined once: ``sla_state(started_at, due_at, at, at_risk)``.

An open task or an unanswered reply is ``breached`` once ``at`` is past its due time,
``at_risk`` once the share ``at_risk`` (0.75 by default, ``FOLLOWTHROUGH_SLA_AT_RISK``)
of the time from its start to its due time is used, else ``on_track``; NULL without a
due time. A task starts when its share was sent; a reply when it was written (its
network time) and is due by the share's next ``answer_replies`` task, else after
``FOLLOWTHROUGH_REPLY_SLA_SECONDS``. The API, the dashboard and ``/metrics`` all call
it (the API's views of a share's own tasks use ``scheduler.domain.sla``, tested to agree).

Revision ID: 0012_sla_state
Revises: 0011_rateapi_followthrough_rate
Create Date: 2026-12-06
"""

from __future__ import annotations

from migrations.helpers import run

revision = "0012_sla_state"
down_revision = "0011_rateapi_followthrough_rate"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run("""
    CREATE FUNCTION sla_state(started_at timestamptz, due_at timestamptz, at timestamptz,
                              at_risk double precision DEFAULT 0.75)
    RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
        SELECT CASE
            WHEN due_at IS NULL THEN NULL
            WHEN at > due_at THEN 'breached'
            WHEN started_at IS NULL OR at >= started_at + (due_at - started_at) * at_risk THEN 'at_risk'
            ELSE 'on_track'
        END
    $$;

    COMMENT ON FUNCTION sla_state(timestamptz, timestamptz, timestamptz, double precision) IS
        'SLA state of open work at a moment: breached past its due time, at_risk once at_risk of its time is used, else on_track';

    -- A reply is due by its share's first answer_replies task due after it came in, else
    -- after the reply window. STABLE (it reads rm_response_tasks by name when called, so a
    -- rebuild's swap of that table needs no rebinding).
    CREATE FUNCTION reply_sla_due_at(share_id uuid, received_at timestamptz, window_seconds double precision)
    RETURNS timestamptz
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
        SELECT coalesce(min(t.due_at), received_at + make_interval(secs => window_seconds))
        FROM rm_response_tasks t
        WHERE t.share_id = reply_sla_due_at.share_id AND t.kind = 'answer_replies'
          AND t.status <> 'cancelled' AND t.due_at >= received_at
    $$;
    """)


def downgrade() -> None:
    run("DROP FUNCTION reply_sla_due_at(uuid, timestamptz, double precision);"
        "DROP FUNCTION sla_state(timestamptz, timestamptz, timestamptz, double precision);")
