-- Deploy engine: per-environment deploy rules, versioned manifest templates,
-- deploys as persisted state machines with their event log.

ALTER TABLE environments ADD COLUMN allow_cluster_scoped INTEGER NOT NULL DEFAULT 0;
ALTER TABLE environments ADD COLUMN allow_other_namespaces INTEGER NOT NULL DEFAULT 0;
ALTER TABLE environments ADD COLUMN auto_rollback INTEGER NOT NULL DEFAULT 1;

-- Every edit of a project's templates stores the whole set as a new version;
-- a deploy records the version it rendered.
CREATE TABLE template_sets (
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    files TEXT NOT NULL,
    author TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    PRIMARY KEY (project_id, version)
);

CREATE TABLE deploys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    release_id INTEGER NOT NULL REFERENCES releases(id),
    app_id INTEGER NOT NULL REFERENCES applications(id),
    env_id INTEGER NOT NULL REFERENCES environments(id),
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    template_version INTEGER,
    manifests TEXT,
    diff TEXT,
    requested_by TEXT NOT NULL,
    reviewer TEXT,
    review_comment TEXT,
    reviewed_at INTEGER,
    rollback_of INTEGER REFERENCES deploys(id),
    error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    finished_at INTEGER
);
CREATE INDEX deploys_slot ON deploys(app_id, env_id, id);
CREATE INDEX deploys_release ON deploys(release_id, id);

CREATE TABLE deploy_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    deploy_id INTEGER NOT NULL REFERENCES deploys(id) ON DELETE CASCADE,
    at INTEGER NOT NULL,
    step TEXT NOT NULL,
    message TEXT NOT NULL,
    data TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX deploy_events_deploy ON deploy_events(deploy_id, id);
