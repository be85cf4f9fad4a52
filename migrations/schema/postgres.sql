-- Snapshot of the schema that migrations/postgres/ produces, as pg_dump --schema-only
-- writes it (normalised by postgres_schema in tests/store/test_migrations.py, which
-- checks it; regenerate it with that function after adding a migration).

CREATE FUNCTION public.taskgate_notify_change() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM pg_notify('taskgate_changes', '');
    RETURN NULL;
END;
$$;

CREATE FUNCTION public.taskgate_publish_events(batch integer) RETURNS integer
    LANGUAGE plpgsql
    AS $$
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

CREATE FUNCTION public.taskgate_task_state_event() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    INSERT INTO events_pending (at, queue, task_id, state, attempts)
    VALUES (NEW.updated_at, NEW.queue, NEW.id, NEW.state, NEW.attempts);
    RETURN NULL;
END;
$$;

CREATE FUNCTION public.taskgate_tasks_created_event() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    INSERT INTO events_pending (at, queue, task_id, state, attempts)
    SELECT updated_at, queue, id, state, attempts FROM created;
    RETURN NULL;
END;
$$;

CREATE TABLE public.event_counter (
    one boolean DEFAULT true NOT NULL,
    last_id bigint NOT NULL,
    CONSTRAINT event_counter_one_check CHECK (one)
);

CREATE TABLE public.events (
    id bigint NOT NULL,
    at bigint NOT NULL,
    queue text NOT NULL COLLATE pg_catalog."C",
    task_id text NOT NULL,
    state text NOT NULL,
    attempts integer NOT NULL
);

CREATE TABLE public.events_pending (
    xid xid8 DEFAULT pg_current_xact_id() NOT NULL,
    seq bigint NOT NULL,
    at bigint NOT NULL,
    queue text NOT NULL,
    task_id text NOT NULL,
    state text NOT NULL,
    attempts integer NOT NULL
);

ALTER TABLE public.events_pending ALTER COLUMN seq ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.events_pending_seq_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.idempotency_keys (
    queue text NOT NULL COLLATE pg_catalog."C",
    key text NOT NULL,
    task_id text NOT NULL,
    request_hash text NOT NULL,
    expires_at bigint NOT NULL
);

CREATE TABLE public.queues (
    name text NOT NULL COLLATE pg_catalog."C",
    paused boolean DEFAULT false NOT NULL,
    pause_reason text,
    overrides text DEFAULT '{}'::text NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    delivery text DEFAULT 'pull'::text NOT NULL,
    webhook text,
    dispatch_tokens double precision,
    dispatch_tokens_at bigint,
    CONSTRAINT queues_delivery_check CHECK ((delivery = ANY (ARRAY['pull'::text, 'push'::text])))
);

CREATE TABLE public.schedules (
    id text NOT NULL COLLATE pg_catalog."C",
    cron text NOT NULL,
    timezone text NOT NULL,
    queue text NOT NULL,
    task text NOT NULL,
    missed text NOT NULL,
    max_catch_up integer NOT NULL,
    paused boolean DEFAULT false NOT NULL,
    next_run_at bigint,
    last_run_at bigint,
    last_task_id text,
    revision integer DEFAULT 1 NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    CONSTRAINT schedules_max_catch_up_check CHECK ((max_catch_up >= 1)),
    CONSTRAINT schedules_missed_check CHECK ((missed = ANY (ARRAY['skip'::text, 'run_once'::text, 'run_all'::text])))
);

