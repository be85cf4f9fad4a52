-- Named data queries for the SQLite store. Each starts with a `-- name: NAME` line.
-- Times are integer milliseconds; `tasks` rows are read with SELECT * / RETURNING *.

-- name: queue_ensure
INSERT INTO queues (name, created_at, updated_at) VALUES (:name, :now, :now)
ON CONFLICT (name) DO NOTHING;

-- name: queue_get
SELECT name, paused, pause_reason, overrides, delivery, webhook FROM queues WHERE name = :name;

-- name: queue_list
SELECT name, paused, pause_reason, overrides, delivery, webhook FROM queues ORDER BY name;

-- name: queue_set_delivery
UPDATE queues SET delivery = :delivery, webhook = :webhook, updated_at = :now WHERE name = :name;

-- name: push_queues
SELECT name, overrides, webhook FROM queues
WHERE delivery = 'push' AND paused = 0 AND webhook IS NOT NULL ORDER BY name;

-- name: push_queue_get
SELECT paused, delivery, webhook, dispatch_tokens, dispatch_tokens_at FROM queues
WHERE name = :name;

-- name: push_queue_spend
UPDATE queues SET dispatch_tokens = :tokens, dispatch_tokens_at = :now WHERE name = :name;

-- name: queue_running
SELECT count(*) FROM tasks WHERE queue = :queue AND state = 'running';

-- name: queue_set_overrides
UPDATE queues SET overrides = :overrides, updated_at = :now WHERE name = :name;

-- name: queue_set_paused
UPDATE queues SET paused = :paused, pause_reason = :reason, updated_at = :now WHERE name = :name;

-- name: queue_counts
SELECT state, count(*) FROM tasks WHERE queue = :queue GROUP BY state;

-- name: queue_due_stats
SELECT count(*), min(run_at) FROM tasks
WHERE queue = :queue AND state = 'queued' AND run_at <= :now;

-- name: all_queue_counts
SELECT queue, state, count(*) FROM tasks GROUP BY queue, state;

-- name: all_queue_due_stats
SELECT queue, count(*), min(run_at) FROM tasks
WHERE state = 'queued' AND run_at <= :now GROUP BY queue;

-- name: queue_depths
-- Per queue, for /metrics: tasks queued (all, and due now), running and dead, and the
-- earliest run_at of a queued task. Each count is a range of an index and the earliest
-- run_at one probe of tasks_due per priority, so a scrape costs in proportion to the
-- work waiting, not to the finished tasks kept for retention.
SELECT q.name, q.paused,
    (SELECT count(*) FROM tasks WHERE queue = q.name AND state = 'queued'),
    (SELECT count(*) FROM tasks WHERE queue = q.name AND state = 'queued' AND run_at <= :now),
    (SELECT count(*) FROM tasks WHERE queue = q.name AND state = 'running'),
    (SELECT count(*) FROM tasks WHERE queue = q.name AND state = 'dead'),
    (SELECT min(earliest) FROM (
        SELECT min(run_at) AS earliest FROM tasks
        WHERE queue = q.name AND state = 'queued' AND priority = 0
        UNION ALL
        SELECT min(run_at) FROM tasks WHERE queue = q.name AND state = 'queued' AND priority = 1
        UNION ALL
        SELECT min(run_at) FROM tasks WHERE queue = q.name AND state = 'queued' AND priority = 2))
FROM queues AS q ORDER BY q.name;

-- name: queue_next_due
SELECT min(next_run_at) FROM (
    SELECT min(run_at) AS next_run_at FROM tasks WHERE queue = :queue AND state = 'queued' AND priority = 0
    UNION ALL
    SELECT min(run_at) FROM tasks WHERE queue = :queue AND state = 'queued' AND priority = 1
    UNION ALL
    SELECT min(run_at) FROM tasks WHERE queue = :queue AND state = 'queued' AND priority = 2
);

-- name: queue_claimable
-- Whether a claim could get something now: the queue runs and a matching task is due.
SELECT coalesce((SELECT paused FROM queues WHERE name = :queue), 1) = 0 AND EXISTS (
    SELECT 1 FROM tasks
    WHERE queue = :queue AND state = 'queued' AND priority IN (0, 1, 2) AND run_at <= :now
      AND (:types IS NULL OR type IN (SELECT value FROM json_each(:types)))
);

