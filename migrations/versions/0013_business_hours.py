"""Business hours in SQL, for the reports: ``calendar_at(workspace, owner, at)`` and
``in_business_hours(at, calendar)``.

``calendar_at`` reads the workspace's calendars stream (``calendars-<workspace>``, a handful
of events) as it stood at ``at``: the owner's calendar, else the workspace's ``default``,
else NULL; a change applies from when it was recorded, never backwards. The calendar is
the ``CalendarSet`` event's data (``time_zone``, ``week`` of ``[start, end]`` local times,
``holidays``). ``in_business_hours`` is the wall clock's reading of it: the local date is
no holiday and the local time falls in one of that weekday's intervals (NULL without a
calendar). ``GET /v1/followthrough?hours=business|off`` classifies each reply by its own
time with them (``scheduler.domain.calendars`` is the same rule for the business clock).

Revision ID: 0013_business_hours
Revises: 0012_sla_state
Create Date: 2026-12-06
"""

from __future__ import annotations

from migrations.helpers import run

revision = "0013_business_hours"
down_revision = "0012_sla_state"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run("""
    CREATE FUNCTION calendar_at(workspace text, who text, at timestamptz)
    RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
        WITH log AS (
            SELECT type, data, stream_version FROM events
            WHERE stream_id = 'calendars-' || workspace AND recorded_at <= at
        ), latest AS (
            SELECT DISTINCT ON (data->>'name') data->>'name' AS name,
                   CASE WHEN type = 'CalendarSet' THEN data END AS data
            FROM log WHERE type IN ('CalendarSet', 'CalendarDeleted')
            ORDER BY data->>'name', stream_version DESC
        ), chosen AS (
            SELECT data->>'calendar' AS name FROM log
            WHERE type = 'OwnerCalendarSet' AND data->>'owner' = who
            ORDER BY stream_version DESC LIMIT 1
        )
        SELECT coalesce((SELECT l.data FROM latest l JOIN chosen c ON l.name = c.name),
                        (SELECT l.data FROM latest l WHERE l.name = 'default'))
    $$;

    CREATE FUNCTION in_business_hours(at timestamptz, calendar jsonb)
    RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
        SELECT CASE WHEN calendar IS NULL THEN NULL ELSE
            NOT coalesce(calendar->'holidays' ? to_char(local, 'YYYY-MM-DD'), false)
            AND EXISTS (
                SELECT FROM jsonb_array_elements(
                    calendar->'week'->((ARRAY['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'])
                                       [extract(isodow FROM local)::int])) AS iv
                WHERE local::time >= (iv->>0)::time AND local::time < (iv->>1)::time)
        END
        FROM (SELECT at AT TIME ZONE (calendar->>'time_zone') AS local) AS l
    $$;

    COMMENT ON FUNCTION calendar_at(text, text, timestamptz) IS
        'The calendar (CalendarSet data) an owner worked by at a moment: theirs, else default, else NULL';
    COMMENT ON FUNCTION in_business_hours(timestamptz, jsonb) IS
        'Whether a moment falls in a calendar''s business hours by its local date and time (NULL without one)';
    """)


def downgrade() -> None:
    run("""
    DROP FUNCTION in_business_hours(timestamptz, jsonb);
    DROP FUNCTION calendar_at(text, text, timestamptz);
    """)
