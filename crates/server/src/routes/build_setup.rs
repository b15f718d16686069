//! What builds are configured with: stack presets, image registries, git
//! credentials and Jenkins executors. Everyone signed in may read them (no
//! secret is ever returned); only admins change them, each change audited.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use prism_domain::build::{validate_argv, validate_image_dir, validate_relative_path};
use prism_domain::env_var::validate_env_vars;
use prism_domain::Name;
use prism_store::audit;
use prism_store::credentials::{self, ExecutorRecord, GitCredential, NewExecutor, Registry, RegistryFields};
use prism_store::stacks::{self, Stack};
use serde::Deserialize;
use serde_json::json;

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;

// ---- stacks

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutStack {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub build_command: String,
    #[serde(default)]
    pub artifact_paths: Vec<String>,
    pub image_dir: Option<String>,
    #[serde(default)]
    pub entrypoint: Vec<String>,
    #[serde(default)]
    pub cmd: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

fn parse_stack(name: &str, req: PutStack) -> ApiResult<Stack> {
    let name = Name::parse("name", name)?;
    if req.description.len() > 1000 {
        return Err(ApiError::bad_request("description", "must be at most 1000 characters"));
    }
    if req.build_command.len() > 16 * 1024 || req.build_command.contains('\0') {
        return Err(ApiError::bad_request(
            "build_command",
            "must be at most 16 KiB without NUL",
        ));
    }
    if req.artifact_paths.len() > 100 {
        return Err(ApiError::bad_request("artifact_paths", "at most 100 paths"));
    }
    for (i, p) in req.artifact_paths.iter().enumerate() {
        validate_relative_path(&format!("artifact_paths[{i}]"), p)?;
    }
    let image_dir = req.image_dir.unwrap_or_else(|| "/app".into());
    validate_image_dir("image_dir", &image_dir)?;
    validate_argv("entrypoint", &req.entrypoint)?;
    validate_argv("cmd", &req.cmd)?;
    validate_env_vars("env", &req.env)?;
    Ok(Stack {
        name: name.as_str().to_string(),
        description: req.description,
        build_command: req.build_command,
        artifact_paths: req.artifact_paths,
        image_dir,
        entrypoint: req.entrypoint,
        cmd: req.cmd,
        env: req.env,
        updated_at: 0,
    })
}

#[utoipa::path(get, path = "/api/v1/stacks", tag = "builds", responses((status = 200, body = [Stack])))]
pub async fn list_stacks(State(state): State<AppState>, _caller: Caller) -> ApiResult<Json<Vec<Stack>>> {
    Ok(Json(stacks::list(&mut *state.store.conn().await?).await?))
}

/// Creates or replaces a stack preset.
#[utoipa::path(put, path = "/api/v1/stacks/{name}", tag = "builds", params(("name" = String, Path)), request_body = PutStack, responses((status = 200, body = Stack)))]
pub async fn put_stack(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<PutStack>,
) -> ApiResult<Json<Stack>> {
    caller.require_admin()?;
    let stack = parse_stack(&name, req)?;
    let mut tx = state.store.begin().await?;
    let existed = stacks::by_name(&mut tx, &stack.name).await.is_ok();
    let saved = if existed {
        stacks::replace(&mut tx, &stack).await?
    } else {
        stacks::create(&mut tx, &stack).await?
    };
    audit::record(
        &mut tx,
        &caller.origin(),
        if existed { "stack.update" } else { "stack.create" },
        "stack",
        &saved.name,
        serde_json::to_value(&saved).unwrap_or_default(),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(saved))
}

#[utoipa::path(delete, path = "/api/v1/stacks/{name}", tag = "builds", params(("name" = String, Path)), responses((status = 204)))]
pub async fn delete_stack(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    let mut tx = state.store.begin().await?;
    stacks::delete(&mut tx, &name).await?;
    audit::record(&mut tx, &caller.origin(), "stack.delete", "stack", &name, json!({})).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- registries

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutRegistry {
    /// `host[:port]`, as in image references.
    pub host: String,
    /// Speak plain HTTP (default: HTTPS).
    #[serde(default)]
    pub insecure_http: bool,
    pub username: Option<String>,
    /// Stored encrypted; never returned. Omit to keep the stored one.
    pub password: Option<String>,
    /// Remove the stored username and password.
    #[serde(default)]
    pub clear_credentials: bool,
}

pub fn validate_host(field: &str, host: &str) -> ApiResult<()> {
    let ok = !host.is_empty()
        && host.len() <= 255
        && !host.starts_with(['-', '.', ':'])
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            field,
            "must be a registry host, e.g. registry.example.com or 10.0.0.5:5000",
        ))
    }
}

