//! `prism-bench crash`: a crash drill. For each job kind (build, deploy,
//! base image build) and each store (SQLite, PostgreSQL), N trials: start
//! the work, kill -9 `prism serve` at a random moment, start it again, and
//! check that the work finished correctly, that nothing of the killed
//! attempt is left running (the build step's processes), that nothing is
//! stuck (no job left queued or running), and how long after the restart
//! the interrupted work was running again (p50/p99). Not part of the test
//! suite: it needs a Kubernetes control plane (scripts/k8s), the simulated
//! node, `docker-registry` and `git daemon`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand_lite::Rand;
use serde_json::{json, Value};

use crate::report::Figure;
use crate::server::ADMIN_PASSWORD;

/// A marker in the build step's command line, to find its processes.
const STEP_SLEEP: &str = "4.0042";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Build,
    Deploy,
    BaseImage,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Build => "build",
            Kind::Deploy => "deploy",
            Kind::BaseImage => "base_image",
        }
    }
    /// Kills land uniformly within this window after the work starts.
    fn window_ms(self) -> u64 {
        match self {
            Kind::Build => 7000,
            Kind::Deploy => 1500,
            Kind::BaseImage => 800,
        }
    }
}

pub fn parse_kinds(list: &[String]) -> anyhow::Result<Vec<Kind>> {
    list.iter()
        .map(|k| match k.as_str() {
            "build" => Ok(Kind::Build),
            "deploy" => Ok(Kind::Deploy),
            "base_image" | "base-image" => Ok(Kind::BaseImage),
            other => anyhow::bail!("unknown kind {other:?} (build, deploy, base_image)"),
        })
        .collect()
}

