//! Several `prism serve` instances on one PostgreSQL database behind a real
//! load balancer ([`crate::lb::Nginx`]), under load from simulated users,
//! while one instance after another is killed with SIGKILL and started
//! again (issue 15 item 1). Shared by the suite's short run
//! (`crates/prism/tests/ha_lb.rs`) and `prism-bench ha` (ten minutes, 50
//! users).
//!
//! Each user has an application and, in a loop: creates a release, has it
//! built (reported as a CI integration does, through the admin's token),
//! promotes it to FAT, starts the deploy (a real job on a real control
//! plane with the simulated node), follows the deploy's live stream through
//! the load balancer (reconnecting with `Last-Event-ID` when its instance
//! dies) and compares what it got with the stored events, and lists
//! releases. Every mutating request carries an `Idempotency-Key` and is sent
//! again with the same key after a transport error or a 502/503/504, as
//! Prism's CLI does; nginx itself resends requests to the next instance.
//!
//! [`Report::violations`] lists every broken promise: a release or deploy
//! made twice, a job's attempts overlapping, a deploy or job left in
//! progress, an audit record missing, a live stream that missed or repeated
//! an event.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::{Connection, Row};

use crate::lb::Nginx;

pub const ADMIN_PASSWORD: &str = "ha-load-admin-password";
const USER_PASSWORD: &str = "ha-load-user-password";
/// The sealing key the drill's instances share (32 bytes, base64; a throwaway database's).
const DRILL_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

#[derive(Debug, Clone)]
pub struct Options {
    /// The `prism` binary.
    pub prism_bin: PathBuf,
    /// The PostgreSQL database all instances share (a fresh one).
    pub database_url: String,
    /// Where each instance's data directory goes.
    pub work_dir: PathBuf,
    /// A kubeconfig of a control plane with the simulated node running.
    pub kubeconfig: String,
    /// A namespace there for the FAT environment (made already).
    pub namespace: String,
    pub instances: usize,
    pub users: usize,
    pub duration: Duration,
    /// One instance is killed (SIGKILL) this often, in turn, and started again.
    pub kill_every: Duration,
}

/// One kill: which instance, and how long until things were whole again.
#[derive(Debug, Clone)]
pub struct Kill {
    pub instance: String,
    pub at_s: f64,
    /// From SIGKILL until the started-again instance answered `/healthz`.
    pub restart_to_healthy_ms: f64,
    /// From SIGKILL until every job the instance held was running again
    /// (its own start takes its leases back) or finished; `None`: it held none.
    pub jobs_resumed_ms: Option<f64>,
}

#[derive(Debug, Default)]
pub struct Report {
    /// Latencies (ms) of each logical request, by endpoint (retries included).
    pub latencies: BTreeMap<String, Vec<f64>>,
    /// Failed requests by endpoint and kind (status code or transport error), after retries.
    pub errors: BTreeMap<String, u64>,
    /// Requests this client sent again (mutating ones with the same key).
    pub client_retries: u64,
    pub client_retries_mutating: u64,
    /// Answers marked `Idempotent-Replayed` (a resent request answered from the store).
    pub replays: u64,
    /// Requests nginx sent to more than one instance, and of those the mutating ones.
    pub lb_retried: usize,
    pub lb_retried_mutating: usize,
    pub kills: Vec<Kill>,
    pub releases_created: usize,
    pub deploys_started: usize,
    pub deploys_succeeded: usize,
    pub streams_followed: usize,
    pub stream_reconnects: usize,
    pub violations: Vec<String>,
    pub elapsed: Duration,
}

impl Report {
    pub fn requests(&self) -> usize {
        self.latencies.values().map(Vec::len).sum()
    }
}

struct Instance {
    name: String,
    port: u16,
    data_dir: PathBuf,
    child: Option<Child>,
}

