-- Snapshot of the schema that migrations/sqlite/ produces (checked by tests/store/test_migrations.py).
CREATE TRIGGER tasks_created_event AFTER INSERT ON tasks
BEGIN
    INSERT INTO events (at, queue, task_id, state, attempts)
    VALUES (NEW.updated_at, NEW.queue, NEW.id, NEW.state, NEW.attempts);
END;
CREATE TRIGGER tasks_state_event AFTER UPDATE OF state ON tasks
WHEN NEW.state <> OLD.state
BEGIN
    INSERT INTO events (at, queue, task_id, state, attempts)
    VALUES (NEW.updated_at, NEW.queue, NEW.id, NEW.state, NEW.attempts);
END;
CREATE TABLE events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    queue     TEXT NOT NULL,
    task_id   TEXT NOT NULL,
    state     TEXT NOT NULL,
    attempts  INTEGER NOT NULL
) STRICT;
CREATE TABLE idempotency_keys (
    queue         TEXT NOT NULL,
    key           TEXT NOT NULL,
    task_id       TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    expires_at    INTEGER NOT NULL,
    PRIMARY KEY (queue, key)
) STRICT, WITHOUT ROWID;
CREATE TABLE queues (
    name          TEXT PRIMARY KEY,
    paused        INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
    pause_reason  TEXT,
    overrides     TEXT NOT NULL DEFAULT '{}',
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
, delivery TEXT NOT NULL DEFAULT 'pull', webhook TEXT, dispatch_tokens REAL, dispatch_tokens_at INTEGER) STRICT;
CREATE TABLE schedules (
    id            TEXT PRIMARY KEY,
    cron          TEXT NOT NULL,
    timezone      TEXT NOT NULL,
    queue         TEXT NOT NULL,
    task          TEXT NOT NULL,
    missed        TEXT NOT NULL CHECK (missed IN ('skip', 'run_once', 'run_all')),
    max_catch_up  INTEGER NOT NULL CHECK (max_catch_up >= 1),
    paused        INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
    next_run_at   INTEGER,
    last_run_at   INTEGER,
    last_task_id  TEXT,
    revision      INTEGER NOT NULL DEFAULT 1,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;
CREATE TABLE sqlite_sequence(name,seq);
CREATE TABLE tasks (
    id                TEXT PRIMARY KEY,
    queue             TEXT NOT NULL,
    type              TEXT NOT NULL,
    payload           TEXT NOT NULL,
    priority          INTEGER NOT NULL CHECK (priority IN (0, 1, 2)),
    state             TEXT NOT NULL
                      CHECK (state IN ('queued', 'running', 'succeeded', 'dead', 'cancelled')),
    attempts          INTEGER NOT NULL DEFAULT 0,
    max_attempts      INTEGER NOT NULL,
    retry             TEXT,
    lease_seconds     INTEGER NOT NULL,
    run_at            INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    started_at        INTEGER,
    finished_at       INTEGER,
    lease_token       TEXT,
    lease_expires_at  INTEGER,
    worker_id         TEXT,
    cancel_requested  INTEGER NOT NULL DEFAULT 0,
    result            TEXT,
    errors            TEXT NOT NULL DEFAULT '[]',
    idempotency_key   TEXT,
    tags              TEXT NOT NULL DEFAULT '[]'
) STRICT;
CREATE TABLE workers (
    id             TEXT PRIMARY KEY,
    first_seen_at  INTEGER NOT NULL,
    last_seen_at   INTEGER NOT NULL,
    queues         TEXT NOT NULL DEFAULT '[]'
, info TEXT) STRICT;
CREATE INDEX events_by_queue ON events (queue, id);
CREATE INDEX events_by_time ON events (at);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
CREATE INDEX schedules_due ON schedules (next_run_at) WHERE next_run_at IS NOT NULL;
CREATE INDEX tasks_by_queue_state ON tasks (queue, state, id);
CREATE INDEX tasks_by_worker ON tasks (worker_id) WHERE state = 'running';
CREATE INDEX tasks_due ON tasks (queue, priority, run_at, id) WHERE state = 'queued';
CREATE INDEX tasks_finished ON tasks (queue, finished_at)
    WHERE state IN ('succeeded', 'dead', 'cancelled');
CREATE INDEX tasks_leased ON tasks (lease_expires_at) WHERE state = 'running';
CREATE INDEX workers_last_seen ON workers (last_seen_at);
