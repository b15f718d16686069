use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::Json;
use prism_domain::{ReleaseId, Role};
use prism_manifests::{TemplateSet, BUILTIN_NAMES};
use prism_store::template_sets::{self, TemplateSetVersion, VersionSummary};
use prism_store::{audit, environments, releases};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::deploys::deploy_error;
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{referenced, ApiError, ApiResult};
use crate::json::ApiJson;
use crate::services::deploy_plan;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Templates {
    /// The project's current set: its own templates (name -> body).
    pub current: TemplateSetVersion,
    /// The built-in templates, used wherever the project has none of that name.
    pub builtin: BTreeMap<String, String>,
}

#[utoipa::path(get, path = "/api/v1/projects/{name}/templates", tag = "templates", params(("name" = String, Path)), responses((status = 200, body = Templates)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Templates>> {
    let mut c = state.store.conn().await?;
    let p = super::projects::visible(&mut c, &caller, &name).await?;
    let current = template_sets::current(&mut c, p.id).await?;
    let b = TemplateSet::builtin();
    let builtin = BUILTIN_NAMES
        .iter()
        .filter_map(|n| Some((n.to_string(), b.get(n)?.to_owned())))
        .collect();
    Ok(Json(Templates { current, builtin }))
}

#[utoipa::path(get, path = "/api/v1/projects/{name}/templates/versions", tag = "templates", params(("name" = String, Path)), responses((status = 200, body = [VersionSummary])))]
pub async fn versions(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<VersionSummary>>> {
    let mut c = state.store.conn().await?;
    let p = super::projects::visible(&mut c, &caller, &name).await?;
    Ok(Json(template_sets::history(&mut c, p.id).await?))
}

#[utoipa::path(get, path = "/api/v1/projects/{name}/templates/versions/{version}", tag = "templates", params(("name" = String, Path), ("version" = i64, Path)), responses((status = 200, body = TemplateSetVersion)))]
pub async fn version(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Json<TemplateSetVersion>> {
    let v: i64 = version
        .parse()
        .map_err(|_| ApiError::bad_request("version", "must be a number"))?;
    let mut c = state.store.conn().await?;
    let p = super::projects::visible(&mut c, &caller, &name).await?;
    Ok(Json(template_sets::get(&mut c, p.id, v).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaveTemplates {
    /// The version this edit is based on (optimistic locking).
    pub base_version: i64,
    /// The project's templates after the edit (name -> body); an empty body
    /// removes that built-in.
    pub files: BTreeMap<String, String>,
    #[serde(default)]
    pub note: String,
}

/// Saves a new version of the project's templates after checking that
/// every template compiles (names, sizes, Jinja syntax).
#[utoipa::path(put, path = "/api/v1/projects/{name}/templates", tag = "templates", params(("name" = String, Path)), request_body = SaveTemplates, responses((status = 200, body = TemplateSetVersion)))]
pub async fn save(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<SaveTemplates>,
) -> ApiResult<Json<TemplateSetVersion>> {
    if req.note.len() > 2000 {
        return Err(ApiError::bad_request("note", "must be at most 2000 characters"));
    }
    let set = TemplateSet::with_overrides(&req.files).map_err(|e| manifest_error(&e))?;
    set.check_syntax().map_err(|e| manifest_error(&e))?;
    let mut tx = state.store.begin().await?;
    let p = super::projects::visible(&mut tx, &caller, &name).await?;
    if !caller.roles_in(&mut tx, p.id).await?.has(Role::Operator) {
        return Err(ApiError::forbidden(
            "editing templates needs the operator role in the project (or admin)",
        ));
    }
    let saved = template_sets::save(
        &mut tx,
        p.id,
        req.base_version,
        &req.files,
        &caller.user.username,
        &req.note,
    )
    .await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "templates.save",
        "project",
        &name,
        json!({"version": saved.version, "files": req.files.keys().collect::<Vec<_>>(), "note": req.note}),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(saved))
}

fn manifest_error(e: &prism_manifests::ManifestError) -> ApiError {
    let first = e.problems().first();
    let mut err = ApiError::new(
        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_template",
        e.to_string(),
    );
    err.field = first.map(|p| format!("files.{}", p.template));
    err
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    pub environment: String,
    pub release: String,
    /// Unsaved templates to try (default: the project's current set).
    pub files: Option<BTreeMap<String, String>>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Preview {
    pub yaml: String,
    #[schema(value_type = Object)]
    pub objects: serde_json::Value,
}

/// Renders an application's templates for (environment, release) and returns
/// the YAML, or the problems with their template and line.
#[utoipa::path(post, path = "/api/v1/applications/{name}/preview", tag = "templates", params(("name" = String, Path)), request_body = PreviewRequest, responses((status = 200, body = Preview)))]
pub async fn preview(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<PreviewRequest>,
) -> ApiResult<Json<Preview>> {
    let rid = ReleaseId::parse("release", &req.release)?;
    let mut c = state.store.conn().await?;
    let (app, _) = super::applications::visible(&mut c, &caller, &name).await?;
    let env = referenced("environment", environments::by_name(&mut c, &req.environment).await)?;
    let rel = releases::get(&mut c, rid)
        .await
        .map_err(|_| ApiError::bad_request("release", format!("no release {rid}")))?;
    if rel.app_id != app.id {
        return Err(ApiError::bad_request(
            "release",
            format!("{rid} is not a release of {name}"),
        ));
    }
    let objects = match &req.files {
        Some(files) => {
            let set = TemplateSet::with_overrides(files).map_err(|e| manifest_error(&e))?;
            deploy_plan::render_with(&mut c, &rel, &env, Default::default(), &set)
                .await
                .map_err(deploy_error)?
        }
        None => {
            deploy_plan::render_for(&mut c, &rel, &env, Default::default(), None)
                .await
                .map_err(deploy_error)?
                .1
        }
    };
    let rendered = prism_manifests::Rendered {
        objects: objects
            .iter()
            .map(|o| prism_manifests::RenderedObject {
                template: o.template.clone(),
                object: o.object.clone(),
            })
            .collect(),
    };
    Ok(Json(Preview {
        yaml: rendered.to_yaml(),
        objects: serde_json::to_value(&objects).unwrap_or_default(),
    }))
}
