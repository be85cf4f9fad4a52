-- taskgate schema v3: cron schedules that submit a task at every fire time.
-- depends: 0002_push_delivery

-- `task` is the JSON task template ({type, payload, priority, tags, max_attempts?, retry?,
-- lease_seconds?}). `next_run_at` is the next fire time in ms, NULL while paused (or when
-- the expression matches no later time). Firing is a compare-and-set on
-- (next_run_at, revision): `revision` counts changes of the settings (create, PATCH),
-- so a fire planned from an older read of the row changes nothing.
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

-- The scheduler loop of every process asks for schedules due by now, earliest first.
CREATE INDEX schedules_due ON schedules (next_run_at) WHERE next_run_at IS NOT NULL;
