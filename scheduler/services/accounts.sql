-- name: insert
INSERT INTO accounts (id, workspace_id, name, channel, config, default_response_plan, late_policy,
                      max_lateness_seconds)
VALUES (%(id)s, %(workspace_id)s, %(name)s, %(channel)s, %(config)s, %(plan)s, %(late_policy)s,
        %(max_lateness_seconds)s)
RETURNING id, workspace_id, name, channel, config, default_response_plan, late_policy,
          max_lateness_seconds, created_at

-- name: get
SELECT id, workspace_id, name, channel, config, default_response_plan, late_policy,
       max_lateness_seconds, created_at
FROM accounts
WHERE id = %(id)s AND workspace_id = %(workspace_id)s

-- name: config
-- A worker's read: the account's channel settings (the share names the account).
SELECT config FROM accounts WHERE id = %(id)s

-- name: list
SELECT id, workspace_id, name, channel, config, default_response_plan, late_policy,
       max_lateness_seconds, created_at
FROM accounts
WHERE workspace_id = %(workspace_id)s
ORDER BY created_at, name
