use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use prism_domain::{DeployRules, EnvPolicy, Name};
use prism_store::environments::{self, Environment, EnvironmentPatch, NewEnvironment};
use prism_store::{audit, clusters};
use serde::Deserialize;
use serde_json::json;

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::{referenced, ApiError, ApiResult};
use crate::json::ApiJson;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEnvironment {
    pub name: String,
    /// Place in the lifecycle (lower first); default: after the last one.
    pub position: Option<i64>,
    /// The cluster this environment deploys to.
    pub cluster: Option<String>,
    /// The namespace on that cluster (a DNS-1123 label).
    pub namespace: String,
    /// Default: operators deploy, reviewed, previous environment first.
    pub policy: Option<EnvPolicy>,
    /// Default: namespaced objects in `namespace` only; roll back on failure.
    pub rules: Option<DeployRules>,
}

#[utoipa::path(get, path = "/api/v1/environments", tag = "environments", responses((status = 200, body = [Environment])))]
pub async fn list(State(state): State<AppState>, _caller: Caller) -> ApiResult<Json<Vec<Environment>>> {
    Ok(Json(environments::list(&mut *state.store.conn().await?).await?))
}

#[utoipa::path(get, path = "/api/v1/environments/{name}", tag = "environments", params(("name" = String, Path)), responses((status = 200, body = Environment)))]
pub async fn get(
    State(state): State<AppState>,
    _caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Environment>> {
    Ok(Json(
        environments::by_name(&mut *state.store.conn().await?, &name).await?,
    ))
}

async fn cluster_id(c: &mut prism_store::AnyConnection, name: &str) -> ApiResult<i64> {
    Ok(referenced("cluster", clusters::by_name(c, name).await)?.id)
}

fn position(field: &str, p: Option<i64>) -> ApiResult<Option<i64>> {
    match p {
        Some(p) if !(0..=1_000_000).contains(&p) => Err(ApiError::bad_request(field, "must be between 0 and 1000000")),
        p => Ok(p),
    }
}

#[utoipa::path(post, path = "/api/v1/environments", tag = "environments", request_body = CreateEnvironment, responses((status = 201, body = Environment), (status = "4XX", body = crate::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateEnvironment>,
) -> ApiResult<(StatusCode, Json<Environment>)> {
    caller.require_admin()?;
    let name = Name::parse("name", &req.name)?;
    let namespace = Name::parse("namespace", &req.namespace)?;
    let policy = req.policy.unwrap_or_else(EnvPolicy::formal);
    policy.validate()?;
    let position = position("position", req.position)?;
    let mut tx = state.store.begin().await?;
    let cluster_id = match &req.cluster {
        Some(n) => Some(cluster_id(&mut tx, n).await?),
        None => None,
    };
    let env = environments::create(
        &mut tx,
        NewEnvironment {
            name: name.as_str(),
            position,
            cluster_id,
            namespace: namespace.as_str(),
            policy: &policy,
        },
    )
    .await?;
    let env = match &req.rules {
        Some(rules) => {
            let patch = EnvironmentPatch {
                rules: Some(rules),
                position: None,
                cluster_id: None,
                namespace: None,
                policy: None,
            };
            environments::update(&mut tx, env.id, patch).await?
        }
        None => env,
    };
    audit::record(
        &mut tx,
        &caller.origin(),
        "environment.create",
        "environment",
        name.as_str(),
        serde_json::to_value(&env).unwrap_or_default(),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(env)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateEnvironment {
    pub position: Option<i64>,
    /// A cluster name, or null to unbind.
    #[serde(default, deserialize_with = "crate::json::double_option")]
    #[schema(value_type = Option<String>)]
    pub cluster: Option<Option<String>>,
    pub namespace: Option<String>,
    pub policy: Option<EnvPolicy>,
    pub rules: Option<DeployRules>,
}

#[utoipa::path(patch, path = "/api/v1/environments/{name}", tag = "environments", params(("name" = String, Path)), request_body = UpdateEnvironment, responses((status = 200, body = Environment)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<UpdateEnvironment>,
) -> ApiResult<Json<Environment>> {
    caller.require_admin()?;
    let namespace = req
        .namespace
        .as_deref()
        .map(|n| Name::parse("namespace", n))
        .transpose()?;
    if let Some(p) = &req.policy {
        p.validate()?;
    }
    let position = position("position", req.position)?;
    let mut tx = state.store.begin().await?;
    let env = environments::by_name(&mut tx, &name).await?;
    let cluster_id = match &req.cluster {
        None => None,
        Some(None) => Some(None),
        Some(Some(n)) => Some(Some(cluster_id(&mut tx, n).await?)),
    };
    let patch = EnvironmentPatch {
        rules: req.rules.as_ref(),
        position,
        cluster_id,
        namespace: namespace.as_ref().map(|n| n.as_str()),
        policy: req.policy.as_ref(),
    };
    let updated = environments::update(&mut tx, env.id, patch).await?;
    let detail = json!({"before": env, "after": updated});
    audit::record(
        &mut tx,
        &caller.origin(),
        "environment.update",
        "environment",
        &name,
        detail,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(updated))
}

#[utoipa::path(delete, path = "/api/v1/environments/{name}", tag = "environments", params(("name" = String, Path)), responses((status = 204)))]
pub async fn delete(State(state): State<AppState>, caller: Caller, Path(name): Path<String>) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    let mut tx = state.store.begin().await?;
    let env = environments::by_name(&mut tx, &name).await?;
    environments::delete(&mut tx, env.id).await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "environment.delete",
        "environment",
        &name,
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
