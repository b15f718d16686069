-- Progressive delivery (issue 14): the rollout strategy chosen per
-- application and environment, each deploy's persisted rollout progress and
-- the command a person gave it, and each cluster's Prometheus for metric
-- gates (its credentials sealed like the cluster's token).
CREATE TABLE rollout_strategies (
    app_id BIGINT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    env_id BIGINT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    spec TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (app_id, env_id)
);
ALTER TABLE deploys ADD COLUMN rollout TEXT;
ALTER TABLE deploys ADD COLUMN rollout_command TEXT;
ALTER TABLE clusters ADD COLUMN prometheus_url TEXT;
ALTER TABLE clusters ADD COLUMN prometheus_auth_enc BLOB;
-- A job waiting on something outside itself (a person, a timer) says so:
-- the server stopping then counts against a much higher limit of its own
-- (idle_abandoned_in_a_row), not as the job crashing the server.
ALTER TABLE jobs ADD COLUMN idle BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN idle_abandoned_in_a_row BIGINT NOT NULL DEFAULT 0;