fn validate_secret_text(field: &str, v: &str, max: usize) -> ApiResult<()> {
    if v.is_empty() || v.len() > max || v.chars().any(|c| c.is_control()) {
        return Err(ApiError::bad_request(
            field,
            format!("must be 1 to {max} characters without control characters"),
        ));
    }
    Ok(())
}

#[utoipa::path(get, path = "/api/v1/registries", tag = "builds", responses((status = 200, body = [Registry])))]
pub async fn list_registries(State(state): State<AppState>, _caller: Caller) -> ApiResult<Json<Vec<Registry>>> {
    Ok(Json(
        credentials::list_registries(&mut *state.store.conn().await?).await?,
    ))
}

/// Creates or updates a registry.
#[utoipa::path(put, path = "/api/v1/registries/{name}", tag = "builds", params(("name" = String, Path)), request_body = PutRegistry, responses((status = 200, body = Registry)))]
pub async fn put_registry(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<PutRegistry>,
) -> ApiResult<Json<Registry>> {
    caller.require_admin()?;
    let name = Name::parse("name", &name)?;
    validate_host("host", &req.host)?;
    if let Some(u) = &req.username {
        validate_secret_text("username", u, 256)?;
    }
    if let Some(p) = &req.password {
        validate_secret_text("password", p, 16 * 1024)?;
    }
    if req.clear_credentials && (req.username.is_some() || req.password.is_some()) {
        return Err(ApiError::bad_request(
            "clear_credentials",
            "cannot clear and set credentials at once",
        ));
    }
    let mut tx = state.store.begin().await?;
    let existing = credentials::registry_by_name(&mut tx, name.as_str()).await.ok();
    let has_password = req.password.is_some() || existing.as_ref().is_some_and(|r| r.password_enc.is_some());
    let username = req.username.clone().or_else(|| {
        existing
            .as_ref()
            .and_then(|r| r.username.clone())
            .filter(|_| !req.clear_credentials)
    });
    if !req.clear_credentials && username.is_some() != has_password {
        return Err(ApiError::bad_request(
            if username.is_some() { "password" } else { "username" },
            "give both username and password, or neither",
        ));
    }
    let fields = RegistryFields {
        host: &req.host,
        insecure_http: req.insecure_http,
        username: username.as_deref(),
        password_enc: req.password.as_ref().map(|p| state.secrets.seal(p.as_bytes())),
    };
    let saved = match existing {
        Some(_) => credentials::update_registry(&mut tx, name.as_str(), fields, req.clear_credentials).await?,
        None => credentials::create_registry(&mut tx, name.as_str(), fields).await?,
    };
    audit::record(
        &mut tx,
        &caller.origin(),
        "registry.put",
        "registry",
        name.as_str(),
        // The password is never written to the audit log, only whether it changed.
        json!({"host": saved.host, "insecure_http": req.insecure_http, "username": saved.username,
               "password_changed": req.password.is_some(), "cleared": req.clear_credentials}),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(saved))
}

