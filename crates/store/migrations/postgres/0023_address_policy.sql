-- Where Prism may connect (issue 11 item 9): the admin's allowed and denied
-- address ranges, one row, as JSON {"allowed": [...], "denied": [...]}.
-- No row: the built-in policy (link-local and metadata addresses refused).
CREATE TABLE address_policy (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    rules TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
