//! `prism-bench`: Prism beside the peer tools that do the same work, in the
//! same run (one subcommand per benchmark; `all` runs the set and writes
//! every figure and ratio as Markdown, see all.rs).
//!
//! `prism-bench api`: seeds a store with 100,000 releases, starts a real
//! `prism serve` (release build) on it, and measures listing releases over
//! HTTP: requests per second, p50 and p99 latency, and the server's peak
//! resident memory. Beside each figure it runs the same page query directly
//! against the database (the floor any server on that store could reach),
//! in the same run, and prints the ratio.

mod all;
mod build;
mod crash;
mod deploy;
mod ha;
mod image;
mod load;
mod memory;
mod peers;
mod report;
mod seed;
mod server;
mod web;

use std::time::Duration;

use clap::Parser;

use peers::Need;
use report::Figure;

#[derive(Parser)]
#[command(name = "prism-bench")]
struct Args {
    /// Install what is missing first (Debian packages with apt-get, the Kubernetes
    /// binaries with scripts/k8s/ensure-binaries.sh; root), as scripts/test.sh does
    #[arg(long, global = true)]
    install: bool,
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand)]
enum What {
    /// API listing benchmark on SQLite and PostgreSQL
    Api(ApiArgs),
    /// Artifacts as a layer on a base, pushed, beside buildah bud + push (random bytes, a node_modules tree, a fat jar)
    Image(ImageArgs),
    /// Web console pages (dashboard, lists) with 1,000 applications and 100,000 releases, beside the JSON API
    Web(WebArgs),
    /// Crash drill: kill -9 `prism serve` at random moments during each job kind, restart, check recovery
    Crash(CrashArgs),
    /// The same Node.js build on the unsandboxed host-process runner, the contained runner (runc) and a Kubernetes runner (a real node; root), cached and not
    Build(BuildArgs),
    /// Deploy N applications with Prism beside kubectl apply --server-side + rollout status
    Deploy(DeployArgs),
    /// Three prism serve instances on PostgreSQL behind nginx, users creating, building, promoting and deploying while one instance is killed every minute
    Ha(ha::HaArgs),
    /// Resident memory of one prism serve with 5,000 applications x 4 environments and 50 deploys in progress
    Memory(memory::MemoryArgs),
    /// Runs api, web, deploy, image, build and crash one after another and writes every figure and ratio as Markdown
    All(all::AllArgs),
}

/// The stores of `--backend` (sqlite, postgres or both).
fn backends(backend: &str) -> Vec<&str> {
    match backend {
        "both" => vec!["sqlite", "postgres"],
        one => vec![one],
    }
}

fn pg_need(backend: &str, pg: &str) -> Option<Need> {
    backends(backend)
        .contains(&"postgres")
        .then(|| Need::Postgres(pg.to_owned()))
}

#[derive(clap::Args, Clone)]
pub struct ApiArgs {
    #[arg(long, default_value_t = 100_000)]
    releases: i64,
    #[arg(long, default_value_t = 200)]
    applications: i64,
    /// Requests per workload
    #[arg(long, default_value_t = 4000)]
    requests: usize,
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// sqlite, postgres or both
    #[arg(long, default_value = "both")]
    backend: String,
    #[arg(
        long,
        env = "PRISM_TEST_PG_URL",
        default_value = "postgres://postgres@127.0.0.1:5432"
    )]
    pg: String,
}

impl ApiArgs {
    pub fn needs(&self) -> Vec<Need> {
        let mut needs = vec![peers::PRISM];
        needs.extend(pg_need(&self.backend, &self.pg));
        needs
    }

    pub fn command(&self) -> String {
        format!(
            "prism-bench api --releases {} --applications {} --requests {} --concurrency {} --backend {}",
            self.releases, self.applications, self.requests, self.concurrency, self.backend
        )
    }

