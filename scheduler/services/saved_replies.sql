-- Saved replies: a workspace's ready answers (configuration, like its tokens).

-- name: insert
-- Nothing returned when the name is taken in the workspace (the caller says 409).
INSERT INTO saved_replies (id, workspace_id, name, text, created_by)
VALUES (%(id)s, %(workspace_id)s, %(name)s, %(text)s, %(created_by)s)
ON CONFLICT (workspace_id, name) DO NOTHING
RETURNING id, name, text, created_by, created_at

-- name: count
SELECT count(*) FROM saved_replies WHERE workspace_id = %(workspace_id)s

-- name: list
SELECT id, name, text, created_by, created_at
FROM saved_replies
WHERE workspace_id = %(workspace_id)s
ORDER BY lower(name), name, id

-- name: get
SELECT id, name, text, created_by, created_at
FROM saved_replies
WHERE workspace_id = %(workspace_id)s AND id = %(id)s

-- name: delete
DELETE FROM saved_replies WHERE workspace_id = %(workspace_id)s AND id = %(id)s RETURNING id
