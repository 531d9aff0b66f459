"""Business time in SQL: ``business_seconds(start, finish, calendar)``, the clock of a
reply's time to answer and the at-risk point of a business task.

- ``calendar_instant(local, zone)``: the first instant whose wall time in ``zone`` is at or
  after the naive ``local`` (its first occurrence when the clocks fall back, the transition
  itself inside the spring-forward gap): ``scheduler.domain.calendars``'s rule, which
  PostgreSQL's ``AT TIME ZONE`` does not follow in either case.
- ``business_seconds(start, finish, calendar)``: the seconds of ``calendar``'s business
  hours (its week, less its holidays, in its time zone) between two instants; 0 when
  ``finish`` is not after ``start``, NULL without a calendar. The domain's
  ``calendars.business_seconds`` is the same count (a property test holds them equal).
- ``task_on_business_clock(share_id, task_id)``: whether the task's due time was worked out
  on the business clock at its share's send (its id in ``ShareSent.business_due_at``; a
  business step whose owner had no calendar at the send counts on the wall clock).
- ``reply_answer_time(workspace, share_id, received_at, answered_at)``: a reply's time to
  answer, from its network time to the answer's publish time, and its clock. A reply is
  answered for the share's first ``answer_replies`` task due at or after it came (the
  step ``reply_sla_due_at`` uses); when that task is on the business clock the time counts
  only the business seconds of its owner's calendar as it stood when the reply came
  (``calendar_at``), else the wall clock's.
- ``sla_state(started_at, due_at, at, at_risk, calendar)``: ``sla_state`` with the at-risk
  point measured in ``calendar``'s business time (the wall clock's when NULL); with
  ``task_calendar(workspace, share_id, task_id, owner, sent_at)``, the calendar a business
  task's due time was worked out in (NULL for a wall task); ``task_sla_state(...)``, the
  SLA state of a task, which the inbox, ``/metrics`` and Grafana call.

Revision ID: 0016_business_time
Revises: 0015_reply_looks
Create Date: 2026-12-06
"""

from __future__ import annotations

from migrations.helpers import run