CREATE TABLE public.tasks (
    id text NOT NULL COLLATE pg_catalog."C",
    queue text NOT NULL COLLATE pg_catalog."C",
    type text NOT NULL,
    payload text NOT NULL,
    priority smallint NOT NULL,
    state text NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    max_attempts integer NOT NULL,
    retry text,
    lease_seconds integer NOT NULL,
    run_at bigint NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    started_at bigint,
    finished_at bigint,
    lease_token text,
    lease_expires_at bigint,
    worker_id text,
    cancel_requested boolean DEFAULT false NOT NULL,
    result text,
    errors text DEFAULT '[]'::text NOT NULL,
    idempotency_key text,
    tags text DEFAULT '[]'::text NOT NULL,
    CONSTRAINT tasks_priority_check CHECK ((priority = ANY (ARRAY[0, 1, 2]))),
    CONSTRAINT tasks_state_check CHECK ((state = ANY (ARRAY['queued'::text, 'running'::text, 'succeeded'::text, 'dead'::text, 'cancelled'::text])))
);

CREATE TABLE public.workers (
    id text NOT NULL COLLATE pg_catalog."C",
    first_seen_at bigint NOT NULL,
    last_seen_at bigint NOT NULL,
    queues text DEFAULT '[]'::text NOT NULL,
    info text
);

ALTER TABLE ONLY public.event_counter
    ADD CONSTRAINT event_counter_pkey PRIMARY KEY (one);

ALTER TABLE ONLY public.events_pending
    ADD CONSTRAINT events_pending_pkey PRIMARY KEY (xid, seq);

ALTER TABLE ONLY public.events
    ADD CONSTRAINT events_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.idempotency_keys
    ADD CONSTRAINT idempotency_keys_pkey PRIMARY KEY (queue, key);

ALTER TABLE ONLY public.queues
    ADD CONSTRAINT queues_pkey PRIMARY KEY (name);

ALTER TABLE ONLY public.schedules
    ADD CONSTRAINT schedules_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.tasks
    ADD CONSTRAINT tasks_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.workers
    ADD CONSTRAINT workers_pkey PRIMARY KEY (id);

CREATE INDEX events_by_queue ON public.events USING btree (queue, id);

CREATE INDEX events_by_time ON public.events USING btree (at);

CREATE INDEX idempotency_keys_expiry ON public.idempotency_keys USING btree (expires_at);

CREATE INDEX schedules_due ON public.schedules USING btree (next_run_at) WHERE (next_run_at IS NOT NULL);

CREATE INDEX tasks_by_queue_state ON public.tasks USING btree (queue, state, id);

CREATE INDEX tasks_by_worker ON public.tasks USING btree (worker_id) WHERE (state = 'running'::text);

CREATE INDEX tasks_due ON public.tasks USING btree (queue, priority, run_at, id) WHERE (state = 'queued'::text);

CREATE INDEX tasks_finished ON public.tasks USING btree (queue, finished_at) WHERE (state = ANY (ARRAY['succeeded'::text, 'dead'::text, 'cancelled'::text]));

CREATE INDEX tasks_leased ON public.tasks USING btree (lease_expires_at) WHERE (state = 'running'::text);

CREATE INDEX workers_last_seen ON public.workers USING btree (last_seen_at);

CREATE TRIGGER queues_changed_notify AFTER INSERT OR UPDATE OF paused, overrides, delivery, webhook ON public.queues FOR EACH ROW EXECUTE FUNCTION public.taskgate_notify_change();

CREATE TRIGGER tasks_changed_notify AFTER UPDATE OF state, run_at, priority ON public.tasks FOR EACH ROW WHEN (((old.state IS DISTINCT FROM new.state) OR (old.run_at IS DISTINCT FROM new.run_at) OR (old.priority IS DISTINCT FROM new.priority))) EXECUTE FUNCTION public.taskgate_notify_change();

CREATE TRIGGER tasks_created_event AFTER INSERT ON public.tasks REFERENCING NEW TABLE AS created FOR EACH STATEMENT EXECUTE FUNCTION public.taskgate_tasks_created_event();

CREATE TRIGGER tasks_inserted_notify AFTER INSERT ON public.tasks FOR EACH STATEMENT EXECUTE FUNCTION public.taskgate_notify_change();

CREATE TRIGGER tasks_state_event AFTER UPDATE OF state ON public.tasks FOR EACH ROW WHEN ((new.state <> old.state)) EXECUTE FUNCTION public.taskgate_task_state_event();
