//! `prism-bench api`: seeds a store with 100,000 releases, starts a real
//! `prism serve` (release build) on it, and measures listing releases over
//! HTTP: requests per second, p50 and p99 latency, and the server's peak
//! resident memory. Beside each figure it runs the same page query directly
//! against the database (the floor any server on that store could reach),
//! in the same run, and prints the ratio.

mod build;
mod crash;
mod deploy;
mod image;
mod load;
mod peers;
mod seed;
mod server;
mod web;

use std::time::Duration;

use clap::Parser;

#[derive(Parser)]
#[command(name = "prism-bench")]
struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand)]
enum What {
    /// API listing benchmark on SQLite and PostgreSQL
    Api {
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
    },
    /// Artifacts as a layer on a base, pushed, beside buildah bud + push (random bytes, a node_modules tree, a fat jar)
    Image {
        /// Size of the random artifact
        #[arg(long, default_value_t = 50)]
        megabytes: usize,
        /// Comma-separated: random, node-modules, fat-jar
        #[arg(long, default_value = "random,node-modules,fat-jar", value_delimiter = ',')]
        artifacts: Vec<String>,
    },
    /// Web console pages (dashboard, lists) with 1,000 applications and 100,000 releases, beside the JSON API
    Web {
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
    },
    /// Crash drill: kill -9 `prism serve` at random moments during each job kind, restart, check recovery
    Crash {
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
    },
    /// The same Node.js build on the unsandboxed host-process runner, the contained runner (runc) and a Kubernetes runner (a real node; root), cached and not
    Build {
        /// Builds per runner and cache state (the median is printed)
        #[arg(long, default_value_t = 3)]
        builds: usize,
    },
    /// Deploy N applications with Prism beside kubectl apply --server-side + rollout status
    Deploy {
        /// Comma-separated application counts
        #[arg(long, default_value = "1,20,100", value_delimiter = ',')]
        apps: Vec<usize>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.what {
        What::Deploy { apps } => {
            peers::require("deploy", &[peers::KUBECTL])?;
            deploy::run(&apps).await?
        }
        What::Build { builds } => {
            peers::require(
                "build",
                &[
                    peers::RUNC,
                    peers::UMOCI,
                    peers::SKOPEO,
                    peers::REGISTRY,
                    peers::SLIRP4NETNS,
                    peers::GIT,
                ],
            )?;
            build::run(builds.max(1)).await?
        }
        What::Crash {
            trials,
            kinds,
            backend,
            pg,
        } => {
            peers::require("crash", &[peers::REGISTRY, peers::KUBECTL, peers::GIT])?;
            let kinds = crash::parse_kinds(&kinds)?;
            println!("prism-bench crash: {trials} kill -9 trials per job kind and store, at random moments; recovery = from starting the killed server again to its interrupted job running again");
            crash::header();
            let backends: Vec<&str> = match backend.as_str() {
                "both" => vec!["sqlite", "postgres"],
                one => vec![one],
            };
            for b in backends {
                crash::run(b, &pg, &kinds, trials).await?;
            }
        }
        What::Image { megabytes, artifacts } => {
            let artifacts = artifacts
                .iter()
                .map(|a| image::Artifact::parse(a))
                .collect::<anyhow::Result<Vec<_>>>()?;
            peers::require("image", &[peers::BUILDAH, peers::REGISTRY, peers::TAR])?;
            image::run_bench(megabytes, &artifacts).await?
        }
        What::Web {
            releases,
            applications,
            requests,
            concurrency,
            backend,
            pg,
        } => {
            println!("prism-bench web: {releases} releases over {applications} applications; {requests} requests per page, {concurrency} concurrent clients, as a signed-in developer");
            println!(
                "{:<9} {:<22} {:>8} {:>8} {:>8} | {:>8} {:>8} | {:>9}",
                "store", "page", "page/s", "p50 ms", "p99 ms", "api/s", "p99 ms", "p99 ratio"
            );
            let backends: Vec<&str> = match backend.as_str() {
                "both" => vec!["sqlite", "postgres"],
                one => vec![one],
            };
            for b in backends {
                web::run(b, &pg, releases, applications, requests, concurrency).await?;
            }
        }
        What::Api {
            releases,
            applications,
            requests,
            concurrency,
            backend,
            pg,
        } => {
            println!("prism-bench api: {releases} releases over {applications} applications; {requests} requests per workload, {concurrency} concurrent clients");
            println!(
                "{:<9} {:<34} {:>9} {:>8} {:>8} | {:>9} {:>8} | {:>9} {:>9}",
                "store", "workload", "prism/s", "p50 ms", "p99 ms", "sql/s", "p99 ms", "p99 ratio", "rps ratio"
            );
            let backends: Vec<&str> = match backend.as_str() {
                "both" => vec!["sqlite", "postgres"],
                one => vec![one],
            };
            for b in backends {
                run_backend(b, &pg, releases, applications, requests, concurrency).await?;
            }
        }
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
        load::http(&server.base, &fixture.token, &w.path, 200, concurrency).await?;
        let api = load::http(&server.base, &fixture.token, &w.path, requests, concurrency).await?;
        load::sql(&store, &w.filter, 200, concurrency).await?;
        let sql = load::sql(&store, &w.filter, requests, concurrency).await?;
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
    }
    println!(
        "{:<9} server peak resident memory: {:.1} MiB (VmHWM)",
        backend,
        server.peak_rss_kib()? as f64 / 1024.0
    );
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
