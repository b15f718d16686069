//! Crash recovery of deploys (issue 17) against a real Kubernetes v1.20.2
//! control plane with the simulated node, and a real `prism serve` killed
//! with SIGKILL while a deploy watches its rollout:
//! - restarted, it resumes the deploy at once (its own lease is taken back,
//!   not waited for at the default 30 s lease): done within 5 s of the restart,
//!   on SQLite and on PostgreSQL with the same instance id;
//! - killed twice during the same deploy, the deploy is quarantined: the
//!   server stays up, the job is not run a third time, the deploy is failed
//!   as `crashed` with a message saying so, with an audit record and a metric;
//!   an explicit retry then succeeds.
//!
//! Requires `scripts/k8s/ensure-binaries.sh` and the workspace's binaries.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use prism_test_support::kube::KubeCluster;
use prism_test_support::{free_port, wait_for_every, Backend, TestDb};

const ADMIN_PW: &str = "crash-deploy-admin-password";

fn wait_for(what: &str, timeout: Duration, f: impl FnMut() -> bool) {
    wait_for_every(what, timeout, Duration::from_millis(100), f)
}

/// A real `prism serve` at the default job lease (30 s), killed on drop.
struct Prism {
    child: Child,
    base: String,
    dir: PathBuf,
    port: u16,
    db_url: Option<String>,
    token: String,
}