revision = "0016_business_time"
down_revision = "0015_reply_looks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run("""
    CREATE FUNCTION calendar_instant(local timestamp, zone text)
    RETURNS timestamptz
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    AS $$
    DECLARE
        -- The wall time read with the offsets in force a day before and a day after (a wall
        -- time occurs at most twice, once per offset): the earliest that reads back as it.
        before timestamptz := ((local - interval '24 hours') AT TIME ZONE zone) + interval '24 hours';
        after timestamptz := ((local + interval '24 hours') AT TIME ZONE zone) - interval '24 hours';
        lo timestamptz;
        hi timestamptz;
        mid timestamptz;
    BEGIN
        IF (least(before, after) AT TIME ZONE zone) = local THEN
            RETURN least(before, after);
        ELSIF (greatest(before, after) AT TIME ZONE zone) = local THEN
            RETURN greatest(before, after);
        END IF;
        -- In the spring-forward gap: the transition lies between the two readings.
        lo := least(before, after);
        hi := greatest(before, after);
        WHILE hi - lo > interval '1 second' LOOP
            mid := date_trunc('second', lo + (hi - lo) / 2);
            IF (mid AT TIME ZONE zone) >= local THEN
                hi := mid;
            ELSE
                lo := mid;
            END IF;
        END LOOP;
        RETURN hi;
    END
    $$;

    CREATE FUNCTION business_seconds(start timestamptz, finish timestamptz, calendar jsonb)
    RETURNS double precision
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
        SELECT CASE
            WHEN calendar IS NULL THEN NULL
            WHEN finish <= start THEN 0::float8
            ELSE coalesce(sum(greatest(0, extract(epoch FROM least(b, finish) - greatest(a, start)))), 0)::float8
        END
        FROM (
            SELECT calendar_instant(d + (iv->>0)::time, calendar->>'time_zone') AS a,
                   calendar_instant(d + ((iv->>1)::time - time '00:00'), calendar->>'time_zone') AS b
            FROM generate_series(date_trunc('day', start AT TIME ZONE (calendar->>'time_zone')) - interval '1 day',
                                 date_trunc('day', finish AT TIME ZONE (calendar->>'time_zone')) + interval '1 day',
                                 interval '1 day') AS g(d)
            CROSS JOIN LATERAL jsonb_array_elements(
                calendar->'week'->((ARRAY['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'])
                                   [extract(isodow FROM d)::int])) AS iv
            WHERE calendar IS NOT NULL AND finish > start
              AND NOT coalesce(calendar->'holidays' ? to_char(d, 'YYYY-MM-DD'), false)
        ) AS intervals
    $$;

    CREATE FUNCTION task_on_business_clock(share_id uuid, task_id uuid)
    RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
        SELECT EXISTS (
            SELECT FROM events e
            WHERE e.stream_id = 'share-' || share_id AND e.type = 'ShareSent'
              AND e.data->'business_due_at' ? task_id::text)
    $$;

    CREATE FUNCTION task_calendar(workspace text, share_id uuid, task_id uuid, owner text, sent_at timestamptz)
    RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
        SELECT CASE WHEN sent_at IS NOT NULL AND task_on_business_clock(share_id, task_id)
                    THEN calendar_at(workspace, owner, sent_at) END
    $$;

    CREATE FUNCTION reply_answer_time(workspace text, share_id uuid, received_at timestamptz,
                                      answered_at timestamptz, OUT seconds double precision, OUT clock text)
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
        SELECT CASE WHEN answered_at IS NULL THEN NULL
                    WHEN c.calendar IS NULL THEN extract(epoch FROM answered_at - received_at)::float8
                    ELSE business_seconds(received_at, answered_at, c.calendar) END,
               CASE WHEN c.calendar IS NULL THEN 'wall' ELSE 'business' END
        FROM (SELECT (
            SELECT calendar_at(workspace, t.owner, received_at)
            FROM (SELECT t.task_id, t.owner FROM rm_response_tasks t
                  WHERE t.share_id = reply_answer_time.share_id AND t.kind = 'answer_replies'
                    AND t.status <> 'cancelled' AND t.due_at >= received_at
                  ORDER BY t.due_at, t.task_id LIMIT 1) AS t
            WHERE task_on_business_clock(reply_answer_time.share_id, t.task_id)) AS calendar) AS c
    $$;

    CREATE FUNCTION sla_state(started_at timestamptz, due_at timestamptz, at timestamptz,
                              at_risk double precision, calendar jsonb)
    RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
        SELECT CASE
            WHEN calendar IS NULL OR due_at IS NULL OR started_at IS NULL OR at > due_at
                THEN sla_state(started_at, due_at, at, at_risk)
            WHEN business_seconds(started_at, at, calendar) >= business_seconds(started_at, due_at, calendar) * at_risk
                THEN 'at_risk'
            ELSE 'on_track'
        END
    $$;

    -- A task's SLA state: its time runs from its share's send to its due time, the at-risk
    -- point in business time for a task on the business clock. A task due exactly its
    -- after_seconds after the send (every wall task; a business task whose time was all
    -- business hours) reads the same on either clock, so only the others look up the clock.
    CREATE FUNCTION task_sla_state(workspace text, share_id uuid, task_id uuid, owner text, after_seconds integer,
                                   sent_at timestamptz, due_at timestamptz, at timestamptz,
                                   at_risk double precision DEFAULT 0.75)
    RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
        SELECT sla_state(sent_at, due_at, at, at_risk,
                         CASE WHEN due_at IS DISTINCT FROM sent_at + make_interval(secs => after_seconds)
                              THEN task_calendar(workspace, share_id, task_id, owner, sent_at) END)
    $$;

    COMMENT ON FUNCTION calendar_instant(timestamp, text) IS
        'The first instant whose wall time in the zone is at or after the local time (the transition inside a gap)';
    COMMENT ON FUNCTION business_seconds(timestamptz, timestamptz, jsonb) IS
        'Seconds of a calendar''s business hours between two instants (0 if finish <= start, NULL without one)';
    COMMENT ON FUNCTION task_on_business_clock(uuid, uuid) IS
        'Whether a task''s due time was worked out on the business clock at its share''s send';
    COMMENT ON FUNCTION task_calendar(text, uuid, uuid, text, timestamptz) IS
        'The calendar a business task''s due time was worked out in (as it stood at the send); NULL for a wall task';
    COMMENT ON FUNCTION reply_answer_time(text, uuid, timestamptz, timestamptz) IS
        'A reply''s time to answer and its clock: business seconds when the step it is answered for is on the business clock';
    COMMENT ON FUNCTION sla_state(timestamptz, timestamptz, timestamptz, double precision, jsonb) IS
        'sla_state with the at-risk point measured in the calendar''s business time (the wall clock''s when NULL)';
    COMMENT ON FUNCTION task_sla_state(text, uuid, uuid, text, integer, timestamptz, timestamptz, timestamptz,
                                       double precision) IS
        'A task''s SLA state from its send to its due time, the at-risk point in business time on the business clock';
    """)


def downgrade() -> None:
    run("""
    DROP FUNCTION task_sla_state(text, uuid, uuid, text, integer, timestamptz, timestamptz, timestamptz,
                                 double precision);
    DROP FUNCTION sla_state(timestamptz, timestamptz, timestamptz, double precision, jsonb);
    DROP FUNCTION reply_answer_time(text, uuid, timestamptz, timestamptz);
    DROP FUNCTION task_calendar(text, uuid, uuid, text, timestamptz);
    DROP FUNCTION task_on_business_clock(uuid, uuid);
    DROP FUNCTION business_seconds(timestamptz, timestamptz, jsonb);
    DROP FUNCTION calendar_instant(timestamp, text);
    """)
