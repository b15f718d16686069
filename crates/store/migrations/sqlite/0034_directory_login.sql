-- Directory login (issue 13 item 2): where a user comes from (`local`: a
-- password Prism keeps; `ldap`: the company's directory checks it, and the
-- user's groups set their roles at every login), and the rules an admin
-- edits that map directory groups to project roles and admin, in order.
ALTER TABLE users ADD COLUMN source TEXT NOT NULL DEFAULT 'local';
CREATE TABLE directory_group_rules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    position INTEGER NOT NULL,
    group_name TEXT NOT NULL,
    -- A role in a project, or admin.
    project TEXT,
    role TEXT,
    admin INTEGER NOT NULL DEFAULT 0
);
