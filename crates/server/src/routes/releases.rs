use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use prism_domain::release::{may_hold, may_release_hold, Action, Actor};
use prism_domain::{GitRef, ReleaseId, Role};
use prism_store::releases::{self, BuildInfo, Release, ReleaseFilter, Transition};
use prism_store::{apps, audit, environments, projects, slots, AnyConnection};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::ApiQuery;
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{referenced, ApiError, ApiResult};
use crate::json::{ApiJson, OptionalJson};
use crate::services::transitions::{self, Move};

fn release_id(raw: &str) -> ApiResult<ReleaseId> {
    ReleaseId::parse("id", raw).map_err(|e| ApiError::not_found("release", raw).field(e.field))
}

async fn visible_release(c: &mut AnyConnection, caller: &Caller, id: ReleaseId) -> ApiResult<Release> {
    let rel = releases::get(c, id).await?;
    if !caller.roles_in(c, rel.project_id).await?.is_member() {
        return Err(ApiError::not_found("release", id));
    }
    Ok(rel)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReleaseQuery {
    pub application: Option<String>,
    pub project: Option<String>,
    pub state: Option<String>,
    /// Cursor: releases older than this id (the previous page's `next`).
    pub before: Option<String>,
    /// 1 to 500, default 50.
    pub limit: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReleasePage {
    pub items: Vec<Release>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/releases", tag = "releases", params(ReleaseQuery), responses((status = 200, body = ReleasePage)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ReleaseQuery>,
) -> ApiResult<Json<ReleasePage>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("limit", "must be between 1 and 500"));
    }
    if let Some(s) = &q.state {
        if !prism_domain::ReleaseState::KINDS.contains(&s.as_str()) {
            return Err(ApiError::bad_request(
                "state",
                format!(
                    "unknown state {s:?}; one of {}",
                    prism_domain::ReleaseState::KINDS.join(", ")
                ),
            ));
        }
    }
    let before = q.before.as_deref().map(|b| ReleaseId::parse("before", b)).transpose()?;
    let mut c = state.store.conn().await?;
    let app_id = match &q.application {
        Some(a) => Some(super::applications::visible(&mut c, &caller, a).await?.0.id),
        None => None,
    };
    let project_id = match &q.project {
        Some(p) => Some(super::projects::visible(&mut c, &caller, p).await?.id),
        None => None,
    };
    let filter = ReleaseFilter {
        visible_to: caller.visibility(),
        app_id,
        project_id,
        state: q.state.clone(),
        before: before.map(|b| b.seq()),
        limit,
    };
    let items = releases::list(&mut c, &filter).await?;
    let next = (items.len() as i64 == limit)
        .then(|| items.last().map(|r| r.id.to_string()))
        .flatten();
    Ok(Json(ReleasePage { items, next }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRelease {
    pub application: String,
    /// Branch, tag or commit to build.
    pub git_ref: String,
    /// What changes, for testers and the deploy review.
    pub change_note: String,
    /// Start building it at once with the application's build settings.
    #[serde(default)]
    pub build: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedRelease {
    #[serde(flatten)]
    pub release: Release,
    /// The build started with it (when asked for).
    pub build: Option<prism_store::builds::Build>,
}

#[utoipa::path(post, path = "/api/v1/releases", tag = "releases", request_body = CreateRelease, responses((status = 201, body = CreatedRelease), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateRelease>,
) -> ApiResult<(StatusCode, Json<CreatedRelease>)> {
    let git_ref = GitRef::parse("git_ref", &req.git_ref)?;
    let note = req.change_note.trim();
    if note.is_empty() || note.len() > 10_000 {
        return Err(ApiError::bad_request("change_note", "must be 1 to 10000 characters"));
    }
    let mut tx = state.store.begin().await?;
    let app = referenced("application", apps::by_name(&mut tx, &req.application).await)?;
    let roles = projects::roles(&mut tx, app.project_id, caller.user.id, caller.is_admin()).await?;
    if !roles.is_member() {
        return Err(ApiError::bad_request(
            "application",
            format!("no application named {:?}", req.application),
        ));
    }
    if !roles.has(Role::Developer) {
        return Err(ApiError::forbidden(
            "creating a release needs the developer role in the project",
        ));
    }
    let rel = releases::create(&mut tx, app.id, git_ref.as_str(), note, caller.user.id).await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "release.create",
        "release",
        &rel.id.to_string(),
        json!({"application": app.name, "git_ref": git_ref, "change_note": note}),
    )
    .await?;
    let build = if req.build {
        Some(super::builds::start_in(&mut tx, &caller, &state, rel.id).await?)
    } else {
        None
    };
    let rel = releases::get(&mut tx, rel.id).await?;
    tx.commit().await?;
    if build.is_some() {
        state.job_wakeup.notify_one();
    }
    Ok((StatusCode::CREATED, Json(CreatedRelease { release: rel, build })))
}

#[utoipa::path(get, path = "/api/v1/releases/{id}", tag = "releases", params(("id" = String, Path, description = "e.g. r42")), responses((status = 200, body = Release)))]
pub async fn get(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Release>> {
    let id = release_id(&id)?;
    Ok(Json(
        visible_release(&mut *state.store.conn().await?, &caller, id).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/releases/{id}/history", tag = "releases", params(("id" = String, Path)), responses((status = 200, body = [Transition])))]
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Transition>>> {
    let id = release_id(&id)?;
    let mut c = state.store.conn().await?;
    visible_release(&mut c, &caller, id).await?;
    Ok(Json(releases::history(&mut c, id).await?))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActRequest {
    /// Target environment for `promote` and `deploy`.
    pub environment: Option<String>,
    /// Operators only: move into an environment another release holds.
    pub override_reason: Option<String>,
    #[serde(default)]
    pub note: String,
    /// With `build_succeeded`: the commit built, the image and its digest.
    pub commit_sha: Option<String>,
    pub image_ref: Option<String>,
    pub image_digest: Option<String>,
}

fn check_build_info(req: &ActRequest) -> ApiResult<()> {
    if let Some(sha) = &req.commit_sha {
        if !(7..=64).contains(&sha.len()) || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ApiError::bad_request("commit_sha", "must be 7 to 64 hex digits"));
        }
    }
    if let Some(d) = &req.image_digest {
        let ok = d
            .strip_prefix("sha256:")
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        if !ok {
            return Err(ApiError::bad_request(
                "image_digest",
                "must be sha256: followed by 64 lowercase hex digits",
            ));
        }
    }
    if let Some(i) = &req.image_ref {
        if i.is_empty() || i.len() > 512 || i.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ApiError::bad_request(
                "image_ref",
                "must be an image reference without spaces",
            ));
        }
    }
    Ok(())
}

/// POST /releases/{id}/actions/{action}: one step of the release state machine.
#[utoipa::path(post, path = "/api/v1/releases/{id}/actions/{action}", tag = "releases",
    params(("id" = String, Path), ("action" = String, Path, description = "start_build, build_succeeded, build_failed, promote, deploy, deploy_succeeded, deploy_failed, pass, close or abandon")),
    request_body = ActRequest, responses((status = 200, body = Release), (status = 403, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn act(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, action)): Path<(String, String)>,
    OptionalJson(body): OptionalJson<ActRequest>,
) -> ApiResult<Json<Release>> {
    let id = release_id(&id)?;
    let req = body.unwrap_or_default();
    if req.note.len() > 10_000 {
        return Err(ApiError::bad_request("note", "must be at most 10000 characters"));
    }
    check_build_info(&req)?;
    let env_id = match &req.environment {
        Some(name) => Some(
            referenced(
                "environment",
                environments::by_name(&mut *state.store.conn().await?, name).await,
            )?
            .id,
        ),
        None => None,
    };
    let need_env =
        || env_id.ok_or_else(|| ApiError::bad_request("environment", format!("{action} needs an environment")));
    let parsed = match action.as_str() {
        "start_build" => Action::StartBuild,
        "build_succeeded" => Action::BuildSucceeded,
        "build_failed" => Action::BuildFailed,
        "promote" => Action::Promote {
            to: need_env()?,
            override_reason: req.override_reason.clone(),
        },
        "deploy" => Action::StartDeploy { env: need_env()? },
        "deploy_succeeded" => Action::DeploySucceeded,
        "deploy_failed" => Action::DeployFailed,
        "pass" => Action::Pass,
        "close" => Action::Close,
        "abandon" => Action::Abandon,
        other => return Err(ApiError::bad_request("action", format!("unknown action {other:?}"))),
    };
    if req.override_reason.is_some() && !matches!(parsed, Action::Promote { .. }) {
        return Err(ApiError::bad_request(
            "override_reason",
            "only a promotion can override a hold",
        ));
    }
    let has_info = req.commit_sha.is_some() || req.image_ref.is_some() || req.image_digest.is_some();
    if has_info && parsed != Action::BuildSucceeded {
        return Err(ApiError::bad_request(
            "commit_sha",
            "build results go with build_succeeded",
        ));
    }
    let build_info = has_info.then_some(BuildInfo {
        commit_sha: req.commit_sha.as_deref(),
        image_ref: req.image_ref.as_deref(),
        image_digest: req.image_digest.as_deref(),
    });
    let rel = transitions::transition(
        &state.store,
        &caller,
        id,
        Move {
            action: parsed,
            note: &req.note,
            build_info,
        },
    )
    .await?;
    Ok(Json(rel))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldRequest {
    #[serde(default)]
    pub note: String,
    /// The hold ends by itself after this many minutes (default: never).
    pub expires_in_minutes: Option<i64>,
}

/// Holds an application's environment for testing the release running there.
#[utoipa::path(post, path = "/api/v1/applications/{name}/environments/{env}/hold", tag = "releases",
    params(("name" = String, Path), ("env" = String, Path)), request_body = HoldRequest, responses((status = 201, body = [prism_store::slots::BoardCell])))]
pub async fn hold(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, env)): Path<(String, String)>,
    ApiJson(req): ApiJson<HoldRequest>,
) -> ApiResult<(StatusCode, Json<Vec<prism_store::slots::BoardCell>>)> {
    if req.note.len() > 2000 {
        return Err(ApiError::bad_request("note", "must be at most 2000 characters"));
    }
    let expires_at = match req.expires_in_minutes {
        Some(m) if !(1..=60 * 24 * 30).contains(&m) => {
            return Err(ApiError::bad_request(
                "expires_in_minutes",
                "must be between 1 and 43200 (30 days)",
            ))
        }
        Some(m) => Some(prism_store::now_ms() + m * 60_000),
        None => None,
    };
    let mut tx = state.store.begin().await?;
    let (app, roles) = super::applications::visible(&mut tx, &caller, &name).await?;
    may_hold(&Actor { roles, system: false })?;
    let environment = environments::by_name(&mut tx, &env).await?;
    let slot = slots::get(&mut tx, app.id, environment.id).await?;
    if let Some(h) = slot.view().hold {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "held",
            format!("{env} is already held by {} for {}", h.holder, h.release),
        )
        .field("environment"));
    }
    let current = slot.current_release_id.ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "nothing_deployed",
            format!("no release runs in {env} yet; there is nothing to hold"),
        )
        .field("environment")
    })?;
    slots::hold(
        &mut tx,
        app.id,
        environment.id,
        current,
        &caller.user.username,
        &req.note,
        expires_at,
    )
    .await?;
    let rid = ReleaseId::from_seq(current);
    audit::record(
        &mut tx,
        &caller.origin(),
        "environment.hold",
        "application",
        &name,
        json!({"environment": env, "release": rid, "note": req.note, "expires_at": expires_at}),
    )
    .await?;
    let board = slots::board(&mut tx, None, Some(app.id)).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(board)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UnholdQuery {
    /// Required when releasing someone else's hold (operators only).
    pub reason: Option<String>,
}

