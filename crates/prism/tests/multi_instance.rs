//! Two real `prism serve` processes on one PostgreSQL database: every job
//! runs exactly once, and when one instance is killed with SIGKILL in the
//! middle of a job, the other takes the job over once its lease lapses.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use prism_test_support::{free_port, wait_for, Backend, TestDb};
use serde_json::{json, Value};

const ADMIN_PASSWORD: &str = "multi-instance-admin-pw";

struct Instance {
    child: Child,
    base: String,
    name: String,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(name: &str, db_url: &str, data_dir: &std::path::Path) -> Instance {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_prism"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(data_dir)
        .args(["--database-url", db_url])
        .env("PRISM_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("PRISM_INSTANCE_ID", name)
        .env("PRISM_JOB_LEASE_SECONDS", "2")
        .env("PRISM_JOB_POLL_MS", "50")
        .env("PRISM_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start prism serve");
    let inst = Instance {
        child,
        base: format!("http://127.0.0.1:{port}"),
        name: name.into(),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = reqwest::blocking::get(format!("{}/healthz", inst.base)) {
            if r.status().is_success() {
                return inst;
            }
        }
        assert!(Instant::now() < deadline, "{name} did not become healthy");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn call(base: &str, method: reqwest::Method, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let client = reqwest::blocking::Client::new();
    let mut req = client.request(method, format!("{base}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

fn admin_token(base: &str) -> String {
    let (s, v) = call(
        base,
        reqwest::Method::POST,
        "/api/v1/auth/token",
        None,
        Some(json!({"username": "admin", "password": ADMIN_PASSWORD})),
    );
    assert_eq!(s, 201, "{v}");
    v["secret"].as_str().unwrap().to_owned()
}

fn job(base: &str, token: &str, id: i64) -> Value {
    let (s, v) = call(
        base,
        reqwest::Method::GET,
        &format!("/api/v1/jobs/{id}"),
        Some(token),
        None,
    );
    assert_eq!(s, 200, "{v}");
    v
}

/// Runs `test` on a fresh PostgreSQL database (its URL) and a data
/// directory to put each instance's own directory in; both are removed when
/// the test ends, panics included.
fn with_database(test: impl FnOnce(&str, &std::path::Path)) {
    let db = TestDb::start_blocking(Backend::Postgres);
    test(&db.url(), db.dir());
}

#[test]
fn two_instances_share_the_queue_and_run_each_job_once() {
    with_database(|db, dir| {
        // The first start migrates and bootstraps; the second finds it done.
        let a = start("instance-a", db, &dir.join("a"));
        let b = start("instance-b", db, &dir.join("b"));
        let token = admin_token(&a.base);
        let ids: Vec<i64> = (0..24)
            .map(|i| {
                let base = if i % 2 == 0 { &a.base } else { &b.base };
                let (s, v) = call(
                    base,
                    reqwest::Method::POST,
                    "/api/v1/jobs/selftest",
                    Some(&token),
                    Some(json!({"duration_ms": 150})),
                );
                assert_eq!(s, 201, "{v}");
                v["id"].as_i64().unwrap()
            })
            .collect();
        wait_for("all self-test jobs to succeed", Duration::from_secs(60), || {
            ids.iter()
                .all(|id| job(&a.base, &token, *id)["job"]["state"] == "succeeded")
        });
        let mut ran_on = std::collections::HashMap::new();
        for id in &ids {
            let j = job(&b.base, &token, *id);
            let attempts = j["attempts"].as_array().unwrap();
            assert_eq!(attempts.len(), 1, "job {id} ran more than once: {j}");
            assert_eq!(attempts[0]["outcome"], "succeeded");
            *ran_on
                .entry(attempts[0]["instance"].as_str().unwrap().to_owned())
                .or_insert(0) += 1;
            // Its effect happened exactly once too.
            let (_, done) = call(
                &a.base,
                reqwest::Method::GET,
                &format!("/api/v1/audit?action=job.selftest_done&record_id={id}"),
                Some(&token),
                None,
            );
            assert_eq!(done.as_array().unwrap().len(), 1, "job {id}: {done}");
        }
        assert!(ran_on.keys().all(|k| k == &a.name || k == &b.name), "{ran_on:?}");
        assert_eq!(ran_on.len(), 2, "both instances should have taken work: {ran_on:?}");
        drop((a, b));
    });
}

#[test]
fn a_killed_instance_job_is_taken_over_after_its_lease_lapses() {
    with_database(|db, dir| {
        let mut a = start("victim", db, &dir.join("a"));
        let token = admin_token(&a.base);
        // Only the victim runs while the job starts.
        let (s, v) = call(
            &a.base,
            reqwest::Method::POST,
            "/api/v1/jobs/selftest",
            Some(&token),
            Some(json!({"duration_ms": 4000})),
        );
        assert_eq!(s, 201, "{v}");
        let id = v["id"].as_i64().unwrap();
        wait_for("the job to start on the victim", Duration::from_secs(20), || {
            job(&a.base, &token, id)["job"]["state"] == "running"
        });
        assert_eq!(job(&a.base, &token, id)["job"]["lease_owner"], "victim");
        // SIGKILL: no graceful hand-back, the lease must lapse.
        a.child.kill().unwrap();
        a.child.wait().unwrap();
        let killed_at = Instant::now();
        let b = start("survivor", db, &dir.join("b"));
        wait_for("the survivor to finish the job", Duration::from_secs(40), || {
            job(&b.base, &token, id)["job"]["state"] == "succeeded"
        });
        assert!(
            killed_at.elapsed() >= Duration::from_secs(4),
            "the job cannot finish before the lease lapses and it runs again in full"
        );
        let j = job(&b.base, &token, id);
        let attempts = j["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 2, "{j}");
        assert_eq!(
            (attempts[0]["instance"].as_str(), attempts[0]["outcome"].as_str()),
            (Some("victim"), Some("abandoned"))
        );
        assert_eq!(
            (attempts[1]["instance"].as_str(), attempts[1]["outcome"].as_str()),
            (Some("survivor"), Some("succeeded"))
        );
        assert_eq!(j["job"]["attempts"], 2);
        let (_, done) = call(
            &b.base,
            reqwest::Method::GET,
            &format!("/api/v1/audit?action=job.selftest_done&record_id={id}"),
            Some(&token),
            None,
        );
        assert_eq!(done.as_array().unwrap().len(), 1, "{done}");
        assert_eq!(done[0]["detail"]["instance"], "survivor");
        drop(b);
    });
}
