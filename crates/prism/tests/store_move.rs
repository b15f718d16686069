//! Moving engines (issue 18 item 4): a store filled through the API on
//! SQLite (users and members, credentials, an address policy, a real build
//! with its log, releases with their history, a deploy with its events and
//! approvals, the audit log) is backed up with `prism admin backup` while it
//! serves, restored into PostgreSQL with `prism admin restore`, served, then
//! backed up again and restored into SQLite. Each server answers every read
//! exactly as the first did (ids and timestamps included), an API token made
//! on the first still works on the others, sealed credentials still open
//! (a build pushes with them), and new records continue after the moved ids.
//!
//! The deploy awaiting review is recorded through the store as the deploy
//! job records it (planning needs a cluster; the review flow does not), as in
//! the API suite's governance tests.

use std::path::Path;
use std::time::{Duration, Instant};

use prism_domain::{DeployEvent, DeployKind, DeployState, ReleaseId};
use prism_store::deploys::{self, NewDeploy};
use prism_test_support::git as git_support;
use prism_test_support::process::clean_command;
use prism_test_support::registry as registry_support;
use prism_test_support::{Backend, TempDir, TestApp, TestDb};
use reqwest::Method;
use serde_json::{json, Value};

fn admin(args: &[&str], db: &TestDb) {
    let mut cmd = clean_command();
    cmd.arg("admin").args(args).arg("--data-dir").arg(db.dir());
    if let Some(url) = db.server_url() {
        cmd.arg("--database-url").arg(url);
    }
    let out = cmd.output().expect("prism admin");
    assert!(
        out.status.success(),
        "prism admin {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn repo(root: &Path) {
    let work = root.join("site-work");
    std::fs::create_dir_all(&work).unwrap();
    git_support::git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("index.html"), "<h1>moved</h1>\n").unwrap();
    git_support::git(&work, &["add", "-A"]);
    git_support::git(&work, &["commit", "-q", "-m", "one"]);
    git_support::git(root, &["clone", "-q", "--bare", "site-work", "site.git"]);
}

