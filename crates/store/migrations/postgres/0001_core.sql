-- Prism core schema. Timestamps are Unix milliseconds (UTC); flags are 0/1
-- integers so that the same queries run unchanged on SQLite and PostgreSQL.

CREATE TABLE users (
    id BIGSERIAL PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL,
    is_admin BIGINT NOT NULL DEFAULT 0,
    disabled BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE sessions (
    id BIGSERIAL PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    csrf_token TEXT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT,
    last_used_at BIGINT
);
CREATE INDEX api_tokens_user ON api_tokens(user_id);

CREATE TABLE projects (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL
);

CREATE TABLE memberships (
    project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (project_id, user_id, role)
);
CREATE INDEX memberships_user ON memberships(user_id);

CREATE TABLE clusters (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    api_url TEXT NOT NULL,
    ca_cert TEXT,
    token_enc BYTEA,
    insecure_skip_tls_verify BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE environments (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    position BIGINT NOT NULL,
    cluster_id BIGINT REFERENCES clusters(id),
    namespace TEXT NOT NULL,
    deploy_roles TEXT NOT NULL,
    requires_review BIGINT NOT NULL,
    requires_previous BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE applications (
    id BIGSERIAL PRIMARY KEY,
    project_id BIGINT NOT NULL REFERENCES projects(id),
    name TEXT NOT NULL UNIQUE,
    git_url TEXT NOT NULL,
    build_settings TEXT NOT NULL DEFAULT '{}',
    template_settings TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX applications_project ON applications(project_id);

CREATE TABLE app_env_settings (
    app_id BIGINT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    env_id BIGINT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    replicas BIGINT NOT NULL,
    cpu_request TEXT NOT NULL,
    cpu_limit TEXT NOT NULL,
    memory_request TEXT NOT NULL,
    memory_limit TEXT NOT NULL,
    env_vars TEXT NOT NULL DEFAULT '{}',
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (app_id, env_id)
);

CREATE TABLE releases (
    id BIGSERIAL PRIMARY KEY,
    app_id BIGINT NOT NULL REFERENCES applications(id),
    git_ref TEXT NOT NULL,
    change_note TEXT NOT NULL,
    creator_id BIGINT NOT NULL REFERENCES users(id),
    state TEXT NOT NULL,
    env_id BIGINT REFERENCES environments(id),
    commit_sha TEXT,
    image_ref TEXT,
    image_digest TEXT,
    version BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX releases_app ON releases(app_id, id);
CREATE INDEX releases_state ON releases(state);

CREATE TABLE release_transitions (
    id BIGSERIAL PRIMARY KEY,
    release_id BIGINT NOT NULL REFERENCES releases(id),
    action TEXT NOT NULL,
    from_state TEXT NOT NULL,
    from_env_id BIGINT,
    to_state TEXT NOT NULL,
    to_env_id BIGINT,
    actor_id BIGINT,
    actor TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    at BIGINT NOT NULL
);
CREATE INDEX release_transitions_release ON release_transitions(release_id, id);

-- One row per application x environment: what runs there, what is on its way
-- in, and the tester's hold. `version` makes every change a compare-and-set.
CREATE TABLE slots (
    app_id BIGINT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    env_id BIGINT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    current_release_id BIGINT REFERENCES releases(id),
    incoming_release_id BIGINT REFERENCES releases(id),
    hold_release_id BIGINT REFERENCES releases(id),
    hold_user TEXT,
    hold_since BIGINT,
    hold_note TEXT,
    hold_expires_at BIGINT,
    version BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (app_id, env_id)
);

CREATE TABLE audit_events (
    id BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    actor_id BIGINT,
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
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL,
    dedup_key TEXT UNIQUE,
    attempts BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL DEFAULT 5,
    run_at BIGINT NOT NULL,
    lease_owner TEXT,
    lease_expires_at BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX jobs_ready ON jobs(state, run_at);

CREATE TABLE job_attempts (
    id BIGSERIAL PRIMARY KEY,
    job_id BIGINT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    attempt BIGINT NOT NULL,
    instance TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    finished_at BIGINT,
    outcome TEXT,
    error TEXT
);
CREATE INDEX job_attempts_job ON job_attempts(job_id);