#[utoipa::path(delete, path = "/api/v1/applications/{name}/environments/{env}/hold", tag = "releases",
    params(("name" = String, Path), ("env" = String, Path), UnholdQuery), responses((status = 200, body = [prism_store::slots::BoardCell])))]
pub async fn unhold(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, env)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<UnholdQuery>,
) -> ApiResult<Json<Vec<prism_store::slots::BoardCell>>> {
    let mut tx = state.store.begin().await?;
    let (app, roles) = super::applications::visible(&mut tx, &caller, &name).await?;
    let environment = environments::by_name(&mut tx, &env).await?;
    let slot = slots::get(&mut tx, app.id, environment.id).await?;
    let hold = slot.view().hold.ok_or_else(|| {
        ApiError::new(StatusCode::CONFLICT, "not_held", format!("{env} is not held")).field("environment")
    })?;
    let overrode = may_release_hold(
        &Actor { roles, system: false },
        &caller.user.username,
        &hold,
        q.reason.as_deref(),
    )?;
    slots::release_hold(&mut tx, app.id, environment.id, hold.release.seq()).await?;
    let detail = json!({"environment": env, "release": hold.release, "holder": hold.holder, "override": overrode, "reason": q.reason});
    audit::record(
        &mut tx,
        &caller.origin(),
        "environment.unhold",
        "application",
        &name,
        detail,
    )
    .await?;
    let board = slots::board(&mut tx, None, Some(app.id)).await?;
    tx.commit().await?;
    Ok(Json(board))
}