impl Instance {
    fn start(&mut self, opts: &Options) {
        let child = Command::new(&opts.prism_bin)
            .args(["serve", "--listen", &format!("127.0.0.1:{}", self.port), "--data-dir"])
            .arg(&self.data_dir)
            .args(["--database-url", &opts.database_url])
            .env("PRISM_ADMIN_PASSWORD", ADMIN_PASSWORD)
            // Every instance seals and opens with one key, as the README's
            // Operations section says a deployment of several must.
            .env("PRISM_SECRET_KEY", DRILL_KEY)
            .env("PRISM_INSTANCE_ID", &self.name)
            .env("PRISM_JOB_LEASE_SECONDS", "5")
            .env("PRISM_JOB_POLL_MS", "100")
            .env("PRISM_SSE_MAX_PER_USER", "20")
            .env("PRISM_SSE_MAX_TOTAL", "1000")
            .env("PRISM_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(self.log())
            .spawn()
            .expect("start prism serve");
        self.child = Some(child);
    }

    /// Its log, kept across restarts (a failed run names it).
    fn log(&self) -> Stdio {
        std::fs::create_dir_all(&self.data_dir).expect("data dir");
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::null())
    }

    fn log_path(&self) -> PathBuf {
        self.data_dir.with_extension("log")
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn healthy(&self) -> bool {
        crate::process::healthy(self.port)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

fn wait_healthy(i: &Instance, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if i.healthy() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// What every user task shares.
struct Shared {
    base: String,
    http: reqwest::Client,
    /// For live streams: no overall time limit (only one on silence, in `follow`).
    streams: reqwest::Client,
    admin: String,
    report: Mutex<Report>,
    stop: std::sync::atomic::AtomicBool,
    /// Release ids the users were given, and deploy ids.
    releases: Mutex<Vec<String>>,
    deploys: Mutex<Vec<i64>>,
    keys: std::sync::atomic::AtomicU64,
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stop.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn new_key(&self) -> String {
        let n = self.keys.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("ha-{}-{n}", std::process::id())
    }

    fn latency(&self, endpoint: &str, started: Instant) {
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        self.report
            .lock()
            .unwrap()
            .latencies
            .entry(endpoint.to_owned())
            .or_default()
            .push(ms);
    }

    fn error(&self, endpoint: &str, kind: &str) {
        *self
            .report
            .lock()
            .unwrap()
            .errors
            .entry(format!("{endpoint}: {kind}"))
            .or_default() += 1;
    }

    /// One logical request through the load balancer: mutating ones with a
    /// key, sent again with it after a transport error or 502/503/504.
    async fn call(
        &self,
        endpoint: &str,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Option<Value> {
        let key = (method != reqwest::Method::GET).then(|| self.new_key());
        let started = Instant::now();
        let mut wait = Duration::from_millis(100);
        let mut resent = false;
        for attempt in 1..=6 {
            let mut req = self
                .http
                .request(method.clone(), format!("{}{path}", self.base))
                .bearer_auth(token);
            if let Some(k) = &key {
                req = req.header("Idempotency-Key", k);
            }
            if let Some(b) = &body {
                req = req.json(b);
            }
            let outcome = match req.send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    if r.headers().get("idempotent-replayed").is_some_and(|v| v == "true") {
                        self.report.lock().unwrap().replays += 1;
                    }
                    match r.bytes().await {
                        Ok(b) => Ok((status, b)),
                        Err(_) => Err("transport".to_owned()),
                    }
                }
                Err(_) => Err("transport".to_owned()),
            };
            let retry = match &outcome {
                Ok((s, _)) => matches!(s, 502..=504),
                Err(_) => true,
            };
            if retry && attempt < 6 {
                {
                    let mut r = self.report.lock().unwrap();
                    r.client_retries += 1;
                    if key.is_some() {
                        r.client_retries_mutating += 1;
                    }
                }
                resent = true;
                tokio::time::sleep(wait).await;
                wait *= 2;
                continue;
            }
            self.latency(endpoint, started);
            return match outcome {
                Ok((s, b)) if (200..300).contains(&s) => Some(serde_json::from_slice(&b).unwrap_or(Value::Null)),
                Ok((s, b)) => {
                    let code = serde_json::from_slice::<Value>(&b)
                        .ok()
                        .and_then(|v| v["code"].as_str().map(str::to_owned))
                        .unwrap_or_default();
                    self.error(endpoint, &format!("{s} {code}"));
                    if resent && key.is_some() {
                        // The first try may have been made; its resend must
                        // be answered with its result, not refused.
                        self.report
                            .lock()
                            .unwrap()
                            .violations
                            .push(format!("{method} {path}, resent with its key, ended {s} {code}"));
                    }
                    None
                }
                Err(kind) => {
                    self.error(endpoint, &kind);
                    None
                }
            };
        }
        None
    }
}

/// Follows a deploy's live stream to its `end`, reconnecting with
/// `Last-Event-ID`; returns the step ids received, in order.
async fn follow(shared: &Shared, token: &str, deploy: i64) -> Result<Vec<i64>, String> {
    let mut got: Vec<i64> = vec![];
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut connections = 0;
    while Instant::now() < deadline {
        connections += 1;
        if connections > 1 {
            shared.report.lock().unwrap().stream_reconnects += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut req = shared
            .streams
            .get(format!("{}/api/v1/deploys/{deploy}/stream", shared.base))
            .bearer_auth(token)
            .header("Accept", "text/event-stream");
        if let Some(last) = got.last() {
            req = req.header("Last-Event-ID", last.to_string());
        }
        let Ok(mut resp) = req.send().await else { continue };
        if !resp.status().is_success() {
            continue;
        }
        let mut buf = String::new();
        let (mut id, mut event) = (None::<i64>, String::new());
        loop {
            let chunk = match tokio::time::timeout(Duration::from_secs(30), resp.chunk()).await {
                Ok(Ok(Some(c))) => c,
                _ => break, // dropped (its instance died) or silent: reconnect
            };
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(nl) = buf.find('\n') {
                let line = buf[..nl].trim_end_matches('\r').to_owned();
                buf.drain(..=nl);
                if line.is_empty() {
                    match event.as_str() {
                        "end" => return Ok(got),
                        "step" => {
                            if let Some(i) = id {
                                got.push(i);
                            }
                        }
                        _ => {}
                    }
                    (id, event) = (None, String::new());
                } else if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse().ok();
                } else if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_owned();
                }
            }
        }
    }
    Err(format!("deploy {deploy}: the stream did not end within 180 s"))
}

/// One user's loop.
async fn user(shared: Arc<Shared>, n: usize, token: String) {
    let app = format!("app{n}");
    while !shared.stopping() {
        let Some(r) = shared
            .call(
                "create release",
                reqwest::Method::POST,
                "/api/v1/releases",
                &token,
                Some(json!({"application": app, "git_ref": "main", "change_note": "load"})),
            )
            .await
        else {
            continue;
        };
        let rid = r["id"].as_str().unwrap_or_default().to_owned();
        shared.releases.lock().unwrap().push(rid.clone());
        shared.report.lock().unwrap().releases_created += 1;
        let act = |action: &'static str, who: String, body: Value| {
            let shared = shared.clone();
            let rid = rid.clone();
            async move {
                shared
                    .call(
                        action,
                        reqwest::Method::POST,
                        &format!("/api/v1/releases/{rid}/actions/{action}"),
                        &who,
                        Some(body),
                    )
                    .await
            }
        };
        if act("start_build", shared.admin.clone(), json!({})).await.is_none() {
            continue;
        }
        let built = json!({"commit_sha": "0123456789abcdef0123456789abcdef01234567",
                           "image_ref": format!("registry.example/{app}:{rid}")});
        if act("build_succeeded", shared.admin.clone(), built).await.is_none() {
            continue;
        }
        if act("promote", token.clone(), json!({"environment": "fat"}))
            .await
            .is_none()
        {
            continue;
        }
        let Some(d) = shared
            .call(
                "start deploy",
                reqwest::Method::POST,
                &format!("/api/v1/releases/{rid}/deploys"),
                &token,
                Some(json!({"environment": "fat"})),
            )
            .await
        else {
            continue;
        };
        let did = d["id"].as_i64().unwrap_or_default();
        shared.deploys.lock().unwrap().push(did);
        shared.report.lock().unwrap().deploys_started += 1;
        let started = Instant::now();
        let streamed = follow(&shared, &token, did).await;
        shared.latency("deploy, start to end (stream)", started);
        shared.report.lock().unwrap().streams_followed += 1;
        let stored = shared
            .call(
                "deploy events",
                reqwest::Method::GET,
                &format!("/api/v1/deploys/{did}/events"),
                &token,
                None,
            )
            .await;
        let stored_ids: Option<Vec<i64>> = stored.and_then(|v| {
            v.as_array()
                .map(|a| a.iter().filter_map(|e| e["id"].as_i64()).collect())
        });
        match (streamed, stored_ids) {
            (Ok(got), Some(want)) if got != want => shared.report.lock().unwrap().violations.push(format!(
                "deploy {did}: the live stream gave events {got:?}, the store has {want:?}"
            )),
            (Err(e), _) => shared.report.lock().unwrap().violations.push(e),
            _ => {}
        }
        if let Some(d) = shared
            .call(
                "get deploy",
                reqwest::Method::GET,
                &format!("/api/v1/deploys/{did}"),
                &token,
                None,
            )
            .await
        {
            if d["state"] == "succeeded" {
                shared.report.lock().unwrap().deploys_succeeded += 1;
            }
        }
        shared
            .call(
                "list releases",
                reqwest::Method::GET,
                &format!("/api/v1/releases?application={app}&limit=20"),
                &token,
                None,
            )
            .await;
    }
}

async fn setup(base: &str, http: &reqwest::Client, opts: &Options) -> anyhow::Result<(String, Vec<String>)> {
    let post = |path: String, token: Option<String>, body: Value| {
        let http = http.clone();
        let base = base.to_owned();
        async move {
            let mut req = http.post(format!("{base}{path}")).json(&body);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let r = req.send().await?;
            let s = r.status();
            let v: Value = r.json().await.unwrap_or(Value::Null);
            anyhow::ensure!(s.is_success(), "POST {path}: {s} {v}");
            Ok::<Value, anyhow::Error>(v)
        }
    };
    let t = post(
        "/api/v1/auth/token".into(),
        None,
        json!({"username": "admin", "password": ADMIN_PASSWORD}),
    )
    .await?;
    let admin = t["secret"].as_str().unwrap_or_default().to_owned();
    let a = Some(admin.clone());
    post(
        "/api/v1/clusters".into(),
        a.clone(),
        json!({"name": "load", "kubeconfig": opts.kubeconfig}),
    )
    .await?;
    let r = http
        .patch(format!("{base}/api/v1/environments/fat"))
        .bearer_auth(&admin)
        .json(&json!({"cluster": "load", "namespace": opts.namespace}))
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "bind fat: {}", r.status());
    post("/api/v1/projects".into(), a.clone(), json!({"name": "load"})).await?;
    let mut tokens = vec![];
    for n in 0..opts.users {
        let name = format!("user{n}");
        post(
            "/api/v1/users".into(),
            a.clone(),
            json!({"username": name, "password": USER_PASSWORD}),
        )
        .await?;
        for role in ["developer", "operator"] {
            post(
                "/api/v1/projects/load/members".into(),
                a.clone(),
                json!({"username": name, "role": role}),
            )
            .await?;
        }
        post(
            "/api/v1/applications".into(),
            a.clone(),
            json!({"project": "load", "name": format!("app{n}"), "git_url": "https://git.example/app.git"}),
        )
        .await?;
        let t = post(
            "/api/v1/auth/token".into(),
            None,
            json!({"username": name, "password": USER_PASSWORD}),
        )
        .await?;
        tokens.push(t["secret"].as_str().unwrap_or_default().to_owned());
    }
    Ok((admin, tokens))
}

