-- Namespace isolation (issue 11 item 5): environments.namespace may now hold
-- a pattern with {project} and {environment}; an admin may instead bind one
-- project's namespace in an environment explicitly (it wins over the pattern).
CREATE TABLE environment_namespaces (
    id BIGSERIAL PRIMARY KEY,
    env_id BIGINT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    namespace TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (env_id, project_id),
    UNIQUE (env_id, namespace)
);
