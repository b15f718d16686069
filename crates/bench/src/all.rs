//! `prism-bench all`: api, web, memory, deploy, image, build, crash and ha one after
//! another in this process, each checked for what it needs first (a
//! benchmark whose needs are missing is skipped with the reason, the others
//! still run; without PostgreSQL the SQLite half of api, web, memory and
//! crash runs), then a Markdown file with every figure and ratio, the machine's
//! core count and load average at start and end, rewritten after each
//! benchmark so that an interrupted run keeps what it measured.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::FutureExt;

use crate::ha::HaArgs;
use crate::memory::MemoryArgs;
use crate::peers::{self, Need};
use crate::report::{self, Outcome, Section};
use crate::{ApiArgs, BuildArgs, CrashArgs, DeployArgs, ImageArgs, WebArgs};

const ORDER: [&str; 8] = ["api", "web", "memory", "deploy", "image", "build", "crash", "ha"];

#[derive(clap::Args, Clone)]
pub struct AllArgs {
    /// Smaller sizes (fewer releases, requests, applications, builds and
    /// trials): the whole set in a few minutes
    #[arg(long)]
    quick: bool,
    /// The Markdown file to write
    #[arg(long, default_value = "docs/benchmarks.md")]
    out: PathBuf,
    /// Comma-separated subset of api, web, memory, deploy, image, build, crash, ha
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "api,web,memory,deploy,image,build,crash,ha"
    )]
    only: Vec<String>,
    /// Leave out the build benchmark's Kubernetes runner (a real node: root, and the longest to start)
    #[arg(long)]
    no_kubernetes: bool,
    /// Only check (with --install: install) what each benchmark needs, print it and stop
    #[arg(long)]
    check: bool,
    /// The PostgreSQL server api, web and crash use (without it their SQLite half runs)
    #[arg(
        long,
        env = "PRISM_TEST_PG_URL",
        default_value = "postgres://postgres@127.0.0.1:5432"
    )]
    pg: String,
}

/// One benchmark of the set, with its sizes.
enum Bench {
    Api(ApiArgs),
    Web(WebArgs),
    Deploy(DeployArgs),
    Image(ImageArgs),
    Build(BuildArgs),
    Crash(CrashArgs),
    Memory(MemoryArgs),
    Ha(HaArgs),
}

/// A subcommand's arguments as its command line would give them.
fn parse<T: clap::Args + clap::FromArgMatches>(args: &[&str]) -> T {
    let cmd = T::augment_args(clap::Command::new("prism-bench"));
    let matches = cmd
        .try_get_matches_from(std::iter::once("prism-bench").chain(args.iter().copied()))
        .expect("the set's own arguments parse");
    T::from_arg_matches(&matches).expect("the set's own arguments parse")
}

impl Bench {
    fn plan(name: &str, a: &AllArgs) -> Bench {
        let q = a.quick;
        let pg = ["--pg", a.pg.as_str()];
        match name {
            "api" => Bench::Api(parse(
                &if q {
                    vec!["--releases", "10000", "--applications", "50", "--requests", "1000"]
                } else {
                    vec![]
                }
                .into_iter()
                .chain(pg)
                .collect::<Vec<_>>(),
            )),
            "web" => Bench::Web(parse(
                &if q {
                    vec!["--releases", "10000", "--applications", "100", "--requests", "200"]
                } else {
                    vec![]
                }
                .into_iter()
                .chain(pg)
                .collect::<Vec<_>>(),
            )),
            "deploy" => Bench::Deploy(parse(&if q { vec!["--apps", "1,20"] } else { vec![] })),
            "image" => Bench::Image(parse(&if q {
                vec!["--megabytes", "20", "--artifacts", "random,fat-jar"]
            } else {
                vec![]
            })),
            "build" => {
                let mut args = vec!["--builds", if q { "1" } else { "3" }];
                if a.no_kubernetes {
                    args.push("--no-kubernetes");
                }
                Bench::Build(parse(&args))
            }
            "crash" => Bench::Crash(parse(
                &["--trials", if q { "2" } else { "5" }]
                    .into_iter()
                    .chain(pg)
                    .collect::<Vec<_>>(),
            )),
            "memory" => Bench::Memory(parse(
                &if q {
                    vec!["--applications", "1000", "--deploys", "20", "--requests", "200"]
                } else {
                    vec![]
                }
                .into_iter()
                .chain(pg)
                .collect::<Vec<_>>(),
            )),
            "ha" => Bench::Ha(parse(&if q {
                vec!["--minutes", "2", "--users", "16", "--kill-every", "30"]
            } else {
                vec![]
            })),
            other => unreachable!("{other} is not a benchmark"),
        }
    }

    fn needs(&self) -> Vec<Need> {
        match self {
            Bench::Api(a) => a.needs(),
            Bench::Web(a) => a.needs(),
            Bench::Deploy(a) => a.needs(),
            Bench::Image(a) => a.needs(),
            Bench::Build(a) => a.needs(),
            Bench::Crash(a) => a.needs(),
            Bench::Memory(a) => a.needs(),
            Bench::Ha(a) => a.needs(),
        }
    }

