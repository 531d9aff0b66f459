"""The follow-through rate, defined once: ``followthrough_rate(done_on_time, done_late, overdue)``.

rate = done on time / (done on time + done late + overdue); NULL when nothing is settled
("no tasks due" is no rate, never 0 or 1). The API's reports, the dashboard, ``/metrics``,
the ``followthrough_daily`` view and the Grafana panels all call it; only the audit
recounts by its own path, on purpose. A scalar function over the counts (not a view over
the tasks) so that every reader keeps its own grouping and period and still shares the
formula; IMMUTABLE and in SQL, so the planner inlines it.

Revision ID: 0011_rateapi_followthrough_rate
Revises: 0010_api_hardening_tokens
Create Date: 2026-12-06
"""

from __future__ import annotations

from migrations.helpers import run

revision = "0011_rateapi_followthrough_rate"
down_revision = "0010_api_hardening_tokens"
branch_labels = None
depends_on = None

DAILY = """
    CREATE OR REPLACE VIEW followthrough_daily AS
    SELECT workspace_id, account_id, account_name, channel, owner,
           (date_trunc('day', due_at AT TIME ZONE 'UTC'))::date AS day,
           count(*) FILTER (WHERE state = 'open') AS open,
           count(*) FILTER (WHERE state = 'done' AND done_on_time) AS done_on_time,
           count(*) FILTER (WHERE state = 'done' AND NOT done_on_time) AS done_late,
           count(*) FILTER (WHERE state = 'overdue') AS overdue,
           {rate} AS rate
    FROM response_inbox
    WHERE state IN ('open', 'done', 'overdue')
    GROUP BY 1, 2, 3, 4, 5, 6;
"""

COUNTS = """count(*) FILTER (WHERE state = 'done' AND done_on_time),
           count(*) FILTER (WHERE state = 'done' AND NOT done_on_time),
           count(*) FILTER (WHERE state = 'overdue')"""

OLD_RATE = """(count(*) FILTER (WHERE state = 'done' AND done_on_time))::float8
             / nullif(count(*) FILTER (WHERE state IN ('done', 'overdue')), 0)"""


def upgrade() -> None:
    run("""
    CREATE FUNCTION followthrough_rate(done_on_time bigint, done_late bigint, overdue bigint)
    RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT done_on_time::float8 / nullif(done_on_time + done_late + overdue, 0) $$;

    COMMENT ON FUNCTION followthrough_rate(bigint, bigint, bigint) IS
        'Follow-through rate: done on time / (done on time + done late + overdue); NULL when none is settled';
    """ + DAILY.format(rate=f"followthrough_rate({COUNTS})"))


def downgrade() -> None:
    run(DAILY.format(rate=OLD_RATE) + """
    DROP FUNCTION followthrough_rate(bigint, bigint, bigint);
    """)
