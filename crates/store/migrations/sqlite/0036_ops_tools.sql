-- Ops tools behind Prism (issue 13 item 3): each cluster's Prometheus,
-- Grafana, Dashboard or Headlamp, reached through nginx at
-- /tools/CLUSTER/NAME/ once Prism's auth_request endpoint says the person
-- may open it (admins, or the roles listed, in any project).
CREATE TABLE ops_tools (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster_id INTEGER NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    -- prometheus | grafana | dashboard | headlamp | other
    kind TEXT NOT NULL,
    -- Where nginx sends the requests (http(s)://host:port/...).
    upstream TEXT NOT NULL,
    -- Whether nginx removes /tools/CLUSTER/NAME before passing the request on
    -- (1 for tools that do not know their sub-path).
    strip_prefix INTEGER NOT NULL DEFAULT 0,
    -- JSON list of role words (developer, tester, operator) that may open it.
    roles TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    updated_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (cluster_id, name)
);
