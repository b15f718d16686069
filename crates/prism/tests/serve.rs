//! `prism serve` as a process: first start, config file, graceful shutdown,
//! logs, and that secrets stay out of logs and out of the store in plaintext.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use prism_test_support::{free_port, TempDir};

struct Proc {
    child: Child,
    base: String,
    /// stdout and stderr, read as they are written: a server whose pipe
    /// fills (64 KiB of debug logs) would otherwise block on its next line.
    output: Option<(JoinHandle<String>, JoinHandle<String>)>,
}

fn drain(mut r: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        s
    })
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(cmd: &mut Command, port: u16) -> Proc {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start prism serve");
    let output = Some((drain(child.stdout.take().unwrap()), drain(child.stderr.take().unwrap())));
    let p = Proc {
        child,
        base: format!("http://127.0.0.1:{port}"),
        output,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !reqwest::blocking::get(format!("{}/healthz", p.base)).is_ok_and(|r| r.status().is_success()) {
        assert!(Instant::now() < deadline, "server did not become healthy");
        std::thread::sleep(Duration::from_millis(100));
    }
    p
}

fn serve(data_dir: &Path, port: u16) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_prism"));
    c.args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(data_dir);
    c.env_remove("PRISM_ADMIN_PASSWORD").env_remove("PRISM_DATABASE_URL");
    c
}