    fn command(&self) -> String {
        match self {
            Bench::Api(a) => a.command(),
            Bench::Web(a) => a.command(),
            Bench::Deploy(a) => a.command(),
            Bench::Image(a) => a.command(),
            Bench::Build(a) => a.command(),
            Bench::Crash(a) => a.command(),
            Bench::Memory(a) => a.command(),
            Bench::Ha(a) => a.command(),
        }
    }

    /// The SQLite half only (PostgreSQL is not there); false if it has no PostgreSQL half.
    fn sqlite_only(&mut self) -> bool {
        let backend = match self {
            Bench::Api(a) => &mut a.backend,
            Bench::Web(a) => &mut a.backend,
            Bench::Crash(a) => &mut a.backend,
            Bench::Memory(a) => &mut a.backend,
            _ => return false,
        };
        *backend = "sqlite".into();
        true
    }

    /// With `--install`: what it needs, and what its optional parts need.
    async fn install(&self) {
        peers::install(&self.needs()).await;
        if let Bench::Build(b) = self {
            b.install_extras();
        }
    }

    async fn run(&self) -> anyhow::Result<()> {
        match self {
            Bench::Api(a) => a.run().await,
            Bench::Web(a) => a.run().await,
            Bench::Deploy(a) => a.run().await,
            Bench::Image(a) => a.run().await,
            Bench::Build(a) => a.run().await,
            Bench::Crash(a) => a.run().await,
            Bench::Memory(a) => crate::memory::run(a).await,
            Bench::Ha(a) => crate::ha::run(a).await,
        }
    }
}

/// What a benchmark measures and how to read its ratios, for the file.
fn about(name: &str) -> &'static str {
    match name {
        "api" => {
            "Listing releases through `prism serve`'s HTTP API as a non-admin user (the membership \
             filter applies), beside the same page query run directly against the store: the ratio \
             is Prism's HTTP overhead."
        }
        "web" => {
            "The web console's pages as a signed-in developer, beside the JSON API call that reads \
             the same records: the ratio is what rendering the page costs over the API."
        }
        "deploy" => {
            "N applications deployed through Prism (API, job runner, render, dry-run diff, \
             server-side apply, rollout watch) on a v1.20.2 control plane with a simulated node, \
             beside kubectl doing the same to the same rendered objects, and the floor (one apply, \
             then watching until every Deployment is available)."
        }
        "image" => {
            "An artifact put onto a base image as one layer and pushed by Prism's daemonless \
             assembler, beside `buildah bud` + `buildah push` of the equivalent Containerfile to the \
             same registry (medians of 3 rounds, each with new content). The ratio is Prism's time \
             over buildah's (the console prints its inverse, the speedup) and Prism's pushed bytes \
             over buildah's."
        }
        "build" => {
            "The same Node.js build (npm install of 4 packages) on the contained runner (runc) and \
             on a Kubernetes runner (a Job on a real v1.20.2 node), beside the unsandboxed \
             host-process runner; medians. The aim for the contained runner is 1.15x."
        }
        "crash" => {
            "Crash drill: `prism serve` killed with SIGKILL at a random moment of each job kind, \
             started again; how many trials finished correctly, left nothing of the killed attempt \
             running and no job stuck, and the time from the restart to the interrupted job running \
             again. No peer: counts out of the trials."
        }
        "memory" => {
            "The resident memory of one `prism serve` holding applications in 4 environments (a \
             tenth as many projects, four releases each) with deploys in progress (rollouts watched \
             on a control plane whose node is held back), while 8 clients read the board and the \
             lists. No peer: the aim is under 100 MiB."
        }
        "ha" => {
            "Three `prism serve` instances on one PostgreSQL behind nginx, users creating, building, \
             promoting and deploying while one instance after another is killed with SIGKILL and \
             started again: requests served, failures after retries, p99 per endpoint, the time \
             from a kill to the instance answering again, and broken promises (must be 0). No peer."
        }
        _ => "",
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic".into())
}

