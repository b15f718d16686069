//! Three `prism serve` instances on one PostgreSQL database behind a real
//! nginx, under load from simulated users creating, building (reported as a
//! CI integration does), promoting and deploying to a real control plane,
//! while one instance after another is killed with SIGKILL and started again
//! (issue 15 item 1; the ten-minute, 50-user run is `prism-bench ha`).
//!
//! Checked (`prism_test_support::ha`): no release or deploy made twice
//! although nginx and the client resent requests, no job's attempts
//! overlapping, nothing left in progress, every audit record there, and each
//! deploy's live stream, followed through nginx and resumed with
//! `Last-Event-ID` when its instance died, gave exactly the stored events.

use std::time::Duration;

use prism_test_support::ha::{self, Options};
use prism_test_support::kube::KubeCluster;
use prism_test_support::{lb, Backend, TestDb};

#[test]
fn three_instances_behind_nginx_lose_nothing_when_killed_under_load() {
    if let Some(why) = lb::unavailable() {
        panic!("{why}");
    }
    let cluster = KubeCluster::up();
    cluster.kubectl(&["create", "namespace", "load"]);
    let db = TestDb::start_blocking(Backend::Postgres);
    let opts = Options {
        prism_bin: env!("CARGO_BIN_EXE_prism").into(),
        database_url: db.url(),
        work_dir: db.dir().to_path_buf(),
        kubeconfig: cluster.kubeconfig_text(),
        namespace: "load".into(),
        instances: 3,
        users: 8,
        duration: Duration::from_secs(40),
        kill_every: Duration::from_secs(12),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let report = rt.block_on(ha::run(opts.clone())).expect("the drill runs");
    let text = ha::render(&report, &opts);
    println!("{text}");
    assert!(report.violations.is_empty(), "{text}");
    assert_eq!(report.kills.len(), 3, "{text}");
    assert!(
        report.deploys_succeeded >= 8,
        "the users got work done while instances died: {text}"
    );
    assert_eq!(report.streams_followed, report.deploys_started, "{text}");
    // The kills landed on work in flight: requests were resent (by nginx to
    // another instance, or by the client, changes with their keys) or live
    // streams resumed on another instance. (Which of them, and how often,
    // depends on timing; the API tests replay and race keyed requests
    // deterministically.)
    assert!(
        report.lb_retried + report.client_retries as usize + report.stream_reconnects > 0,
        "nothing was cut off by the kills: the drill did not test anything: {text}"
    );
    // What survives retries: no request failed for good except the
    // conflicts a user's own loop can meet.
    let hard: Vec<_> = report
        .errors
        .iter()
        .filter(|(k, _)| k.contains("transport") || k.contains(": 5"))
        .collect();
    assert!(hard.is_empty(), "requests lost to the kills: {hard:?}\n{text}");
}
