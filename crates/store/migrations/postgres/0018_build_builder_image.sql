-- The toolchain a build ran in: the builder image's name and the digest it
-- was pinned to (part of the release's lineage). Empty for builds on a
-- Jenkins executor or the unsandboxed runner, and for builds before this.
ALTER TABLE builds ADD COLUMN builder_image TEXT;
ALTER TABLE builds ADD COLUMN builder_digest TEXT;
