-- The shares calendar (GET /v1/calendar and /dashboard/calendar): one workspace's shares
-- placed by their scheduled time. The range is served by rm_shares_workspace_idx
-- (workspace_id, scheduled_at), in its order; the account is a filter on those rows.

-- name: window
SELECT share_id, account_id, account_name, channel, status, scheduled_at, sent_at, url,
       left(text, 400) AS text
FROM rm_shares
WHERE workspace_id = %(workspace_id)s
  AND scheduled_at >= %(from)s AND scheduled_at < %(to)s
  AND (%(account_id)s::uuid IS NULL OR account_id = %(account_id)s::uuid)
ORDER BY scheduled_at, share_id
LIMIT %(limit)s

-- name: content_marks
-- A thread's length and its media's kinds (the share's and every part's), which rm_shares
-- keeps neither of: read from each share's SharePlanned (one lookup a share on events'
-- (stream_id, stream_version) key).
SELECT (data->>'share_id')::uuid AS share_id,
       coalesce(jsonb_array_length(data->'parts'), 0) AS parts,
       (SELECT count(*) FROM jsonb_array_elements(a.attached) m WHERE m->>'kind' <> 'video') AS images,
       (SELECT count(*) FROM jsonb_array_elements(a.attached) m WHERE m->>'kind' = 'video') AS videos
FROM events,
     LATERAL (SELECT jsonb_path_query_array(data, '$.media[*]')
                     || jsonb_path_query_array(data, '$.parts[*].media[*]') AS attached) a
WHERE stream_id = ANY(%(streams)s) AND stream_version = 1 AND type = 'SharePlanned'
  AND workspace_id = %(workspace_id)s
