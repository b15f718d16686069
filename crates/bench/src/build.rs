//! `prism-bench build`: the same Node.js build (npm install of a few
//! packages from the npm registry, on a Prism-built `node` base that is also
//! the builder image) on the unsandboxed host-process runner, on the
//! contained runner (runc) and on a Kubernetes runner (a Job on a real
//! kubelet v1.20.2 node, its dependency cache a volume per application), in
//! one run: with the dependency cache warm, then emptied before each build.
//! Prints the median build time of each, its ratio to the host process (aim
//! for the contained runner: at most 1.15x), and the time from the release's
//! creation to the build's first log line (aims: under 1 s local, 3 s on
//! Kubernetes).
//!
//! The Kubernetes runner needs root (a kubelet); without it, with
//! `--no-kubernetes` or `PRISM_K8S_NODE=0`, its rows are left out and the
//! run says why. Its build pods use
//! the node's network and the host's resolv.conf, so that npm reaches the
//! registry as the local runners' builds do.

use std::path::Path;
use std::time::{Duration, Instant};

use prism_test_support::git::{git, GitDaemon};
use prism_test_support::node_cluster::{NodeCluster, NodeOptions};
use prism_test_support::registry::{busybox_rootfs, TestRegistry};
use prism_test_support::ServerProcess;
use serde_json::{json, Value};

use prism_test_support::process::ADMIN_PASSWORD;

use crate::report::{self, Figure};

struct Prism {
    server: ServerProcess,
    http: reqwest::Client,
    token: String,
    /// On the Kubernetes runner: the host directory behind the cache volume.
    kube_cache: Option<std::path::PathBuf>,
}

/// What one build measured.
struct Figures {
    /// From the build's start to its end.
    secs: f64,
    /// The build command alone.
    command_secs: f64,
    /// From the release's creation to the build's first log line.
    first_line_ms: f64,
    /// From the release's creation to the build command's start (Kubernetes:
    /// the Job made, the pod scheduled, the checkout step run).
    command_start_ms: f64,
}

/// The cluster the Kubernetes runner's builds go to, and its cache volume.
struct KubeSetup {
    cluster: NodeCluster,
    cache: tempfile::TempDir,
}

impl KubeSetup {
    fn start(registry: &str) -> anyhow::Result<KubeSetup> {
        let cluster = NodeCluster::try_up(
            "bench-build",
            &NodeOptions {
                registry: Some(registry.to_string()),
                pod_resolv_conf: Some("/etc/resolv.conf".into()),
                ..Default::default()
            },
        )
        .map_err(anyhow::Error::msg)?;
        cluster
            .try_kubectl(&["create", "namespace", "builds"])
            .map_err(anyhow::Error::msg)?;
        let cache = tempfile::tempdir()?;
        // No provisioner on the test node: a hostPath volume of the runner's class.
        cluster
            .try_host_path_volume("bench-build-cache", "bench-cache", "2Gi", cache.path())
            .map_err(anyhow::Error::msg)?;
        Ok(KubeSetup { cluster, cache })
    }
}