pub async fn run(a: AllArgs, install: bool) -> anyhow::Result<()> {
    for name in &a.only {
        anyhow::ensure!(
            ORDER.contains(&name.as_str()),
            "--only: unknown benchmark {name:?} ({})",
            ORDER.join(", ")
        );
    }
    if a.check {
        return check(&a, install).await;
    }
    let started = Instant::now();
    let mut command = String::from("prism-bench all");
    if a.quick {
        command.push_str(" --quick");
    }
    if install {
        command.push_str(" --install");
    }
    if a.no_kubernetes {
        command.push_str(" --no-kubernetes");
    }
    if a.only.len() < ORDER.len() {
        command.push_str(&format!(" --only {}", a.only.join(",")));
    }
    let mut run = report::Run {
        command,
        date: report::now_utc(),
        commit: report::git_commit(),
        profile: if cfg!(debug_assertions) { "debug" } else { "release" },
        cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        load_start: report::load_average(),
        load_end: String::new(),
        seconds: 0.0,
        sections: Vec::new(),
        partial: Vec::new(),
    };
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    // Generous: a benchmark that hangs is ended (its children with it) and recorded as failed.
    let limit = Duration::from_secs(if a.quick { 30 * 60 } else { 3 * 60 * 60 });
    let _ = report::take();
    for name in ORDER.into_iter().filter(|n| a.only.iter().any(|o| o == n)) {
        println!("\n==> prism-bench all: {name}");
        let mut bench = Bench::plan(name, &a);
        if install {
            bench.install().await;
        }
        let pg = bench.needs().into_iter().find(|n| matches!(n, Need::Postgres(_)));
        if let Some(pg) = pg {
            if let Some(why) = peers::unmet(&pg).await {
                if bench.sqlite_only() {
                    println!("{name}: PostgreSQL rows skipped: {why}");
                    run.partial.push((format!("{name} on PostgreSQL"), why));
                }
            }
        }
        let missing = peers::missing(&bench.needs()).await;
        let t = Instant::now();
        let outcome = if missing.is_empty() {
            println!("$ {}", bench.command());
            match tokio::time::timeout(limit, AssertUnwindSafe(bench.run()).catch_unwind()).await {
                Ok(Ok(Ok(()))) => Outcome::Ran,
                Ok(Ok(Err(e))) => Outcome::Failed(format!("{e:#}")),
                Ok(Err(panic)) => Outcome::Failed(format!("panicked: {}", panic_message(&*panic))),
                Err(_) => Outcome::Failed(format!("did not end within {} minutes", limit.as_secs() / 60)),
            }
        } else {
            Outcome::Skipped(peers::sentence(name, &missing))
        };
        match &outcome {
            Outcome::Ran => {}
            Outcome::Failed(e) => println!("{name}: failed: {e}"),
            Outcome::Skipped(why) => println!("{name}: skipped: {why}"),
        }
        let (figures, notes) = report::take();
        run.sections.push(Section {
            bench: name.into(),
            about: about(name).into(),
            command: bench.command(),
            seconds: t.elapsed().as_secs_f64(),
            outcome,
            figures,
            notes,
        });
        run.load_end = report::load_average();
        run.seconds = started.elapsed().as_secs_f64();
        std::fs::write(&a.out, report::markdown(&run))?;
    }
    println!(
        "\nprism-bench all: {} s; every figure and ratio in {}",
        run.seconds.round(),
        a.out.display()
    );
    Ok(())
}

/// Prints what each benchmark of the set lacks, or that it has what it needs.
async fn check(a: &AllArgs, install: bool) -> anyhow::Result<()> {
    let mut lacking = 0;
    for name in ORDER.into_iter().filter(|n| a.only.iter().any(|o| o == n)) {
        let bench = Bench::plan(name, a);
        if install {
            bench.install().await;
        }
        let missing = peers::missing(&bench.needs()).await;
        if missing.is_empty() {
            println!("{name}: ready");
        } else {
            lacking += 1;
            println!("{name}: {}", peers::sentence(name, &missing));
        }
        if let Bench::Build(b) = &bench {
            if let Some(why) = b.kubernetes_unavailable() {
                println!("build: its Kubernetes runner will not be measured: {why}");
            }
        }
    }
    anyhow::ensure!(lacking == 0, "{lacking} benchmark(s) lack what they need");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(args: &[&str]) -> AllArgs {
        parse(args)
    }

    #[test]
    fn quick_sizes_are_the_subcommands_own_flags() {
        let a = all(&["--quick", "--pg", "postgres://pg:5432"]);
        let commands: Vec<String> = ORDER.iter().map(|n| Bench::plan(n, &a).command()).collect();
        assert_eq!(
            commands,
            [
                "prism-bench api --releases 10000 --applications 50 --requests 1000 --concurrency 8 --backend both",
                "prism-bench web --releases 10000 --applications 100 --requests 200 --concurrency 8 --backend both",
                "prism-bench memory --applications 1000 --deploys 20 --requests 200 --backend both",
                "prism-bench deploy --apps 1,20",
                "prism-bench image --megabytes 20 --artifacts random,fat-jar --compressions gzip,zstd",
                "prism-bench build --builds 1",
                "prism-bench crash --trials 2 --kinds build,deploy,base_image --backend both",
                "prism-bench ha --minutes 2 --users 16 --instances 3 --kill-every 30",
            ]
        );
        assert!(Bench::plan("api", &a)
            .needs()
            .contains(&Need::Postgres("postgres://pg:5432".into())));
        let full = all(&["--no-kubernetes"]);
        assert_eq!(
            Bench::plan("build", &full).command(),
            "prism-bench build --builds 3 --no-kubernetes"
        );
        assert_eq!(
            Bench::plan("deploy", &full).command(),
            "prism-bench deploy --apps 1,20,100"
        );
    }

    #[test]
    fn without_postgres_the_sqlite_half_runs() {
        let a = all(&["--quick"]);
        let mut api = Bench::plan("api", &a);
        assert!(api.sqlite_only());
        assert!(api.command().ends_with("--backend sqlite"));
        assert!(!api.needs().iter().any(|n| matches!(n, Need::Postgres(_))));
        assert!(!Bench::plan("image", &a).sqlite_only());
    }
}
