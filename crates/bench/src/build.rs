//! `prism-bench build`: the same Node.js build (npm install of a few
//! packages from the npm registry, on a Prism-built `node` base that is also
//! the builder image) on the unsandboxed host-process runner and on the
//! contained runner (runc), in one run: with the dependency cache warm, then
//! emptied before each build. Prints the median build time of each, the
//! contained runner's ratio to the host process (aim: at most 1.15x), and
//! the time from the release's creation to the build's first log line.

use std::path::Path;
use std::time::{Duration, Instant};

use prism_test_support::git::{git, GitDaemon};
use prism_test_support::registry::{busybox_rootfs, TestRegistry};
use prism_test_support::ServerProcess;
use serde_json::{json, Value};

use prism_test_support::process::ADMIN_PASSWORD;

struct Prism {
    server: ServerProcess,
    http: reqwest::Client,
    token: String,
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

    /// Builds a new release; returns (build seconds, build command seconds,
    /// ms from release creation to the first log line).
    async fn build(&self) -> anyhow::Result<(f64, f64, i64)> {
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
        let at = |needle: &str| {
            lines
                .iter()
                .find(|l| l["line"].as_str().unwrap_or("").contains(needle))
                .and_then(|l| l["at"].as_i64())
                .unwrap_or_default()
        };
        let step = (at("[prism] packaging") - at(" executor: ")) as f64 / 1000.0;
        let created = rel["created_at"]
            .as_i64()
            .unwrap_or(b["created_at"].as_i64().unwrap_or_default());
        let secs = (b["finished_at"].as_i64().unwrap_or_default() - b["started_at"].as_i64().unwrap_or_default())
            as f64
            / 1000.0;
        Ok((secs, step, first_at - created))
    }

    fn clear_caches(&self) {
        let caches = self.server.data_dir().join("build-caches");
        let _ = std::fs::remove_dir_all(caches);
    }
}

async fn prism(runner: &str, sources: &Path, registry_port: u16, git_url: &str) -> anyhow::Result<Prism> {
    let server = ServerProcess::start_with(
        &format!("bench-build-{runner}"),
        &[
            ("PRISM_BUILD_RUNNER", runner),
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
        Some(json!({"host": format!("127.0.0.1:{registry_port}"), "insecure_http": true})),
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
    p.post(
        "/api/v1/applications",
        json!({"project": "bench", "name": "hello", "git_url": git_url,
               "build_settings": {"stack": "node", "base_image": "node", "registry": "main",
                                  "repository": format!("{runner}/hello")}}),
    )
    .await?;
    Ok(p)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

pub async fn run(builds: usize) -> anyhow::Result<()> {
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
    println!(
        "{:<12} {:<9} {:>9} {:>9} | {:>9} {:>9} | {:>22}",
        "runner", "deps", "build s", "ratio", "command s", "ratio", "release -> 1st log ms"
    );
    let host = prism("unsandboxed", &sources, registry.port, &url).await?;
    let contained = prism("contained", &sources, registry.port, &url).await?;
    // Warm up each (the builder image is unpacked once per digest; the cache filled).
    host.build().await?;
    contained.build().await?;
    for cached in [true, false] {
        let mut base: Option<(f64, f64)> = None;
        for (name, p) in [("unsandboxed", &host), ("contained", &contained)] {
            let (mut secs, mut steps, mut first) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..builds {
                if !cached {
                    p.clear_caches();
                }
                let (s, c, f) = p.build().await?;
                secs.push(s);
                steps.push(c);
                first.push(f as f64);
            }
            let (m, c) = (median(secs), median(steps));
            let (b, bc) = *base.get_or_insert((m, c));
            println!(
                "{:<12} {:<9} {:>9.2} {:>8.2}x | {:>9.2} {:>8.2}x | {:>22.0}",
                name,
                if cached { "cached" } else { "download" },
                m,
                m / b,
                c,
                c / bc,
                median(first)
            );
        }
    }
    Ok(())
}
