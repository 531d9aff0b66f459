-- name: lock_workspace
-- Uploads of one workspace take turns: the quota is read and the blob written under one lock.
SELECT pg_advisory_xact_lock(hashtextextended('followthrough.media:' || %(workspace_id)s, 0))

-- name: used_bytes
SELECT coalesce(sum(bytes), 0)::bigint FROM media_blobs WHERE workspace_id = %(workspace_id)s

-- name: blob_exists
SELECT 1 FROM media_blobs WHERE workspace_id = %(workspace_id)s AND sha256 = %(sha256)s

-- name: insert_blob
INSERT INTO media_blobs (workspace_id, sha256, mime, bytes, content)
VALUES (%(workspace_id)s, %(sha256)s, %(mime)s, %(bytes)s, %(content)s)
ON CONFLICT DO NOTHING

-- name: insert_media
INSERT INTO media (id, workspace_id, sha256, kind, width, height, alt, focus_x, focus_y)
VALUES (%(id)s, %(workspace_id)s, %(sha256)s, %(kind)s, %(width)s, %(height)s, %(alt)s, %(focus_x)s, %(focus_y)s)

-- name: get
SELECT m.id, m.kind, b.mime, b.bytes, m.width, m.height, m.alt, m.focus_x, m.focus_y, m.sha256, m.created_at
FROM media m JOIN media_blobs b USING (workspace_id, sha256)
WHERE m.workspace_id = %(workspace_id)s AND m.id = %(id)s

-- name: list
SELECT m.id, m.kind, b.mime, b.bytes, m.width, m.height, m.alt, m.focus_x, m.focus_y, m.sha256, m.created_at
FROM media m JOIN media_blobs b USING (workspace_id, sha256)
WHERE m.workspace_id = %(workspace_id)s
  AND (%(after_at)s::timestamptz IS NULL OR (m.created_at, m.id) < (%(after_at)s, %(after_id)s::uuid))
ORDER BY m.created_at DESC, m.id DESC
LIMIT %(limit)s

-- name: content
SELECT b.mime, b.sha256, b.content
FROM media m JOIN media_blobs b USING (workspace_id, sha256)
WHERE m.workspace_id = %(workspace_id)s AND m.id = %(id)s

-- name: update
UPDATE media SET alt = coalesce(%(alt)s, alt),
                 focus_x = CASE WHEN %(set_focus)s THEN %(focus_x)s ELSE focus_x END,
                 focus_y = CASE WHEN %(set_focus)s THEN %(focus_y)s ELSE focus_y END
WHERE workspace_id = %(workspace_id)s AND id = %(id)s
RETURNING id

-- name: lock_item
-- A delete holds the item until it commits; a plan attaching it waits (lock_for_planning).
SELECT sha256 FROM media WHERE workspace_id = %(workspace_id)s AND id = %(id)s FOR UPDATE

-- name: uses
SELECT share_id FROM media_uses WHERE media_id = %(id)s

-- name: delete_media
DELETE FROM media WHERE id = %(id)s

-- name: delete_blob_if_unused
DELETE FROM media_blobs b
WHERE b.workspace_id = %(workspace_id)s AND b.sha256 = %(sha256)s
  AND NOT EXISTS (SELECT FROM media m WHERE m.workspace_id = b.workspace_id AND m.sha256 = b.sha256)

-- name: library_items
SELECT m.id, m.kind, b.mime, m.alt
FROM media m JOIN media_blobs b USING (workspace_id, sha256)
WHERE m.workspace_id = %(workspace_id)s AND m.id = ANY(%(ids)s)

-- name: record_uses
-- The foreign key's check holds each item (KEY SHARE) until the plan commits: a delete waits.
INSERT INTO media_uses (media_id, share_id)
SELECT id, %(share_id)s FROM media WHERE workspace_id = %(workspace_id)s AND id = ANY(%(ids)s)
ON CONFLICT DO NOTHING
RETURNING media_id

-- name: for_publishing
SELECT m.id, m.kind, b.mime, b.content, m.width, m.height, m.alt, m.focus_x, m.focus_y, m.sha256
FROM media m JOIN media_blobs b USING (workspace_id, sha256)
WHERE m.workspace_id = %(workspace_id)s AND m.id = %(id)s
