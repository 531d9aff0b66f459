-- name: claim_due
-- Hand out due work: rows due and not leased, or leased and the lease ran out (the
-- message was lost or its worker died). SKIP LOCKED lets a second dispatcher, or a
-- worker updating a row, go on without waiting.
-- Two index scans (one per partial index) rather than one scan of the whole table.
-- The time bounds are statement_timestamp(), not clock_timestamp(): a volatile function
-- is no index bound, so each claim that found fewer rows than its limit read every row due
-- later to the end of the index (4.2 ms a claim, most of the database's CPU in a burst,
-- with 10,000 looks due an hour on). The statement's start is a few microseconds earlier.
-- Planned at each execution (``CUSTOM_PLAN``): the table swings from a few rows to a burst's
-- tens of thousands faster than it is analyzed. The rows are updated through ``= ANY`` of the
-- claimed ids: joined to ``claimed``, whose estimate is the whole limit, a fresh plan read the
-- whole table once a burst had filled it.
WITH due AS (
    SELECT id
    FROM schedule
    WHERE lease_until IS NULL AND due_at <= statement_timestamp() + make_interval(secs => %(lead_seconds)s)
      -- Only posts go out ahead (their worker waits for the moment); a look or an answer is
      -- handed out at its time (an answer's retry found early would be let go, and come back).
      AND (kind = 'publish' OR due_at <= statement_timestamp())
    ORDER BY due_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), expired AS (
    SELECT id
    FROM schedule
    WHERE lease_until <= statement_timestamp()
    ORDER BY lease_until
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), claimed AS (
    SELECT id FROM expired
    UNION ALL
    SELECT id FROM due
    LIMIT %(limit)s
)
UPDATE schedule s
SET dispatched_at = clock_timestamp(),
    -- The lease doubles with each hand-out (up to 32 leases): a lost message comes back
    -- after one lease, but work stuck behind an outage does not flood the queue.
    lease_until = clock_timestamp()
                  + make_interval(secs => %(lease_seconds)s * power(2, least(s.dispatch_count, 5))),
    dispatch_count = s.dispatch_count + 1,
    -- Handed out again only once any call's lease ran out: no attempt holds it now.
    holder_attempt = 0
WHERE s.id = ANY(ARRAY(SELECT id FROM claimed))
RETURNING s.id, s.kind, s.share_id, s.workspace_id, s.due_at, s.dispatch_count

-- name: next_wakeup
-- When the dispatcher must look again: the earliest due time (a post's, less the lead) or
-- lease end. A post due within the lead of the first row is found by a scan of that window only.
-- Planned at each execution, as ``claim_due``: a plan cached on a small table read all of a
-- burst's rows for each minimum.
WITH first AS (
    SELECT min(due_at) AS due_at FROM schedule WHERE lease_until IS NULL
)
SELECT least(
    (SELECT due_at FROM first),
    (SELECT min(due_at) FROM schedule
     WHERE lease_until IS NULL AND kind = 'publish'
       AND due_at <= (SELECT due_at FROM first) + make_interval(secs => %(lead_seconds)s))
        - make_interval(secs => %(lead_seconds)s),
    (SELECT min(lease_until) FROM schedule WHERE lease_until IS NOT NULL)
) - clock_timestamp()