async fn wait_for(app: &TestApp, path: &str, field: &str, done: &[&str]) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let v = app.ok(Method::GET, path, &app.admin, None).await;
        if done.contains(&v[field].as_str().unwrap_or("")) {
            return v;
        }
        assert!(Instant::now() < deadline, "{path} never reached {done:?}: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Builds a release of `web` through the API and returns (release, build) ids
/// once the build succeeded.
async fn build(app: &TestApp, token: &str, note: &str) -> (String, i64) {
    let created = app
        .ok(
            Method::POST,
            "/api/v1/releases",
            token,
            Some(json!({"application": "web", "git_ref": "main", "change_note": note, "build": true})),
        )
        .await;
    let bid = created["build"]["id"].as_i64().unwrap();
    let b = wait_for(
        app,
        &format!("/api/v1/builds/{bid}"),
        "state",
        &["succeeded", "failed", "cancelled"],
    )
    .await;
    assert_eq!(b["state"], "succeeded", "{b}");
    (created["id"].as_str().unwrap().to_owned(), bid)
}

/// Everything a person reads through the API, as the admin sees it.
async fn snapshot(app: &TestApp, token: &str, releases: &[String], build: i64, deploy: i64) -> Value {
    let get = |path: String| async move {
        let (s, v) = app.get(&path, token).await;
        assert!(s.is_success(), "{path}: {s} {v}");
        v
    };
    let mut out = serde_json::Map::new();
    for path in [
        "/api/v1/projects",
        "/api/v1/projects/shop/members",
        "/api/v1/applications",
        "/api/v1/applications/web/settings",
        "/api/v1/environments",
        "/api/v1/registries",
        "/api/v1/git-credentials",
        "/api/v1/address-policy",
        "/api/v1/releases",
        "/api/v1/builds",
        "/api/v1/deploys",
        "/api/v1/projects/shop/templates",
    ] {
        out.insert(path.into(), get(path.to_string()).await);
    }
    for id in releases {
        out.insert(format!("release {id}"), get(format!("/api/v1/releases/{id}")).await);
        out.insert(
            format!("history {id}"),
            get(format!("/api/v1/releases/{id}/history")).await,
        );
    }
    out.insert("build".into(), get(format!("/api/v1/builds/{build}")).await);
    out.insert("build log".into(), get(format!("/api/v1/builds/{build}/log")).await);
    out.insert("deploy".into(), get(format!("/api/v1/deploys/{deploy}")).await);
    out.insert(
        "deploy events".into(),
        get(format!("/api/v1/deploys/{deploy}/events")).await,
    );
    out.insert(
        "approvals".into(),
        get(format!("/api/v1/deploys/{deploy}/approvals")).await,
    );
    for user in ["dev", "ops"] {
        out.insert(format!("user {user}"), get(format!("/api/v1/users/{user}")).await);
    }
    Value::Object(out)
}

/// The audit entries up to and including `last_id` (a server that starts on a
/// moved store adds its own after them: the admin's login).
async fn audit_until(app: &TestApp, last_id: i64) -> Vec<Value> {
    let all = app.ok(Method::GET, "/api/v1/audit?limit=500", &app.admin, None).await;
    let list = all
        .get("entries")
        .unwrap_or(&all)
        .as_array()
        .expect("audit entries")
        .clone();
    let mut kept: Vec<Value> = list
        .into_iter()
        .filter(|e| e["id"].as_i64().unwrap() <= last_id)
        .collect();
    kept.sort_by_key(|e| e["id"].as_i64());
    kept
}

async fn last_audit_id(app: &TestApp) -> i64 {
    let all = app.ok(Method::GET, "/api/v1/audit?limit=500", &app.admin, None).await;
    let list = all.get("entries").unwrap_or(&all).as_array().unwrap().clone();
    list.iter().map(|e| e["id"].as_i64().unwrap()).max().unwrap()
}

/// Restores `archive` into a new store of `backend` whose data dir holds the
/// source's sealing key, and serves it.
async fn restore_and_serve(archive: &Path, key: &Path, backend: Backend) -> TestApp {
    let db = TestDb::start(backend).await;
    std::fs::copy(key, db.dir().join("secret.key")).unwrap();
    let archive = archive.to_str().unwrap().to_owned();
    let db = tokio::task::spawn_blocking(move || {
        admin(&["restore", "--from", &archive], &db);
        db
    })
    .await
    .unwrap();
    TestApp::on(db).await
}

async fn backup(app: &TestApp, to: &Path) {
    let to = to.to_str().unwrap().to_owned();
    let dir = app.db().dir().to_path_buf();
    let url = app.db().server_url();
    tokio::task::spawn_blocking(move || {
        let mut cmd = clean_command();
        cmd.args(["admin", "backup", "--to", &to, "--data-dir"]).arg(&dir);
        if let Some(url) = url {
            cmd.arg("--database-url").arg(url);
        }
        let out = cmd.output().expect("prism admin backup");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_filled_through_the_api_moves_sqlite_to_postgresql_and_back_and_reads_the_same() {
    let tmp = TempDir::new("store-move");
    let a = TestApp::spawn(Backend::Sqlite).await;

    // Fill through the API.
    let sources = a.data_dir.join("base-sources");
    std::fs::create_dir_all(&sources).unwrap();
    registry_support::busybox_rootfs(&sources);
    let registry = registry_support::TestRegistry::start(Some(("ci", "registry-secret-1")));
    let git_root = tmp.path().join("git");
    std::fs::create_dir_all(&git_root).unwrap();
    repo(&git_root);
    let daemon = git_support::GitDaemon::start(&git_root).await;
    a.ok(
        Method::PUT,
        "/api/v1/registries/main",
        &a.admin,
        Some(
            json!({"host": format!("127.0.0.1:{}", registry.port), "insecure_http": true,
                    "username": "ci", "password": "registry-secret-1", "all_projects": true}),
        ),
    )
    .await;
    a.ok(
        Method::PUT,
        "/api/v1/git-credentials/site",
        &a.admin,
        Some(json!({"username": "git", "password": "git-secret-1", "host": "git.example:3000", "projects": []})),
    )
    .await;
    a.ok(
        Method::PUT,
        "/api/v1/address-policy",
        &a.admin,
        Some(json!({"allowed": [], "denied": ["10.0.0.0/8"]})),
    )
    .await;
    a.ok(Method::POST, "/api/v1/base-images", &a.admin,
        Some(json!({"name": "busybox", "tier": 1, "registry": "main", "repository": "base/busybox", "recipe": {"rootfs": "rootfs.tar"}}))).await;
    wait_for(&a, "/api/v1/base-images/busybox", "build_state", &["succeeded"]).await;
    a.project_with_app("shop", "web").await;
    let dev = a.user("dev", Some("shop"), &["developer"]).await;
    let ops = a.user("ops", Some("shop"), &["operator"]).await;
    a.ok(
        Method::PATCH,
        "/api/v1/applications/web",
        &a.admin,
        Some(json!({
            "git_url": daemon.url("site.git"),
            "build_settings": {"stack": "static", "base_image": "busybox", "registry": "main", "build_command": "ls"}
        })),
    )
    .await;
    let (built, build_id) = build(&a, &dev, "first, 第一 ✓").await;
    let mut releases = vec![built.clone()];
    for note in ["second", "third"] {
        let r = a
            .ok(
                Method::POST,
                "/api/v1/releases",
                &dev,
                Some(json!({"application": "web", "git_ref": "main", "change_note": note})),
            )
            .await;
        releases.push(r["id"].as_str().unwrap().to_owned());
    }
    a.act(&built, "promote", &a.admin, json!({"environment": "fat"})).await;
    a.act(&built, "deploy", &a.admin, json!({"environment": "fat"})).await;
    let deploy_id = {
        let mut c = a.store.conn().await.unwrap();
        let web = prism_store::apps::by_name(&mut c, "web").await.unwrap();
        let fat = prism_store::environments::by_name(&mut c, "fat").await.unwrap();
        let d = deploys::create(
            &mut c,
            NewDeploy {
                release: ReleaseId::parse("id", &built).unwrap(),
                app_id: web.id,
                env_id: fat.id,
                kind: DeployKind::Deploy,
                requested_by: "dev",
                rollback_of: None,
                manifests: Some(&json!([])),
            },
        )
        .await
        .unwrap();
        let planned = DeployEvent::Planned { review: true };
        assert!(deploys::advance(&mut c, d.id, DeployState::Planning, planned)
            .await
            .unwrap());
        d.id
    };
    a.ok(
        Method::PUT,
        "/api/v1/environments/fat/approval-policy",
        &a.admin,
        Some(json!({"policy": {"required": 2, "roles": ["operator"]}})),
    )
    .await;
    a.ok(
        Method::POST,
        &format!("/api/v1/deploys/{deploy_id}/approve"),
        &ops,
        Some(json!({"comment": "looks right"})),
    )
    .await;

    let before = snapshot(&a, &a.admin, &releases, build_id, deploy_id).await;
    let last_audit = last_audit_id(&a).await;
    let audit_before = audit_until(&a, last_audit).await;
    assert!(
        audit_before.len() > 10,
        "the fill left an audit trail: {audit_before:?}"
    );
    // The snapshot holds what the test filled (so equality below means something).
    let log = before["build log"].as_array().expect("log lines");
    assert!(log.len() > 3, "{log:?}");
    assert!(
        before["approvals"].to_string().contains("looks right"),
        "{}",
        before["approvals"]
    );
    assert_eq!(before["/api/v1/releases"]["items"].as_array().map(Vec::len), Some(3));

    // SQLite -> PostgreSQL, backed up while the first server serves.
    let key = a.data_dir.join("secret.key");
    let first = tmp.path().join("first.backup");
    backup(&a, &first).await;
    let b = restore_and_serve(&first, &key, Backend::Postgres).await;
    assert_eq!(snapshot(&b, &a.admin, &releases, build_id, deploy_id).await, before);
    assert_eq!(audit_until(&b, last_audit).await, audit_before);
    let me = b.ok(Method::GET, "/api/v1/me", &dev, None).await;
    assert!(
        me.to_string().contains(r#""username":"dev""#),
        "a token made on SQLite works on PostgreSQL: {me}"
    );

    // PostgreSQL -> SQLite.
    let second = tmp.path().join("second.backup");
    backup(&b, &second).await;
    let c = restore_and_serve(&second, &key, Backend::Sqlite).await;
    assert_eq!(snapshot(&c, &a.admin, &releases, build_id, deploy_id).await, before);
    assert_eq!(audit_until(&c, last_audit).await, audit_before);

    // The moved credentials still open (a build pulls and pushes with the
    // registry password), and new records continue after the moved ids.
    for app in [&b, &c] {
        let (rel, bid) = build(app, &dev, "after the move").await;
        let last = ReleaseId::parse("id", releases.last().unwrap()).unwrap();
        let new = ReleaseId::parse("id", &rel).unwrap();
        assert_eq!(new.seq(), last.seq() + 1, "{rel} after {last}");
        assert_eq!(bid, build_id + 1);
    }
    a.stop().await;
    b.stop().await;
    c.stop().await;
}
