-- name: index
-- A post's shares in the request's order, written in the post's own transaction.
INSERT INTO post_shares (post_id, position, share_id, workspace_id)
SELECT %(post_id)s, s.position - 1, s.share_id, %(workspace_id)s
FROM unnest(%(share_ids)s::uuid[]) WITH ORDINALITY AS s(share_id, position)

-- name: shares_of
SELECT share_id FROM post_shares
WHERE post_id = %(post_id)s AND workspace_id = %(workspace_id)s
ORDER BY position
