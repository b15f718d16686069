-- Prism core schema. Timestamps are Unix milliseconds (UTC); flags are 0/1
-- integers so that the same queries run unchanged on SQLite and PostgreSQL.

CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL,
    is_admin INTEGER NOT NULL DEFAULT 0,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);

CREATE TABLE sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash TEXT NOT NULL UNIQUE,
    csrf_token TEXT NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER,
    last_used_at INTEGER
);
CREATE INDEX api_tokens_user ON api_tokens(user_id);

CREATE TABLE projects (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
);

CREATE TABLE memberships (
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (project_id, user_id, role)
);
CREATE INDEX memberships_user ON memberships(user_id);

CREATE TABLE clusters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    api_url TEXT NOT NULL,
    ca_cert TEXT,
    token_enc BLOB,
    insecure_skip_tls_verify INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE environments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    position INTEGER NOT NULL,
    cluster_id INTEGER REFERENCES clusters(id),
    namespace TEXT NOT NULL,
    deploy_roles TEXT NOT NULL,
    requires_review INTEGER NOT NULL,
    requires_previous INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE applications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    name TEXT NOT NULL UNIQUE,
    git_url TEXT NOT NULL,
    build_settings TEXT NOT NULL DEFAULT '{}',
    template_settings TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX applications_project ON applications(project_id);

CREATE TABLE app_env_settings (
    app_id INTEGER NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    env_id INTEGER NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    replicas INTEGER NOT NULL,
    cpu_request TEXT NOT NULL,
    cpu_limit TEXT NOT NULL,
    memory_request TEXT NOT NULL,
    memory_limit TEXT NOT NULL,
    env_vars TEXT NOT NULL DEFAULT '{}',
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (app_id, env_id)
);

CREATE TABLE releases (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id INTEGER NOT NULL REFERENCES applications(id),
    git_ref TEXT NOT NULL,
    change_note TEXT NOT NULL,
    creator_id INTEGER NOT NULL REFERENCES users(id),
    state TEXT NOT NULL,
    env_id INTEGER REFERENCES environments(id),
    commit_sha TEXT,
    image_ref TEXT,
    image_digest TEXT,
    version INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX releases_app ON releases(app_id, id);
CREATE INDEX releases_state ON releases(state);

CREATE TABLE release_transitions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    release_id INTEGER NOT NULL REFERENCES releases(id),
    action TEXT NOT NULL,
    from_state TEXT NOT NULL,
    from_env_id INTEGER,
    to_state TEXT NOT NULL,
    to_env_id INTEGER,
    actor_id INTEGER,
    actor TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    at INTEGER NOT NULL
);
CREATE INDEX release_transitions_release ON release_transitions(release_id, id);

-- One row per application x environment: what runs there, what is on its way
-- in, and the tester's hold. `version` makes every change a compare-and-set.
CREATE TABLE slots (
    app_id INTEGER NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    env_id INTEGER NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    current_release_id INTEGER REFERENCES releases(id),
    incoming_release_id INTEGER REFERENCES releases(id),
    hold_release_id INTEGER REFERENCES releases(id),
    hold_user TEXT,
    hold_since INTEGER,
    hold_note TEXT,
    hold_expires_at INTEGER,
    version INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (app_id, env_id)
);

CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    actor_id INTEGER,
    actor TEXT NOT NULL,
    address TEXT NOT NULL DEFAULT '',
    action TEXT NOT NULL,
    record_type TEXT NOT NULL,
    record_id TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_at ON audit_events(at);
CREATE INDEX audit_events_actor ON audit_events(actor, id);
CREATE INDEX audit_events_record ON audit_events(record_type, record_id, id);

CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL,
    dedup_key TEXT UNIQUE,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 5,
    run_at INTEGER NOT NULL,
    lease_owner TEXT,
    lease_expires_at INTEGER,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    finished_at INTEGER
);
CREATE INDEX jobs_ready ON jobs(state, run_at);

CREATE TABLE job_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL,
    instance TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    outcome TEXT,
    error TEXT
);
CREATE INDEX job_attempts_job ON job_attempts(job_id);
