use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use prism_domain::{Name, Role};
use prism_store::projects::{self, Membership, Project};
use prism_store::{audit, users, AnyConnection};
use serde::Deserialize;
use serde_json::json;

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{referenced, ApiError, ApiResult};
use crate::json::ApiJson;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

fn description(field: &str, d: &str) -> ApiResult<()> {
    if d.len() > 2000 {
        return Err(ApiError::bad_request(field, "must be at most 2000 characters"));
    }
    Ok(())
}

/// A project the caller may see; others are reported as not found, so a
/// user of one project learns nothing of another.
pub async fn visible(c: &mut AnyConnection, caller: &Caller, name: &str) -> ApiResult<Project> {
    let p = projects::by_name(c, name).await?;
    if !caller.roles_in(c, p.id).await?.is_member() {
        return Err(ApiError::not_found("project", name));
    }
    Ok(p)
}

#[utoipa::path(get, path = "/api/v1/projects", tag = "projects", responses((status = 200, body = [Project])))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Project>>> {
    Ok(Json(
        projects::list_visible(&mut *state.store.conn().await?, caller.visibility()).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/projects", tag = "projects", request_body = CreateProject, responses((status = 201, body = Project), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateProject>,
) -> ApiResult<(StatusCode, Json<Project>)> {
    caller.require_admin()?;
    let name = Name::parse("name", &req.name)?;
    description("description", &req.description)?;
    let mut tx = state.store.begin().await?;
    let p = projects::create(&mut tx, name.as_str(), &req.description).await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "project.create",
        "project",
        name.as_str(),
        json!({"description": req.description}),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(p)))
}

#[utoipa::path(get, path = "/api/v1/projects/{name}", tag = "projects", params(("name" = String, Path)), responses((status = 200, body = Project)))]
pub async fn get(State(state): State<AppState>, caller: Caller, Path(name): Path<String>) -> ApiResult<Json<Project>> {
    Ok(Json(visible(&mut *state.store.conn().await?, &caller, &name).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProject {
    pub description: String,
}

#[utoipa::path(patch, path = "/api/v1/projects/{name}", tag = "projects", params(("name" = String, Path)), request_body = UpdateProject, responses((status = 200, body = Project)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<UpdateProject>,
) -> ApiResult<Json<Project>> {
    caller.require_admin()?;
    description("description", &req.description)?;
    let mut tx = state.store.begin().await?;
    let p = projects::by_name(&mut tx, &name).await?;
    let p = projects::update(&mut tx, p.id, &req.description).await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "project.update",
        "project",
        &name,
        json!({"description": req.description}),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(p))
}

#[utoipa::path(delete, path = "/api/v1/projects/{name}", tag = "projects", params(("name" = String, Path)), responses((status = 204)))]
pub async fn delete(State(state): State<AppState>, caller: Caller, Path(name): Path<String>) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    let mut tx = state.store.begin().await?;
    let p = projects::by_name(&mut tx, &name).await?;
    projects::delete(&mut tx, p.id).await?;
    audit::record(&mut tx, &caller.origin(), "project.delete", "project", &name, json!({})).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/projects/{name}/members", tag = "projects", params(("name" = String, Path)), responses((status = 200, body = [Membership])))]
pub async fn members(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<Membership>>> {
    let mut c = state.store.conn().await?;
    let p = visible(&mut c, &caller, &name).await?;
    Ok(Json(projects::members(&mut c, p.id).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    pub username: String,
    /// developer, tester or operator
    pub role: String,
}

async fn user_id(c: &mut AnyConnection, username: &str) -> ApiResult<i64> {
    Ok(referenced("username", users::by_name(c, username).await)?.id)
}

#[utoipa::path(post, path = "/api/v1/projects/{name}/members", tag = "projects", params(("name" = String, Path)), request_body = Grant, responses((status = 201, body = [Membership])))]
pub async fn grant(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<Grant>,
) -> ApiResult<(StatusCode, Json<Vec<Membership>>)> {
    caller.require_admin()?;
    let role = Role::parse("role", &req.role)?;
    let mut tx = state.store.begin().await?;
    let p = projects::by_name(&mut tx, &name).await?;
    let uid = user_id(&mut tx, &req.username).await?;
    if projects::grant(&mut tx, p.id, uid, role).await? {
        audit::record(
            &mut tx,
            &caller.origin(),
            "project.grant",
            "project",
            &name,
            json!({"username": req.username, "role": role}),
        )
        .await?;
    }
    let members = projects::members(&mut tx, p.id).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(members)))
}

#[utoipa::path(delete, path = "/api/v1/projects/{name}/members/{username}/{role}", tag = "projects",
    params(("name" = String, Path), ("username" = String, Path), ("role" = String, Path)), responses((status = 204)))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, username, role)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    let role = Role::parse("role", &role)?;
    let mut tx = state.store.begin().await?;
    let p = projects::by_name(&mut tx, &name).await?;
    let uid = user_id(&mut tx, &username).await?;
    if !projects::revoke(&mut tx, p.id, uid, role).await? {
        return Err(ApiError::not_found(
            "membership",
            format!("{username} as {role} in {name}"),
        ));
    }
    audit::record(
        &mut tx,
        &caller.origin(),
        "project.revoke",
        "project",
        &name,
        json!({"username": username, "role": role}),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
