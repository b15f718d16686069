//! `prism-bench ha`: three `prism serve` instances (release build) on one
//! PostgreSQL database behind nginx, 50 simulated users creating, building
//! (reported as a CI integration does), promoting and deploying to a real
//! v1.20.2 control plane with the simulated node for ten minutes, while one
//! instance is killed with SIGKILL and started again every minute (issue 15
//! item 1). Prints requests served, errors by kind, p50/p99 per endpoint,
//! the recovery after each kill, and every broken promise (a request applied
//! twice, overlapping job attempts, work left in progress, a missing audit
//! record, a live stream that missed or repeated an event). The drill itself
//! is `prism_test_support::ha`, which the suite runs for 40 s
//! (crates/prism/tests/ha_lb.rs).

use std::time::Duration;

use prism_test_support::ha::{self, Options};
use prism_test_support::kube::KubeCluster;
use prism_test_support::{Backend, TestDb};

use crate::peers::{self, Need};
use crate::report::Figure;

#[derive(clap::Args, Clone)]
pub struct HaArgs {
    /// How long the load runs
    #[arg(long, default_value_t = 10)]
    pub minutes: u64,
    #[arg(long, default_value_t = 50)]
    pub users: usize,
    #[arg(long, default_value_t = 3)]
    pub instances: usize,
    /// One instance is killed (SIGKILL) this often, in turn, and started again
    #[arg(long, default_value_t = 60)]
    pub kill_every: u64,
}

impl HaArgs {
    pub fn needs(&self) -> Vec<Need> {
        let mut needs = vec![peers::PRISM, peers::NGINX];
        needs.extend(peers::control_plane());
        needs.push(Need::Postgres(
            std::env::var("PRISM_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into()),
        ));
        needs
    }

    pub fn command(&self) -> String {
        format!(
            "prism-bench ha --minutes {} --users {} --instances {} --kill-every {}",
            self.minutes, self.users, self.instances, self.kill_every
        )
    }
}

pub async fn run(args: &HaArgs) -> anyhow::Result<()> {
    let prism = std::env::current_exe()?.with_file_name("prism");
    anyhow::ensure!(
        prism.exists(),
        "{} not found: build it with `cargo build --release -p prism -p prism-kube-sim`",
        prism.display()
    );
    let cluster = tokio::task::spawn_blocking(KubeCluster::up).await?;
    cluster.kubectl(&["create", "namespace", "load"]);
    let db = TestDb::start(Backend::Postgres).await;
    let opts = Options {
        prism_bin: prism,
        database_url: db.url(),
        work_dir: db.dir().to_path_buf(),
        kubeconfig: cluster.kubeconfig_text(),
        namespace: "load".into(),
        instances: args.instances,
        users: args.users,
        duration: Duration::from_secs(args.minutes * 60),
        kill_every: Duration::from_secs(args.kill_every),
    };
    println!(
        "prism-bench ha: {} instances (release build) behind nginx on PostgreSQL, {} users for {} min, a kill every {} s",
        args.instances, args.users, args.minutes, args.kill_every
    );
    let report = ha::run(opts.clone()).await?;
    print!("{}", ha::render(&report, &opts));
    let case = format!(
        "{} instances, {} users, kill every {} s",
        args.instances, args.users, args.kill_every
    );
    Figure::new(
        "ha",
        &case,
        "requests per second",
        report.requests() as f64 / report.elapsed.as_secs_f64(),
        "/s",
    )
    .record();
    for (endpoint, xs) in &report.latencies {
        let (_, p99) = ha::percentiles(xs);
        Figure::new("ha", &case, &format!("{endpoint} p99"), p99, "ms").record();
    }
    let errors: u64 = report.errors.values().sum();
    Figure::new("ha", &case, "failed requests (after retries)", errors as f64, "").record();
    if let Some(worst) = report
        .kills
        .iter()
        .map(|k| k.restart_to_healthy_ms)
        .max_by(f64::total_cmp)
    {
        Figure::new("ha", &case, "kill to healthy again (worst)", worst, "ms").record();
    }
    Figure::new("ha", &case, "broken promises", report.violations.len() as f64, "").record();
    drop(db);
    drop(cluster);
    anyhow::ensure!(
        report.violations.is_empty(),
        "{} broken promises (listed above)",
        report.violations.len()
    );
    Ok(())
}
