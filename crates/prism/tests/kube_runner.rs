//! Builds on a Kubernetes build runner, end to end on a REAL node
//! (`scripts/k8s/cluster.sh up NAME --node`: kubelet v1.20.2 + containerd +
//! runc beside a real v1.20.2 control plane): the server (in-process, over
//! its API) registers the runner, each build becomes a Job whose pod really
//! runs checkout (Prism's own binary from the executor image Prism built
//! from itself, with the git credential), the build command (in the base
//! image, by digest, without any credential) and package-and-push (Prism's
//! binary again, with the registry credential). The node pulls every image
//! from the test's registry on loopback.
//!
//! One cluster for all cases, in order: registration refusals; a build that
//! produces an image which runs and prints what it should, while its build
//! step, playing hostile, finds no service-account token, no credential and
//! no Prism key; an OOM kill reported with the limit; a build no node can
//! take reported as unschedulable (and queued meanwhile); a cancel that
//! deletes the Job; the reaper removing a lost build's Job and Secret.
//!
//! Most runners are registered with `host_network`: the git server and the
//! registry of the test listen on loopback. One runner is not (case 2d): the
//! node's bridge gets an address (`PRISM_K8S_POD_GATEWAY=1`), a second git
//! server and registry listen there, and a build on the pod network finds
//! neither Prism's API nor PostgreSQL, which listen on the host's loopback.
//! Pods are limited to 1024 processes by the node (kubelet `podPidsLimit`,
//! the only per-pod process limit Kubernetes has): case 2c's fork bomb stops there.
//!
//! Runs by default as root; `PRISM_K8S=0` or `PRISM_K8S_NODE=0` skips it.

use std::process::Command;
use std::time::{Duration, Instant};

use prism_test_support::git::{git, HttpGit};
use prism_test_support::node_cluster::{NodeCluster, NodeOptions};
use prism_test_support::registry::{busybox_rootfs, run_image, TestRegistry};
use prism_test_support::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const GIT_USER: &str = "builder";
const GIT_SECRET: &str = "git-secret-kube-7f3a9c";
const POD_PIDS_LIMIT: usize = 1024;

fn skipped() -> bool {
    match NodeCluster::unavailable() {
        Some(why) => {
            eprintln!("{why}: skipping the Kubernetes runner test");
            true
        }
        None => false,
    }
}

