-- A project's git webhook (issue 12 item 4, "an application (or project)"):
-- one URL and secret for every repository of the project; a push creates a
-- release for each application of the project whose git URL is the pushed
-- repository and whose ref the project's rules release. Pushes already
-- released (by this or an application's own webhook) stay one release:
-- webhook_releases is shared.
CREATE TABLE project_webhooks (
    id BIGSERIAL PRIMARY KEY,
    project_id BIGINT NOT NULL UNIQUE REFERENCES projects(id) ON DELETE CASCADE,
    -- The random part of the webhook's URL (/hooks/git-project/PROJECT/PUBLIC_ID).
    public_id TEXT NOT NULL UNIQUE,
    forge TEXT NOT NULL,
    secret_enc BYTEA NOT NULL,
    rules TEXT NOT NULL,
    enabled BIGINT NOT NULL DEFAULT 1,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    secret_set_at BIGINT NOT NULL
);

CREATE TABLE project_webhook_deliveries (
    id BIGSERIAL PRIMARY KEY,
    webhook_id BIGINT NOT NULL REFERENCES project_webhooks(id) ON DELETE CASCADE,
    delivery_id TEXT,
    event TEXT NOT NULL,
    git_ref TEXT,
    commit_sha TEXT,
    outcome TEXT NOT NULL,
    -- What came of it for each application the repository matched.
    detail TEXT NOT NULL DEFAULT '',
    -- The first release it created (the detail names all of them).
    release_id BIGINT REFERENCES releases(id),
    received_at BIGINT NOT NULL,
    UNIQUE (webhook_id, delivery_id)
);
CREATE INDEX project_webhook_deliveries_recent ON project_webhook_deliveries(webhook_id, received_at);
