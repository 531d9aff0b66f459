-- The shares model's tables (shares.py, share_rows.py); its rows are the fold's (shares_fold.py).

-- name: table_columns
-- A table's columns (the rebuild checks that its fold fills every one).
SELECT attname FROM pg_attribute
WHERE attrelid = %(table)s::regclass AND attnum > 0 AND NOT attisdropped

-- name: column_types
-- The types of the named columns of a table, in the order named (for a binary COPY).
SELECT format_type(a.atttypid, a.atttypmod)
FROM unnest(%(columns)s::text[]) WITH ORDINALITY AS c(name, n)
JOIN pg_attribute a ON a.attrelid = %(table)s::regclass AND a.attname = c.name AND NOT a.attisdropped
ORDER BY c.n