/// A tiny random source (xorshift), seeded from the clock: the drill needs
/// kill moments spread over the window, not cryptographic randomness.
mod rand_lite {
    pub struct Rand(u64);
    impl Rand {
        pub fn seeded() -> Self {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(42);
            Rand(t | 1)
        }
        pub fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n.max(1)
        }
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Children killed on drop.
struct Kids(Vec<Child>);
impl Drop for Kids {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

struct Cluster {
    name: String,
    kubeconfig: PathBuf,
    _sim: Kids,
}

impl Cluster {
    fn up() -> anyhow::Result<Self> {
        let st = Command::new("bash")
            .arg(repo_root().join("scripts/k8s/ensure-binaries.sh"))
            .env("PRISM_K8S_NO_NODE", "1")
            .stdout(Stdio::null())
            .status()?;
        anyhow::ensure!(st.success(), "ensure-binaries.sh failed");
        let name = format!("crash{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
        let out = Command::new("bash")
            .arg(repo_root().join("scripts/k8s/cluster.sh"))
            .args(["up", &name])
            .env("PRISM_K8S_OWNER_PID", std::process::id().to_string())
            // A simulated node: nothing of a real node's (kubelet, containerd, images) is needed.
            .env("PRISM_K8S_NO_NODE", "1")
            .output()?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let lines: Vec<&str> = stderr.lines().collect();
            anyhow::bail!(
                "scripts/k8s/cluster.sh up failed: {}",
                lines[lines.len().saturating_sub(5)..].join(" / ")
            );
        }
        let kubeconfig = PathBuf::from(String::from_utf8(out.stdout)?.trim().lines().last().unwrap_or_default());
        let exe = std::env::current_exe()?.with_file_name("prism-kube-sim");
        anyhow::ensure!(exe.exists(), "{} not found: build -p prism-kube-sim", exe.display());
        let sim = Command::new(exe)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["--owner-pid", &std::process::id().to_string()])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()?;
        let ns = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["create", "namespace", "crash"])
            .output()?;
        anyhow::ensure!(ns.status.success(), "kubectl create namespace failed");
        Ok(Cluster {
            name,
            kubeconfig,
            _sim: Kids(vec![sim]),
        })
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo_root().join("scripts/k8s/cluster.sh"))
            .args(["down", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// `prism serve` on a fixed port, data dir and store, killed and started again at will.
struct Prism {
    child: Child,
    port: u16,
    dir: PathBuf,
    url: String,
    sources: PathBuf,
    http: reqwest::Client,
    token: String,
}

impl Prism {
    fn spawn(&self) -> anyhow::Result<Child> {
        let exe = std::env::current_exe()?.with_file_name("prism");
        Ok(Command::new(exe)
            .args(["serve", "--listen", &format!("127.0.0.1:{}", self.port), "--data-dir"])
            .arg(&self.dir)
            .args(["--database-url", &self.url])
            .env("PRISM_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("PRISM_INSTANCE_ID", "crash-drill")
            // The drill finds the build step's process on the host by its
            // command line, in a base without a shell: the host-process runner.
            .env("PRISM_BUILD_RUNNER", "unsandboxed")
            .env("PRISM_BASE_SOURCES", &self.sources)
            .env("PRISM_DOCKER_CONFIG", "/nonexistent/config.json")
            .env("PRISM_JOB_POLL_MS", "200")
            .env("PRISM_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?)
    }

    async fn healthy(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ok = self
                .http
                .get(format!("http://127.0.0.1:{}/healthz", self.port))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return Ok(());
            }
            anyhow::ensure!(Instant::now() < deadline, "prism did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Restarts; returns the wall-clock ms at which the new process was started.
    async fn restart(&mut self) -> anyhow::Result<i64> {
        let started = now_ms();
        self.child = self.spawn()?;
        self.healthy().await?;
        Ok(started)
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .request(method.clone(), format!("http://127.0.0.1:{}{path}", self.port));
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
}

impl Drop for Prism {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Pids whose command line contains `needle`.
fn pids_with(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            if String::from_utf8_lossy(&cmd).contains(needle) && alive(pid) {
                out.push(pid);
            }
        }
    }
    out
}

fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(
            stat.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().next()),
            Some("Z" | "X")
        ),
        Err(_) => false,
    }
}

#[derive(Default)]
struct Tally {
    trials: usize,
    correct: usize,
    nothing_left: usize,
    not_stuck: usize,
    /// Restart to running again, for trials whose job was running at the kill.
    recovery_ms: Vec<i64>,
}

pub async fn run(backend: &str, pg: &str, kinds: &[Kind], trials: usize) -> anyhow::Result<()> {
    let work = std::env::temp_dir().join(format!("prism-crash-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&work)?;
    let result = run_in(&work, backend, pg, kinds, trials).await;
    let _ = std::fs::remove_dir_all(&work);
    result
}

async fn run_in(work: &Path, backend: &str, pg: &str, kinds: &[Kind], trials: usize) -> anyhow::Result<()> {
    let pg_db = (backend == "postgres").then(|| format!("prism_crash_{}", uuid::Uuid::new_v4().simple()));
    let url = match &pg_db {
        Some(db) => {
            crate::seed::create_pg_database(pg, db).await?;
            format!("{pg}/{db}")
        }
        None => format!("sqlite://{}", work.join("data/prism.db").display()),
    };
    let outcome = drill(work, &url, kinds, trials, backend).await;
    if let Some(db) = pg_db {
        crate::seed::drop_pg_database(pg, &db).await;
    }
    outcome
}

async fn drill(work: &Path, url: &str, kinds: &[Kind], trials: usize, backend: &str) -> anyhow::Result<()> {
    let cluster = kinds.contains(&Kind::Deploy).then(Cluster::up).transpose()?;
    // A registry and a git server for builds.
    let reg_port = free_port()?;
    let reg_dir = work.join("registry");
    std::fs::create_dir_all(&reg_dir)?;
    std::fs::write(
        reg_dir.join("config.yml"),
        format!(
            "version: 0.1\nstorage: {{filesystem: {{rootdirectory: {}}}}}\nhttp: {{addr: 127.0.0.1:{reg_port}}}\n",
            reg_dir.join("data").display()
        ),
    )?;
    let git_root = work.join("git");
    std::fs::create_dir_all(git_root.join("app-work"))?;
    let sh = |dir: &Path, script: &str| -> anyhow::Result<()> {
        let st = Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(dir)
            .stdout(Stdio::null())
            .status()?;
        anyhow::ensure!(st.success(), "{script} failed");
        Ok(())
    };
    sh(
        &git_root.join("app-work"),
        "git init -q -b main && echo drill > index.html && git add -A && git -c user.name=d -c user.email=d@d commit -q -m first",
    )?;
    sh(
        &git_root,
        "git clone -q --bare app-work app.git && touch app.git/git-daemon-export-ok",
    )?;
    let git_port = free_port()?;
    let _services = Kids(vec![
        Command::new("docker-registry")
            .arg("serve")
            .arg(reg_dir.join("config.yml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
        Command::new("git")
            .args([
                "daemon",
                "--reuseaddr",
                "--export-all",
                &format!("--port={git_port}"),
                "--listen=127.0.0.1",
            ])
            .arg(format!("--base-path={}", git_root.display()))
            .arg(&git_root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    ]);
    // A root filesystem for the base image: one file is enough.
    let sources = work.join("sources");
    std::fs::create_dir_all(sources.join("rootfs/etc"))?;
    std::fs::write(sources.join("rootfs/etc/drill"), "drill\n")?;
    sh(&sources, "tar -cf rootfs.tar -C rootfs .")?;

    let dir = work.join("data");
    std::fs::create_dir_all(&dir)?;
    let mut p = Prism {
        child: Command::new("true").spawn()?,
        port: free_port()?,
        dir,
        url: url.to_owned(),
        sources,
        http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?,
        token: String::new(),
    };
    p.child = p.spawn()?;
    p.healthy().await?;
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
        Some(json!({"host": format!("127.0.0.1:{reg_port}"), "insecure_http": true, "all_projects": true})),
    )
    .await?;
    p.post("/api/v1/projects", json!({"name": "drill"})).await?;
    p.post(
        "/api/v1/base-images",
        json!({"name": "base", "tier": 1, "registry": "main", "repository": "drill/base", "recipe": {"rootfs": "rootfs.tar"}}),
    )
    .await?;
    wait_base(&p, 1).await?;
    if let Some(c) = &cluster {
        let kubeconfig = std::fs::read_to_string(&c.kubeconfig)?;
        p.post("/api/v1/clusters", json!({"name": "one", "kubeconfig": kubeconfig}))
            .await?;
        p.call(
            reqwest::Method::PATCH,
            "/api/v1/environments/fat",
            Some(json!({"cluster": "one", "namespace": "crash"})),
        )
        .await?;
    }
    p.post(
        "/api/v1/applications",
        json!({"project": "drill", "name": "web", "git_url": format!("git://127.0.0.1:{git_port}/app.git"),
               "template_settings": {"port": 8080},
               "build_settings": {"stack": "static", "base_image": "base", "registry": "main",
                                  "artifact_paths": ["index.html"], "build_command": format!("sleep {STEP_SLEEP}")}}),
    )
    .await?;

    let mut rand = Rand::seeded();
    let mut base_builds = 1;
    for &kind in kinds {
        let mut tally = Tally::default();
        for _ in 0..trials {
            tally.trials += 1;
            let trial = Trial::start(&p, kind, &mut base_builds).await?;
            tokio::time::sleep(Duration::from_millis(rand.below(kind.window_ms()))).await;
            let steps_before = pids_with(STEP_SLEEP);
            let running_at_kill = trial.job_running(&p).await.unwrap_or(false);
            p.kill9();
            let restarted_at = p.restart().await?;
            // Give the runner its first round (leftovers ended, leases taken back).
            let resumed = trial.wait_running_or_done(&p, Duration::from_secs(60)).await?;
            let left = steps_before.iter().filter(|pid| alive(**pid)).count();
            if left == 0 {
                tally.nothing_left += 1;
            }
            if running_at_kill {
                if let Some(at) = resumed {
                    tally.recovery_ms.push((at - restarted_at).max(0));
                }
            }
            let ok = trial.wait_done(&p, Duration::from_secs(180)).await?;
            if ok {
                tally.correct += 1;
            }
            if nothing_stuck(&p, kind).await? {
                tally.not_stuck += 1;
            }
        }
        tally.recovery_ms.sort_unstable();
        let pct = |q: f64| -> String {
            if tally.recovery_ms.is_empty() {
                return "-".into();
            }
            let i = ((tally.recovery_ms.len() as f64 - 1.0) * q).round() as usize;
            format!("{}", tally.recovery_ms[i])
        };
        println!(
            "{:<9} {:<11} {:>3}/{:<3} {:>7}/{:<3} {:>7}/{:<3} {:>9} {:>9} {:>9}",
            backend,
            kind.name(),
            tally.correct,
            tally.trials,
            tally.nothing_left,
            tally.trials,
            tally.not_stuck,
            tally.trials,
            tally.recovery_ms.len(),
            pct(0.5),
            pct(0.99),
        );
        let case = format!("{backend}: {}", kind.name());
        let of = format!("/{}", tally.trials);
        for (metric, n) in [
            ("finished correctly", tally.correct),
            ("nothing of the killed attempt left running", tally.nothing_left),
            ("no job left queued or running", tally.not_stuck),
        ] {
            Figure::new("crash", &case, metric, n as f64, &of).record();
        }
        Figure::new(
            "crash",
            &case,
            "kills that landed while the job ran",
            tally.recovery_ms.len() as f64,
            &of,
        )
        .record();
        if !tally.recovery_ms.is_empty() {
            for (metric, q) in [
                ("restart to running again, p50", 0.5),
                ("restart to running again, p99", 0.99),
            ] {
                let i = ((tally.recovery_ms.len() as f64 - 1.0) * q).round() as usize;
                Figure::new("crash", &case, metric, tally.recovery_ms[i] as f64, "ms").record();
            }
        }
    }
    Ok(())
}

pub fn header() {
    println!(
        "{:<9} {:<11} {:>7} {:>11} {:>11} {:>9} {:>9} {:>9}",
        "store", "kind", "correct", "none left", "none stuck", "resumed", "p50 ms", "p99 ms"
    );
}

async fn wait_base(p: &Prism, builds: i64) -> anyhow::Result<bool> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let b = p.get("/api/v1/base-images/base").await?;
        let state = b["build_state"].as_str().unwrap_or_default().to_owned();
        let built = builds_of_base(p).await? >= builds;
        if built && matches!(state.as_str(), "succeeded" | "failed") {
            return Ok(state == "succeeded");
        }
        anyhow::ensure!(Instant::now() < deadline, "base image not built: {b}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Base image jobs that succeeded so far.
async fn builds_of_base(p: &Prism) -> anyhow::Result<i64> {
    let jobs = p.get("/api/v1/jobs?kind=base_image&state=succeeded&limit=500").await?;
    Ok(jobs.as_array().map(|a| a.len() as i64).unwrap_or(0))
}

/// The work of one trial and the job that does it.
struct Trial {
    kind: Kind,
    /// Deploy or build id; the base image's expected count of successful builds.
    id: i64,
}

impl Trial {
    async fn start(p: &Prism, kind: Kind, base_builds: &mut i64) -> anyhow::Result<Trial> {
        let id = match kind {
            Kind::Build => {
                let r = p
                    .post(
                        "/api/v1/releases",
                        json!({"application": "web", "git_ref": "main", "change_note": "drill"}),
                    )
                    .await?;
                let b = p
                    .post(
                        &format!("/api/v1/releases/{}/builds", r["id"].as_str().unwrap_or_default()),
                        json!({}),
                    )
                    .await?;
                b["id"].as_i64().unwrap_or_default()
            }
            Kind::Deploy => {
                let r = p
                    .post(
                        "/api/v1/releases",
                        json!({"application": "web", "git_ref": "main", "change_note": "drill"}),
                    )
                    .await?;
                let rid = r["id"].as_str().unwrap_or_default().to_owned();
                p.post(&format!("/api/v1/releases/{rid}/actions/start_build"), json!({}))
                    .await?;
                p.post(
                    &format!("/api/v1/releases/{rid}/actions/build_succeeded"),
                    json!({"image_ref": format!("registry.example/web:{rid}"), "commit_sha": "abcdef1"}),
                )
                .await?;
                p.post(
                    &format!("/api/v1/releases/{rid}/actions/promote"),
                    json!({"environment": "fat"}),
                )
                .await?;
                let d = p
                    .post(
                        &format!("/api/v1/releases/{rid}/deploys"),
                        json!({"environment": "fat"}),
                    )
                    .await?;
                d["id"].as_i64().unwrap_or_default()
            }
            Kind::BaseImage => {
                p.post("/api/v1/base-images/base/build", json!({})).await?;
                *base_builds += 1;
                *base_builds
            }
        };
        Ok(Trial { kind, id })
    }

    /// The newest job doing this trial's work.
    async fn job(&self, p: &Prism) -> anyhow::Result<Option<Value>> {
        let jobs = p
            .get(&format!("/api/v1/jobs?kind={}&limit=50", self.kind.name()))
            .await?;
        let key = match self.kind {
            Kind::Build => "build_id",
            Kind::Deploy => "deploy_id",
            Kind::BaseImage => "base_id",
        };
        let found = jobs.as_array().and_then(|a| {
            a.iter()
                .find(|j| self.kind == Kind::BaseImage || j["payload"][key] == self.id)
                .cloned()
        });
        match found {
            Some(j) => Ok(Some(p.get(&format!("/api/v1/jobs/{}", j["id"])).await?)),
            None => Ok(None),
        }
    }

    async fn job_running(&self, p: &Prism) -> anyhow::Result<bool> {
        Ok(self.job(p).await?.is_some_and(|j| j["job"]["state"] == "running"))
    }

    /// When the job started its next attempt after the restart (ms), or None if it had ended.
    async fn wait_running_or_done(&self, p: &Prism, timeout: Duration) -> anyhow::Result<Option<i64>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(j) = self.job(p).await? {
                let attempts = j["attempts"].as_array().cloned().unwrap_or_default();
                let last = attempts.last();
                let abandoned = attempts.iter().any(|a| a["outcome"] == "abandoned");
                match j["job"]["state"].as_str() {
                    Some("running") if abandoned => return Ok(last.and_then(|a| a["started_at"].as_i64())),
                    Some("succeeded" | "failed") => {
                        return Ok(abandoned.then(|| last.and_then(|a| a["started_at"].as_i64())).flatten())
                    }
                    _ => {}
                }
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for the work to end; whether it succeeded.
    async fn wait_done(&self, p: &Prism, timeout: Duration) -> anyhow::Result<bool> {
        let deadline = Instant::now() + timeout;
        loop {
            let state = match self.kind {
                Kind::Build => p.get(&format!("/api/v1/builds/{}", self.id)).await?["state"].clone(),
                Kind::Deploy => p.get(&format!("/api/v1/deploys/{}", self.id)).await?["state"].clone(),
                Kind::BaseImage => {
                    let built = builds_of_base(p).await? >= self.id;
                    let b = p.get("/api/v1/base-images/base").await?;
                    if built {
                        b["build_state"].clone()
                    } else if b["build_state"] == "failed" {
                        json!("failed")
                    } else {
                        Value::Null
                    }
                }
            };
            match state.as_str() {
                Some("succeeded") => return Ok(true),
                Some("failed" | "cancelled" | "rejected") => return Ok(false),
                _ => {}
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Once the work ended, no job of its kind is left queued or running.
async fn nothing_stuck(p: &Prism, kind: Kind) -> anyhow::Result<bool> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut busy = 0;
        for state in ["queued", "running"] {
            let jobs = p
                .get(&format!("/api/v1/jobs?kind={}&state={state}", kind.name()))
                .await?;
            busy += jobs.as_array().map(Vec::len).unwrap_or(0);
        }
        if busy == 0 {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
