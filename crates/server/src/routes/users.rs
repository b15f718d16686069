use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use prism_domain::username::validate_username;
use prism_store::audit;
use prism_store::users::{self, User};
use serde::Deserialize;
use serde_json::json;

use crate::app::AppState;
use crate::auth::{password, Caller};
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub admin: bool,
}

fn display_name(field: &str, v: Option<&str>) -> ApiResult<()> {
    if let Some(v) = v {
        if v.len() > 200 || v.chars().any(|c| c.is_control()) {
            return Err(ApiError::bad_request(field, "must be at most 200 printable characters"));
        }
    }
    Ok(())
}

#[utoipa::path(get, path = "/api/v1/users", tag = "users", responses((status = 200, body = [User])))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<User>>> {
    caller.require_admin()?;
    Ok(Json(users::list(&mut *state.store.conn().await?).await?))
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUser, responses((status = 201, body = User), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateUser>,
) -> ApiResult<(StatusCode, Json<User>)> {
    caller.require_admin()?;
    validate_username("username", &req.username)?;
    password::check_strength("password", &req.password)?;
    display_name("display_name", req.display_name.as_deref())?;
    let hash = password::hash(req.password).await?;
    let mut tx = state.store.begin().await?;
    let user = users::create(
        &mut tx,
        &req.username,
        req.display_name.as_deref().unwrap_or(""),
        &hash,
        req.admin,
    )
    .await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "user.create",
        "user",
        &user.username,
        json!({"admin": req.admin}),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(user)))
}

#[utoipa::path(get, path = "/api/v1/users/{username}", tag = "users", params(("username" = String, Path)), responses((status = 200, body = User)))]
pub async fn get(State(state): State<AppState>, caller: Caller, Path(username): Path<String>) -> ApiResult<Json<User>> {
    if username != caller.user.username {
        caller.require_admin()?;
    }
    Ok(Json(users::by_name(&mut *state.store.conn().await?, &username).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    pub display_name: Option<String>,
    /// Admin only.
    pub admin: Option<bool>,
    /// Admin only.
    pub disabled: Option<bool>,
    pub password: Option<String>,
    /// Required when users change their own password.
    pub current_password: Option<String>,
}

/// Admins change anyone; users change their own display name and password.
#[utoipa::path(patch, path = "/api/v1/users/{username}", tag = "users", params(("username" = String, Path)), request_body = UpdateUser, responses((status = 200, body = User)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(username): Path<String>,
    ApiJson(req): ApiJson<UpdateUser>,
) -> ApiResult<Json<User>> {
    let is_self = username == caller.user.username;
    if !is_self || req.admin.is_some() || req.disabled.is_some() {
        caller.require_admin()?;
    }
    display_name("display_name", req.display_name.as_deref())?;
    let hash = match &req.password {
        Some(pw) => {
            password::check_strength("password", pw)?;
            if !caller.is_admin() {
                let current = req
                    .current_password
                    .clone()
                    .ok_or_else(|| ApiError::bad_request("current_password", "needed to change your own password"))?;
                if !password::verify(current, caller.user.password_hash.clone()).await {
                    return Err(ApiError::bad_request("current_password", "is wrong"));
                }
            }
            Some(password::hash(pw.clone()).await?)
        }
        None => None,
    };
    let mut tx = state.store.begin().await?;
    let target = users::by_name(&mut tx, &username).await?;
    let demotes_admin = target.admin() && (req.admin == Some(false) || req.disabled == Some(true));
    if demotes_admin && users::lock_and_count_admins(&mut tx, state.store.backend()).await? <= 1 {
        return Err(ApiError::conflict("this is the last active admin; make another admin first").field("admin"));
    }
    let user = users::update(
        &mut tx,
        target.id,
        req.display_name.as_deref(),
        req.admin,
        req.disabled,
        hash.as_deref(),
    )
    .await?;
    if hash.is_some() {
        // A new password ends the user's other sessions (API tokens stay).
        let keep = match &caller.credential {
            crate::auth::caller::Credential::Session { id, .. } if is_self => Some(*id),
            _ => None,
        };
        prism_store::tokens::end_sessions(&mut tx, target.id, keep).await?;
    }
    let detail = json!({"display_name": req.display_name, "admin": req.admin, "disabled": req.disabled, "password_changed": hash.is_some()});
    audit::record(&mut tx, &caller.origin(), "user.update", "user", &user.username, detail).await?;
    tx.commit().await?;
    Ok(Json(user))
}
