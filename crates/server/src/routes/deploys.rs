use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::Stream;
use prism_api::deploys::{Deploy, DeployDetail, DeployEnd, DeployEvent, Drift, Review, Rollback, StartDeploy};
use prism_domain::ReleaseId;
use prism_store::deploys;
use serde::Deserialize;

use super::ApiQuery;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::live_events::ResumeQuery;
use crate::ops::deploys::{self as op, DeployQuery};
use crate::state::AppState;
use crate::wire::ToApi;

/// Starts deploying a release into an environment: checks the caller's role
/// and the environment's hold, moves the release to `deploying`, and queues
/// the deploy (plan, review where required, apply, watch).
#[utoipa::path(post, path = "/api/v1/releases/{id}/deploys", tag = "deploys", params(("id" = String, Path)), request_body = StartDeploy,
    responses((status = 201, body = Deploy), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn start(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<StartDeploy>,
) -> ApiResult<(StatusCode, Json<Deploy>)> {
    let rid = ReleaseId::parse("id", &id).map_err(|_| ApiError::not_found("release", &id))?;
    Ok((
        StatusCode::CREATED,
        Json(op::start_deploy(&state, &caller, rid, req).await?.to_api()),
    ))
}

#[utoipa::path(get, path = "/api/v1/deploys/{id}", tag = "deploys", params(("id" = i64, Path)), responses((status = 200, body = DeployDetail)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<DeployDetail>> {
    let (deploy, release_info, _) = op::get(&state, &caller, &id).await?;
    Ok(Json(DeployDetail {
        deploy: deploy.to_api(),
        release_info,
    }))
}

/// Deploys the caller may see, newest first, one page at a time (keyset
/// paging: `before` the last id of the previous page); when more may follow,
/// the `Link` header names the next page (`rel="next"`) with the same filters.
#[utoipa::path(get, path = "/api/v1/deploys", tag = "deploys", params(DeployQuery),
    responses((status = 200, body = [Deploy], headers(("Link" = String, description = "the next page, when there may be one")))))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<DeployQuery>,
) -> ApiResult<Response> {
    let limit = q.limit.unwrap_or(50);
    let next = next_link(&q);
    let found = op::list(&state, &caller, q).await?;
    let last = (found.len() as i64 == limit)
        .then(|| found.last().map(|d| d.id))
        .flatten();
    let mut response = Json(found.to_api()).into_response();
    if let Some(link) = last.and_then(|id| HeaderValue::from_str(&next(id)).ok()) {
        response.headers_mut().insert(header::LINK, link);
    }
    Ok(response)
}

/// The next page's `Link` value after deploy `id`, keeping the query's filters.
fn next_link(q: &DeployQuery) -> impl Fn(i64) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("application", &q.application),
        ("environment", &q.environment),
        ("release", &q.release),
        ("project", &q.project),
        ("state", &q.state),
    ] {
        if let Some(v) = v {
            query.append_pair(k, v);
        }
    }
    if let Some(l) = q.limit {
        query.append_pair("limit", &l.to_string());
    }
    let filters = query.finish();
    move |id| {
        let sep = if filters.is_empty() { "" } else { "&" };
        format!("</api/v1/deploys?{filters}{sep}before={id}>; rel=\"next\"")
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    /// Only events after this event id.
    pub after: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/deploys/{id}/events", tag = "deploys", params(("id" = i64, Path), EventQuery), responses((status = 200, body = [DeployEvent])))]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<EventQuery>,
) -> ApiResult<Json<Vec<DeployEvent>>> {
    Ok(Json(op::events(&state, &caller, &id, q.after).await?.to_api()))
}

/// Server-sent events: `step` (id: the event's id) for every stored event
/// from the start (so a finished deploy replays), then new ones as they
/// happen, then `end` with the result. A client reconnecting with
/// `Last-Event-ID` (or `?last_event_id=`) gets only the events after it.
#[utoipa::path(get, path = "/api/v1/deploys/{id}/stream", tag = "deploys",
    params(("id" = i64, Path), ResumeQuery, ("Last-Event-ID" = Option<i64>, Header, description = "only events after this id")),
    responses((status = 200, content_type = "text/event-stream"), (status = 400, body = crate::error::ErrorBody)))]
