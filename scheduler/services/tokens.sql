-- API tokens: stored as sha256 hashes; the token itself is shown once, at creation.

-- name: insert
INSERT INTO api_tokens (id, workspace_id, scope, token_hash, label, expires_at, owner)
VALUES (%(id)s, %(workspace_id)s, %(scope)s, %(token_hash)s, %(label)s, %(expires_at)s, %(owner)s)
RETURNING id, workspace_id, scope, label, created_at, expires_at, last_used_at, revoked_at, owner

-- name: authenticate
-- The hot path: one indexed read (token_hash is unique). last_used_at comes back so the
-- caller refreshes it only when it is more than a minute old; owner and label name the
-- actor of the events the request causes.
SELECT id, workspace_id, scope, last_used_at < now() - interval '1 minute' OR last_used_at IS NULL, owner, label
FROM api_tokens
WHERE token_hash = %(token_hash)s AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())

-- name: touch
UPDATE api_tokens SET last_used_at = now()
WHERE id = %(id)s AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')

-- name: list
SELECT id, workspace_id, scope, label, created_at, expires_at, last_used_at, revoked_at, owner
FROM api_tokens
WHERE workspace_id = %(workspace_id)s AND (%(include_revoked)s OR revoked_at IS NULL)
ORDER BY created_at, id

-- name: revoke
UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now())
WHERE id = %(id)s AND workspace_id = %(workspace_id)s
RETURNING id, workspace_id, scope, label, created_at, expires_at, last_used_at, revoked_at, owner

-- name: session_key
-- A live token by its id, with its stored hash (a dashboard session's key).
SELECT id, workspace_id, scope, token_hash, owner, label FROM api_tokens WHERE id = %(id)s AND revoked_at IS NULL