-- name: task_insert
INSERT INTO tasks (id, queue, type, payload, priority, state, max_attempts, retry,
                   lease_seconds, run_at, created_at, updated_at, idempotency_key, tags)
VALUES (:id, :queue, :type, :payload, :priority, 'queued', :max_attempts, :retry,
        :lease_seconds, :run_at, :now, :now, :idempotency_key, :tags)
RETURNING *;

-- name: task_get
SELECT * FROM tasks WHERE id = :id;

-- name: task_list
SELECT * FROM tasks
WHERE (:queue IS NULL OR queue = :queue)
  AND (:state IS NULL OR state = :state)
  AND (:type IS NULL OR type = :type)
  AND (:tag IS NULL OR EXISTS (SELECT 1 FROM json_each(tasks.tags) WHERE value = :tag))
  AND (:before_id IS NULL OR id < :before_id)
ORDER BY id DESC
LIMIT :limit;

-- name: task_list_queue_state
-- The common filter (a queue's tasks in one state) walks tasks_by_queue_state in id order.
SELECT * FROM tasks
WHERE queue = :queue AND state = :state
  AND (:type IS NULL OR type = :type)
  AND (:tag IS NULL OR EXISTS (SELECT 1 FROM json_each(tasks.tags) WHERE value = :tag))
  AND (:before_id IS NULL OR id < :before_id)
ORDER BY id DESC
LIMIT :limit;

-- name: dead_list
SELECT * FROM tasks
WHERE queue = :queue AND state = 'dead' AND (:before_id IS NULL OR id < :before_id)
ORDER BY id DESC
LIMIT :limit;

-- name: idempotency_get
SELECT task_id, request_hash, expires_at FROM idempotency_keys WHERE queue = :queue AND key = :key;

-- name: idempotency_put
INSERT INTO idempotency_keys (queue, key, task_id, request_hash, expires_at)
VALUES (:queue, :key, :task_id, :request_hash, :expires_at)
ON CONFLICT (queue, key) DO UPDATE SET
    task_id = excluded.task_id,
    request_hash = excluded.request_hash,
    expires_at = excluded.expires_at;

-- name: claim_pick
-- The due tasks of one priority, oldest first: one ordered walk of `tasks_due`. A claim
-- picks priority by priority, then leases the picked ids (claim_one / claim_many): one
-- `UPDATE ... WHERE id IN (SELECT ... UNION ALL ...)` cost 270 us for one task, these 40.
SELECT id FROM tasks
WHERE queue = :queue AND state = 'queued' AND priority = :priority AND run_at <= :now
  AND (:types IS NULL OR type IN (SELECT value FROM json_each(:types)))
ORDER BY run_at, id LIMIT :limit;

-- name: claim_one
UPDATE tasks
SET state = 'running',
    attempts = attempts + 1,
    lease_token = 'lt_' || lower(hex(randomblob(16))),
    lease_expires_at = :now + 1000 * coalesce(:lease_seconds, lease_seconds),
    worker_id = :worker_id,
    started_at = :now,
    updated_at = :now
WHERE id = :id
RETURNING *;

-- name: claim_many
-- :ids is a JSON array of the picked task ids.
UPDATE tasks
SET state = 'running',
    attempts = attempts + 1,
    lease_token = 'lt_' || lower(hex(randomblob(16))),
    lease_expires_at = :now + 1000 * coalesce(:lease_seconds, lease_seconds),
    worker_id = :worker_id,
    started_at = :now,
    updated_at = :now
FROM json_each(:ids) AS picked
WHERE tasks.id = picked.value
RETURNING *;

-- name: task_heartbeat
UPDATE tasks
SET lease_expires_at = :now + 1000 * coalesce(:lease_seconds, lease_seconds), updated_at = :now
WHERE id = :id AND state = 'running' AND lease_token = :lease_token
RETURNING *;

-- name: task_complete
UPDATE tasks
SET state = 'succeeded', result = :result, finished_at = :now, updated_at = :now,
    lease_token = NULL, lease_expires_at = NULL
WHERE id = :id AND state = 'running' AND lease_token = :lease_token
RETURNING *;

-- name: task_release
-- Hand a leased task back without using up its attempt (e.g. its push queue was paused).
UPDATE tasks
SET state = CASE WHEN cancel_requested = 1 THEN 'cancelled' ELSE 'queued' END,
    attempts = max(attempts - 1, 0),
    run_at = :now,
    finished_at = CASE WHEN cancel_requested = 1 THEN :now ELSE NULL END,
    updated_at = :now,
    lease_token = NULL,
    lease_expires_at = NULL
WHERE id = :id AND state = 'running' AND lease_token = :lease_token
RETURNING *;

-- name: task_leased
SELECT * FROM tasks WHERE id = :id AND state = 'running' AND lease_token = :lease_token;

-- name: task_end_attempt
-- A failed or expired attempt: queued again (with run_at), dead, or cancelled.
UPDATE tasks
SET state = :state,
    run_at = coalesce(:run_at, run_at),
    finished_at = CASE WHEN :state = 'queued' THEN NULL ELSE :now END,
    errors = :errors,
    updated_at = :now,
    lease_token = NULL,
    lease_expires_at = NULL
WHERE id = :id AND state = 'running' AND lease_token = :lease_token
RETURNING *;

-- name: task_cancel_queued
UPDATE tasks SET state = 'cancelled', finished_at = :now, updated_at = :now
WHERE id = :id AND state = 'queued'
RETURNING *;

-- name: task_request_cancel
-- A repeated cancel of a running task changes nothing (not even updated_at).
UPDATE tasks
SET cancel_requested = 1,
    updated_at = CASE WHEN cancel_requested = 1 THEN updated_at ELSE :now END
WHERE id = :id AND state = 'running'
RETURNING *;

-- name: dead_redrive
UPDATE tasks
SET state = 'queued', attempts = 0, run_at = :now, finished_at = NULL, updated_at = :now,
    cancel_requested = 0, worker_id = NULL
WHERE queue = :queue AND state = 'dead'
  AND (:task_ids IS NULL OR id IN (SELECT value FROM json_each(:task_ids)));

-- name: dead_purge
DELETE FROM tasks WHERE queue = :queue AND state = 'dead';

-- name: leases_expired
SELECT * FROM tasks WHERE state = 'running' AND lease_expires_at <= :now
ORDER BY lease_expires_at LIMIT :limit;

-- name: retention_delete
DELETE FROM tasks WHERE id IN (
    SELECT id FROM tasks
    WHERE queue = :queue AND state IN ('succeeded', 'dead', 'cancelled') AND finished_at < :cutoff
    LIMIT :limit
);

-- name: idempotency_expire
DELETE FROM idempotency_keys WHERE expires_at < :now;

-- name: workers_expire
DELETE FROM workers WHERE last_seen_at < :cutoff
  AND NOT EXISTS (SELECT 1 FROM tasks WHERE state = 'running' AND worker_id = workers.id);

-- name: worker_seen
-- Writes the worker's row only when it is new, last seen a second ago or more, or new
-- to this queue (as PostgreSQL's, where the row lock is what this saves).
INSERT INTO workers (id, first_seen_at, last_seen_at, queues)
SELECT :worker_id, :now, :now, json_array(:queue)
WHERE NOT EXISTS (
    SELECT 1 FROM workers
    WHERE id = :worker_id AND last_seen_at > :now - 1000
      AND EXISTS (SELECT 1 FROM json_each(workers.queues) WHERE value = :queue)
)
ON CONFLICT (id) DO UPDATE SET
    last_seen_at = excluded.last_seen_at,
    queues = CASE
        WHEN EXISTS (SELECT 1 FROM json_each(workers.queues) WHERE value = :queue)
        THEN workers.queues
        ELSE json_insert(workers.queues, '$[#]', :queue)
    END;

-- name: worker_describe
-- Every claim of a runner carries the same description: write only a change.
UPDATE workers SET info = :info WHERE id = :worker_id AND info IS NOT :info;

-- name: worker_touch
-- At most once a second per worker (see worker_seen).
UPDATE workers SET last_seen_at = :now WHERE id = :worker_id AND last_seen_at <= :now - 1000;

-- name: worker_list
SELECT id, first_seen_at, last_seen_at, queues, info FROM workers
ORDER BY last_seen_at DESC LIMIT :limit;

-- name: worker_leases
SELECT worker_id, id, queue, lease_expires_at FROM tasks
WHERE state = 'running' AND worker_id IS NOT NULL
ORDER BY lease_expires_at;

-- name: ping
SELECT 1;

-- name: task_insert_many
-- One statement for many new tasks: :rows is a JSON array of
-- [id, queue, type, payload, priority, max_attempts, retry, lease_seconds, run_at, tags].
INSERT INTO tasks (id, queue, type, payload, priority, state, max_attempts, retry,
                   lease_seconds, run_at, created_at, updated_at, tags)
SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, 'queued', value ->> 5,
       value ->> 6, value ->> 7, value ->> 8, :now, :now, value ->> 9
FROM json_each(:rows);

-- name: task_complete_many
-- One statement for a batch of completions: :items is a JSON array of
-- [task_id, lease_token, result JSON text], each task id at most once.
UPDATE tasks
SET state = 'succeeded', result = item.value ->> 2, finished_at = :now, updated_at = :now,
    lease_token = NULL, lease_expires_at = NULL
FROM json_each(:items) AS item
WHERE tasks.id = item.value ->> 0 AND tasks.state = 'running'
  AND tasks.lease_token = item.value ->> 1
RETURNING *;

-- name: events_after
-- The stream of task state changes, resumed after :after (the primary key's order).
SELECT id, at, queue, task_id, state, attempts FROM events
WHERE id > :after ORDER BY id LIMIT :limit;

-- name: events_after_on_queue
SELECT id, at, queue, task_id, state, attempts FROM events
WHERE queue = :queue AND id > :after ORDER BY id LIMIT :limit;

-- name: events_bounds
-- The oldest event kept, and the newest id ever given (kept in sqlite_sequence even when
-- retention has deleted that event).
SELECT (SELECT min(id) FROM events),
       coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0);

-- name: events_delete_before
DELETE FROM events WHERE id IN (
    SELECT id FROM events WHERE at < :cutoff ORDER BY at LIMIT :limit
);

-- name: schedule_insert
-- No row back: a schedule with this id exists already.
INSERT INTO schedules (id, cron, timezone, queue, task, missed, max_catch_up, paused,
                       next_run_at, revision, created_at, updated_at)
VALUES (:id, :cron, :timezone, :queue, :task, :missed, :max_catch_up, :paused,
        :next_run_at, 1, :now, :now)
ON CONFLICT (id) DO NOTHING
RETURNING *;

-- name: schedule_get
SELECT * FROM schedules WHERE id = :id;

-- name: schedule_list
SELECT * FROM schedules
WHERE (:after_id IS NULL OR id > :after_id)
ORDER BY id
LIMIT :limit;

-- name: schedule_update
-- A change of the settings, if nobody changed them since they were read (:revision).
-- `next_run_at` is replaced only when the timing changed (:reschedule): otherwise a fire
-- that moved it on meanwhile is kept.
UPDATE schedules
SET cron = :cron, timezone = :timezone, queue = :queue, task = :task, missed = :missed,
    max_catch_up = :max_catch_up, paused = :paused,
    next_run_at = CASE WHEN :reschedule THEN :next_run_at ELSE next_run_at END,
    revision = revision + 1, updated_at = :now
WHERE id = :id AND revision = :revision
RETURNING *;

-- name: schedule_delete
DELETE FROM schedules WHERE id = :id AND revision = :revision;

-- name: schedules_due
-- Walks the partial index `schedules_due`: paused schedules are not in it.
SELECT * FROM schedules
WHERE next_run_at IS NOT NULL AND next_run_at <= :now
ORDER BY next_run_at
LIMIT :limit;

-- name: schedule_advance
-- The compare-and-set that makes a fire time fire once: only the first process whose
-- plan was made from this very row (same next_run_at, same revision) moves it on.
UPDATE schedules SET next_run_at = :next_run_at
WHERE id = :id AND revision = :revision AND next_run_at = :expected_next_run_at
RETURNING id;

-- name: schedule_record_run
UPDATE schedules SET last_run_at = :last_run_at, last_task_id = :last_task_id WHERE id = :id;
