-- Who a single-sign-on user is at the provider (issuer and subject), so that
-- a name renamed or reused there never takes over another person's user.
ALTER TABLE users ADD COLUMN external_id TEXT;
CREATE UNIQUE INDEX users_external_id ON users(external_id);
