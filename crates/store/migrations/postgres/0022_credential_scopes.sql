-- Credentials belong to projects (issue 11 item 2): each registry, git
-- credential and executor names the projects allowed to use it, or is
-- marked for all projects by an admin. Records that existed before this
-- migration keep working for the projects that existed then (an explicit
-- list, so a project created later does not get them silently); new
-- records start with no project.
ALTER TABLE registries ADD COLUMN all_projects BIGINT NOT NULL DEFAULT 0;
-- Hosts besides the registry's own that may receive its credentials when
-- they serve its token realm (comma-separated host[:port]).
ALTER TABLE registries ADD COLUMN token_realm_hosts TEXT NOT NULL DEFAULT '';
ALTER TABLE git_credentials ADD COLUMN all_projects BIGINT NOT NULL DEFAULT 0;
-- The only host[:port] the credential is ever offered to. Records from
-- before have none and are refused at checkout until an admin sets it.
ALTER TABLE git_credentials ADD COLUMN host TEXT;
ALTER TABLE executors ADD COLUMN all_projects BIGINT NOT NULL DEFAULT 0;

CREATE TABLE credential_projects (
    -- `registry`, `git_credential` or `executor`
    kind TEXT NOT NULL,
    credential_id BIGINT NOT NULL,
    project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    PRIMARY KEY (kind, credential_id, project_id)
);
CREATE INDEX credential_projects_project ON credential_projects(project_id);

INSERT INTO credential_projects (kind, credential_id, project_id)
    SELECT 'registry', r.id, p.id FROM registries r CROSS JOIN projects p;
INSERT INTO credential_projects (kind, credential_id, project_id)
    SELECT 'git_credential', g.id, p.id FROM git_credentials g CROSS JOIN projects p;
INSERT INTO credential_projects (kind, credential_id, project_id)
    SELECT 'executor', e.id, p.id FROM executors e CROSS JOIN projects p;
