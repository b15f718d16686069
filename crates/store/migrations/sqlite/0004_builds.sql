-- Build pipeline: stack presets (data, not code), registries, git credentials
-- and Jenkins executors (secrets sealed by the server's secret box), base
-- images with their lineage, and builds with their logs.

CREATE TABLE stacks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    build_command TEXT NOT NULL DEFAULT '',
    artifact_paths TEXT NOT NULL DEFAULT '[]',
    image_dir TEXT NOT NULL DEFAULT '/app',
    entrypoint TEXT NOT NULL DEFAULT '[]',
    cmd TEXT NOT NULL DEFAULT '[]',
    env TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

INSERT INTO stacks (name, description, build_command, artifact_paths, image_dir, entrypoint, cmd, env, created_at, updated_at) VALUES
 ('java-maven', 'Maven package; runs the jar with the JDK of the base image', 'mvn -B -q -DskipTests -Dmaven.repo.local="$PRISM_CACHE_DIR/m2" package', '["target/*.jar"]', '/app', '[]', '["sh","-c","exec java $JAVA_OPTS -jar /app/target/*.jar"]', '{}', 0, 0),
 ('node', 'npm install of production dependencies; runs index.js with the Node.js of the base image', 'npm install --omit=dev --no-audit --no-fund --cache "$PRISM_CACHE_DIR/npm"', '["."]', '/app', '[]', '["node","index.js"]', '{"NODE_ENV":"production"}', 0, 0),
 ('python', 'pip install of requirements.txt into deps/; runs main.py with the Python of the base image', 'pip install --no-cache-dir --target deps -r requirements.txt', '["."]', '/app', '[]', '["python3","main.py"]', '{"PYTHONPATH":"/app/deps"}', 0, 0),
 ('static', 'Static files, served by the base image''s web server', '', '["."]', '/app', '[]', '["httpd","-f","-p","8080","-h","/app"]', '{}', 0, 0),
 ('generic', 'Any build command; artifacts and entrypoint as the application sets them', '', '[]', '/app', '[]', '[]', '{}', 0, 0);

CREATE TABLE registries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    host TEXT NOT NULL,
    insecure_http INTEGER NOT NULL DEFAULT 0,
    username TEXT,
    password_enc BLOB,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE git_credentials (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    username TEXT NOT NULL,
    password_enc BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE executors (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    url TEXT NOT NULL,
    job TEXT NOT NULL,
    username TEXT NOT NULL,
    token_enc BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- tier 1: public base (from a root filesystem tarball, or an existing image);
-- tier 2: runtime base on a tier 1 parent. Application images (tier 3) are builds.
CREATE TABLE base_images (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    tier INTEGER NOT NULL,
    parent_id INTEGER REFERENCES base_images(id),
    registry_id INTEGER REFERENCES registries(id),
    repository TEXT NOT NULL,
    tag TEXT NOT NULL,
    recipe TEXT NOT NULL DEFAULT '{}',
    digest TEXT,
    parent_digest TEXT,
    built_at INTEGER,
    build_state TEXT NOT NULL DEFAULT 'never',
    build_error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE base_image_versions (
    base_id INTEGER NOT NULL REFERENCES base_images(id) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    parent_digest TEXT,
    built_at INTEGER NOT NULL,
    PRIMARY KEY (base_id, digest)
);

CREATE TABLE builds (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    release_id INTEGER NOT NULL REFERENCES releases(id),
    app_id INTEGER NOT NULL REFERENCES applications(id),
    state TEXT NOT NULL,
    executor TEXT NOT NULL,
    settings TEXT NOT NULL,
    commit_sha TEXT,
    image_ref TEXT,
    image_digest TEXT,
    layer_digest TEXT,
    base_image_id INTEGER REFERENCES base_images(id),
    base_digest TEXT,
    bytes_uploaded INTEGER,
    external_url TEXT,
    failure_kind TEXT,
    error TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    requested_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    updated_at INTEGER NOT NULL
);
CREATE INDEX builds_release ON builds(release_id, id);
CREATE INDEX builds_app ON builds(app_id, id);
CREATE INDEX builds_base ON builds(base_image_id, state);
-- One build in progress per release.
CREATE UNIQUE INDEX builds_one_active ON builds(release_id)
    WHERE state IN ('queued', 'checkout', 'building', 'pushing');

CREATE TABLE build_logs (
    build_id INTEGER NOT NULL REFERENCES builds(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    stream TEXT NOT NULL,
    line TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (build_id, seq)
);
