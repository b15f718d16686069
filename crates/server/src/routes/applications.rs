use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use prism_api::applications::{Application, CreateApplication, EnvSettings, PutSettings, UpdateApplication};
use serde::Deserialize;

use super::ApiQuery;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::json::ApiJson;
use crate::ops::applications as op;
use crate::state::AppState;
use crate::wire::ToApi;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AppQuery {
    pub project: Option<String>,
    /// Applications whose name sorts after this one (the previous page's last).
    pub after: Option<String>,
    /// Applications per page (1 to 500, default 100).
    pub limit: Option<i64>,
}

/// The applications the caller may see, by name, a page at a time (keyset
/// paging: `after` the last one of the previous page); when more may
/// follow, the `Link` header names the next page (`rel="next"`).
#[utoipa::path(get, path = "/api/v1/applications", tag = "applications", params(AppQuery),
    responses((status = 200, body = [Application], headers(("Link" = String, description = "the next page, when there may be one")))))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AppQuery>,
) -> ApiResult<Response> {
    let limit = q.limit.unwrap_or(op::PAGE_DEFAULT);
    let found = op::list(&state, &caller, q.project.as_deref(), q.after.as_deref(), limit).await?;
    let next = (found.len() as i64 == limit)
        .then(|| found.last().map(|a| next_link(q.project.as_deref(), &a.name, limit)))
        .flatten();
    let mut response = Json(found.to_api()).into_response();
    if let Some(link) = next.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LINK, link);
    }
    Ok(response)
}

/// `</api/v1/applications?project=shop&after=web&limit=100>; rel="next"`.
fn next_link(project: Option<&str>, after: &str, limit: i64) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    if let Some(p) = project {
        query.append_pair("project", p);
    }
    query.append_pair("after", after);
    query.append_pair("limit", &limit.to_string());
    format!("</api/v1/applications?{}>; rel=\"next\"", query.finish())
}

#[utoipa::path(post, path = "/api/v1/applications", tag = "applications", request_body = CreateApplication, responses((status = 201, body = Application), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateApplication>,
) -> ApiResult<(StatusCode, Json<Application>)> {
    Ok((
        StatusCode::CREATED,
        Json(op::create(&state, &caller, req).await?.to_api()),
    ))
}

#[utoipa::path(get, path = "/api/v1/applications/{name}", tag = "applications", params(("name" = String, Path)), responses((status = 200, body = Application)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Application>> {
    Ok(Json(op::get(&state, &caller, &name).await?.0.to_api()))
}

#[utoipa::path(patch, path = "/api/v1/applications/{name}", tag = "applications", params(("name" = String, Path)), request_body = UpdateApplication, responses((status = 200, body = Application)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<UpdateApplication>,
) -> ApiResult<Json<Application>> {
    Ok(Json(op::update(&state, &caller, &name, req).await?.to_api()))
}

#[utoipa::path(delete, path = "/api/v1/applications/{name}", tag = "applications", params(("name" = String, Path)), responses((status = 204)))]
pub async fn delete(State(state): State<AppState>, caller: Caller, Path(name): Path<String>) -> ApiResult<StatusCode> {
    op::delete(&state, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/applications/{name}/settings", tag = "applications", params(("name" = String, Path)), responses((status = 200, body = [EnvSettings])))]
pub async fn settings(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<EnvSettings>>> {
    Ok(Json(op::settings(&state, &caller, &name).await?.to_api()))
}

#[utoipa::path(put, path = "/api/v1/applications/{name}/settings/{env}", tag = "applications",
    params(("name" = String, Path), ("env" = String, Path)), request_body = PutSettings, responses((status = 200, body = [EnvSettings]), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn put_settings(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, env)): Path<(String, String)>,
    ApiJson(req): ApiJson<PutSettings>,
) -> ApiResult<Json<Vec<EnvSettings>>> {
    Ok(Json(
        op::put_settings(&state, &caller, &name, &env, req).await?.to_api(),
    ))
}
