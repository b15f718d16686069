//! Builds through the API on both stores: a real git server (`git daemon`),
//! a real registry, a base built from a root filesystem tarball; the build's
//! log (JSON, text and live stream), its record, the release it moves, the
//! lineage queries and rebuild releases; refusals leave nothing behind.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::both_backends;
use crate::harness::TestApp;

use prism_test_support::git as git_support;
use prism_test_support::registry as registry_support;

fn repo(root: &std::path::Path) -> String {
    let work = root.join("site-work");
    std::fs::create_dir_all(work.join("css")).unwrap();
    git_support::git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("index.html"), "<h1>hi</h1>\n").unwrap();
    std::fs::write(work.join("css/a.css"), "h1 {}\n").unwrap();
    git_support::git(&work, &["add", "-A"]);
    git_support::git(&work, &["commit", "-q", "-m", "one"]);
    let sha = git_support::git(&work, &["rev-parse", "HEAD"]);
    git_support::git(root, &["clone", "-q", "--bare", "site-work", "site.git"]);
    sha
}

async fn wait_until(app: &TestApp, path: &str, field: &str, done: &[&str]) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (s, v) = app.get(path, &app.admin).await;
        assert_eq!(s, StatusCode::OK, "{path}: {v}");
        if done.contains(&v[field].as_str().unwrap_or("")) {
            return v;
        }
        assert!(Instant::now() < deadline, "{path} never reached {done:?}: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

both_backends!(builds_run_log_and_track_lineage, |app| {
    let tmp = tempfile::tempdir().unwrap();
    let sources = app.data_dir.join("base-sources");
    std::fs::create_dir_all(&sources).unwrap();
    registry_support::busybox_rootfs(&sources);
    let registry = registry_support::TestRegistry::start(None);
    let git_root = tmp.path().join("git");
    std::fs::create_dir_all(&git_root).unwrap();
    let sha = repo(&git_root);
    let daemon = git_support::GitDaemon::start(&git_root).await;

    app.ok(
        Method::PUT,
        "/api/v1/registries/main",
        &app.admin,
        Some(json!({"host": format!("127.0.0.1:{}", registry.port), "insecure_http": true, "all_projects": true})),
    )
    .await;
    let recipe = |tz: &str| json!({"rootfs": "rootfs.tar", "config": {"env": {"TZ": tz}}});
    app.ok(Method::POST, "/api/v1/base-images", &app.admin,
        Some(json!({"name": "busybox", "tier": 1, "registry": "main", "repository": "base/busybox", "recipe": recipe("UTC")}))).await;
    let base1 = wait_until(
        app,
        "/api/v1/base-images/busybox",
        "build_state",
        &["succeeded", "failed"],
    )
    .await;
    assert_eq!(base1["build_state"], "succeeded", "{base1}");

    app.project_with_app("alpha", "web").await;
    let dev = app.user("dev", Some("alpha"), &["developer"]).await;
    let tess = app.user("tess", Some("alpha"), &["tester"]).await;
    app.ok(
        Method::PATCH,
        "/api/v1/applications/web",
        &app.admin,
        Some(json!({
            "git_url": daemon.url("site.git"),
            "build_settings": {"stack": "static", "base_image": "busybox", "registry": "main", "build_command": "ls"}
        })),
    )
    .await;

    // A tester may not start builds; nothing is recorded.
    let (s, e) = app
        .post(
            "/api/v1/releases",
            &tess,
            json!({"application": "web", "git_ref": "main", "change_note": "x", "build": true}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    assert_eq!(app.count("builds").await, 0);

    let created = app
        .ok(
            Method::POST,
            "/api/v1/releases",
            &dev,
            Some(json!({"application": "web", "git_ref": "main", "change_note": "first", "build": true})),
        )
        .await;
    assert_eq!(created["state"], "building", "{created}");
    let rid = created["id"].as_str().unwrap().to_owned();
    let bid = created["build"]["id"].as_i64().unwrap();
    // A second build of a release that is building is refused.
    let (s, e) = app
        .post(&format!("/api/v1/releases/{rid}/builds"), &dev, json!({}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");

    let b = wait_until(
        app,
        &format!("/api/v1/builds/{bid}"),
        "state",
        &["succeeded", "failed", "cancelled"],
    )
    .await;
    assert_eq!(b["state"], "succeeded", "{b}");
    assert_eq!(b["commit_sha"], sha.as_str());
    assert_eq!(b["base_digest"], base1["digest"]);
    let rel = app
        .ok(Method::GET, &format!("/api/v1/releases/{rid}"), &dev, None)
        .await;
    assert_eq!(rel["state"], "built");
    assert_eq!(rel["image_digest"], b["image_digest"]);
    assert_eq!(
        rel["image_ref"],
        format!("127.0.0.1:{}/alpha/web:{rid}", registry.port).as_str()
    );

    // The log: JSON lines in order, the build command's own output, the permanent text form, the stream.
    let lines = app
        .ok(Method::GET, &format!("/api/v1/builds/{bid}/log"), &tess, None)
        .await;
    let lines = lines.as_array().unwrap();
    let seqs: Vec<i64> = lines.iter().map(|l| l["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (0..seqs.len() as i64).collect::<Vec<_>>());
    assert!(
        lines
            .iter()
            .any(|l| l["stream"] == "stdout" && l["line"] == "index.html"),
        "{lines:?}"
    );
    let later = app
        .ok(
            Method::GET,
            &format!("/api/v1/builds/{bid}/log?after=2&limit=1"),
            &tess,
            None,
        )
        .await;
    assert_eq!(later[0]["seq"], 3);
    let text = app
        .http
        .get(format!("{}/api/v1/builds/{bid}/log.txt", app.base))
        .bearer_auth(&tess)
        .send()
        .await
        .unwrap();
    assert_eq!(text.status(), StatusCode::OK);
    let text = text.text().await.unwrap();
    assert_eq!(text.lines().count(), lines.len());
    let stream = app
        .http
        .get(format!("{}/api/v1/builds/{bid}/stream", app.base))
        .bearer_auth(&tess)
        .send()
        .await
        .unwrap();
    let body = tokio::time::timeout(Duration::from_secs(10), stream.text())
        .await
        .expect("a finished build's stream ends")
        .unwrap();
    assert_eq!(body.matches("event: line").count(), lines.len());
    assert!(body.contains("event: end") && body.contains("\"succeeded\""), "{body}");

    // Lineage: a new base digest leaves web behind; rebuild releases catch up.
    app.ok(
        Method::POST,
        "/api/v1/base-images/busybox/build",
        &app.admin,
        Some(json!({"recipe": recipe("Asia/Shanghai")})),
    )
    .await;
    let base2 = wait_until(
        app,
        "/api/v1/base-images/busybox",
        "build_state",
        &["succeeded", "failed"],
    )
    .await;
    assert_ne!(base2["digest"], base1["digest"]);
    assert_eq!(base2["outdated_applications"][0]["application"], "web", "{base2}");
    assert_eq!(base2["versions"].as_array().unwrap().len(), 2);
    // Another project's member sees the base, but not alpha's applications,
    // releases and commits on it (issue 11 item 4); alpha's own developer does.
    app.ok(
        Method::POST,
        "/api/v1/projects",
        &app.admin,
        Some(json!({"name": "beta"})),
    )
    .await;
    let stranger = app.user("sven", Some("beta"), &["developer"]).await;
    let seen = app
        .ok(Method::GET, "/api/v1/base-images/busybox", &stranger, None)
        .await;
    assert_eq!(seen["digest"], base2["digest"]);
    assert_eq!(seen["outdated_applications"], json!([]), "{seen}");
    let own = app.ok(Method::GET, "/api/v1/base-images/busybox", &dev, None).await;
    assert_eq!(own["outdated_applications"][0]["application"], "web", "{own}");
    let (s, e) = app
        .post("/api/v1/base-images/busybox/rebuild-applications", &dev, json!({}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    let rebuilt = app
        .ok(
            Method::POST,
            "/api/v1/base-images/busybox/rebuild-applications",
            &app.admin,
            None,
        )
        .await;
    let b2 = wait_until(
        app,
        &format!("/api/v1/builds/{}", rebuilt[0]["build"]),
        "state",
        &["succeeded", "failed"],
    )
    .await;
    assert_eq!(b2["state"], "succeeded", "{b2}");
    assert_eq!(b2["base_digest"], base2["digest"]);
    assert_eq!(b2["layer_digest"], b["layer_digest"], "same commit, same layer");
    let base3 = app
        .ok(Method::GET, "/api/v1/base-images/busybox", &app.admin, None)
        .await;
    assert_eq!(base3["outdated_applications"], json!([]));

    // Builds list filters and visibility.
    let listed = app
        .ok(
            Method::GET,
            "/api/v1/builds?application=web&state=succeeded",
            &dev,
            None,
        )
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let outsider = app.user("olga", None, &[]).await;
    let (s, _) = app.get(&format!("/api/v1/builds/{bid}"), &outsider).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(app.ok(Method::GET, "/api/v1/builds", &outsider, None).await, json!([]));

    // An application without build settings: refused naming the field, nothing written.
    app.ok(
        Method::POST,
        "/api/v1/applications",
        &app.admin,
        Some(json!({"project": "alpha", "name": "bare", "git_url": daemon.url("site.git")})),
    )
    .await;
    let r = app
        .ok(
            Method::POST,
            "/api/v1/releases",
            &dev,
            Some(json!({"application": "bare", "git_ref": "main", "change_note": "x"})),
        )
        .await;
    let before = (app.count("builds").await, app.count("jobs").await);
    let (s, e) = app
        .post(
            &format!("/api/v1/releases/{}/builds", r["id"].as_str().unwrap()),
            &dev,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["field"], "build_settings.base_image", "{e}");
    assert_eq!(before, (app.count("builds").await, app.count("jobs").await));
    let r = app
        .ok(
            Method::GET,
            &format!("/api/v1/releases/{}", r["id"].as_str().unwrap()),
            &dev,
            None,
        )
        .await;
    assert_eq!(r["state"], "created");

    // zstd layers, asked for in the build settings: the image pushed is an
    // OCI image whose application layer is tar+zstd (same commit, another
    // layer digest than the gzip one); an unknown compression is refused.
    let (s, e) = app
        .call(
            Method::PATCH,
            "/api/v1/applications/web",
            Some(&app.admin),
            Some(
                json!({"build_settings": {"stack": "static", "base_image": "busybox", "registry": "main",
                "build_command": "ls", "layer_compression": "brotli"}}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert!(e["error"].as_str().unwrap().contains("brotli"), "{e}");
    assert_eq!(e["field"], "build_settings", "{e}");
    app.ok(
        Method::PATCH,
        "/api/v1/applications/web",
        &app.admin,
        Some(
            json!({"build_settings": {"stack": "static", "base_image": "busybox", "registry": "main",
            "build_command": "ls", "layer_compression": "zstd"}}),
        ),
    )
    .await;
    let z = app
        .ok(
            Method::POST,
            "/api/v1/releases",
            &dev,
            Some(json!({"application": "web", "git_ref": "main", "change_note": "zstd", "build": true})),
        )
        .await;
    let zb = wait_until(
        app,
        &format!("/api/v1/builds/{}", z["build"]["id"].as_i64().unwrap()),
        "state",
        &["succeeded", "failed", "cancelled"],
    )
    .await;
    assert_eq!(zb["state"], "succeeded", "{zb}");
    assert_ne!(
        zb["layer_digest"], b["layer_digest"],
        "another compression, another blob"
    );
    let manifest = registry.skopeo_raw_manifest(&format!("alpha/web:{}", z["id"].as_str().unwrap()));
    assert_eq!(
        manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json",
        "{manifest}"
    );
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(
        layers.last().unwrap()["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    assert_eq!(layers.last().unwrap()["digest"], zb["layer_digest"]);
});