async fn wait_build(app: &TestApp, id: i64, done: &[&str], within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (s, v) = app.get(&format!("/api/v1/builds/{id}"), &app.admin).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        if done.contains(&v["state"].as_str().unwrap_or("")) {
            return v;
        }
        if Instant::now() > deadline {
            panic!("build {id} never reached {done:?}: {v}\n{}", log_text(app, id).await);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn log_text(app: &TestApp, id: i64) -> String {
    let lines = app
        .ok(
            Method::GET,
            &format!("/api/v1/builds/{id}/log?limit=10000"),
            &app.admin,
            None,
        )
        .await;
    lines
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["line"].as_str().unwrap_or("").to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

async fn release(app: &TestApp, settings: Value) -> i64 {
    app.ok(
        Method::PATCH,
        "/api/v1/applications/web",
        &app.admin,
        Some(json!({"build_settings": settings})),
    )
    .await;
    let created = app
        .ok(
            Method::POST,
            "/api/v1/releases",
            &app.admin,
            Some(json!({"application": "web", "git_ref": "main", "change_note": "k8s", "build": true})),
        )
        .await;
    created["build"]["id"].as_i64().expect("a build")
}

fn build_objects(cluster: &NodeCluster, kind: &str, build: i64) -> String {
    cluster.kubectl(&[
        "-n",
        "builds",
        "get",
        kind,
        "-l",
        &format!("prism.io/build={build}"),
        "-o",
        "name",
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builds_run_as_jobs_on_a_real_node() {
    if skipped() {
        return;
    }
    let t0 = Instant::now();
    // The executor image carries the `prism` binary (the test process is not it).
    std::env::set_var("PRISM_EXECUTOR_BINARY", env!("CARGO_BIN_EXE_prism"));
    let registry = TestRegistry::start(None);
    let registry_host = format!("127.0.0.1:{}", registry.port);
    let cluster = NodeCluster::up(
        "kr",
        &NodeOptions {
            registry: Some(registry_host.clone()),
            pod_gateway: true,
            pod_pids_limit: Some(POD_PIDS_LIMIT),
            pod_resolv_conf: None,
        },
    );
    cluster.kubectl(&["create", "namespace", "builds"]);

    let app = TestApp::new().await;
    let tmp = tempfile::tempdir().unwrap();
    // The repository, behind Basic auth: only the checkout step has the credential.
    let work = tmp.path().join("site-work");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("index.html"), "<h1>from git</h1>\n").unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "one"]);
    let sha = git(&work, &["rev-parse", "HEAD"]);
    git(tmp.path(), &["clone", "-q", "--bare", "site-work", "site.git"]);
    let git_server = HttpGit::start(tmp.path(), Some((GIT_USER, GIT_SECRET))).await;

    let sources = app.data_dir.join("base-sources");
    std::fs::create_dir_all(&sources).unwrap();
    busybox_rootfs(&sources);
    app.ok(
        Method::PUT,
        "/api/v1/registries/main",
        &app.admin,
        Some(json!({"host": registry_host, "insecure_http": true, "all_projects": true})),
    )
    .await;
    app.ok(Method::POST, "/api/v1/base-images", &app.admin,
        Some(json!({"name": "busybox", "tier": 1, "registry": "main", "repository": "base/busybox", "recipe": {"rootfs": "rootfs.tar"}}))).await;
    app.ok(
        Method::PUT,
        "/api/v1/git-credentials/site",
        &app.admin,
        Some(json!({"username": GIT_USER, "password": GIT_SECRET,
                    "host": git_server.addr.to_string(), "all_projects": true})),
    )
    .await;
    let kubeconfig = std::fs::read_to_string(&cluster.kubeconfig).unwrap();
    app.ok(
        Method::POST,
        "/api/v1/clusters",
        &app.admin,
        Some(json!({"name": "build", "kubeconfig": kubeconfig})),
    )
    .await;

    app.project_with_app("alpha", "web").await;

    // 1. Registration: the cluster must be registered, the namespace a DNS label.
    for (body, field) in [
        (json!({"cluster": "nope", "namespace": "builds"}), "kubernetes.cluster"),
        (
            json!({"cluster": "build", "namespace": "Builds!"}),
            "kubernetes.namespace",
        ),
        (json!({"cluster": "build"}), "kubernetes"),
    ] {
        let (s, e) = app
            .post(
                "/api/v1/executors",
                &app.admin,
                json!({"name": "bad", "kind": "kubernetes", "kubernetes": body}),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert_eq!(e["field"], field, "{e}");
    }
    let runner = |extra: Value| {
        let mut k = json!({"cluster": "build", "namespace": "builds", "host_network": true, "ttl_seconds": 300});
        k.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        k
    };
    let saved = app
        .ok(
            Method::POST,
            "/api/v1/executors",
            &app.admin,
            Some(json!({"name": "k8s", "kind": "kubernetes", "kubernetes": runner(json!({})), "projects": ["alpha"]})),
        )
        .await;
    assert_eq!(saved["settings"]["namespace"], "builds", "{saved}");
    // The second runner through the CLI.
    let out = Command::new(env!("CARGO_BIN_EXE_prism"))
        .args([
            "executor",
            "create-kubernetes",
            "nowhere",
            "--cluster",
            "build",
            "--namespace",
            "builds",
        ])
        .args([
            "--node-selector",
            "pool=nobody",
            "--queue-timeout-seconds",
            "6",
            "--ttl-seconds",
            "300",
            "--cache-size",
            "2Gi",
            "--cache-access-mode",
            "ReadWriteMany",
        ])
        .args(["--host-network", "--all-projects"])
        .env("PRISM_CONFIG_DIR", tmp.path().join("cli"))
        .env("PRISM_SERVER", &app.base)
        .env("PRISM_TOKEN", &app.admin)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed = app.ok(Method::GET, "/api/v1/executors", &app.admin, None).await;
    let nowhere = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "nowhere")
        .cloned();
    assert_eq!(
        nowhere.map(|e| e["settings"].clone()),
        Some(
            json!({"cluster": "build", "namespace": "builds", "node_selector": {"pool": "nobody"},
            "ttl_seconds": 300, "queue_timeout_seconds": 6, "host_network": true,
            "cache_size": "2Gi", "cache_access_mode": "ReadWriteMany"})
        )
    );
    assert_eq!(app.count("executors").await, 2, "the refused ones left nothing");

    // The console's form (admin build setup page): a bad namespace is named, a good runner listed.
    let login: reqwest::Response = app
        .http
        .post(format!("{}/api/v1/auth/login", app.base))
        .json(&json!({"username": "admin", "password": prism_test_support::app::ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    let cookie = login
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("prism_session="))
        .expect("session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let csrf = login.json::<Value>().await.unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let post_form = |fields: Vec<(&'static str, &'static str)>| {
        let mut form = vec![("csrf", csrf.clone()), ("kind", "kubernetes".to_string())];
        form.extend(fields.into_iter().map(|(k, v)| (k, v.to_string())));
        app.http
            .post(format!("{}/admin/executors", app.base))
            .header(reqwest::header::COOKIE, &cookie)
            .form(&form)
            .send()
    };
    let bad = post_form(vec![
        ("name", "console-bad"),
        ("cluster", "build"),
        ("namespace", "Bad_NS"),
    ])
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert!(bad.contains("kubernetes.namespace"), "{bad}");
    let resp = post_form(vec![
        ("name", "console"),
        ("cluster", "build"),
        ("namespace", "builds"),
        ("node_selector", "pool=builds, zone=a"),
        ("ttl_seconds", "120"),
        ("host_network", "on"),
        ("cache_size", "3Gi"),
        ("cache_storage_class", "local-disk"),
        ("cache_access_mode", ""),
    ])
    .await
    .unwrap();
    assert!(
        resp.status().is_success() || resp.status().is_redirection(),
        "{}",
        resp.status()
    );
    let listed = app.ok(Method::GET, "/api/v1/executors", &app.admin, None).await;
    let console = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "console")
        .cloned();
    assert_eq!(
        console.map(|e| e["settings"].clone()),
        Some(
            json!({"cluster": "build", "namespace": "builds", "node_selector": {"pool": "builds", "zone": "a"},
            "ttl_seconds": 120, "host_network": true, "cache_size": "3Gi", "cache_storage_class": "local-disk"})
        )
    );
    assert!(!listed.as_array().unwrap().iter().any(|e| e["name"] == "console-bad"));
    let page = app
        .http
        .get(format!("{}/admin/build-setup", app.base))
        .header(reqwest::header::COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("kube-runner-form") && page.contains(r#"data-executor="console""#),
        "{page}"
    );

    // The base image (Prism builds it) is also the builder image.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let b = app
            .ok(Method::GET, "/api/v1/base-images/busybox", &app.admin, None)
            .await;
        if b["build_state"] == "succeeded" {
            break;
        }
        assert!(b["build_state"] != "failed" && Instant::now() < deadline, "{b}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.ok(
        Method::PATCH,
        "/api/v1/applications/web",
        &app.admin,
        Some(json!({"git_url": git_server.url("site.git")})),
    )
    .await;
    let settings = |executor: &str, command: &str, extra: Value| {
        let mut s = json!({"stack": "static", "base_image": "busybox", "registry": "main", "executor": executor,
            "git_credential": "site", "build_command": command, "artifact_paths": ["."],
            "cmd": ["cat", "/app/index.html"]});
        s.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        s
    };

    // 2. A build that works, with a hostile build step: it finds no token,
    //    no credential in its environment or any process's, no Prism key.
    let key = app.data_dir.join("secret.key");
    let hostile = format!(
        "echo '<h1>built on a node</h1>' > index.html; \
         ls /var/run/secrets 2>&1 | sed 's/^/SA: /'; \
         echo \"ENV: $(env | grep -ci -e password -e registr -e token)\"; \
         echo \"PROC: $(cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -ci -e password -e registr)\"; \
         cat {} 2>&1 | sed 's/^/KEY: /'; \
         echo \"SECRETS: $(grep -rl {} /workspace /etc /tmp /var /root /bin 2>/dev/null | wc -l)\"; \
         echo \"API: $(echo | nc -w 3 127.0.0.1 {} 2>&1 >/dev/null; echo rc=$?)\"",
        key.display(),
        &GIT_SECRET[..10],
        app.base.rsplit(':').next().unwrap(),
    );
    let id = release(&app, settings("k8s", &hostile, json!({}))).await;
    let b = wait_build(
        &app,
        id,
        &["succeeded", "failed", "cancelled"],
        Duration::from_secs(120),
    )
    .await;
    let log = log_text(&app, id).await;
    assert_eq!(b["state"], "succeeded", "{b}\n{log}");
    assert_eq!(b["commit_sha"], sha.as_str());
    assert!(
        log.contains("SA: ls: /var/run/secrets: No such file or directory"),
        "{log}"
    );
    assert!(log.contains("ENV: 0") && log.contains("PROC: 0"), "{log}");
    assert!(
        log.contains(&format!("KEY: cat: can't open '{}'", key.display())),
        "{log}"
    );
    assert!(log.contains("SECRETS: 0"), "{log}");
    assert!(
        log.contains("API: rc=0"),
        "a host-network pod shares the host's loopback (why only an admin may choose it): {log}"
    );
    assert!(!log.contains(GIT_SECRET), "{log}");
    assert!(
        log.contains("step checkout started") && log.contains("step package started"),
        "{log}"
    );
    let image = format!(
        "{}@{}",
        b["image_ref"].as_str().unwrap().rsplit_once(':').unwrap().0,
        b["image_digest"].as_str().unwrap()
    );
    let out = run_image(&image, tmp.path(), None);
    assert_eq!(out.trim(), "<h1>built on a node</h1>");
    assert_eq!(
        build_objects(&cluster, "secrets", id).trim(),
        "",
        "the per-build Secret is deleted"
    );
    eprintln!("built on the node after {:.1} s", t0.elapsed().as_secs_f64());

    // 2b. A dependency cache volume per application: the first build makes the
    //     claim and fills it, the second finds what the first left. The test
    //     cluster has no provisioner: a hostPath volume of the claim's class waits.
    let cache_dir = tmp.path().join("cache-volume");
    cluster
        .try_host_path_volume(
            &format!("kr-cache-{}", std::process::id()),
            "prism-test-cache",
            "1Gi",
            &cache_dir,
        )
        .unwrap();
    app.ok(
        Method::POST,
        "/api/v1/executors",
        &app.admin,
        Some(json!({"name": "cached", "kind": "kubernetes", "all_projects": true,
            "kubernetes": runner(json!({"cache_size": "1Gi", "cache_storage_class": "prism-test-cache"}))})),
    )
    .await;
    let cached_build = "if [ -f \"$npm_config_cache/marker\" ]; then echo \"CACHE: hit $(cat $npm_config_cache/marker)\"; \
         else mkdir -p \"$npm_config_cache\" && echo filled-by-$PRISM_RELEASE > \"$npm_config_cache/marker\" && echo CACHE: miss; fi; \
         echo \"MAVEN_OPTS=$MAVEN_OPTS\"";
    let mut releases = vec![];
    for round in 0..2 {
        let id = release(&app, settings("cached", cached_build, json!({}))).await;
        let b = wait_build(
            &app,
            id,
            &["succeeded", "failed", "cancelled"],
            Duration::from_secs(120),
        )
        .await;
        let log = log_text(&app, id).await;
        assert_eq!(b["state"], "succeeded", "{b}\n{log}");
        if round == 0 {
            assert!(
                log.contains("cache volume builds/prism-cache-web made (1Gi, ReadWriteOnce)"),
                "{log}"
            );
            assert!(log.contains("CACHE: miss"), "{log}");
        } else {
            assert!(
                log.contains("cache volume builds/prism-cache-web kept from earlier builds"),
                "{log}"
            );
            assert!(
                log.contains(&format!("CACHE: hit filled-by-{}", releases[0])),
                "the second build finds the first one's cache: {log}"
            );
        }
        assert!(log.contains("MAVEN_OPTS=-Dmaven.repo.local=/cache/maven"), "{log}");
        releases.push(b["release"].as_str().unwrap().to_string());
    }
    assert_eq!(
        std::fs::read_to_string(cache_dir.join("npm/marker")).unwrap().trim(),
        format!("filled-by-{}", releases[0]),
        "the cache is on the volume, not in the build's workspace"
    );
    let claim = cluster.kubectl(&["-n", "builds", "get", "pvc", "prism-cache-web", "-o", "json"]);
    let claim: Value = serde_json::from_str(&claim).unwrap();
    assert_eq!(claim["metadata"]["labels"]["prism.io/application"], "web", "{claim}");
    assert_eq!(claim["status"]["phase"], "Bound", "{claim}");

    // 2c. A fork bomb: the node's per-pod process limit stops it, the build fails
    //     with the shell's "can't fork" in its log, and the node takes the next builds.
    let bomb = "( i=0; while [ $i -lt 3000 ]; do sleep 120 & i=$((i+1)); done ) 2>/dev/null; \
         set -- /proc/[0-9]*; echo \"PIDS: $#\"; f() { f | f & }; f";
    let id = release(&app, settings("k8s", bomb, json!({"timeout_seconds": 60}))).await;
    let b = wait_build(&app, id, &["succeeded", "failed", "cancelled"], Duration::from_secs(90)).await;
    let log = log_text(&app, id).await;
    assert_eq!(b["state"], "failed", "{b}\n{log}");
    assert_ne!(
        b["failure_kind"], "timeout",
        "it ended at the limit, not the deadline: {b}"
    );
    let pids: usize = log
        .lines()
        .find_map(|l| l.strip_prefix("PIDS: ")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no PIDS line: {log}"));
    assert!(
        (POD_PIDS_LIMIT / 2..=POD_PIDS_LIMIT).contains(&pids),
        "{pids} processes in the build container: the pod limit is {POD_PIDS_LIMIT}\n{log}"
    );
    assert!(log.contains("can't fork"), "{log}");
    eprintln!("fork bomb stopped at {pids} processes");

    // 2d. A runner on the pod network: the checkout and the push reach the git
    //     server and registry on the node's bridge address, while the build step
    //     reaches neither Prism's API nor PostgreSQL (both on the host's loopback),
    //     on loopback or on the bridge address.
    let gw = cluster.gateway();
    let pod_registry = TestRegistry::start_on(gw, None);
    cluster.trust_registry(&pod_registry.host());
    let pod_git = HttpGit::start_on(gw, tmp.path(), None).await;
    app.ok(
        Method::PUT,
        "/api/v1/registries/pods",
        &app.admin,
        Some(json!({"host": pod_registry.host(), "insecure_http": true, "all_projects": true})),
    )
    .await;
    app.ok(Method::POST, "/api/v1/base-images", &app.admin,
        Some(json!({"name": "busybox-pods", "tier": 1, "registry": "pods", "repository": "base/busybox", "recipe": {"rootfs": "rootfs.tar"}}))).await;
    app.ok(
        Method::POST,
        "/api/v1/executors",
        &app.admin,
        Some(json!({"name": "podnet", "kind": "kubernetes", "all_projects": true,
            "kubernetes": {"cluster": "build", "namespace": "builds", "ttl_seconds": 300}})),
    )
    .await;
    let port = app.base.rsplit(':').next().unwrap().to_string();
    let probes = [
        ("API_LOOPBACK", format!("127.0.0.1:{port}")),
        ("API_GATEWAY", format!("{gw}:{port}")),
        ("PG_LOOPBACK", "127.0.0.1:5432".to_string()),
        ("PG_GATEWAY", format!("{gw}:5432")),
    ];
    let probe_cmd: String = probes
        .iter()
        .map(|(name, at)| {
            let (host, port) = at.rsplit_once(':').unwrap();
            // (busybox's static wget crashes in name lookup; nc connects only.)
            format!("echo \"{name}: $(echo | nc -w 3 {host} {port} 2>&1 >/dev/null; echo rc=$?)\"; ")
        })
        .collect();
    app.ok(
        Method::POST,
        "/api/v1/applications",
        &app.admin,
        Some(json!({"project": "alpha", "name": "net", "git_url": pod_git.url("site.git"),
            "build_settings": {"stack": "static", "base_image": "busybox-pods", "registry": "pods", "executor": "podnet",
                "build_command": format!("echo '<h1>pod network</h1>' > index.html; {probe_cmd}"),
                "artifact_paths": ["."], "cmd": ["cat", "/app/index.html"]}})),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while app
        .ok(Method::GET, "/api/v1/base-images/busybox-pods", &app.admin, None)
        .await["build_state"]
        != "succeeded"
    {
        assert!(Instant::now() < deadline, "the pod registry's base never built");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let created = app
        .ok(
            Method::POST,
            "/api/v1/releases",
            &app.admin,
            Some(json!({"application": "net", "git_ref": "main", "change_note": "pod network", "build": true})),
        )
        .await;
    let id = created["build"]["id"].as_i64().unwrap();
    let b = wait_build(
        &app,
        id,
        &["succeeded", "failed", "cancelled"],
        Duration::from_secs(120),
    )
    .await;
    let log = log_text(&app, id).await;
    assert_eq!(b["state"], "succeeded", "{b}\n{log}");
    for (name, at) in &probes {
        let line = log
            .lines()
            .find(|l| l.starts_with(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} probe: {log}"));
        assert!(
            line.contains("can't connect to remote host") && !line.contains("rc=0"),
            "the build step reached {at} ({name}): {line}"
        );
    }
    let image = format!(
        "{}@{}",
        b["image_ref"].as_str().unwrap().rsplit_once(':').unwrap().0,
        b["image_digest"].as_str().unwrap()
    );
    assert!(image.starts_with(&pod_registry.host()), "{image}");
    assert_eq!(run_image(&image, tmp.path(), None).trim(), "<h1>pod network</h1>");
    eprintln!("pod-network build after {:.1} s", t0.elapsed().as_secs_f64());

    // 3. Out of memory: OOMKilled, with the limit.
    let id = release(
        &app,
        settings(
            "k8s",
            // dd is not PID 1: the shell outlives the kill by two seconds, so containerd has
            // its OOM event before the exit (with dd as PID 1 it sometimes had it after).
            "dd if=/dev/zero of=/dev/null bs=64M count=1; status=$?; sleep 2; exit $status",
            json!({"memory_limit": "16Mi"}),
        ),
    )
    .await;
    let b = wait_build(&app, id, &["succeeded", "failed", "cancelled"], Duration::from_secs(90)).await;
    assert_eq!(b["state"], "failed", "{b}");
    let error = b["error"].as_str().unwrap_or_default();
    assert!(error.contains("OOMKilled") && error.contains("16Mi"), "{b}");

    // 3b. A builder image the registry no longer has: the pull failure ends the build
    //     at once, with the registry's message (its record is pointed at a digest
    //     nobody pushed, as when a registry lost the image).
    app.ok(Method::POST, "/api/v1/base-images", &app.admin,
        Some(json!({"name": "ghost", "tier": 1, "registry": "main", "repository": "base/ghost", "recipe": {"rootfs": "rootfs.tar"}}))).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while app.ok(Method::GET, "/api/v1/base-images/ghost", &app.admin, None).await["build_state"] != "succeeded" {
        assert!(Instant::now() < deadline, "the ghost base never built");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let lost = format!("sha256:{}", "0".repeat(64));
    sqlx::query("UPDATE base_images SET digest = $1 WHERE name = $2")
        .bind(&lost)
        .bind("ghost")
        .execute(&mut *app.store.conn().await.unwrap())
        .await
        .unwrap();
    let started = Instant::now();
    let id = release(&app, settings("k8s", "true", json!({"builder_image": "ghost"}))).await;
    let b = wait_build(&app, id, &["succeeded", "failed", "cancelled"], Duration::from_secs(60)).await;
    let error = b["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("cannot be pulled") && error.contains(&format!("base/ghost@{lost}")),
        "{b}"
    );
    eprintln!("pull failure reported in {:.1} s", started.elapsed().as_secs_f64());

    // 3c. The build's timeout is the Job's activeDeadlineSeconds: timeout.
    let id = release(&app, settings("k8s", "sleep 300", json!({"timeout_seconds": 6}))).await;
    let b = wait_build(&app, id, &["succeeded", "failed", "cancelled"], Duration::from_secs(60)).await;
    assert_eq!(b["failure_kind"], "timeout", "{b}");
    assert!(
        b["error"].as_str().unwrap_or_default().contains("timed out after 6s"),
        "{b}"
    );

    // 4. No node matches: queued (not running) while it waits, then unschedulable.
    let id = release(&app, settings("nowhere", "true", json!({}))).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = log_text(&app, id).await;
        if log.contains("waiting for a node") {
            let (_, b) = app.get(&format!("/api/v1/builds/{id}"), &app.admin).await;
            assert_eq!(b["state"], "queued", "a pod no node takes is a queued build: {b}");
            break;
        }
        assert!(Instant::now() < deadline, "{log}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let b = wait_build(&app, id, &["succeeded", "failed", "cancelled"], Duration::from_secs(60)).await;
    let error = b["error"].as_str().unwrap_or_default();
    assert!(error.contains("unschedulable") && error.contains("didn't match"), "{b}");
    assert_eq!(
        build_objects(&cluster, "jobs", id).trim(),
        "",
        "the unschedulable Job is deleted"
    );

    // 4b. A runner limited to one build at a time (registered with the CLI's
    //     flag): the second build waits in Prism's queue, queued, with no Job and
    //     its place in the log, until the first is done.
    let out = Command::new(env!("CARGO_BIN_EXE_prism"))
        .args([
            "executor",
            "create-kubernetes",
            "single",
            "--cluster",
            "build",
            "--namespace",
            "builds",
        ])
        .args([
            "--ttl-seconds",
            "300",
            "--max-concurrent-builds",
            "1",
            "--host-network",
            "--all-projects",
        ])
        .env("PRISM_CONFIG_DIR", tmp.path().join("cli"))
        .env("PRISM_SERVER", &app.base)
        .env("PRISM_TOKEN", &app.admin)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let first = release(&app, settings("single", "echo first; sleep 4", json!({}))).await;
    wait_build(&app, first, &["building"], Duration::from_secs(60)).await;
    let second = release(&app, settings("single", "echo second", json!({}))).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !log_text(&app, second).await.contains("waiting, place 1 in its queue") {
        assert!(Instant::now() < deadline, "{}", log_text(&app, second).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, b) = app.get(&format!("/api/v1/builds/{second}"), &app.admin).await;
    assert_eq!(b["state"], "queued", "{b}");
    assert_eq!(
        build_objects(&cluster, "jobs", second).trim(),
        "",
        "no Job while it waits"
    );
    let b1 = wait_build(
        &app,
        first,
        &["succeeded", "failed", "cancelled"],
        Duration::from_secs(60),
    )
    .await;
    let b2 = wait_build(
        &app,
        second,
        &["succeeded", "failed", "cancelled"],
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(
        (b1["state"].as_str(), b2["state"].as_str()),
        (Some("succeeded"), Some("succeeded")),
        "{b1}\n{b2}"
    );
    assert!(log_text(&app, second)
        .await
        .contains("runner single has a free slot: starting"));
    assert!(
        b2["started_at"].as_i64().expect("started") >= b1["finished_at"].as_i64().expect("finished"),
        "the second build started before the first ended: {b1}\n{b2}"
    );

    // 5. Cancel deletes the Job (and its pod).
    let id = release(&app, settings("k8s", "echo sleeping; sleep 300", json!({}))).await;
    wait_build(&app, id, &["building"], Duration::from_secs(60)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !log_text(&app, id).await.contains("sleeping") {
        assert!(Instant::now() < deadline, "the build step never started");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.ok(
        Method::POST,
        &format!("/api/v1/builds/{id}/cancel"),
        &app.admin,
        Some(json!({})),
    )
    .await;
    let b = wait_build(&app, id, &["cancelled", "failed", "succeeded"], Duration::from_secs(30)).await;
    assert_eq!(b["state"], "cancelled", "{b}");
    assert_eq!(build_objects(&cluster, "jobs", id).trim(), "", "cancel deletes the Job");
    assert_eq!(build_objects(&cluster, "secrets", id).trim(), "");

    // 6. The reaper: a Job and Secret of a build Prism no longer has go.
    for kind in ["job", "secret"] {
        let obj = json!({"apiVersion": if kind == "job" {"batch/v1"} else {"v1"}, "kind": if kind == "job" {"Job"} else {"Secret"},
            "metadata": {"name": "prism-build-999999-1", "namespace": "builds", "labels": {
                "app.kubernetes.io/managed-by": "prism", "app.kubernetes.io/component": "build", "prism.io/build": "999999"}},
            "spec": if kind == "job" { json!({"template": {"spec": {"restartPolicy": "Never",
                "nodeSelector": {"pool": "nobody"}, "containers": [{"name": "x", "image": "busybox:1"}]}}}) } else { Value::Null }});
        let mut obj = obj;
        if kind == "secret" {
            obj.as_object_mut().unwrap().remove("spec");
        }
        let file = tmp.path().join(format!("lost-{kind}.json"));
        std::fs::write(&file, obj.to_string()).unwrap();
        cluster.kubectl(&["create", "-f", file.to_str().unwrap()]);
    }
    // The sweep runs every minute; the test asks for one now.
    prism_jobs::enqueue(
        &mut app.store.conn().await.unwrap(),
        &prism_server::jobs::maintenance::MaintenanceJob::for_period(-1),
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(build_objects(&cluster, "jobs", 999_999).trim().is_empty()
        && build_objects(&cluster, "secrets", 999_999).trim().is_empty())
    {
        assert!(
            Instant::now() < deadline,
            "the reaper left the lost build's Job or Secret"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    eprintln!("all cases after {:.1} s", t0.elapsed().as_secs_f64());
    app.stop().await;
}
