-- Git webhooks create releases (issue 12 item 4): an application's webhook
-- (its forge, its sealed secret and its release rules), the deliveries it
-- received (a repeated delivery id is ignored), and the pushes that made a
-- release (a ref and commit make at most one).
CREATE TABLE app_webhooks (
    id BIGSERIAL PRIMARY KEY,
    app_id BIGINT NOT NULL UNIQUE REFERENCES applications(id) ON DELETE CASCADE,
    -- The random part of the webhook's URL (/hooks/git/APP/PUBLIC_ID).
    public_id TEXT NOT NULL UNIQUE,
    -- github | gitea | gitlab
    forge TEXT NOT NULL,
    secret_enc BYTEA NOT NULL,
    -- prism_webhooks::ReleaseRules as JSON (branches, tags, build)
    rules TEXT NOT NULL,
    enabled BIGINT NOT NULL DEFAULT 1,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    secret_set_at BIGINT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id BIGSERIAL PRIMARY KEY,
    webhook_id BIGINT NOT NULL REFERENCES app_webhooks(id) ON DELETE CASCADE,
    -- The forge's delivery id; NULL when it sent none.
    delivery_id TEXT,
    event TEXT NOT NULL,
    git_ref TEXT,
    commit_sha TEXT,
    -- created | already_released | no_rule | ignored_event | deleted_ref | disabled
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    release_id BIGINT REFERENCES releases(id),
    received_at BIGINT NOT NULL,
    UNIQUE (webhook_id, delivery_id)
);
CREATE INDEX webhook_deliveries_recent ON webhook_deliveries(webhook_id, received_at);

CREATE TABLE webhook_releases (
    app_id BIGINT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    -- refs/heads/main or refs/tags/v1.2 as the forge sent it
    git_ref TEXT NOT NULL,
    commit_sha TEXT NOT NULL,
    release_id BIGINT NOT NULL REFERENCES releases(id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (app_id, git_ref, commit_sha)
);
