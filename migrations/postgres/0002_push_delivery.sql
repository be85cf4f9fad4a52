-- taskgate schema v2: push delivery to webhooks, and what workers say about themselves.
-- depends: 0001_initial

-- `webhook` is JSON ({url, signing_secrets, timeout_seconds, max_concurrency,
-- max_dispatches_per_second, retry_client_errors}); the two dispatch_* columns are the
-- token bucket behind max_dispatches_per_second, shared by every server process.
ALTER TABLE queues ADD COLUMN delivery text NOT NULL DEFAULT 'pull'
    CHECK (delivery IN ('pull', 'push'));
ALTER TABLE queues ADD COLUMN webhook text;
ALTER TABLE queues ADD COLUMN dispatch_tokens double precision;
ALTER TABLE queues ADD COLUMN dispatch_tokens_at bigint;

-- A change of delivery wakes the dispatchers too (spending dispatch tokens does not).
DROP TRIGGER queues_changed_notify ON queues;
CREATE TRIGGER queues_changed_notify
    AFTER INSERT OR UPDATE OF paused, overrides, delivery, webhook ON queues
    FOR EACH ROW EXECUTE FUNCTION taskgate_notify_change();

-- JSON ({host, pid, version, sdk}) from the worker's latest claim that sent one.
ALTER TABLE workers ADD COLUMN info text;
