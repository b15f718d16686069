//! Prometheus metrics: HTTP requests and latencies by route (the matched
//! route pattern, so ids do not explode the label set), plus jobs by kind and
//! state and releases by state, read from the store at scrape time.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prism_domain::ReleaseState;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::error::ApiResult;
use crate::state::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    kind: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    jobs: Family<JobLabels, Gauge>,
    /// Jobs failed as `crashed` (the server stopped while running them too often).
    quarantined: Family<KindLabels, Counter>,
    releases: Family<StateLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("prism");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0])
        });
        let jobs = Family::<JobLabels, Gauge>::default();
        let releases = Family::<StateLabels, Gauge>::default();
        registry.register("http_requests", "HTTP requests by route and status", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        registry.register("jobs", "Jobs in the queue by kind and state", jobs.clone());
        registry.register("releases", "Release orders by state", releases.clone());
        let quarantined = Family::<KindLabels, Counter>::default();
        registry.register(
            "jobs_quarantined",
            "Jobs quarantined by kind: the server stopped while running them too often in a row",
            quarantined.clone(),
        );
        Self {
            quarantined,
            registry,
            requests,
            latency,
            jobs,
            releases,
        }
    }
}

pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let response = next.run(req).await;
    let status = response.status().as_u16();
    let m = &state.metrics;
    m.requests
        .get_or_create(&RequestLabels {
            method: method.clone(),
            route: route.clone(),
            status,
        })
        .inc();
    m.latency
        .get_or_create(&RouteLabels { method, route })
        .observe(started.elapsed().as_secs_f64());
    response
}

/// GET /metrics in the Prometheus text format.
pub async fn render(State(state): State<AppState>) -> ApiResult<Response> {
    let mut c = state.store.conn().await?;
    let m = &state.metrics;
    let by_state: std::collections::HashMap<String, i64> = prism_store::releases::count_by_state(&mut c)
        .await?
        .into_iter()
        .collect();
    for kind in ReleaseState::KINDS {
        m.releases
            .get_or_create(&StateLabels { state: kind.into() })
            .set(by_state.get(kind).copied().unwrap_or(0));
    }
    let counts = prism_store::jobs::counts(&mut c).await?;
    let kinds: std::collections::BTreeSet<&String> = counts.iter().map(|(k, _, _)| k).collect();
    for kind in kinds {
        for st in ["queued", "running", "succeeded", "failed"] {
            let n = counts
                .iter()
                .find(|(k, s, _)| k == kind && s == st)
                .map(|(_, _, n)| *n)
                .unwrap_or(0);
            m.jobs
                .get_or_create(&JobLabels {
                    kind: kind.clone(),
                    state: st.into(),
                })
                .set(n);
        }
    }
    // Counted in the store (shared by every instance); the counter catches up at each scrape.
    for (kind, n) in prism_store::jobs::quarantined_counts(&mut c).await? {
        let counter = m.quarantined.get_or_create(&KindLabels { kind });
        let seen = counter.get();
        if (n as u64) > seen {
            counter.inc_by(n as u64 - seen);
        }
    }
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &m.registry).map_err(|_| crate::error::ApiError::internal())?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        out,
    )
        .into_response())
}
