-- A share's call lease: the schedule row (``publish`` for its posts, ``answer`` for its
-- answers) names the attempt that may have a request in flight and until when.

-- name: claim
-- Before attempts (of one share or of each share of a group delivery): take each share's
-- lease, unless another attempt holds it and it has not run out (one of its requests may
-- still be in flight). ``same_attempt``: the holder may take its own lease again (answers
-- go out one after the other under it). Returns the shares taken.
-- The ``= ANY`` lets the rows be found through (kind, share_id)'s index; joined to the
-- array alone, the planner read every row of the kind (28 ms a group under a burst).
-- Arrays in binary: cheaper for psycopg to dump than text.
UPDATE schedule s
SET holder_attempt = c.attempt,
    lease_until = clock_timestamp() + make_interval(secs => %(budget)s),
    updated_at = now()
FROM unnest(%(share_ids)b::uuid[], %(attempts)b::int[]) AS c(share_id, attempt)
WHERE s.kind = %(kind)s AND s.share_id = ANY(%(share_ids)b::uuid[]) AND s.share_id = c.share_id
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
