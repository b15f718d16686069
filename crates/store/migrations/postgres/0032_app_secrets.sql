-- Application secrets (issue 19): sensitive values per project or
-- application and per environment (or every environment), sealed with
-- Prism's key and never returned; or a reference to a Secret that exists in
-- the namespace already (Vault, External Secrets, Sealed Secrets).
CREATE TABLE app_secrets (
    id BIGSERIAL PRIMARY KEY,
    project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    -- NULL: every application of the project (a project secret).
    app_id BIGINT REFERENCES applications(id) ON DELETE CASCADE,
    -- NULL: every environment.
    env_id BIGINT REFERENCES environments(id) ON DELETE CASCADE,
    -- The variable (or file) name the container sees.
    name TEXT NOT NULL,
    -- value | reference
    source TEXT NOT NULL,
    -- env | file
    delivery TEXT NOT NULL,
    -- For a reference: the existing Secret and its key.
    ref_secret TEXT,
    ref_key TEXT,
    version BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX app_secrets_scope ON app_secrets(project_id, COALESCE(app_id, 0), COALESCE(env_id, 0), name);

-- Every value a secret had, by version: a deploy's stored manifests name
-- (secret id, version), never the value, and a rollback re-applies the
-- version it ran with. No foreign key on secret_id: the versions outlive a
-- deleted secret, so an older deploy can still be rolled back to.
CREATE TABLE app_secret_values (
    id BIGSERIAL PRIMARY KEY,
    secret_id BIGINT NOT NULL,
    project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    value_enc BYTEA NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (secret_id, version)
);
