//! `prism-bench web`: the web console's dashboard (with the board), list
//! and statistics pages with 1,000 applications and 100,000 releases (and a deploy
//! and a build for every 20th release) in the store, on SQLite and PostgreSQL:
//! p50/p99 latency and requests per second of each page (as a signed-in
//! developer, through the session cookie), beside the JSON API call that
//! reads the same records, in the same run: the ratio is what rendering the
//! page costs over the API.

use crate::load::{self, Auth};
use crate::report::Figure;
use crate::seed;

struct Page {
    name: &'static str,
    page: String,
    api: String,
}

pub async fn run(
    backend: &str,
    pg: &str,
    releases: i64,
    applications: i64,
    requests: usize,
    concurrency: usize,
) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("prism-bench-web-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let pg_db = (backend == "postgres").then(|| format!("prism_bench_{}", uuid::Uuid::new_v4().simple()));
    let url = match &pg_db {
        Some(db) => {
            seed::create_pg_database(pg, db).await?;
            format!("{pg}/{db}")
        }
        None => format!("sqlite://{}", dir.join("prism.db").display()),
    };
    let server = crate::server::Server::start(&dir, &url).await?;
    let store = prism_store::Store::open(&url, 8).await?;
    let fixture = seed::seed(&store, &server, releases, applications).await?;
    let cookie = session_cookie(&server.base).await?;
    let token = Auth::Bearer(fixture.token.clone());
    let mid = format!("r{}", fixture.middle_release);
    let app = &fixture.some_app;
    let pages = [
        Page {
            name: "dashboard /",
            page: "/".into(),
            api: "/api/v1/board".into(),
        },
        Page {
            name: "releases /releases",
            page: "/releases".into(),
            api: "/api/v1/releases".into(),
        },
        Page {
            name: "one app's releases",
            page: format!("/releases?application={app}"),
            api: format!("/api/v1/releases?application={app}"),
        },
        Page {
            name: "applications /apps",
            page: "/apps".into(),
            api: "/api/v1/applications".into(),
        },
        Page {
            name: "application page",
            page: format!("/apps/{app}"),
            api: format!("/api/v1/applications/{app}"),
        },
        Page {
            name: "release page",
            page: format!("/releases/{mid}"),
            api: format!("/api/v1/releases/{mid}"),
        },
        Page {
            name: "statistics (a project)",
            page: "/stats?project=team-0".into(),
            api: "/api/v1/deploys?project=team-0".into(),
        },
    ];
    for p in &pages {
        load::http_as(&server.base, &cookie, &p.page, 50, concurrency).await?;
        let page = load::http_as(&server.base, &cookie, &p.page, requests, concurrency).await?;
        load::http_as(&server.base, &token, &p.api, 50, concurrency).await?;
        let api = load::http_as(&server.base, &token, &p.api, requests, concurrency).await?;
        println!(
            "{:<9} {:<22} {:>8.0} {:>8.2} {:>8.2} | {:>8.0} {:>8.2} | {:>8.2}x",
            backend,
            p.name,
            page.rps,
            ms(page.p50),
            ms(page.p99),
            api.rps,
            ms(api.p99),
            ms(page.p99) / ms(api.p99).max(0.001),
        );
        let case = format!("{backend}: {}", p.name);
        let peer = format!("JSON API {}", p.api);
        Figure::new("web", &case, "pages/s", page.rps, "req/s")
            .beside(&peer, api.rps, api.rps / page.rps.max(0.001))
            .record();
        Figure::new("web", &case, "p50 latency", ms(page.p50), "ms").record();
        Figure::new("web", &case, "p99 latency", ms(page.p99), "ms")
            .beside(&peer, ms(api.p99), ms(page.p99) / ms(api.p99).max(0.001))
            .record();
    }
    store.close().await;
    drop(server);
    if let Some(db) = pg_db {
        seed::drop_pg_database(pg, &db).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Signs in as the bench user through the API's login and keeps the session cookie.
async fn session_cookie(base: &str) -> anyhow::Result<Auth> {
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"username": "bench", "password": "bench-user-password"}))
        .send()
        .await?;
    anyhow::ensure!(resp.status().is_success(), "login: {}", resp.status());
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("prism_session="))
        .and_then(|v| v.split(';').next())
        .ok_or_else(|| anyhow::anyhow!("no session cookie"))?
        .to_owned();
    Ok(Auth::Cookie(cookie))
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
