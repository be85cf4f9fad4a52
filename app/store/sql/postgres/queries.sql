-- Named data queries for the PostgreSQL store. Each starts with a `-- name: NAME` line.
-- psycopg parameters (%(name)s), cast where a NULL would leave the type open. Times are
-- bigint milliseconds; `tasks` rows are read with SELECT * / RETURNING *.

-- name: queue_ensure
INSERT INTO queues (name, created_at, updated_at) VALUES (%(name)s, %(now)s, %(now)s)
ON CONFLICT (name) DO NOTHING;

-- name: queue_get
SELECT name, paused, pause_reason, overrides, delivery, webhook FROM queues
WHERE name = %(name)s;

-- name: queue_lock
-- Held to the end of the transaction: read-merge-write of a queue's settings.
SELECT 1 FROM queues WHERE name = %(name)s FOR UPDATE;

-- name: queue_list
SELECT name, paused, pause_reason, overrides, delivery, webhook FROM queues ORDER BY name;

-- name: queue_set_delivery
UPDATE queues SET delivery = %(delivery)s, webhook = %(webhook)s, updated_at = %(now)s
WHERE name = %(name)s;

-- name: push_queues
SELECT name, overrides, webhook FROM queues
WHERE delivery = 'push' AND NOT paused AND webhook IS NOT NULL ORDER BY name;

-- name: push_queue_get
-- Locks the queue row: push claims on one queue take turns, across every process, so
-- the running count and the token bucket read next cannot change under the claim.
SELECT paused, delivery, webhook, dispatch_tokens, dispatch_tokens_at FROM queues
WHERE name = %(name)s FOR UPDATE;

-- name: push_queue_spend
UPDATE queues SET dispatch_tokens = %(tokens)s, dispatch_tokens_at = %(now)s
WHERE name = %(name)s;

-- name: queue_running
SELECT count(*) FROM tasks WHERE queue = %(queue)s AND state = 'running';

-- name: queue_set_overrides
UPDATE queues SET overrides = %(overrides)s, updated_at = %(now)s WHERE name = %(name)s;

-- name: queue_set_paused
UPDATE queues SET paused = %(paused)s, pause_reason = %(reason)s, updated_at = %(now)s
WHERE name = %(name)s;

-- name: queue_counts
SELECT state, count(*) FROM tasks WHERE queue = %(queue)s GROUP BY state;

-- name: queue_due_stats
SELECT count(*), min(run_at) FROM tasks
WHERE queue = %(queue)s AND state = 'queued' AND run_at <= %(now)s;

-- name: all_queue_counts
SELECT queue, state, count(*) FROM tasks GROUP BY queue, state;

-- name: all_queue_due_stats
SELECT queue, count(*), min(run_at) FROM tasks
WHERE state = 'queued' AND run_at <= %(now)s GROUP BY queue;

-- name: queue_depths
-- Per queue, for /metrics: tasks queued (all, and due now), running and dead, and the
-- earliest run_at of a queued task, each from an index range of that queue.
SELECT q.name, q.paused,
    (SELECT count(*) FROM tasks WHERE queue = q.name AND state = 'queued'),
    (SELECT count(*) FROM tasks
     WHERE queue = q.name AND state = 'queued' AND run_at <= %(now)s),
    (SELECT count(*) FROM tasks WHERE queue = q.name AND state = 'running'),
    (SELECT count(*) FROM tasks WHERE queue = q.name AND state = 'dead'),
    (SELECT min(earliest) FROM (
        SELECT min(run_at) AS earliest FROM tasks
        WHERE queue = q.name AND state = 'queued' AND priority = 0
        UNION ALL
        SELECT min(run_at) FROM tasks WHERE queue = q.name AND state = 'queued' AND priority = 1
        UNION ALL
        SELECT min(run_at) FROM tasks WHERE queue = q.name AND state = 'queued' AND priority = 2
    ) AS per_priority)
FROM queues AS q ORDER BY q.name;

