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
    """)


def downgrade() -> None:
    run("DROP FUNCTION sla_state(timestamptz, timestamptz, timestamptz, double precision);")
