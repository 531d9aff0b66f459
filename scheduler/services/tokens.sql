-- name: list
SELECT id, workspace_id, scope, label, created_at, revoked_at
FROM api_tokens
WHERE workspace_id = %(workspace_id)s
ORDER BY created_at

-- name: revoke_by_id
UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now())
WHERE id = %(value)s
RETURNING id, workspace_id, scope, label, created_at, revoked_at

-- name: revoke_by_hash
UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now())
WHERE token_hash = %(value)s
RETURNING id, workspace_id, scope, label, created_at, revoked_at