-- name: queue_next_due
SELECT min(next_run_at) FROM (
    SELECT min(run_at) AS next_run_at FROM tasks
    WHERE queue = %(queue)s AND state = 'queued' AND priority = 0
    UNION ALL
    SELECT min(run_at) FROM tasks WHERE queue = %(queue)s AND state = 'queued' AND priority = 1
    UNION ALL
    SELECT min(run_at) FROM tasks WHERE queue = %(queue)s AND state = 'queued' AND priority = 2
) AS per_priority;

-- name: queue_claimable
-- Whether a claim could get something now: the queue runs and a matching task is due.
SELECT coalesce((SELECT NOT paused FROM queues WHERE name = %(queue)s), false) AND EXISTS (
    SELECT 1 FROM tasks
    WHERE queue = %(queue)s AND state = 'queued' AND priority IN (0, 1, 2)
      AND run_at <= %(now)s
      AND (%(types)s::text[] IS NULL OR type = ANY(%(types)s::text[]))
);

-- name: task_insert
INSERT INTO tasks (id, queue, type, payload, priority, state, max_attempts, retry,
                   lease_seconds, run_at, created_at, updated_at, idempotency_key, tags)
VALUES (%(id)s, %(queue)s, %(type)s, %(payload)s, %(priority)s, 'queued', %(max_attempts)s,
        %(retry)s, %(lease_seconds)s, %(run_at)s, %(now)s, %(now)s, %(idempotency_key)s,
        %(tags)s)
RETURNING *;

-- name: task_insert_many
-- One statement for many new tasks: one array per column, a row per task.
INSERT INTO tasks (id, queue, type, payload, priority, state, max_attempts, retry,
                   lease_seconds, run_at, created_at, updated_at, tags)
SELECT id, queue, type, payload, priority, 'queued', max_attempts, retry, lease_seconds,
       run_at, %(now)s, %(now)s, tags
FROM unnest(%(id)s::text[], %(queue)s::text[], %(type)s::text[], %(payload)s::text[],
            %(priority)s::smallint[], %(max_attempts)s::integer[], %(retry)s::text[],
            %(lease_seconds)s::integer[], %(run_at)s::bigint[], %(tags)s::text[])
    AS new_task (id, queue, type, payload, priority, max_attempts, retry, lease_seconds,
                 run_at, tags);

-- name: task_get
SELECT * FROM tasks WHERE id = %(id)s;

-- name: task_list
SELECT * FROM tasks
WHERE (%(queue)s::text IS NULL OR queue = %(queue)s::text)
  AND (%(state)s::text IS NULL OR state = %(state)s::text)
  AND (%(type)s::text IS NULL OR type = %(type)s::text)
  AND (%(tag)s::text IS NULL OR tags::jsonb ? %(tag)s::text)
  AND (%(before_id)s::text IS NULL OR id < %(before_id)s::text)
ORDER BY id DESC
LIMIT %(limit)s;

