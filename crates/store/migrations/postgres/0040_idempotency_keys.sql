-- Idempotency keys (issue 15 item 1): a client that may retry a request
-- (a load balancer resending after an instance died, the CLI after a dropped
-- connection) sends an `Idempotency-Key` header; the change and this row
-- are written in one transaction, so a retry either finds the stored
-- response (the change was made once) or nothing (the change was not made).
CREATE TABLE idempotency_keys (
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    idem_key TEXT NOT NULL,
    -- Method and path the key was first used with ("POST /api/v1/releases").
    request TEXT NOT NULL,
    -- SHA-256 of method, path, query and body: the same key with another
    -- request is refused rather than answered with the first one's result.
    fingerprint TEXT NOT NULL,
    -- The response, written before the transaction commits.
    status BIGINT,
    body TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, idem_key)
);
-- Keys are kept for a day; the maintenance job deletes older ones.
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
