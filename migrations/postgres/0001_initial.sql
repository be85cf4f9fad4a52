-- taskgate schema v1: queues, tasks, idempotency keys, workers; wake-ups across processes.
-- Times are bigint milliseconds since the epoch. JSON fields are JSON text, as on SQLite:
-- a payload comes back byte for byte as it was submitted. Keys and names sort bytewise
-- (COLLATE "C") whatever the database's locale, like SQLite's, and index faster.

CREATE TABLE queues (
    name          text COLLATE "C" PRIMARY KEY,
    paused        boolean NOT NULL DEFAULT false,
    pause_reason  text,
    overrides     text NOT NULL DEFAULT '{}',
    created_at    bigint NOT NULL,
    updated_at    bigint NOT NULL
);

CREATE TABLE tasks (
    id                text COLLATE "C" PRIMARY KEY,
    queue             text COLLATE "C" NOT NULL,
    type              text NOT NULL,
    payload           text NOT NULL,
    priority          smallint NOT NULL CHECK (priority IN (0, 1, 2)),
    state             text NOT NULL
                      CHECK (state IN ('queued', 'running', 'succeeded', 'dead', 'cancelled')),
    attempts          integer NOT NULL DEFAULT 0,
    max_attempts      integer NOT NULL,
    retry             text,
    lease_seconds     integer NOT NULL,
    run_at            bigint NOT NULL,
    created_at        bigint NOT NULL,
    updated_at        bigint NOT NULL,
    started_at        bigint,
    finished_at       bigint,
    lease_token       text,
    lease_expires_at  bigint,
    worker_id         text,
    cancel_requested  boolean NOT NULL DEFAULT false,
    result            text,
    errors            text NOT NULL DEFAULT '[]',
    idempotency_key   text,
    tags              text NOT NULL DEFAULT '[]'
);

-- Claims walk only queued tasks, per queue and priority, in due order: the cost of a
-- claim does not grow with finished tasks (not in the index) nor with future ones
-- (the walk stops at the first task not yet due).
CREATE INDEX tasks_due ON tasks (queue, priority, run_at, id) WHERE state = 'queued';

-- The sweeper finds expired leases; the worker registry finds in-flight leases.
CREATE INDEX tasks_leased ON tasks (lease_expires_at) WHERE state = 'running';
CREATE INDEX tasks_by_worker ON tasks (worker_id) WHERE state = 'running';

-- Listing, stats and dead letters per queue and state; retention by finish time.
CREATE INDEX tasks_by_queue_state ON tasks (queue, state, id);
CREATE INDEX tasks_finished ON tasks (queue, finished_at)
    WHERE state IN ('succeeded', 'dead', 'cancelled');

CREATE TABLE idempotency_keys (
    queue         text COLLATE "C" NOT NULL,
    key           text NOT NULL,
    task_id       text NOT NULL,
    request_hash  text NOT NULL,
    expires_at    bigint NOT NULL,
    PRIMARY KEY (queue, key)
);

CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);

CREATE TABLE workers (
    id             text COLLATE "C" PRIMARY KEY,
    first_seen_at  bigint NOT NULL,
    last_seen_at   bigint NOT NULL,
    queues         text NOT NULL DEFAULT '[]'
);

CREATE INDEX workers_last_seen ON workers (last_seen_at);

-- Wake-ups: a commit that may let a long-poll go on (a task is new, changed state or
-- due time, a queue was made or changed) notifies `taskgate_changes`; every server
-- process LISTENs and re-checks. A hint only: waiters always re-query. PostgreSQL
-- sends one notification per transaction and channel, however many rows notified.
CREATE FUNCTION taskgate_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('taskgate_changes', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER tasks_inserted_notify AFTER INSERT ON tasks
    FOR EACH STATEMENT EXECUTE FUNCTION taskgate_notify_change();

-- Row level, so that an UPDATE matching no row (an empty claim) wakes nobody: otherwise
-- every process's empty re-check would wake all the others, forever.
CREATE TRIGGER tasks_changed_notify AFTER UPDATE OF state, run_at, priority ON tasks
    FOR EACH ROW
    WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.run_at IS DISTINCT FROM NEW.run_at
          OR OLD.priority IS DISTINCT FROM NEW.priority)
    EXECUTE FUNCTION taskgate_notify_change();

CREATE TRIGGER queues_changed_notify AFTER INSERT OR UPDATE OF paused, overrides ON queues
    FOR EACH ROW EXECUTE FUNCTION taskgate_notify_change();
