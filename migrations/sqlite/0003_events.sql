-- Task state changes, for GET /v1/events: one row per change, written by triggers in the
-- same transaction as the change (every write path emits, none can forget to).
-- AUTOINCREMENT: an id is never reused after old events are deleted, so a client's
-- Last-Event-ID always means the same point in the stream.
CREATE TABLE events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    queue     TEXT NOT NULL,
    task_id   TEXT NOT NULL,
    state     TEXT NOT NULL,
    attempts  INTEGER NOT NULL
) STRICT;

CREATE INDEX events_by_queue ON events (queue, id);
CREATE INDEX events_by_time ON events (at);

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
