-- taskgate schema v2: push delivery to webhooks, and what workers say about themselves.
-- depends: 0001_initial

-- `webhook` is JSON ({url, signing_secrets, timeout_seconds, max_concurrency,
-- max_dispatches_per_second, retry_client_errors}); the two dispatch_* columns are the
-- token bucket behind max_dispatches_per_second, shared by every server process.
-- (No CHECK on delivery: SQLite re-checks every row when such a column is added, and the
-- migration runner prints that query's empty result; the app writes only 'pull'/'push'.)
ALTER TABLE queues ADD COLUMN delivery TEXT NOT NULL DEFAULT 'pull';
ALTER TABLE queues ADD COLUMN webhook TEXT;
ALTER TABLE queues ADD COLUMN dispatch_tokens REAL;
ALTER TABLE queues ADD COLUMN dispatch_tokens_at INTEGER;

-- JSON ({host, pid, version, sdk}) from the worker's latest claim that sent one.
ALTER TABLE workers ADD COLUMN info TEXT;