/// Sends SIGTERM and returns (exit success, stdout, stderr).
fn terminate(mut p: Proc) -> (bool, String, String) {
    Command::new("kill")
        .args(["-TERM", &p.child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = p.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "no graceful exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    let (out, err) = p.output.take().unwrap();
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    (status.success(), out, err)
}

fn post(base: &str, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = reqwest::blocking::Client::new()
        .post(format!("{base}{path}"))
        .json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().unwrap();
    (r.status().as_u16(), r.json().unwrap_or(Value::Null))
}

fn get(base: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut req = reqwest::blocking::Client::new().get(format!("{base}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

fn token(base: &str, password: &str) -> String {
    let (s, v) = post(
        base,
        "/api/v1/auth/token",
        None,
        json!({"username": "admin", "password": password}),
    );
    assert_eq!(s, 201, "{v}");
    v["secret"].as_str().unwrap().to_owned()
}

#[test]
fn first_start_prints_a_one_time_admin_password_and_sigterm_is_graceful() {
    let tmp = TempDir::new("first");
    let dir = tmp.path();
    let port = free_port();
    let p = spawn(&mut serve(dir, port), port);
    let base = p.base.clone();
    // The password is on stdout; read it after shutdown, then check it works on a second start.
    let (ok, out, err) = terminate(p);
    assert!(ok, "exit after SIGTERM should be clean: {err}");
    assert!(err.contains("shutting down") && err.contains("prism stopped"), "{err}");
    let password = out
        .lines()
        .find_map(|l| l.split("one-time password: ").nth(1))
        .unwrap_or_else(|| panic!("no one-time password in stdout: {out}"))
        .trim()
        .to_owned();
    assert!(password.len() >= 16);
    assert!(!err.contains(&password), "the password must not be logged");

    let p = spawn(&mut serve(dir, port), port);
    token(&base, &password);
    let (ok, out, _) = terminate(p);
    assert!(ok);
    assert!(
        !out.contains("one-time password"),
        "printed only on the first start: {out}"
    );
    // The default lifecycle exists and the store is in the data dir.
    assert!(dir.join("prism.db").exists() && dir.join("secret.key").exists());
}

#[test]
fn config_file_sets_listen_and_data_dir_and_bad_files_are_refused() {
    let tmp = TempDir::new("config");
    let dir = tmp.path();
    let port = free_port();
    let cfg = dir.join("prism.toml");
    std::fs::write(
        &cfg,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_prism"));
    cmd.args(["serve", "--config"])
        .arg(&cfg)
        .env("PRISM_ADMIN_PASSWORD", "config-test-password")
        .env_remove("PRISM_DATA_DIR");
    let p = spawn(&mut cmd, port);
    token(&p.base, "config-test-password");
    assert!(dir.join("data/prism.db").exists());
    drop(p);

    std::fs::write(&cfg, "listen = \"127.0.0.1:1\"\nlisten_port = 3\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_prism"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("listen_port"), "the error names the unknown key: {err}");
}

#[test]
fn secrets_stay_out_of_logs_and_out_of_the_store_in_plaintext() {
    let tmp = TempDir::new("secrets");
    let dir = tmp.path();
    let port = free_port();
    let admin_pw = "admin-pw-7f3a9c1e";
    let mut cmd = serve(dir, port);
    cmd.env("PRISM_ADMIN_PASSWORD", admin_pw)
        .env("PRISM_LOG", "debug")
        .arg("--log-json");
    let p = spawn(&mut cmd, port);
    let t = token(&p.base, admin_pw);
    let cluster_token = "cluster-bearer-0d7e5b2a91";
    let (s, v) = post(
        &p.base,
        "/api/v1/clusters",
        Some(&t),
        json!({"name": "c1", "api_url": "https://127.0.0.1:6443", "token": cluster_token}),
    );
    assert_eq!(s, 201, "{v}");
    assert!(!v.to_string().contains(cluster_token), "never returned: {v}");
    let user_pw = "user-pw-4c8e2f6a";
    let (s, _) = post(
        &p.base,
        "/api/v1/users",
        Some(&t),
        json!({"username": "u1", "password": user_pw}),
    );
    assert_eq!(s, 201);
    let (_, listed) = get(&p.base, "/api/v1/clusters/c1", Some(&t));
    assert!(
        !listed.contains(cluster_token) && listed.contains("\"api_url\""),
        "{listed}"
    );
    let (ok, out, err) = terminate(p);
    assert!(ok);
    for secret in [admin_pw, cluster_token, user_pw, t.as_str()] {
        assert!(
            !out.contains(secret) && !err.contains(secret),
            "{secret} leaked into the output"
        );
    }
    // --log-json: every log line is a JSON object.
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for l in &lines {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}"));
        assert!(v.get("level").is_some() && v.get("timestamp").is_some(), "{l}");
    }
    // At rest: the store holds no plaintext secret (sealed token, argon2id and SHA-256 hashes).
    let mut bytes = vec![];
    for f in ["prism.db", "prism.db-wal"] {
        if let Ok(b) = std::fs::read(dir.join(f)) {
            bytes.extend(b);
        }
    }
    for secret in [admin_pw, cluster_token, user_pw, t.as_str()] {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} is stored in plaintext"
        );
    }
    assert!(
        bytes.windows(9).any(|w| w == b"$argon2id"),
        "passwords are argon2id hashes"
    );
}

#[test]
fn metrics_health_and_openapi_are_served() {
    let tmp = TempDir::new("ops");
    let dir = tmp.path();
    let port = free_port();
    let mut cmd = serve(dir, port);
    cmd.env("PRISM_ADMIN_PASSWORD", "ops-test-password");
    let p = spawn(&mut cmd, port);
    let t = token(&p.base, "ops-test-password");
    post(&p.base, "/api/v1/projects", Some(&t), json!({"name": "shop"}));
    post(
        &p.base,
        "/api/v1/applications",
        Some(&t),
        json!({"project": "shop", "name": "web", "git_url": "https://g/w.git"}),
    );
    post(
        &p.base,
        "/api/v1/releases",
        Some(&t),
        json!({"application": "web", "git_ref": "main", "change_note": "x"}),
    );
    let (s, health) = get(&p.base, "/healthz", None);
    assert_eq!(s, 200);
    assert!(health.contains("\"ok\""), "{health}");
    let (s, metrics) = get(&p.base, "/metrics", None);
    assert_eq!(s, 200);
    assert!(
        metrics.contains(r#"prism_http_requests_total{method="POST",route="/api/v1/releases",status="201"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"prism_http_request_duration_seconds_bucket{le="0.005",method="POST",route="/api/v1/projects"}"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains(r#"prism_releases{state="created"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"prism_jobs{kind="maintenance",state="#), "{metrics}");

    let (s, doc) = get(&p.base, "/api/openapi.json", None);
    assert_eq!(s, 200);
    let doc: Value = serde_json::from_str(&doc).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v1/releases", "post"),
        ("/api/v1/releases/{id}/actions/{action}", "post"),
        ("/api/v1/applications/{name}/settings/{env}", "put"),
        ("/api/v1/applications/{name}/environments/{env}/hold", "delete"),
        ("/api/v1/clusters/{name}", "patch"),
        ("/api/v1/projects/{name}/members/{username}/{role}", "delete"),
        ("/api/v1/audit", "get"),
        ("/api/v1/jobs/selftest", "post"),
        ("/api/v1/auth/token", "post"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing from the OpenAPI document"
        );
    }
    assert!(paths.len() >= 25, "{} paths", paths.len());
    assert!(doc["components"]["schemas"].get("Release").is_some());
    drop(p);
}
