-- taskgate schema v3: task state changes, for GET /v1/events.
-- depends: 0002_push_delivery

-- Triggers write one row per change into `events_pending`, in the same transaction as
-- the change (every write path emits, none can forget to), tagged with the writing
-- transaction's id. Sequence values are taken before commit and commit out of order,
-- so they cannot be the stream's ids: a reader past id 7 would never see an id 6 that
-- commits later. Instead a reader first *publishes*: under the lock on `event_counter`,
-- it moves the pending rows of transactions older than every transaction still in
-- flight (xid below the snapshot's xmin: their set is final) into `events`, numbered
-- on from `last_id` in (xid, seq) order. Ids are thus dense (gaps come only from
-- retention) and a published id is never followed by a lower one.
CREATE TABLE events_pending (
    xid       xid8 NOT NULL DEFAULT pg_current_xact_id(),
    seq       bigint GENERATED ALWAYS AS IDENTITY,
    at        bigint NOT NULL,
    queue     text NOT NULL,
    task_id   text NOT NULL,
    state     text NOT NULL,
    attempts  integer NOT NULL,
    PRIMARY KEY (xid, seq)
);

CREATE TABLE events (
    id        bigint PRIMARY KEY,
    at        bigint NOT NULL,
    queue     text COLLATE "C" NOT NULL,
    task_id   text NOT NULL,
    state     text NOT NULL,
    attempts  integer NOT NULL
);

CREATE INDEX events_by_queue ON events (queue, id);
CREATE INDEX events_by_time ON events (at);

-- The newest id ever given, kept when retention deletes that event (one row).
CREATE TABLE event_counter (
    one      boolean PRIMARY KEY DEFAULT true CHECK (one),
    last_id  bigint NOT NULL
);
INSERT INTO event_counter (last_id) VALUES (0);

-- New tasks: one statement per INSERT (a batch of 1,000 is one INSERT ... SELECT).
CREATE FUNCTION taskgate_tasks_created_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO events_pending (at, queue, task_id, state, attempts)
    SELECT updated_at, queue, id, state, attempts FROM created;
    RETURN NULL;
END;
$$;

CREATE TRIGGER tasks_created_event AFTER INSERT ON tasks
    REFERENCING NEW TABLE AS created
    FOR EACH STATEMENT EXECUTE FUNCTION taskgate_tasks_created_event();

-- State changes: per row, and only when the state changes (heartbeats never fire it).
CREATE FUNCTION taskgate_task_state_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO events_pending (at, queue, task_id, state, attempts)
    VALUES (NEW.updated_at, NEW.queue, NEW.id, NEW.state, NEW.attempts);
    RETURN NULL;
END;
$$;

CREATE TRIGGER tasks_state_event AFTER UPDATE OF state ON tasks
    FOR EACH ROW WHEN (NEW.state <> OLD.state)
    EXECUTE FUNCTION taskgate_task_state_event();

-- Publish up to `batch` pending events; how many. Readers call it before they read, the
-- sweeper before retention, and publishing wakes the readers of every process. VOLATILE and READ COMMITTED: each statement below takes a
-- new snapshot, so once the lock is ours we see what the publisher we waited for did.
CREATE FUNCTION taskgate_publish_events(batch integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    newest bigint;
    moved integer;
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM events_pending WHERE xid < pg_snapshot_xmin(pg_current_snapshot())
    ) THEN
        RETURN 0;
    END IF;
    SELECT last_id INTO newest FROM event_counter FOR UPDATE;
    WITH ready AS (
        DELETE FROM events_pending
        WHERE (xid, seq) IN (
            SELECT xid, seq FROM events_pending
            WHERE xid < pg_snapshot_xmin(pg_current_snapshot())
            ORDER BY xid, seq
            LIMIT batch
        )
        RETURNING xid, seq, at, queue, task_id, state, attempts
    )
    INSERT INTO events (id, at, queue, task_id, state, attempts)
    SELECT newest + row_number() OVER (ORDER BY xid, seq), at, queue, task_id, state, attempts
    FROM ready;
    GET DIAGNOSTICS moved = ROW_COUNT;
    UPDATE event_counter SET last_id = newest + moved;
    -- Followers in other processes may have found nothing to read before (an older
    -- transaction was still in flight): now there is.
    IF moved > 0 THEN
        PERFORM pg_notify('taskgate_changes', '');
    END IF;
    RETURN moved;
END;
$$;
