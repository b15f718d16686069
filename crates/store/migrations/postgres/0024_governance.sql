-- Release governance (issue 12): approval policies with separation of
-- duties, one vote per person and deploy, deploy windows and freezes per
-- environment, and break-glass deploys.

-- An environment's approval policy (project_id 0) or a project's override
-- of it. `policy` is the domain's ApprovalPolicy as JSON, validated before
-- it is written.
CREATE TABLE approval_policies (
    env_id BIGINT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    project_id BIGINT NOT NULL DEFAULT 0,
    policy TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (env_id, project_id)
);

-- One vote per person and deploy: concurrent approvals by one person count once.
CREATE TABLE deploy_votes (
    deploy_id BIGINT NOT NULL REFERENCES deploys(id) ON DELETE CASCADE,
    username TEXT NOT NULL,
    approve BIGINT NOT NULL,
    comment TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (deploy_id, username)
);

-- What happens to a deploy while deploying is closed (queue | refuse), and
-- the roles that may break glass (comma-separated).
CREATE TABLE environment_schedules (
    env_id BIGINT PRIMARY KEY REFERENCES environments(id) ON DELETE CASCADE,
    when_closed TEXT NOT NULL,
    break_glass_roles TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Recurring windows: RFC 5545 text (DTSTART;TZID=...\nRRULE:...), allow or deny.
CREATE TABLE deploy_windows (
    id BIGSERIAL PRIMARY KEY,
    env_id BIGINT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    rule TEXT NOT NULL,
    duration_minutes BIGINT NOT NULL,
    label TEXT NOT NULL
);
CREATE INDEX deploy_windows_env ON deploy_windows(env_id, id);

-- One-off freezes with a reason, [from_ms, until_ms).
CREATE TABLE deploy_freezes (
    id BIGSERIAL PRIMARY KEY,
    env_id BIGINT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    from_ms BIGINT NOT NULL,
    until_ms BIGINT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX deploy_freezes_env ON deploy_freezes(env_id, id);

-- A deploy started during a freeze or outside its windows by a role allowed
-- to break glass, and why; and, while it waits for its window, when it opens.
ALTER TABLE deploys ADD COLUMN break_glass_by TEXT;
ALTER TABLE deploys ADD COLUMN break_glass_reason TEXT;
ALTER TABLE deploys ADD COLUMN opens_at BIGINT;
ALTER TABLE deploys ADD COLUMN opens_local TEXT;