impl Prism {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let mut req = self.http.request(method.clone(), format!("{}{path}", self.server.url));
        if !self.token.is_empty() {
            req = req.bearer_auth(&self.token);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        anyhow::ensure!(status.is_success(), "{method} {path}: {status} {v}");
        Ok(v)
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn wait_base(&self, name: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let b = self.get(&format!("/api/v1/base-images/{name}")).await?;
            match b["build_state"].as_str() {
                Some("succeeded") => return Ok(()),
                Some("failed") => anyhow::bail!("base {name}: {b}"),
                _ => {}
            }
            anyhow::ensure!(Instant::now() < deadline, "base {name} never built");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Builds a new release and reads its figures from the build and its log.
    async fn build(&self) -> anyhow::Result<Figures> {
        let rel = self
            .post(
                "/api/v1/releases",
                json!({"application": "hello", "git_ref": "main", "change_note": "bench", "build": true}),
            )
            .await?;
        let id = rel["build"]["id"].as_i64().unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(600);
        let b = loop {
            let b = self.get(&format!("/api/v1/builds/{id}")).await?;
            match b["state"].as_str() {
                Some("succeeded") => break b,
                Some("failed") | Some("cancelled") => {
                    let log = self.get(&format!("/api/v1/builds/{id}/log?limit=10000")).await?;
                    anyhow::bail!("build {id} ended {}: {}\n{log}", b["state"], b["error"])
                }
                _ => {}
            }
            anyhow::ensure!(Instant::now() < deadline, "build {id} never ended");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let log = self.get(&format!("/api/v1/builds/{id}/log?limit=10000")).await?;
        let lines = log.as_array().cloned().unwrap_or_default();
        let first_at = lines.first().and_then(|l| l["at"].as_i64()).unwrap_or_default();
        // The build command: from the line announcing it to the packaging that follows it.
        // (local runners: "... executor: COMMAND" then "packaging";
        // Kubernetes: "step build started" then "step package started").
        let at = |needles: &[&str]| {
            lines
                .iter()
                .find(|l| needles.iter().any(|n| l["line"].as_str().unwrap_or("").contains(n)))
                .and_then(|l| l["at"].as_i64())
                .unwrap_or_default()
        };
        let command_at = at(&[" executor: ", "[prism] step build started"]);
        let step = (at(&["[prism] packaging", "[prism] step package started"]) - command_at) as f64 / 1000.0;
        let created = rel["created_at"]
            .as_i64()
            .unwrap_or(b["created_at"].as_i64().unwrap_or_default());
        let secs = (b["finished_at"].as_i64().unwrap_or_default() - b["started_at"].as_i64().unwrap_or_default())
            as f64
            / 1000.0;
        Ok(Figures {
            secs,
            command_secs: step,
            first_line_ms: (first_at - created) as f64,
            command_start_ms: (command_at - created) as f64,
        })
    }

    fn clear_caches(&self) {
        match &self.kube_cache {
            // The volume stays bound: empty it.
            Some(dir) => {
                for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
            None => {
                let _ = std::fs::remove_dir_all(self.server.data_dir().join("build-caches"));
            }
        }
    }
}

async fn prism(
    runner: &str,
    sources: &Path,
    registry_port: u16,
    git_url: &str,
    kube: Option<&KubeSetup>,
) -> anyhow::Result<Prism> {
    // The Kubernetes runner's Prism runs its own base-image builds locally, contained.
    let local_runner = if kube.is_some() { "contained" } else { runner };
    let server = ServerProcess::start_with(
        &format!("bench-build-{runner}"),
        &[
            ("PRISM_BUILD_RUNNER", local_runner),
            ("PRISM_BASE_SOURCES", sources.to_str().unwrap_or_default()),
            ("PRISM_DOCKER_CONFIG", "/nonexistent/config.json"),
            ("PRISM_JOB_POLL_MS", "50"),
            ("PRISM_LOG", "warn"),
        ],
    );
    let mut p = Prism {
        server,
        http: reqwest::Client::new(),
        token: String::new(),
        kube_cache: kube.map(|k| k.cache.path().to_path_buf()),
    };
    let t = p
        .post(
            "/api/v1/auth/token",
            json!({"username": "admin", "password": ADMIN_PASSWORD}),
        )
        .await?;
    p.token = t["secret"].as_str().unwrap_or_default().to_owned();
    p.call(
        reqwest::Method::PUT,
        "/api/v1/registries/main",
        Some(json!({"host": format!("127.0.0.1:{registry_port}"), "insecure_http": true, "all_projects": true})),
    )
    .await?;
    p.post("/api/v1/projects", json!({"name": "bench"})).await?;
    p.post(
        "/api/v1/base-images",
        json!({"name": "busybox", "tier": 1, "registry": "main", "repository": format!("{runner}/busybox"),
               "recipe": {"rootfs": "rootfs.tar"}}),
    )
    .await?;
    p.wait_base("busybox").await?;
    let recipe = sources.join("node.json");
    p.post(
        "/api/v1/base-images",
        json!({"name": "node", "tier": 2, "parent": "busybox", "registry": "main", "repository": format!("{runner}/node"),
               "recipe": serde_json::from_str::<Value>(&std::fs::read_to_string(recipe)?)?}),
    )
    .await?;
    p.wait_base("node").await?;
    let mut settings = json!({"stack": "node", "base_image": "node", "registry": "main",
                              "repository": format!("bench/hello-{runner}")});
    if let Some(k) = kube {
        p.post(
            "/api/v1/clusters",
            json!({"name": "build", "kubeconfig": k.cluster.kubeconfig_text()}),
        )
        .await?;
        p.post(
            "/api/v1/executors",
            json!({"name": "k8s", "kind": "kubernetes", "all_projects": true,
                   "kubernetes": {"cluster": "build", "namespace": "builds", "host_network": true,
                                  "cache_size": "2Gi", "cache_storage_class": "bench-cache"}}),
        )
        .await?;
        settings["executor"] = json!("k8s");
    }
    p.post(
        "/api/v1/applications",
        json!({"project": "bench", "name": "hello", "git_url": git_url, "build_settings": settings}),
    )
    .await?;
    Ok(p)
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => count_files(&e.path()),
            Ok(_) => 1,
            Err(_) => 0,
        })
        .sum()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// `no_kube`: why the Kubernetes runner is left out, if it is.
pub async fn run(builds: usize, no_kube: Option<String>) -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let sources = work.path().join("sources");
    std::fs::create_dir_all(&sources)?;
    busybox_rootfs(&sources);
    prism_test_support::toolchain::node_toolchain(&sources.join("node-runtime"));
    std::fs::write(
        sources.join("node.json"),
        json!({"layers": [{"source": "node-runtime", "destination": "/"}]}).to_string(),
    )?;
    let registry = TestRegistry::start(None);
    let git_root = work.path().join("git");
    let app = git_root.join("hello-work");
    std::fs::create_dir_all(&app)?;
    git(&app, &["init", "-q", "-b", "main"]);
    std::fs::write(
        app.join("package.json"),
        r#"{"name": "hello", "version": "1.0.0", "dependencies": {"is-number": "7.0.0", "ms": "2.1.3", "semver": "7.6.0", "debug": "4.3.4"}}"#,
    )?;
    std::fs::write(app.join("index.js"), "console.log(require('semver').valid('1.2.3'));\n")?;
    git(&app, &["add", "-A"]);
    git(&app, &["commit", "-q", "-m", "one"]);
    git(&git_root, &["clone", "-q", "--bare", "hello-work", "hello.git"]);
    let daemon = GitDaemon::start(&git_root).await;
    let url = daemon.url("hello.git");

    println!("prism-bench build: a Node.js app (npm install of 4 packages plus their dependencies from the npm registry), median of {builds} builds each");
    let header = format!(
        "{:<12} {:<9} {:>9} {:>9} | {:>9} {:>9} | {:>13} {:>13}",
        "runner", "deps", "build s", "ratio", "command s", "ratio", "-> 1st log ms", "-> command ms"
    );
    let host = prism("unsandboxed", &sources, registry.port, &url, None).await?;
    let contained = prism("contained", &sources, registry.port, &url, None).await?;
    let kube = match no_kube {
        Some(why) => {
            println!("kubernetes: not measured: {why}");
            report::note("build", format!("Kubernetes runner: not measured: {why}"));
            None
        }
        None => Some(KubeSetup::start(&format!("127.0.0.1:{}", registry.port))?),
    };
    let on_kube = match &kube {
        Some(k) => Some(prism("kubernetes", &sources, registry.port, &url, Some(k)).await?),
        None => None,
    };
    let mut runners = vec![("unsandboxed", &host), ("contained", &contained)];
    if let Some(p) = &on_kube {
        runners.push(("kubernetes", p));
    }
    // Warm up each (the builder image is unpacked or pulled once per digest; the cache filled).
    for (_, p) in &runners {
        p.build().await?;
    }
    if let Some(dir) = on_kube.as_ref().and_then(|p| p.kube_cache.as_ref()) {
        // The volume really holds the cache the build step filled.
        let files = count_files(dir);
        println!("kubernetes: the cache volume holds {files} files after the first build");
        report::note(
            "build",
            format!("Kubernetes runner: the cache volume held {files} files after the first build"),
        );
    }
    println!("{header}");
    println!("(ratios: the median of each round's ratio to the unsandboxed host process, the runners taking turns; -> ms: from the release's creation)");
    for cached in [true, false] {
        // Rounds: each runner builds once per round, starting with a
        // different one each time, so that the machine's drift (a shared,
        // noisy 2-core machine) falls on every runner alike; a runner's
        // ratio is the median of its per-round ratios to the host process.
        let mut figures: Vec<Vec<Figures>> = runners.iter().map(|_| Vec::new()).collect();
        for round in 0..builds {
            for k in 0..runners.len() {
                let i = (round + k) % runners.len();
                let p = runners[i].1;
                if !cached {
                    p.clear_caches();
                }
                figures[i].push(p.build().await?);
            }
        }
        let fields: [fn(&Figures) -> f64; 4] = [
            |f| f.secs,
            |f| f.command_secs,
            |f| f.first_line_ms,
            |f| f.command_start_ms,
        ];
        let host = fields.map(|f| median(figures[0].iter().map(f).collect()));
        for (i, &(name, _)) in runners.iter().enumerate() {
            let these = fields.map(|f| median(figures[i].iter().map(f).collect()));
            let ratios = fields.map(|f| {
                median(
                    figures[i]
                        .iter()
                        .zip(&figures[0])
                        .map(|(a, b)| f(a) / f(b).max(1e-9))
                        .collect(),
                )
            });
            let [m, c, first_line, command_start] = these;
            println!(
                "{:<12} {:<9} {:>9.2} {:>8.2}x | {:>9.2} {:>8.2}x | {:>13.0} {:>13.0}",
                name,
                if cached { "cached" } else { "download" },
                m,
                ratios[0],
                c,
                ratios[1],
                first_line,
                command_start,
            );
            let case = format!("{name} runner, {}", if cached { "cache warm" } else { "cache emptied" });
            let metrics = [
                ("build", "s"),
                ("build command", "s"),
                ("release to first log line", "ms"),
                ("release to build command", "ms"),
            ];
            for (k, (metric, unit)) in metrics.into_iter().enumerate() {
                let f = Figure::new("build", &case, metric, these[k], unit);
                if i == 0 {
                    f.record()
                } else {
                    f.beside("unsandboxed host process", host[k], ratios[k]).record()
                }
            }
        }
    }
    drop(kube);
    Ok(())
}