#[utoipa::path(delete, path = "/api/v1/registries/{name}", tag = "builds", params(("name" = String, Path)), responses((status = 204)))]
pub async fn delete_registry(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    let mut tx = state.store.begin().await?;
    credentials::delete_registry(&mut tx, &name).await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "registry.delete",
        "registry",
        &name,
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- git credentials

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutGitCredential {
    pub username: String,
    /// Password or access token; stored encrypted, never returned.
    pub password: String,
}

#[utoipa::path(get, path = "/api/v1/git-credentials", tag = "builds", responses((status = 200, body = [GitCredential])))]
pub async fn list_git_credentials(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<GitCredential>>> {
    caller.require_admin()?;
    Ok(Json(
        credentials::list_git_credentials(&mut *state.store.conn().await?).await?,
    ))
}

#[utoipa::path(put, path = "/api/v1/git-credentials/{name}", tag = "builds", params(("name" = String, Path)), request_body = PutGitCredential, responses((status = 200, body = GitCredential)))]
pub async fn put_git_credential(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<PutGitCredential>,
) -> ApiResult<Json<GitCredential>> {
    caller.require_admin()?;
    let name = Name::parse("name", &name)?;
    validate_secret_text("username", &req.username, 256)?;
    validate_secret_text("password", &req.password, 16 * 1024)?;
    let mut tx = state.store.begin().await?;
    let saved = credentials::put_git_credential(
        &mut tx,
        name.as_str(),
        &req.username,
        state.secrets.seal(req.password.as_bytes()),
    )
    .await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "git_credential.put",
        "git_credential",
        name.as_str(),
        json!({"username": req.username}),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(saved))
}

#[utoipa::path(delete, path = "/api/v1/git-credentials/{name}", tag = "builds", params(("name" = String, Path)), responses((status = 204)))]
pub async fn delete_git_credential(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    let mut tx = state.store.begin().await?;
    credentials::delete_git_credential(&mut tx, &name).await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "git_credential.delete",
        "git_credential",
        &name,
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- executors

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateExecutor {
    pub name: String,
    /// `jenkins`
    pub kind: String,
    /// Jenkins' base URL.
    pub url: String,
    /// The parameterised job, folders separated by `/`.
    pub job: String,
    pub username: String,
    /// API token; stored encrypted, never returned.
    pub token: String,
}

#[utoipa::path(get, path = "/api/v1/executors", tag = "builds", responses((status = 200, body = [ExecutorRecord])))]
pub async fn list_executors(State(state): State<AppState>, _caller: Caller) -> ApiResult<Json<Vec<ExecutorRecord>>> {
    Ok(Json(
        credentials::list_executors(&mut *state.store.conn().await?).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/executors", tag = "builds", request_body = CreateExecutor, responses((status = 201, body = ExecutorRecord)))]
pub async fn create_executor(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateExecutor>,
) -> ApiResult<(StatusCode, Json<ExecutorRecord>)> {
    caller.require_admin()?;
    let name = Name::parse("name", &req.name)?;
    if name.as_str() == prism_domain::build::LOCAL_EXECUTOR {
        return Err(ApiError::bad_request("name", "`local` is the built-in executor"));
    }
    if req.kind != "jenkins" {
        return Err(ApiError::bad_request("kind", "must be jenkins"));
    }
    super::clusters::validate_url("url", &req.url)?;
    let job_ok = !req.job.is_empty()
        && req.job.len() <= 512
        && req.job.split('/').all(|c| {
            !c.is_empty() && c != "." && c != ".." && c.chars().all(|ch| ch.is_alphanumeric() || " ._-".contains(ch))
        });
    if !job_ok {
        return Err(ApiError::bad_request(
            "job",
            "must be a Jenkins job path: names of letters, digits, ' ', '.', '_' or '-' separated by '/'",
        ));
    }
    validate_secret_text("username", &req.username, 256)?;
    validate_secret_text("token", &req.token, 4096)?;
    let mut tx = state.store.begin().await?;
    let saved = credentials::create_executor(
        &mut tx,
        NewExecutor {
            name: name.as_str(),
            kind: &req.kind,
            url: req.url.trim_end_matches('/'),
            job: &req.job,
            username: &req.username,
            token_enc: state.secrets.seal(req.token.as_bytes()),
        },
    )
    .await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "executor.create",
        "executor",
        name.as_str(),
        json!({"kind": req.kind, "url": saved.url, "job": req.job, "username": req.username}),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(saved)))
}

#[utoipa::path(delete, path = "/api/v1/executors/{name}", tag = "builds", params(("name" = String, Path)), responses((status = 204)))]
pub async fn delete_executor(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    let mut tx = state.store.begin().await?;
    credentials::delete_executor(&mut tx, &name).await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "executor.delete",
        "executor",
        &name,
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
