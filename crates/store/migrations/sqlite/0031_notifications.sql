-- Notifications (issue 12 item 3): channels admins set up, the events each
-- project subscribes them to, and the log of every delivery and attempt.

-- Where notices go. The receiver's URL is sealed (Slack, DingTalk, Feishu
-- and WeCom URLs carry the robot's token), and so is the signing secret or
-- SMTP password; `target` is what may be shown (scheme and host, or the
-- SMTP server), `settings` the e-mail settings without the password (JSON).
-- `project_id` NULL: every project may subscribe to it.
CREATE TABLE notification_channels (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    project_id INTEGER REFERENCES projects(id) ON DELETE CASCADE,
    target TEXT NOT NULL,
    settings TEXT NOT NULL,
    url_enc BLOB,
    secret_enc BLOB,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- A project's subscription of one channel: the events (comma-separated
-- words) and the language of the messages.
CREATE TABLE notification_subscriptions (
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    channel_id INTEGER NOT NULL REFERENCES notification_channels(id) ON DELETE CASCADE,
    events TEXT NOT NULL,
    lang TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (project_id, channel_id)
);
CREATE INDEX notification_subscriptions_channel ON notification_subscriptions(channel_id);

-- One notice to one channel. `uid` is the delivery id receivers see (the
-- same on every attempt, so they can refuse repeats); `notice` the notice
-- as JSON; `project` the project's name when it happened (a test message
-- has none). Errors are stored with the channel's secrets removed.
CREATE TABLE notification_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uid TEXT NOT NULL UNIQUE,
    channel_id INTEGER NOT NULL REFERENCES notification_channels(id) ON DELETE CASCADE,
    project TEXT,
    event TEXT NOT NULL,
    lang TEXT NOT NULL,
    notice TEXT NOT NULL,
    status TEXT NOT NULL,
    response_code INTEGER,
    attempts INTEGER NOT NULL,
    next_retry_at INTEGER,
    error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX notification_deliveries_channel ON notification_deliveries(channel_id, id);

-- Every attempt of a delivery, in order.
CREATE TABLE notification_attempts (
    delivery_id INTEGER NOT NULL REFERENCES notification_deliveries(id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL,
    at INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    delivered INTEGER NOT NULL,
    response_code INTEGER,
    error TEXT,
    PRIMARY KEY (delivery_id, attempt)
);
