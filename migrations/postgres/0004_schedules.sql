-- taskgate schema v4: cron schedules that submit a task at every fire time.
-- depends: 0003_events

-- `task` is the JSON task template ({type, payload, priority, tags, max_attempts?, retry?,
-- lease_seconds?}). `next_run_at` is the next fire time in ms, NULL while paused (or when
-- the expression matches no later time). Firing is a compare-and-set on
-- (next_run_at, revision): `revision` counts changes of the settings (create, PATCH),
-- so a fire planned from an older read of the row changes nothing.
CREATE TABLE schedules (
    id            text COLLATE "C" PRIMARY KEY,
    cron          text NOT NULL,
    timezone      text NOT NULL,
    queue         text NOT NULL,
    task          text NOT NULL,
    missed        text NOT NULL CHECK (missed IN ('skip', 'run_once', 'run_all')),
    max_catch_up  integer NOT NULL CHECK (max_catch_up >= 1),
    paused        boolean NOT NULL DEFAULT false,
    next_run_at   bigint,
    last_run_at   bigint,
    last_task_id  text,
    revision      integer NOT NULL DEFAULT 1,
    created_at    bigint NOT NULL,
    updated_at    bigint NOT NULL
);

-- The scheduler loop of every process asks for schedules due by now, earliest first.
CREATE INDEX schedules_due ON schedules (next_run_at) WHERE next_run_at IS NOT NULL;
