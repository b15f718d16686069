//! Closed-loop load: `concurrency` clients each send their share of requests
//! back to back; every latency is recorded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use prism_store::releases::{self, ReleaseFilter};
use prism_store::slots::{self, BoardScope};
use prism_store::Store;

use crate::seed::Fixture;

pub struct Workload {
    pub name: String,
    /// Whose token asks.
    pub token: String,
    pub path: String,
    /// The store's call that reads what the endpoint shows (the bare query).
    pub query: Query,
    /// The page is empty (nothing matches): the worst case of a scan.
    pub empty: bool,
}

#[derive(Clone)]
pub enum Query {
    Releases(ReleaseFilter),
    /// A page of the board: `limit` applications x every environment.
    Board {
        visible_to: i64,
        limit: i64,
    },
}

pub fn workloads(f: &Fixture) -> Vec<Workload> {
    let base = ReleaseFilter {
        visible_to: Some(f.bench_user_id),
        limit: 50,
        ..Default::default()
    };
    let w = |name: &str, token: &str, path: String, filter: ReleaseFilter, empty: bool| Workload {
        name: name.into(),
        token: token.into(),
        path,
        query: Query::Releases(filter),
        empty,
    };
    let as_user = |id: i64| ReleaseFilter {
        visible_to: Some(id),
        ..base.clone()
    };
    vec![
        w(
            "releases, first page (50)",
            &f.token,
            "/api/v1/releases?limit=50".into(),
            base.clone(),
            false,
        ),
        w(
            "releases, middle page (cursor)",
            &f.token,
            format!("/api/v1/releases?limit=50&before=r{}", f.middle_release),
            ReleaseFilter {
                before: Some(f.middle_release),
                ..base.clone()
            },
            false,
        ),
        w(
            "releases of one application",
            &f.token,
            format!("/api/v1/releases?limit=50&application={}", f.some_app),
            ReleaseFilter {
                app_id: Some(f.some_app_id),
                ..base.clone()
            },
            false,
        ),
        w(
            "releases in state built",
            &f.token,
            "/api/v1/releases?limit=50&state=built".into(),
            ReleaseFilter {
                state: Some("built".into()),
                ..base.clone()
            },
            false,
        ),
        w(
            "member of 1 project: first page",
            &f.one.0,
            "/api/v1/releases?limit=50".into(),
            as_user(f.one.1),
            false,
        ),
        w(
            "member of 1 project: closed (none)",
            &f.one.0,
            "/api/v1/releases?limit=50&state=closed".into(),
            ReleaseFilter {
                state: Some("closed".into()),
                ..as_user(f.one.1)
            },
            true,
        ),
        w(
            "member of 1 in 10: built (none)",
            &f.tenth.0,
            "/api/v1/releases?limit=50&state=built".into(),
            ReleaseFilter {
                state: Some("built".into()),
                ..as_user(f.tenth.1)
            },
            true,
        ),
        Workload {
            name: "board, first page (100 apps)".into(),
            token: f.token.clone(),
            path: "/api/v1/board".into(),
            query: Query::Board {
                visible_to: f.bench_user_id,
                limit: 100,
            },
            empty: false,
        },
    ]
}

pub struct Stats {
    pub rps: f64,
    pub p50: Duration,
    pub p99: Duration,
}

fn stats(mut lat: Vec<Duration>, wall: Duration) -> Stats {
    lat.sort();
    let pick = |q: f64| lat[((lat.len() as f64 * q).ceil() as usize).clamp(1, lat.len()) - 1];
    Stats {
        rps: lat.len() as f64 / wall.as_secs_f64(),
        p50: pick(0.50),
        p99: pick(0.99),
    }
}

pub async fn http(base: &str, token: &str, path: &str, requests: usize, concurrency: usize) -> anyhow::Result<Stats> {
    http_as(base, &Auth::Bearer(token.to_owned()), path, requests, concurrency).await
}

/// How a load client authenticates: an API token, or a browser's session cookie.
#[derive(Clone)]
pub enum Auth {
    Bearer(String),
    Cookie(String),
}

pub async fn http_as(
    base: &str,
    auth: &Auth,
    path: &str,
    requests: usize,
    concurrency: usize,
) -> anyhow::Result<Stats> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build()?;
    let url = Arc::new(format!("{base}{path}"));
    let started = Instant::now();
    let tasks = (0..concurrency).map(|i| {
        let client = client.clone();
        let url = url.clone();
        let auth = auth.clone();
        let n = requests / concurrency + usize::from(i < requests % concurrency);
        tokio::spawn(async move {
            let mut lat = Vec::with_capacity(n);
            for _ in 0..n {
                let t = Instant::now();
                let req = client.get(url.as_str());
                let req = match &auth {
                    Auth::Bearer(token) => req.bearer_auth(token),
                    Auth::Cookie(cookie) => req.header("cookie", cookie),
                };
                let resp = req.send().await?;
                anyhow::ensure!(resp.status().is_success(), "{}: {}", url, resp.status());
                resp.bytes().await?;
                lat.push(t.elapsed());
            }
            Ok(lat)
        })
    });
    let mut all = Vec::with_capacity(requests);
    for r in futures::future::join_all(tasks).await {
        all.extend(r??);
    }
    Ok(stats(all, started.elapsed()))
}

pub async fn sql(store: &Store, w: &Workload, requests: usize, concurrency: usize) -> anyhow::Result<Stats> {
    let empty = w.empty;
    let query = Arc::new(w.query.clone());
    let started = Instant::now();
    let tasks = (0..concurrency).map(|i| {
        let store = store.clone();
        let query = query.clone();
        let n = requests / concurrency + usize::from(i < requests % concurrency);
        tokio::spawn(async move {
            let mut lat = Vec::with_capacity(n);
            for _ in 0..n {
                let t = Instant::now();
                let mut c = store.conn().await?;
                let rows = match &*query {
                    Query::Releases(filter) => releases::list(&mut c, filter).await?.len(),
                    Query::Board { visible_to, limit } => {
                        let page = BoardScope::Page {
                            after: None,
                            limit: *limit,
                        };
                        slots::board(&mut c, Some(*visible_to), page).await?.len()
                    }
                };
                anyhow::ensure!((rows == 0) == empty, "a page of {rows} rows");
                lat.push(t.elapsed());
            }
            Ok(lat)
        })
    });
    let mut all = Vec::with_capacity(requests);
    for r in futures::future::join_all(tasks).await {
        all.extend(r??);
    }
    Ok(stats(all, started.elapsed()))
}
