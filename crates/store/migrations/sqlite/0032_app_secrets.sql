-- Application secrets (issue 19): sensitive values per project or
-- application and per environment (or every environment), sealed with
-- Prism's key and never returned; or a reference to a Secret that exists in
-- the namespace already (Vault, External Secrets, Sealed Secrets).
CREATE TABLE app_secrets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    -- NULL: every application of the project (a project secret).
    app_id INTEGER REFERENCES applications(id) ON DELETE CASCADE,
    -- NULL: every environment.
    env_id INTEGER REFERENCES environments(id) ON DELETE CASCADE,
    -- The variable (or file) name the container sees.
    name TEXT NOT NULL,
    -- value | reference
    source TEXT NOT NULL,
    -- env | file
    delivery TEXT NOT NULL,
    -- For a reference: the existing Secret and its key.
    ref_secret TEXT,
    ref_key TEXT,
    version INTEGER NOT NULL,
    updated_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX app_secrets_scope ON app_secrets(project_id, COALESCE(app_id, 0), COALESCE(env_id, 0), name);

-- Every value a secret had, by version: a deploy's stored manifests name
-- (secret id, version), never the value, and a rollback re-applies the
-- version it ran with. No foreign key on secret_id: the versions outlive a
-- deleted secret, so an older deploy can still be rolled back to.
CREATE TABLE app_secret_values (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    secret_id INTEGER NOT NULL,
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    value_enc BLOB NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (secret_id, version)
);
