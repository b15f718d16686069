//! `prism-bench memory` (issue 15 item 3): the resident memory of one
//! `prism serve` (release build) holding a company's worth of state: 5,000
//! applications in 500 projects, 4 environments, four releases of every
//! application, and 50 deploys in progress (watching rollouts on a
//! real v1.20.2 control plane whose node is held back, so the Deployments
//! never become available), while 8 clients read the board, the release
//! lists and the console's dashboard. Prints the server's resident memory
//! (VmRSS) and its peak (VmHWM) at each stage; aim: under 100 MiB.

use std::time::{Duration, Instant};

use prism_store::{Backend, Store};
use prism_test_support::kube::KubeCluster;
use serde_json::json;

use crate::peers::{self, Need};
use crate::report::Figure;
use crate::server::{AdminApi, Server};

#[derive(clap::Args, Clone)]
pub struct MemoryArgs {
    #[arg(long, default_value_t = 5_000)]
    pub applications: i64,
    #[arg(long, default_value_t = 50)]
    pub deploys: usize,
    /// Reads per stage (8 at a time)
    #[arg(long, default_value_t = 400)]
    pub requests: usize,
    /// sqlite, postgres or both
    #[arg(long, default_value = "both")]
    pub backend: String,
    #[arg(
        long,
        env = "PRISM_TEST_PG_URL",
        default_value = "postgres://postgres@127.0.0.1:5432"
    )]
    pub pg: String,
}

impl MemoryArgs {
    pub fn needs(&self) -> Vec<Need> {
        let mut needs = vec![peers::PRISM];
        needs.extend(peers::control_plane());
        needs.extend(crate::pg_need(&self.backend, &self.pg));
        needs
    }

    pub fn command(&self) -> String {
        format!(
            "prism-bench memory --applications {} --deploys {} --requests {} --backend {}",
            self.applications, self.deploys, self.requests, self.backend
        )
    }
}

const AIM_MIB: f64 = 100.0;

/// VmRSS and VmHWM of `pid`, MiB.
fn rss_mib(pid: u32) -> anyhow::Result<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> f64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
            / 1024.0
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

/// 8 clients reading `paths` in turn, `n` requests in all.
async fn read(base: &str, token: &str, paths: &[String], n: usize) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = vec![];
    for _ in 0..8 {
        let (http, next, paths) = (http.clone(), next.clone(), paths.to_vec());
        let (base, token) = (base.to_owned(), token.to_owned());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return Ok::<(), anyhow::Error>(());
                }
                let path = &paths[i % paths.len()];
                let r = http.get(format!("{base}{path}")).bearer_auth(&token).send().await?;
                anyhow::ensure!(r.status().is_success(), "{path}: {}", r.status());
                r.bytes().await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