    pub async fn run(&self) -> anyhow::Result<()> {
        let Self {
            releases,
            applications,
            requests,
            concurrency,
            ..
        } = *self;
        println!("prism-bench api: {releases} releases over {applications} applications; {requests} requests per workload, {concurrency} concurrent clients");
        println!(
            "{:<9} {:<34} {:>9} {:>8} {:>8} | {:>9} {:>8} | {:>9} {:>9}",
            "store", "workload", "prism/s", "p50 ms", "p99 ms", "sql/s", "p99 ms", "p99 ratio", "rps ratio"
        );
        for b in backends(&self.backend) {
            run_backend(b, &self.pg, releases, applications, requests, concurrency).await?;
        }
        Ok(())
    }
}

#[derive(clap::Args, Clone)]
pub struct ImageArgs {
    /// Size of the random artifact
    #[arg(long, default_value_t = 50)]
    megabytes: usize,
    /// Comma-separated: random, node-modules, fat-jar
    #[arg(long, default_value = "random,node-modules,fat-jar", value_delimiter = ',')]
    artifacts: Vec<String>,
    /// Comma-separated layer compressions: gzip (Prism's default; buildah's
    /// default) and zstd (an application's opt-in; buildah push
    /// --compression-format zstd beside it)
    #[arg(long, default_value = "gzip,zstd", value_delimiter = ',')]
    compressions: Vec<String>,
}

impl ImageArgs {
    pub fn needs(&self) -> Vec<Need> {
        vec![peers::BUILDAH, peers::REGISTRY, peers::TAR, peers::BUSYBOX]
    }

    pub fn command(&self) -> String {
        format!(
            "prism-bench image --megabytes {} --artifacts {} --compressions {}",
            self.megabytes,
            self.artifacts.join(","),
            self.compressions.join(",")
        )
    }

    pub async fn run(&self) -> anyhow::Result<()> {
        let artifacts = self
            .artifacts
            .iter()
            .map(|a| image::Artifact::parse(a))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let compressions = self
            .compressions
            .iter()
            .map(|c| image::parse_compression(c))
            .collect::<anyhow::Result<Vec<_>>>()?;
        image::run_bench(self.megabytes, &artifacts, &compressions).await
    }
}

#[derive(clap::Args, Clone)]
pub struct WebArgs {
    #[arg(long, default_value_t = 100_000)]
    releases: i64,
    #[arg(long, default_value_t = 1_000)]
    applications: i64,
    /// Requests per page
    #[arg(long, default_value_t = 1000)]
    requests: usize,
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// sqlite, postgres or both
    #[arg(long, default_value = "both")]
    backend: String,
    #[arg(
        long,
        env = "PRISM_TEST_PG_URL",
        default_value = "postgres://postgres@127.0.0.1:5432"
    )]
    pg: String,
}

impl WebArgs {
    pub fn needs(&self) -> Vec<Need> {
        let mut needs = vec![peers::PRISM];
        needs.extend(pg_need(&self.backend, &self.pg));
        needs
    }

    pub fn command(&self) -> String {
        format!(
            "prism-bench web --releases {} --applications {} --requests {} --concurrency {} --backend {}",
            self.releases, self.applications, self.requests, self.concurrency, self.backend
        )
    }

    pub async fn run(&self) -> anyhow::Result<()> {
        let Self {
            releases,
            applications,
            requests,
            concurrency,
            ..
        } = *self;
        println!("prism-bench web: {releases} releases over {applications} applications; {requests} requests per page, {concurrency} concurrent clients, as a signed-in developer");
        println!(
            "{:<9} {:<22} {:>8} {:>8} {:>8} | {:>8} {:>8} | {:>9}",
            "store", "page", "page/s", "p50 ms", "p99 ms", "api/s", "p99 ms", "p99 ratio"
        );
        for b in backends(&self.backend) {
            web::run(b, &self.pg, releases, applications, requests, concurrency).await?;
        }
        Ok(())
    }
}

