-- A share's call lease: the schedule row (``publish`` for its posts, ``answer`` for its
-- answers) names the attempt that may have a request in flight and until when.

-- name: claim
-- Before attempts (of one share or of each share of a group delivery): take each share's
-- lease, unless another attempt holds it and it has not run out (one of its requests may
-- still be in flight). ``same_attempt``: the holder may take its own lease again (answers
-- go out one after the other under it). Returns the shares taken.
-- Each share's row is found on its own through (kind, share_id)'s unique index (a subquery
-- a share), then updated through its id, which no update changes (a concurrent update is
-- followed and rechecked, as for any UPDATE). Written with ``share_id = ANY`` or as a join,
-- the plan depended on the table's statistics: on a table not analyzed since a burst was
-- planned it read every row of the kind (3.6 ms a group of 50 among 10,000 due shares,
-- against 1.1 ms this way, whatever the statistics).
-- Arrays in binary: cheaper for psycopg to dump than text.
UPDATE schedule s
SET holder_attempt = c.attempt,
    lease_until = clock_timestamp() + make_interval(secs => %(budget)s),
    updated_at = now()
FROM unnest(%(share_ids)b::uuid[], %(attempts)b::int[]) AS c(share_id, attempt)
WHERE s.id = ANY(ARRAY(
        SELECT (SELECT x.id FROM schedule x WHERE x.kind = %(kind)s AND x.share_id = i.share_id)
        FROM unnest(%(share_ids)b::uuid[]) AS i(share_id)))
  AND s.share_id = c.share_id
  AND (s.holder_attempt = 0 OR (%(same_attempt)s AND s.holder_attempt = c.attempt)
       OR s.lease_until <= clock_timestamp())
RETURNING s.share_id

-- name: extend
-- Right before a request that may publish: the holder's lease, extended to cover it.
-- Refused (nothing returned) once another attempt has taken the lease.
UPDATE schedule
SET lease_until = greatest(lease_until, clock_timestamp() + make_interval(secs => %(budget)s))
WHERE kind = %(kind)s AND share_id = %(share_id)s AND holder_attempt = %(attempt)s
RETURNING lease_until