/// Jobs held (running, leased) by `instance` right now.
async fn held_jobs(db: &str, instance: &str) -> Vec<i64> {
    let Ok(mut c) = sqlx::PgConnection::connect(db).await else {
        return vec![];
    };
    sqlx::query("SELECT id FROM jobs WHERE state = 'running' AND lease_owner = $1")
        .bind(instance)
        .fetch_all(&mut c)
        .await
        .map(|rows| rows.iter().map(|r| r.get::<i64, _>(0)).collect())
        .unwrap_or_default()
}

/// Whether each of `jobs` has an attempt that started after `since_ms` or has finished.
async fn resumed(db: &str, jobs: &[i64], since_ms: i64) -> bool {
    let Ok(mut c) = sqlx::PgConnection::connect(db).await else {
        return false;
    };
    for id in jobs {
        let row = sqlx::query(
            "SELECT (SELECT state FROM jobs WHERE id = $1), (SELECT MAX(started_at) FROM job_attempts WHERE job_id = $1)",
        )
        .bind(id)
        .fetch_one(&mut c)
        .await;
        let Ok(row) = row else { return false };
        let state: Option<String> = row.get(0);
        let last: Option<i64> = row.get(1);
        let done = matches!(state.as_deref(), Some("succeeded") | Some("failed"));
        if !done && last.unwrap_or(0) < since_ms {
            return false;
        }
    }
    true
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Runs the whole drill and returns what it saw.
pub async fn run(opts: Options) -> anyhow::Result<Report> {
    let mut instances: Vec<Instance> = (0..opts.instances)
        .map(|i| Instance {
            name: format!("ha-{i}"),
            port: crate::free_port(),
            data_dir: opts.work_dir.join(format!("instance-{i}")),
            child: None,
        })
        .collect();
    // The first migrates the database; the others find it done.
    instances[0].start(&opts);
    anyhow::ensure!(
        wait_healthy(&instances[0], Duration::from_secs(60)),
        "ha-0 did not start"
    );
    for i in instances.iter_mut().skip(1) {
        i.start(&opts);
    }
    for i in &instances {
        anyhow::ensure!(wait_healthy(i, Duration::from_secs(60)), "{} did not start", i.name);
    }
    let upstreams: Vec<String> = instances.iter().map(|i| format!("127.0.0.1:{}", i.port)).collect();
    let lb = Nginx::start(&upstreams);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(60))
        .build()?;
    let (admin, tokens) = setup(&lb.base, &http, &opts).await?;
    let shared = Arc::new(Shared {
        base: lb.base.clone(),
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .timeout(Duration::from_secs(30))
            .build()?,
        streams: reqwest::Client::builder().pool_max_idle_per_host(64).build()?,
        admin,
        report: Mutex::new(Report::default()),
        stop: Default::default(),
        releases: Default::default(),
        deploys: Default::default(),
        keys: Default::default(),
    });
    let started = Instant::now();
    let users: Vec<_> = tokens
        .into_iter()
        .enumerate()
        .map(|(n, t)| tokio::spawn(user(shared.clone(), n, t)))
        .collect();

    // The killer: one instance after another.
    let mut kills = vec![];
    let mut next = 0;
    while started.elapsed() + opts.kill_every <= opts.duration {
        tokio::time::sleep(opts.kill_every).await;
        let victim = &mut instances[next % opts.instances];
        next += 1;
        let held = held_jobs(&opts.database_url, &victim.name).await;
        let at = Instant::now();
        let at_ms = now_ms();
        victim.kill();
        // Gone for a moment, as a crashed process restarted by its supervisor is.
        tokio::time::sleep(Duration::from_millis(500)).await;
        victim.start(&opts);
        let mut healthy_ms = None;
        let mut resumed_ms = None;
        while at.elapsed() < Duration::from_secs(60) && (healthy_ms.is_none() || resumed_ms.is_none()) {
            if healthy_ms.is_none() && victim.healthy() {
                healthy_ms = Some(at.elapsed().as_secs_f64() * 1000.0);
            }
            if resumed_ms.is_none() && (held.is_empty() || resumed(&opts.database_url, &held, at_ms).await) {
                resumed_ms = Some(at.elapsed().as_secs_f64() * 1000.0);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let Some(healthy_ms) = healthy_ms else {
            let log = std::fs::read_to_string(victim.log_path()).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            anyhow::bail!(
                "{} did not come back within 60 s of its kill; the end of its log:\n{}",
                victim.name,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        };
        kills.push(Kill {
            instance: victim.name.clone(),
            at_s: started.elapsed().as_secs_f64(),
            restart_to_healthy_ms: healthy_ms,
            jobs_resumed_ms: (!held.is_empty()).then_some(resumed_ms.unwrap_or(f64::NAN)),
        });
    }
    let rest = opts.duration.saturating_sub(started.elapsed());
    tokio::time::sleep(rest).await;
    shared.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for mut u in users {
        if tokio::time::timeout(Duration::from_secs(240), &mut u).await.is_err() {
            // A straggler must not make records while the store is checked.
            u.abort();
        }
    }
    let elapsed = started.elapsed();

    let mut report = std::mem::take(&mut *shared.report.lock().unwrap());
    report.kills = kills;
    report.elapsed = elapsed;
    let log = lb.access_log();
    let retried: Vec<_> = log.iter().filter(|l| l.upstreams.len() > 1).collect();
    report.lb_retried = retried.len();
    report.lb_retried_mutating = retried.iter().filter(|l| l.method != "GET").count();
    let releases = shared.releases.lock().unwrap().clone();
    let deploys = shared.deploys.lock().unwrap().clone();
    check_store(&opts.database_url, &releases, &deploys, &mut report).await?;
    drop(lb);
    drop(instances);
    Ok(report)
}

/// The promises, checked in the database once the load has stopped.
async fn check_store(db: &str, releases: &[String], deploys: &[i64], report: &mut Report) -> anyhow::Result<()> {
    let mut c = sqlx::PgConnection::connect(db).await?;
    // Nothing left in progress (the instances are all up: give the jobs a moment).
    let deadline = Instant::now() + Duration::from_secs(90);
    let (mut open_jobs, mut open_deploys) = (0i64, 0i64);
    while Instant::now() < deadline {
        open_jobs = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running')")
            .fetch_one(&mut c)
            .await?;
        open_deploys = sqlx::query_scalar(
            "SELECT COUNT(*) FROM deploys WHERE state NOT IN ('succeeded', 'failed', 'rejected', 'cancelled', 'superseded')",
        )
        .fetch_one(&mut c)
        .await?;
        if open_jobs == 0 && open_deploys == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if open_jobs > 0 || open_deploys > 0 {
        report.violations.push(format!(
            "left in progress: {open_jobs} jobs queued or running, {open_deploys} deploys not finished"
        ));
    }
    // Every release and deploy a user was given exists once; nothing else was
    // made (compared as sets: a double and a lost answer cannot cancel out).
    let stored: Vec<i64> = sqlx::query_scalar("SELECT id FROM releases ORDER BY id")
        .fetch_all(&mut c)
        .await?;
    let stored: std::collections::BTreeSet<String> = stored.iter().map(|id| format!("r{id}")).collect();
    let given: std::collections::BTreeSet<String> = releases.iter().cloned().collect();
    if given.len() != releases.len() {
        report.violations.push(format!(
            "{} release ids handed out, {} of them distinct",
            releases.len(),
            given.len()
        ));
    }
    let extra: Vec<_> = stored.difference(&given).collect();
    let missing: Vec<_> = given.difference(&stored).collect();
    if !extra.is_empty() || !missing.is_empty() {
        report.violations.push(format!(
            "releases stored but never handed out (made twice?): {extra:?}; handed out but not stored: {missing:?}"
        ));
    }
    let n_releases = stored.len() as i64;
    // Users' deploys only: a failed deploy's automatic rollback is Prism's own.
    let stored: std::collections::BTreeSet<i64> =
        sqlx::query_scalar::<_, i64>("SELECT id FROM deploys WHERE kind = 'deploy'")
            .fetch_all(&mut c)
            .await?
            .into_iter()
            .collect();
    let given: std::collections::BTreeSet<i64> = deploys.iter().copied().collect();
    if stored != given || given.len() != deploys.len() {
        let extra: Vec<_> = stored.difference(&given).collect();
        let missing: Vec<_> = given.difference(&stored).collect();
        report.violations.push(format!(
            "deploys stored but never handed out: {extra:?}; handed out but not stored: {missing:?}; {} handed out in all",
            deploys.len()
        ));
    }
    let n_deploys = stored.len() as i64;
    // Every change audited once.
    for (action, want) in [("release.create", n_releases), ("deploy.create", n_deploys)] {
        let got: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = $1")
            .bind(action)
            .fetch_one(&mut c)
            .await?;
        if got != want {
            report
                .violations
                .push(format!("{got} {action} audit records for {want} records"));
        }
    }
    // No job ran twice at once: each attempt began after every earlier
    // attempt of its job had ended.
    let rows = sqlx::query(
        "SELECT job_id, attempt, instance, started_at, finished_at FROM job_attempts ORDER BY job_id, started_at, id",
    )
    .fetch_all(&mut c)
    .await?;
    // Per job: the latest end so far (None: an attempt still open) and who.
    let mut open: Option<(i64, Option<i64>, i64, String)> = None;
    for r in &rows {
        let (job, attempt, instance, started, finished): (i64, i64, String, i64, Option<i64>) =
            (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
        match &mut open {
            Some((pjob, ends, pattempt, pinstance)) if *pjob == job => {
                if ends.is_none_or(|e| e > started) {
                    report.violations.push(format!(
                        "job {job}: attempt {attempt} on {instance} started while attempt {pattempt} on {pinstance} had not ended"
                    ));
                }
                if ends.is_some_and(|e| finished.is_none_or(|f| f > e)) {
                    *ends = finished;
                    *pattempt = attempt;
                    *pinstance = instance;
                }
            }
            _ => open = Some((job, finished, attempt, instance)),
        }
    }
    Ok(())
}

/// p50 and p99 of `xs` (ms).
pub fn percentiles(xs: &[f64]) -> (f64, f64) {
    if xs.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99))
}

/// The report as text: what a person reads after the run.
pub fn render(r: &Report, opts: &Options) -> String {
    let mut s = format!(
        "{} instances behind nginx on PostgreSQL, {} users, {:.0} s, one instance killed (SIGKILL) every {} s\n",
        opts.instances,
        opts.users,
        r.elapsed.as_secs_f64(),
        opts.kill_every.as_secs()
    );
    s.push_str(&format!(
        "requests: {} ({:.0}/s); releases {}, deploys started {} (succeeded {}), live streams followed {} (reconnected {} times)\n",
        r.requests(),
        r.requests() as f64 / r.elapsed.as_secs_f64().max(0.001),
        r.releases_created,
        r.deploys_started,
        r.deploys_succeeded,
        r.streams_followed,
        r.stream_reconnects
    ));
    s.push_str(&format!(
        "retried: by nginx {} ({} mutating, never sent before), by the client {} ({} mutating, with their keys); answered from the stored response {}\n",
        r.lb_retried, r.lb_retried_mutating, r.client_retries, r.client_retries_mutating, r.replays
    ));
    s.push_str(&format!(
        "{:<32} {:>8} {:>9} {:>9}\n",
        "endpoint", "count", "p50 ms", "p99 ms"
    ));
    for (e, xs) in &r.latencies {
        let (p50, p99) = percentiles(xs);
        s.push_str(&format!("{e:<32} {:>8} {p50:>9.1} {p99:>9.1}\n", xs.len()));
    }
    if r.errors.is_empty() {
        s.push_str("errors: none\n");
    } else {
        s.push_str("errors (after retries):\n");
        for (k, n) in &r.errors {
            s.push_str(&format!("  {k}: {n}\n"));
        }
    }
    for k in &r.kills {
        s.push_str(&format!(
            "kill of {} at {:.0} s: healthy again after {:.0} ms; {}\n",
            k.instance,
            k.at_s,
            k.restart_to_healthy_ms,
            match k.jobs_resumed_ms {
                Some(ms) => format!("the jobs it held running again after {ms:.0} ms"),
                None => "it held no job".to_owned(),
            }
        ));
    }
    if r.violations.is_empty() {
        s.push_str("violations: none\n");
    } else {
        s.push_str(&format!("VIOLATIONS ({}):\n", r.violations.len()));
        for v in &r.violations {
            s.push_str(&format!("  {v}\n"));
        }
    }
    s
}