-- name: task_list_queue_state
-- The common filter (a queue's tasks in one state) walks tasks_by_queue_state in id order.
SELECT * FROM tasks
WHERE queue = %(queue)s AND state = %(state)s
  AND (%(type)s::text IS NULL OR type = %(type)s::text)
  AND (%(tag)s::text IS NULL OR tags::jsonb ? %(tag)s::text)
  AND (%(before_id)s::text IS NULL OR id < %(before_id)s::text)
ORDER BY id DESC
LIMIT %(limit)s;

-- name: dead_list
SELECT * FROM tasks
WHERE queue = %(queue)s AND state = 'dead'
  AND (%(before_id)s::text IS NULL OR id < %(before_id)s::text)
ORDER BY id DESC
LIMIT %(limit)s;

-- name: idempotency_get
SELECT task_id, request_hash, expires_at FROM idempotency_keys
WHERE queue = %(queue)s AND key = %(key)s;

-- name: idempotency_put
-- Takes the key for a new task: a row back means it is ours (new, expired, or taken
-- over on purpose), none that a live key holds it. Either way the key's row stays
-- locked to the end of the transaction, so a concurrent submit with the same key waits
-- for this one and then replays its task.
INSERT INTO idempotency_keys (queue, key, task_id, request_hash, expires_at)
VALUES (%(queue)s, %(key)s, %(task_id)s, %(request_hash)s, %(expires_at)s)
ON CONFLICT (queue, key) DO UPDATE SET
    task_id = excluded.task_id,
    request_hash = excluded.request_hash,
    expires_at = excluded.expires_at
WHERE %(take_over)s OR idempotency_keys.expires_at < %(now)s
RETURNING task_id;

-- name: claim_due
-- Lease up to :limit due tasks, high priority first, then by due time: per priority one
-- walk of `tasks_due`, each taking only what the ones before left (a LIMIT 0 walk reads
-- nothing). SKIP LOCKED: concurrent claims, from any process, never wait for each
-- other nor take the same task.
WITH high AS (
    SELECT id FROM tasks
    WHERE queue = %(queue)s AND state = 'queued' AND priority = 0 AND run_at <= %(now)s
      AND (%(types)s::text[] IS NULL OR type = ANY(%(types)s::text[]))
    ORDER BY run_at, id LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), normal AS (
    SELECT id FROM tasks
    WHERE queue = %(queue)s AND state = 'queued' AND priority = 1 AND run_at <= %(now)s
      AND (%(types)s::text[] IS NULL OR type = ANY(%(types)s::text[]))
    ORDER BY run_at, id LIMIT %(limit)s - (SELECT count(*) FROM high)
    FOR UPDATE SKIP LOCKED
), low AS (
    SELECT id FROM tasks
    WHERE queue = %(queue)s AND state = 'queued' AND priority = 2 AND run_at <= %(now)s
      AND (%(types)s::text[] IS NULL OR type = ANY(%(types)s::text[]))
    ORDER BY run_at, id
    LIMIT %(limit)s - (SELECT count(*) FROM high) - (SELECT count(*) FROM normal)
    FOR UPDATE SKIP LOCKED
)
UPDATE tasks
SET state = 'running',
    attempts = attempts + 1,
    lease_token = 'lt_' || replace(gen_random_uuid()::text, '-', ''),
    lease_expires_at = %(now)s + 1000 * coalesce(%(lease_seconds)s::bigint, lease_seconds),
    worker_id = %(worker_id)s,
    started_at = %(now)s,
    updated_at = %(now)s
WHERE id IN (SELECT id FROM high UNION ALL SELECT id FROM normal UNION ALL SELECT id FROM low)
RETURNING *;

-- name: task_heartbeat
UPDATE tasks
SET lease_expires_at = %(now)s + 1000 * coalesce(%(lease_seconds)s::bigint, lease_seconds),
    updated_at = %(now)s
WHERE id = %(id)s AND state = 'running' AND lease_token = %(lease_token)s
RETURNING *;

-- name: task_complete
-- One statement, so that a complete is one round trip in autocommit: the task, then its
-- worker's last_seen_at (the same lock order as every other write of both).
WITH done AS (
    UPDATE tasks
    SET state = 'succeeded', result = %(result)s, finished_at = %(now)s, updated_at = %(now)s,
        lease_token = NULL, lease_expires_at = NULL
    WHERE id = %(id)s AND state = 'running' AND lease_token = %(lease_token)s
    RETURNING *
), touched AS (
    UPDATE workers SET last_seen_at = %(now)s
    WHERE id = (SELECT worker_id FROM done) AND last_seen_at <= %(now)s - 1000
)
SELECT * FROM done;

-- name: task_complete_many
-- One statement for a batch of completions, each task id at most once.
UPDATE tasks
SET state = 'succeeded', result = item.result, finished_at = %(now)s, updated_at = %(now)s,
    lease_token = NULL, lease_expires_at = NULL
FROM unnest(%(ids)s::text[], %(tokens)s::text[], %(results)s::text[])
    AS item (id, lease_token, result)
WHERE tasks.id = item.id AND tasks.state = 'running' AND tasks.lease_token = item.lease_token
RETURNING tasks.*;

-- name: task_release
-- Hand a leased task back without using up its attempt (e.g. its push queue was paused).
UPDATE tasks
SET state = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'queued' END,
    attempts = greatest(attempts - 1, 0),
    run_at = %(now)s,
    finished_at = CASE WHEN cancel_requested THEN %(now)s::bigint END,
    updated_at = %(now)s,
    lease_token = NULL,
    lease_expires_at = NULL
WHERE id = %(id)s AND state = 'running' AND lease_token = %(lease_token)s
RETURNING *;

-- name: task_leased
-- Locked: the attempt's end, decided next, cannot race an expiry or a completion.
SELECT * FROM tasks
WHERE id = %(id)s AND state = 'running' AND lease_token = %(lease_token)s
FOR UPDATE;

-- name: task_end_attempt
-- A failed or expired attempt: queued again (with run_at), dead, or cancelled.
UPDATE tasks
SET state = %(state)s,
    run_at = coalesce(%(run_at)s::bigint, run_at),
    finished_at = CASE WHEN %(state)s::text = 'queued' THEN NULL ELSE %(now)s::bigint END,
    errors = %(errors)s,
    updated_at = %(now)s,
    lease_token = NULL,
    lease_expires_at = NULL
WHERE id = %(id)s AND state = 'running' AND lease_token = %(lease_token)s
RETURNING *;

-- name: task_cancel_queued
UPDATE tasks SET state = 'cancelled', finished_at = %(now)s, updated_at = %(now)s
WHERE id = %(id)s AND state = 'queued'
RETURNING *;

-- name: task_request_cancel
-- A repeated cancel of a running task changes nothing (not even updated_at).
UPDATE tasks
SET cancel_requested = true,
    updated_at = CASE WHEN cancel_requested THEN updated_at ELSE %(now)s::bigint END
WHERE id = %(id)s AND state = 'running'
RETURNING *;

-- name: dead_redrive
UPDATE tasks
SET state = 'queued', attempts = 0, run_at = %(now)s, finished_at = NULL, updated_at = %(now)s,
    cancel_requested = false, worker_id = NULL
WHERE queue = %(queue)s AND state = 'dead'
  AND (%(task_ids)s::text[] IS NULL OR id = ANY(%(task_ids)s::text[]));

-- name: dead_purge
DELETE FROM tasks WHERE queue = %(queue)s AND state = 'dead';

-- name: leases_expired
-- Locked and skipped when locked: sweepers of several processes share the work, and a
-- lease being completed right now is left to its completion.
SELECT * FROM tasks WHERE state = 'running' AND lease_expires_at <= %(now)s
ORDER BY lease_expires_at LIMIT %(limit)s
FOR UPDATE SKIP LOCKED;

-- name: retention_delete
DELETE FROM tasks WHERE id IN (
    SELECT id FROM tasks
    WHERE queue = %(queue)s AND state IN ('succeeded', 'dead', 'cancelled')
      AND finished_at < %(cutoff)s
    LIMIT %(limit)s
);

-- name: idempotency_expire
DELETE FROM idempotency_keys WHERE expires_at < %(now)s;

-- name: workers_expire
DELETE FROM workers WHERE last_seen_at < %(cutoff)s
  AND NOT EXISTS (SELECT 1 FROM tasks WHERE state = 'running' AND worker_id = workers.id);

-- name: worker_seen
-- Writes (and locks) the worker's row only when it is new, last seen a second ago or
-- more, or new to this queue: a runner's concurrent claims and completes would
-- otherwise queue up behind each other on its one row, on every node.
INSERT INTO workers (id, first_seen_at, last_seen_at, queues)
SELECT %(worker_id)s, %(now)s, %(now)s, jsonb_build_array(%(queue)s::text)::text
WHERE NOT EXISTS (
    SELECT 1 FROM workers
    WHERE id = %(worker_id)s AND last_seen_at > %(now)s - 1000
      AND queues::jsonb ? %(queue)s::text
)
ON CONFLICT (id) DO UPDATE SET
    last_seen_at = excluded.last_seen_at,
    queues = CASE
        WHEN workers.queues::jsonb ? %(queue)s::text THEN workers.queues
        ELSE (workers.queues::jsonb || jsonb_build_array(%(queue)s::text))::text
    END;

-- name: worker_describe
-- Every claim of a runner carries the same description: write (and lock) only a change.
UPDATE workers SET info = %(info)s
WHERE id = %(worker_id)s AND info IS DISTINCT FROM %(info)s;

-- name: worker_touch
-- At most once a second per worker (see worker_seen).
UPDATE workers SET last_seen_at = %(now)s
WHERE id = %(worker_id)s AND last_seen_at <= %(now)s - 1000;

-- name: worker_list
SELECT id, first_seen_at, last_seen_at, queues, info FROM workers
ORDER BY last_seen_at DESC LIMIT %(limit)s;

-- name: worker_leases
SELECT worker_id, id, queue, lease_expires_at FROM tasks
WHERE state = 'running' AND worker_id IS NOT NULL
ORDER BY lease_expires_at;

-- name: ping
SELECT 1;

-- name: events_publish
-- Number the committed pending events (see migrations/postgres/0003_events.sql); how many.
SELECT taskgate_publish_events(%(limit)s);

-- name: events_after
-- The stream of task state changes, resumed after :after (the published ids' order).
SELECT id, at, queue, task_id, state, attempts FROM events
WHERE id > %(after)s ORDER BY id LIMIT %(limit)s;

-- name: events_after_on_queue
SELECT id, at, queue, task_id, state, attempts FROM events
WHERE queue = %(queue)s AND id > %(after)s ORDER BY id LIMIT %(limit)s;

-- name: events_bounds
-- The oldest event kept, and the newest id ever published (kept by event_counter even
-- when retention has deleted that event).
SELECT (SELECT min(id) FROM events), (SELECT last_id FROM event_counter);

-- name: events_delete_before
DELETE FROM events WHERE id IN (
    SELECT id FROM events WHERE at < %(cutoff)s ORDER BY at LIMIT %(limit)s
);

-- name: schedule_insert
-- No row back: a schedule with this id exists already.
INSERT INTO schedules (id, cron, timezone, queue, task, missed, max_catch_up, paused,
                       next_run_at, revision, created_at, updated_at)
VALUES (%(id)s, %(cron)s, %(timezone)s, %(queue)s, %(task)s, %(missed)s, %(max_catch_up)s,
        %(paused)s, %(next_run_at)s, 1, %(now)s, %(now)s)
ON CONFLICT (id) DO NOTHING
RETURNING *;

-- name: schedule_get
SELECT * FROM schedules WHERE id = %(id)s;

-- name: schedule_list
SELECT * FROM schedules
WHERE (%(after_id)s::text IS NULL OR id > %(after_id)s::text)
ORDER BY id
LIMIT %(limit)s;

-- name: schedule_update
-- A change of the settings, if nobody changed them since they were read (:revision).
-- `next_run_at` is replaced only when the timing changed (:reschedule): otherwise a fire
-- that moved it on meanwhile is kept.
UPDATE schedules
SET cron = %(cron)s, timezone = %(timezone)s, queue = %(queue)s, task = %(task)s,
    missed = %(missed)s, max_catch_up = %(max_catch_up)s, paused = %(paused)s,
    next_run_at = CASE WHEN %(reschedule)s THEN %(next_run_at)s::bigint ELSE next_run_at END,
    revision = revision + 1, updated_at = %(now)s
WHERE id = %(id)s AND revision = %(revision)s
RETURNING *;

-- name: schedule_delete
DELETE FROM schedules WHERE id = %(id)s AND revision = %(revision)s;

-- name: schedules_due
-- Walks the partial index `schedules_due`: paused schedules are not in it.
SELECT * FROM schedules
WHERE next_run_at IS NOT NULL AND next_run_at <= %(now)s
ORDER BY next_run_at
LIMIT %(limit)s;

-- name: schedule_advance
-- The compare-and-set that makes a fire time fire once: only the first process whose
-- plan was made from this very row (same next_run_at, same revision) moves it on; a
-- concurrent one waits for the row, then finds it moved.
UPDATE schedules SET next_run_at = %(next_run_at)s
WHERE id = %(id)s AND revision = %(revision)s AND next_run_at = %(expected_next_run_at)s
RETURNING id;

-- name: schedule_record_run
UPDATE schedules SET last_run_at = %(last_run_at)s, last_task_id = %(last_task_id)s
WHERE id = %(id)s;
