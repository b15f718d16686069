-- `prism login --sso` (issue 13 item 1): the command line asks for a login,
-- shows the person a code and a page to open; they approve it in a browser
-- where they are logged in (with single sign-on or otherwise), and the
-- command line, polling with a secret only it knows, receives an API token.
CREATE TABLE cli_logins (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    -- What the person compares between terminal and page (XXXX-XXXX).
    user_code TEXT NOT NULL UNIQUE,
    -- SHA-256 of the command line's polling secret.
    poll_hash TEXT NOT NULL UNIQUE,
    -- The token's name (the machine it is for).
    name TEXT NOT NULL,
    address TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    approved_by INTEGER REFERENCES users(id) ON DELETE CASCADE,
    -- The token's secret, sealed, until the command line picks it up.
    token_enc BLOB
);