impl Prism {
    fn spawn(dir: &Path, port: u16, db_url: Option<&str>) -> Child {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_prism"));
        cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(dir)
            .env("PRISM_ADMIN_PASSWORD", ADMIN_PW)
            .env("PRISM_JOB_POLL_MS", "200")
            .env("PRISM_LOG", "warn")
            .env_remove("PRISM_JOB_LEASE_SECONDS")
            .env_remove("PRISM_INSTANCE_ID")
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(dir.with_extension(format!("{port}.{}.log", uuid::Uuid::new_v4().simple())))
                    .unwrap(),
            );
        if let Some(url) = db_url {
            // One instance, restarted with the same id: its own leases are taken back at once.
            cmd.args(["--database-url", url])
                .env("PRISM_INSTANCE_ID", "crash-test-instance");
        }
        cmd.spawn().unwrap()
    }

    fn wait_healthy(&self) {
        let port = self.port;
        wait_for("prism", Duration::from_secs(30), || {
            reqwest::blocking::get(format!("http://127.0.0.1:{port}/healthz")).is_ok_and(|r| r.status().is_success())
        });
    }

    fn new(db_url: Option<String>) -> Self {
        let dir = std::env::temp_dir().join(format!("prism-crash-deploy-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let child = Self::spawn(&dir, port, db_url.as_deref());
        let mut p = Prism {
            child,
            base: format!("http://127.0.0.1:{port}"),
            dir,
            port,
            db_url,
            token: String::new(),
        };
        p.wait_healthy();
        let (s, v) = p.call(
            "POST",
            "/api/v1/auth/token",
            Some(json!({"username": "admin", "password": ADMIN_PW})),
        );
        assert_eq!(s, 201, "{v}");
        p.token = v["secret"].as_str().unwrap().to_owned();
        p
    }

    fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Starts it again on the same data dir (and database); returns when it is healthy.
    fn restart(&mut self) -> Instant {
        self.child = Self::spawn(&self.dir, self.port, self.db_url.as_deref());
        self.wait_healthy();
        Instant::now()
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let mut req = client.request(method.parse().unwrap(), format!("{}{path}", self.base));
        if !self.token.is_empty() {
            req = req.bearer_auth(&self.token);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().unwrap();
        let s = r.status().as_u16();
        let text = r.text().unwrap_or_default();
        (s, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (s, v) = self.call(method, path, body);
        assert!((200..300).contains(&s), "{method} {path} -> {s}: {v}");
        v
    }

    /// Cluster, FAT bound to it, project, application and a built release.
    fn set_up(&self, k: &KubeCluster) -> String {
        let kubeconfig = std::fs::read_to_string(&k.kubeconfig).unwrap();
        self.ok(
            "POST",
            "/api/v1/clusters",
            Some(json!({"name": "one", "kubeconfig": kubeconfig})),
        );
        self.ok(
            "PATCH",
            "/api/v1/environments/fat",
            Some(json!({"cluster": "one", "namespace": "shop-fat"})),
        );
        self.ok("POST", "/api/v1/projects", Some(json!({"name": "shop"})));
        self.ok("POST", "/api/v1/applications", Some(json!({"project": "shop", "name": "web", "git_url": "https://git.example/web.git", "template_settings": {"progress_deadline_seconds": 600, "port": 8080}})));
        let r = self.ok(
            "POST",
            "/api/v1/releases",
            Some(json!({"application": "web", "git_ref": "main", "change_note": "crash"})),
        );
        let id = r["id"].as_str().unwrap().to_owned();
        self.ok(
            "POST",
            &format!("/api/v1/releases/{id}/actions/start_build"),
            Some(json!({})),
        );
        self.ok(
            "POST",
            &format!("/api/v1/releases/{id}/actions/build_succeeded"),
            Some(json!({"image_ref": "registry.example/web:r1", "commit_sha": "abcdef1"})),
        );
        self.ok(
            "POST",
            &format!("/api/v1/releases/{id}/actions/promote"),
            Some(json!({"environment": "fat"})),
        );
        id
    }

    fn start_deploy(&self, release: &str) -> i64 {
        let d = self.ok(
            "POST",
            &format!("/api/v1/releases/{release}/deploys"),
            Some(json!({"environment": "fat"})),
        );
        d["id"].as_i64().unwrap()
    }

    fn deploy(&self, id: i64) -> Value {
        self.ok("GET", &format!("/api/v1/deploys/{id}"), None)
    }

    fn wait_state(&self, id: i64, state: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let last = self.deploy(id);
            if last["state"] == state {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "deploy {id} not {state} within {timeout:?}: {last}\n{:?}",
                self.events(id)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn events(&self, id: i64) -> Vec<String> {
        self.ok("GET", &format!("/api/v1/deploys/{id}/events"), None)
            .as_array()
            .unwrap()
            .iter()
            .map(|e| format!("{}: {}", e["step"].as_str().unwrap(), e["message"].as_str().unwrap()))
            .collect()
    }

    /// The deploy job of deploy `id` in its planning-to-watching run.
    fn deploy_job(&self, id: i64) -> Value {
        let jobs = self.ok("GET", "/api/v1/jobs?kind=deploy", None);
        let job = jobs
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["payload"]["deploy_id"] == id)
            .unwrap_or_else(|| panic!("no job for deploy {id}: {jobs}"))
            .clone();
        self.ok("GET", &format!("/api/v1/jobs/{}", job["id"]), None)
    }
}

impl Drop for Prism {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// With the node down the rollout cannot finish: the deploy stays watching.
fn deploy_watching(p: &Prism, k: &mut KubeCluster, release: &str) -> i64 {
    k.stop_sim();
    let id = p.start_deploy(release);
    p.wait_state(id, "watching", Duration::from_secs(30));
    id
}

fn resumes_within_5s_of_restart(db: Option<&TestDb>) {
    let mut k = KubeCluster::up_without_node();
    k.kubectl(&["create", "namespace", "shop-fat"]);
    let mut p = Prism::new(db.and_then(TestDb::server_url));
    let release = p.set_up(&k);
    let id = deploy_watching(&p, &mut k, &release);
    p.kill9();
    // The node comes back while Prism is down: the rollout can now finish.
    k.start_sim(&["--registry", "127.0.0.1:1"]);
    let restarted = p.restart();
    p.wait_state(id, "succeeded", Duration::from_secs(60));
    let took = restarted.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "the deploy finished {took:?} after the restart (the default lease is 30 s)\n{:?}",
        p.events(id)
    );
    let job = p.deploy_job(id);
    let outcomes: Vec<&str> = job["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(outcomes, vec!["abandoned", "succeeded"], "{job}");
}

#[test]
fn sqlite_a_deploy_killed_while_watching_finishes_within_5s_of_the_restart() {
    resumes_within_5s_of_restart(None);
}

#[test]
fn postgres_single_instance_a_deploy_killed_while_watching_finishes_within_5s_of_the_restart() {
    let db = TestDb::start_blocking(Backend::Postgres);
    resumes_within_5s_of_restart(Some(&db));
}

#[test]
fn a_deploy_the_server_dies_under_twice_is_quarantined_and_an_explicit_retry_succeeds() {
    let mut k = KubeCluster::up_without_node();
    k.kubectl(&["create", "namespace", "shop-fat"]);
    let mut p = Prism::new(None);
    let release = p.set_up(&k);
    let id = deploy_watching(&p, &mut k, &release);
    p.kill9();
    p.restart();
    // The second attempt runs (at once: the lease is this instance's own) ...
    wait_for("the second attempt", Duration::from_secs(10), || {
        p.deploy_job(id)["job"]["attempts"] == 2
    });
    // ... and the server dies under it again.
    p.kill9();
    p.restart();
    p.wait_state(id, "failed", Duration::from_secs(10));
    // The server stays up and the job is not run a third time.
    std::thread::sleep(Duration::from_secs(2));
    assert!(p.child.try_wait().unwrap().is_none(), "the server stays up");
    let job = p.deploy_job(id);
    assert_eq!(job["job"]["state"], "failed", "{job}");
    assert_eq!(job["job"]["failure_kind"], "crashed", "{job}");
    assert_eq!(job["job"]["attempts"], 2, "{job}");
    assert_eq!(job["attempts"].as_array().unwrap().len(), 2, "{job}");
    let d = p.deploy(id);
    let error = d["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("crashed: "), "{d}");
    assert!(
        error.contains("the server stopped during this deploy 2 times in a row"),
        "{d}"
    );
    assert!(error.contains("on instance "), "{d}");
    assert!(error.contains(&format!("/api/v1/deploys/{id}/events")), "{d}");
    let events = p.events(id);
    assert!(events.iter().any(|e| e.starts_with("crashed: ")), "{events:?}");
    let audit = p.ok("GET", "/api/v1/audit?action=job.quarantined", None);
    assert_eq!(audit.as_array().map(Vec::len), Some(1), "{audit}");
    let metrics = reqwest::blocking::get(format!("{}/metrics", p.base))
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("prism_jobs_quarantined_total{kind=\"deploy\"} 1"),
        "{metrics}"
    );

    // An explicit retry by the admin: a new deploy of the same release, which succeeds.
    k.start_sim(&["--registry", "127.0.0.1:1"]);
    let retry = p.ok("POST", &format!("/api/v1/deploys/{id}/retry"), Some(json!({})));
    let new = retry["id"].as_i64().unwrap();
    assert_ne!(new, id);
    assert_eq!(retry["release"], release.as_str());
    p.wait_state(new, "succeeded", Duration::from_secs(60));
    let (status, again) = p.call("POST", &format!("/api/v1/deploys/{new}/retry"), Some(json!({})));
    assert_eq!(status, 409, "only a failed deploy is retried: {again}");

    // The console offers the same retry on the failed deploy's page (a
    // CSRF-checked form), and not on the succeeded one's.
    let session = p.console_login();
    let page = p.console_get(&format!("/deploys/{id}"), &session);
    assert!(
        page.contains("id=\"retry-deploy\""),
        "no Retry on the crashed deploy's page"
    );
    let done = p.console_get(&format!("/deploys/{new}"), &session);
    assert!(
        !done.contains("id=\"retry-deploy\""),
        "Retry offered on a succeeded deploy"
    );
    let csrf = csrf_in(&page);
    let client = no_redirects();
    let refused = client
        .post(format!("{}/deploys/{id}/retry", p.base))
        .header("cookie", &session)
        .form(&[("csrf", "not-the-token")])
        .send()
        .unwrap();
    assert_eq!(
        refused.status().as_u16(),
        403,
        "a post without the page's CSRF token is refused"
    );
    let r = client
        .post(format!("{}/deploys/{id}/retry", p.base))
        .header("cookie", &session)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let from_console: i64 = location.trim_start_matches("/deploys/").parse().unwrap();
    assert!(from_console > new, "{location}");
    p.wait_state(from_console, "succeeded", Duration::from_secs(60));
}

fn no_redirects() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

fn csrf_in(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + "name=\"csrf\" value=\"".len();
    html[at..].split('"').next().unwrap().to_owned()
}

impl Prism {
    /// Signs in through the console's login form; returns the session cookie.
    fn console_login(&self) -> String {
        let client = no_redirects();
        let page = client.get(format!("{}/login", self.base)).send().unwrap();
        let login_cookie = page
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
            .find(|c| c.starts_with("prism_login_csrf="))
            .expect("login cookie");
        let token = csrf_in(&page.text().unwrap());
        let r = client
            .post(format!("{}/login", self.base))
            .header("cookie", &login_cookie)
            .form(&[("csrf", token.as_str()), ("username", "admin"), ("password", ADMIN_PW)])
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 303, "console login");
        r.headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
            .find(|c| c.starts_with("prism_session="))
            .expect("session cookie")
    }

    fn console_get(&self, path: &str, session: &str) -> String {
        let r = no_redirects()
            .get(format!("{}{path}", self.base))
            .header("cookie", session)
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "GET {path}");
        r.text().unwrap()
    }
}