#[derive(clap::Args, Clone)]
pub struct CrashArgs {
    /// Trials per kind and store
    #[arg(long, default_value_t = 20)]
    trials: usize,
    /// Comma-separated job kinds: build, deploy, base_image
    #[arg(long, default_value = "build,deploy,base_image", value_delimiter = ',')]
    kinds: Vec<String>,
    /// sqlite, postgres or both
    #[arg(long, default_value = "both")]
    backend: String,
    #[arg(
        long,
        env = "PRISM_TEST_PG_URL",
        default_value = "postgres://postgres@127.0.0.1:5432"
    )]
    pg: String,
}

impl CrashArgs {
    pub fn needs(&self) -> Vec<Need> {
        let mut needs = vec![peers::PRISM, peers::REGISTRY, peers::GIT, peers::TAR];
        // Deploys go to a control plane with a simulated node.
        if self.kinds.iter().any(|k| k == "deploy") {
            needs.extend(peers::control_plane());
        }
        needs.extend(pg_need(&self.backend, &self.pg));
        needs
    }

    pub fn command(&self) -> String {
        format!(
            "prism-bench crash --trials {} --kinds {} --backend {}",
            self.trials,
            self.kinds.join(","),
            self.backend
        )
    }

    pub async fn run(&self) -> anyhow::Result<()> {
        let trials = self.trials;
        let kinds = crash::parse_kinds(&self.kinds)?;
        println!("prism-bench crash: {trials} kill -9 trials per job kind and store, at random moments; recovery = from starting the killed server again to its interrupted job running again");
        crash::header();
        for b in backends(&self.backend) {
            crash::run(b, &self.pg, &kinds, trials).await?;
        }
        Ok(())
    }
}

#[derive(clap::Args, Clone)]
pub struct BuildArgs {
    /// Builds per runner and cache state (the median is printed)
    #[arg(long, default_value_t = 3)]
    builds: usize,
    /// Leave out the Kubernetes runner (a real node: root, and the longest to start)
    #[arg(long)]
    no_kubernetes: bool,
}

impl BuildArgs {
    pub fn needs(&self) -> Vec<Need> {
        vec![
            peers::PRISM,
            peers::RUNC,
            peers::UMOCI,
            peers::SKOPEO,
            peers::REGISTRY,
            peers::SLIRP4NETNS,
            peers::GIT,
            peers::BUSYBOX,
            peers::NODE,
            peers::NPM,
        ]
    }

    pub fn command(&self) -> String {
        format!(
            "prism-bench build --builds {}{}",
            self.builds,
            if self.no_kubernetes { " --no-kubernetes" } else { "" }
        )
    }

    /// With `--install`, what the Kubernetes runner's real node needs too.
    pub fn install_extras(&self) {
        if !self.no_kubernetes {
            peers::install_real_node();
        }
    }

    /// Why the Kubernetes runner is left out, if it is: its rows are then
    /// missing and the run says why.
    pub fn kubernetes_unavailable(&self) -> Option<String> {
        if self.no_kubernetes {
            Some("--no-kubernetes".to_owned())
        } else {
            peers::real_node_unavailable()
        }
    }

    pub async fn run(&self) -> anyhow::Result<()> {
        build::run(self.builds.max(1), self.kubernetes_unavailable()).await
    }
}

#[derive(clap::Args, Clone)]
pub struct DeployArgs {
    /// Comma-separated application counts
    #[arg(long, default_value = "1,20,100", value_delimiter = ',')]
    apps: Vec<usize>,
}

impl DeployArgs {
    pub fn needs(&self) -> Vec<Need> {
        let mut needs = vec![peers::PRISM];
        needs.extend(peers::control_plane());
        needs
    }

    pub fn command(&self) -> String {
        let apps: Vec<String> = self.apps.iter().map(|n| n.to_string()).collect();
        format!("prism-bench deploy --apps {}", apps.join(","))
    }

