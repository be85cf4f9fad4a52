-- Queries of `taskgate backup` (app/store/backup.py), run on the source and on the copy.

-- name: backup_task_count
SELECT count(*) FROM tasks;

-- name: backup_integrity_check
PRAGMA integrity_check;
