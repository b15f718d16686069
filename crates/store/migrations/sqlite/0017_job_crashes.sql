-- Crash recovery (issue 17): crashes are counted apart from failures, a job
-- abandoned too often in a row is quarantined (failure kind `crashed`), and
-- the process groups a job starts are recorded so a restarted instance can
-- end what its previous run left.

ALTER TABLE jobs ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN abandoned_in_a_row INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN failure_kind TEXT;

CREATE TABLE job_processes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL,
    instance TEXT NOT NULL,
    pgid INTEGER NOT NULL,
    subject TEXT NOT NULL,
    -- Set in the environment of the group's processes: a recorded group id
    -- that was reused by another process (after a reboot) is never killed.
    marker TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at INTEGER
);
CREATE INDEX job_processes_open ON job_processes(instance, ended_at);