    pub async fn run(&self) -> anyhow::Result<()> {
        deploy::run(&self.apps).await
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let install = args.install;
    match args.what {
        What::Deploy(a) => {
            peers::require("deploy", &a.needs(), install).await?;
            a.run().await?
        }
        What::Build(a) => {
            peers::require("build", &a.needs(), install).await?;
            if install {
                a.install_extras();
            }
            a.run().await?
        }
        What::Crash(a) => {
            crash::parse_kinds(&a.kinds)?;
            peers::require("crash", &a.needs(), install).await?;
            a.run().await?
        }
        What::Image(a) => {
            for artifact in &a.artifacts {
                image::Artifact::parse(artifact)?;
            }
            peers::require("image", &a.needs(), install).await?;
            a.run().await?
        }
        What::Web(a) => {
            peers::require("web", &a.needs(), install).await?;
            a.run().await?
        }
        What::Api(a) => {
            peers::require("api", &a.needs(), install).await?;
            a.run().await?
        }
        What::Ha(a) => {
            peers::require("ha", &a.needs(), install).await?;
            ha::run(&a).await?
        }
        What::Memory(a) => {
            peers::require("memory", &a.needs(), install).await?;
            memory::run(&a).await?
        }
        What::All(a) => all::run(a, install).await?,
    }
    Ok(())
}

async fn run_backend(
    backend: &str,
    pg: &str,
    releases: i64,
    applications: i64,
    requests: usize,
    concurrency: usize,
) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("prism-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let pg_db = (backend == "postgres").then(|| format!("prism_bench_{}", uuid::Uuid::new_v4().simple()));
    let url = match &pg_db {
        Some(db) => {
            seed::create_pg_database(pg, db).await?;
            format!("{pg}/{db}")
        }
        None => format!("sqlite://{}", dir.join("prism.db").display()),
    };
    let server = server::Server::start(&dir, &url).await?;
    let store = prism_store::Store::open(&url, 8).await?;
    let fixture = seed::seed(&store, &server, releases, applications).await?;
    let workloads = load::workloads(&fixture);
    for w in &workloads {
        // Warm both paths, then measure.
        load::http(&server.base, &w.token, &w.path, 200, concurrency).await?;
        let api = load::http(&server.base, &w.token, &w.path, requests, concurrency).await?;
        load::sql(&store, w, 200, concurrency).await?;
        let sql = load::sql(&store, w, requests, concurrency).await?;
        println!(
            "{:<9} {:<34} {:>9.0} {:>8.2} {:>8.2} | {:>9.0} {:>8.2} | {:>8.2}x {:>8.2}x",
            backend,
            w.name,
            api.rps,
            ms(api.p50),
            ms(api.p99),
            sql.rps,
            ms(sql.p99),
            ms(api.p99) / ms(sql.p99).max(0.001),
            sql.rps / api.rps.max(0.001),
        );
        let case = format!("{backend}: {}", w.name);
        Figure::new("api", &case, "requests/s", api.rps, "req/s")
            .beside("the same query in SQL", sql.rps, sql.rps / api.rps.max(0.001))
            .record();
        Figure::new("api", &case, "p50 latency", ms(api.p50), "ms").record();
        Figure::new("api", &case, "p99 latency", ms(api.p99), "ms")
            .beside(
                "the same query in SQL",
                ms(sql.p99),
                ms(api.p99) / ms(sql.p99).max(0.001),
            )
            .record();
    }
    let rss = server.peak_rss_kib()? as f64 / 1024.0;
    println!("{:<9} server peak resident memory: {:.1} MiB (VmHWM)", backend, rss);
    Figure::new(
        "api",
        format!("{backend}: server"),
        "peak resident memory (VmHWM)",
        rss,
        "MiB",
    )
    .record();
    store.close().await;
    drop(server);
    if let Some(db) = pg_db {
        seed::drop_pg_database(pg, &db).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