pub async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiQuery(resume): ApiQuery<ResumeQuery>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let resume = crate::live_events::resume_after(&headers, &resume)?;
    let d = op::visible(&mut *state.store.conn().await?, &caller, &id).await?;
    let permit = crate::live_events::admit(&caller)?;
    let store = state.store.clone();
    // Event ids start at 1: after 0 is from the start.
    let after = resume.unwrap_or(0);
    let s = futures::stream::unfold((store, d.id, after, false), |(store, id, after, done)| async move {
        if done {
            return None;
        }
        loop {
            let mut c = store.conn().await.ok()?;
            // The state first, then the events: the job writes its last
            // event in the transaction that makes the deploy final, so a
            // final state read before the events means none is still to come.
            // (Read the other way round, the last event could commit between
            // the two reads and the stream would end without it.)
            let d = deploys::get(&mut c, id).await.ok()?;
            let evs = deploys::events(&mut c, id, after).await.ok()?;
            if let Some(last) = evs.last().map(|e| e.id) {
                // Everything new in one batch: each event is read once.
                let batch = evs
                    .into_iter()
                    .filter_map(|e| {
                        let id = e.id.to_string();
                        Event::default().event("step").id(id).json_data(e.to_api()).ok()
                    })
                    .map(Ok)
                    .collect::<Vec<_>>();
                return Some((batch, (store, id, last, false)));
            }
            drop(c);
            if d.state.is_final() {
                let ev = Event::default()
                    .event("end")
                    .json_data(DeployEnd {
                        state: d.state,
                        error: d.error,
                    })
                    .ok()?;
                return Some((vec![Ok(ev)], (store, id, after, true)));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    use futures::StreamExt;
    let hint = futures::stream::once(async { Ok(crate::live_events::retry_hint()) });
    let flat = crate::live_events::hold(hint.chain(s.flat_map(futures::stream::iter)), permit);
    Ok(Sse::new(flat).keep_alive(KeepAlive::default()))
}

/// An operator's confirmation (or rejection) of a planned deploy, after
/// seeing the release, the rendered manifests and the diff.
#[utoipa::path(post, path = "/api/v1/deploys/{id}/review", tag = "deploys", params(("id" = i64, Path)), request_body = Review, responses((status = 200, body = Deploy)))]
pub async fn review(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<Review>,
) -> ApiResult<Json<Deploy>> {
    Ok(Json(op::review(&state, &caller, &id, req).await?.to_api()))
}

/// Rolls an application's environment back to an earlier successful deploy,
/// applying exactly the objects that deploy applied. Recorded as its own deploy.
#[utoipa::path(post, path = "/api/v1/applications/{name}/environments/{env}/rollback", tag = "deploys",
    params(("name" = String, Path), ("env" = String, Path)), request_body = Rollback, responses((status = 201, body = Deploy)))]
pub async fn rollback(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, env)): Path<(String, String)>,
    ApiJson(req): ApiJson<Rollback>,
) -> ApiResult<(StatusCode, Json<Deploy>)> {
    Ok((
        StatusCode::CREATED,
        Json(op::rollback(&state, &caller, &name, &env, req).await?.to_api()),
    ))
}

/// Whether the live objects still match the last successful deploy (a dry
/// run of its objects against the cluster), so a hand edit shows up.
#[utoipa::path(get, path = "/api/v1/applications/{name}/environments/{env}/drift", tag = "deploys",
    params(("name" = String, Path), ("env" = String, Path)), responses((status = 200, body = Drift)))]
pub async fn drift(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, env)): Path<(String, String)>,
) -> ApiResult<Json<Drift>> {
    Ok(Json(op::drift(&state, &caller, &name, &env).await?))
}