async fn seed(store: &Store, applications: i64) -> anyhow::Result<()> {
    let projects = (applications / 10).max(1);
    let series = |n: i64| match store.backend() {
        Backend::Postgres => format!("(SELECT generate_series(1, {n}) AS i) AS n"),
        Backend::Sqlite => format!(
            "(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) SELECT i FROM s) AS n"
        ),
    };
    let now = prism_store::now_ms();
    let mut tx = store.begin().await?;
    sqlx::query(&format!(
        "INSERT INTO projects (name, description, created_at) SELECT 'team-' || CAST(n.i AS TEXT), '', {now} FROM {}",
        series(projects)
    ))
    .execute(&mut *tx)
    .await?;
    sqlx::query(&format!(
        "INSERT INTO applications (project_id, name, git_url, created_at, updated_at) \
         SELECT (SELECT id FROM projects WHERE name = 'team-' || CAST(1 + (n.i - 1) % {projects} AS TEXT)), 'app-' || CAST(n.i AS TEXT), 'https://git.example/app.git', {now}, {now} FROM {}",
        series(applications)
    ))
    .execute(&mut *tx)
    .await?;
    let admin: i64 = sqlx::query_scalar("SELECT id FROM users WHERE username = 'admin'")
        .fetch_one(&mut *tx)
        .await?;
    // Four releases of every application (20,000 at 5,000 applications).
    for k in 0..4 {
        sqlx::query(&format!(
            "INSERT INTO releases (app_id, git_ref, change_note, creator_id, state, created_at, updated_at) \
             SELECT a.id, 'main', 'seeded {k}', {admin}, 'built', {now} + a.id * 4 + {k}, {now} FROM applications a"
        ))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    if store.backend() == Backend::Postgres {
        sqlx::query("ANALYZE").execute(&mut *store.conn().await?).await?;
    }
    Ok(())
}

pub async fn run(args: &MemoryArgs) -> anyhow::Result<()> {
    let cluster = tokio::task::spawn_blocking(KubeCluster::up_without_node).await?;
    cluster.kubectl(&["create", "namespace", "memory"]);
    println!(
        "prism-bench memory: {} applications x 4 environments, {} deploys in progress (a control plane whose node is held back), 8 readers; aim: under {AIM_MIB:.0} MiB resident",
        args.applications, args.deploys
    );
    println!("{:<9} {:<44} {:>10} {:>10}", "store", "stage", "RSS MiB", "peak MiB");
    for backend in crate::backends(&args.backend) {
        run_backend(args, backend, &cluster).await?;
    }
    Ok(())
}

async fn run_backend(args: &MemoryArgs, backend: &str, cluster: &KubeCluster) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("prism-bench-memory-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let pg_db = (backend == "postgres").then(|| format!("prism_bench_{}", uuid::Uuid::new_v4().simple()));
    let url = match &pg_db {
        Some(db) => {
            crate::seed::create_pg_database(&args.pg, db).await?;
            format!("{}/{db}", args.pg)
        }
        None => format!("sqlite://{}", dir.join("prism.db").display()),
    };
    // Each deploy in progress holds a job slot while it watches its rollout:
    // 50 of them need more than the default 32 (PRISM_JOB_CONCURRENCY).
    let slots = (args.deploys + 16).to_string();
    let server = Server::start_with_env(&dir, &url, &[("PRISM_JOB_CONCURRENCY", &slots)]).await?;
    let pid = server.pid();
    let show = |stage: &str| -> anyhow::Result<f64> {
        let (now, peak) = rss_mib(pid)?;
        println!("{backend:<9} {stage:<44} {now:>10.1} {peak:>10.1}");
        Figure::new(
            "memory",
            format!("{backend}: {stage}"),
            "resident memory (VmRSS)",
            now,
            "MiB",
        )
        .record();
        Ok(peak)
    };
    show("started, empty store")?;
    let api = AdminApi::sign_in(&server).await?;
    api.call(
        reqwest::Method::POST,
        "/api/v1/environments",
        Some(json!({"name": "stg", "namespace": "memory"})),
    )
    .await?;
    let store = Store::open(&url, 4).await?;
    seed(&store, args.applications).await?;
    api.call(
        reqwest::Method::POST,
        "/api/v1/clusters",
        Some(json!({"name": "memory", "kubeconfig": cluster.kubeconfig_text()})),
    )
    .await?;
    api.call(
        reqwest::Method::PATCH,
        "/api/v1/environments/fat",
        Some(json!({"cluster": "memory", "namespace": "memory"})),
    )
    .await?;
    // Deploys that stay in progress: the node is held back, so the rollouts never finish.
    for i in 1..=args.deploys {
        let app = format!("app-{i}");
        let r = api
            .call(
                reqwest::Method::POST,
                "/api/v1/releases",
                Some(json!({"application": app, "git_ref": "main", "change_note": "in progress"})),
            )
            .await?;
        let id = r["id"].as_str().unwrap_or_default().to_owned();
        for (action, body) in [
            ("start_build", json!({})),
            (
                "build_succeeded",
                json!({"image_ref": format!("registry.example/{app}:{id}")}),
            ),
            ("promote", json!({"environment": "fat"})),
        ] {
            api.call(
                reqwest::Method::POST,
                &format!("/api/v1/releases/{id}/actions/{action}"),
                Some(body),
            )
            .await?;
        }
        api.call(
            reqwest::Method::POST,
            &format!("/api/v1/releases/{id}/deploys"),
            Some(json!({"environment": "fat"})),
        )
        .await?;
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM deploys WHERE state = 'watching'")
            .fetch_one(&mut *store.conn().await?)
            .await?;
        if n >= args.deploys as i64 {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {n} of {} deploys reached watching in 300 s",
            args.deploys
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    show(&format!(
        "{} apps seeded, {} deploys watching",
        args.applications, args.deploys
    ))?;
    let paths: Vec<String> = vec![
        "/api/v1/board".into(),
        "/api/v1/releases?limit=50".into(),
        "/api/v1/releases?application=app-7&limit=50".into(),
        "/api/v1/deploys?limit=50".into(),
        "/api/v1/applications".into(),
    ];
    read(&api.base, &api.token, &paths, args.requests).await?;
    let peak = show("after reads (board, lists) by 8 clients")?;
    println!(
        "{backend:<9} peak {peak:.1} MiB: {}",
        if peak < AIM_MIB {
            format!("under the {AIM_MIB:.0} MiB aim")
        } else {
            format!("OVER the {AIM_MIB:.0} MiB aim")
        }
    );
    Figure::new(
        "memory",
        format!("{backend}: whole run"),
        "peak resident memory (VmHWM)",
        peak,
        "MiB",
    )
    .record();
    store.close().await;
    drop(server);
    if let Some(db) = pg_db {
        crate::seed::drop_pg_database(&args.pg, &db).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
