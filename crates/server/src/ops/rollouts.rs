//! Progressive delivery's operations: choosing an application's rollout
//! strategy per environment (its operators), steering a running rollout
//! (promote, pause, resume, abort: the environment's deploy roles), and
//! registering a cluster's Prometheus for metric gates (admins).

use prism_api::rollouts::{PrometheusRequest, PrometheusSetting, RolloutCommandRequest, RolloutSetting};
use prism_kube::progressive::progress::{Command, Progress};
use prism_kube::progressive::strategy::Strategy;
use prism_store::rollouts::{self, PrometheusRow};
use prism_store::{audit, clusters, deploys, environments};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{access, Ctx, OpError, OpResult};
use crate::auth::Caller;
use prism_domain::DeployState;

pub async fn get_strategy(ctx: &Ctx, caller: &Caller, app: &str, env: &str) -> OpResult<RolloutSetting> {
    let mut c = ctx.store.conn().await?;
    let (a, _) = access::application(&mut c, caller, app).await?;
    let e = environments::by_name(&mut c, env).await?;
    let strategy = strategy_for(&mut c, a.id, e.id).await?;
    let prometheus = match e.cluster_id {
        Some(id) => rollouts::prometheus(&mut c, id).await?.is_some(),
        None => false,
    };
    Ok(RolloutSetting {
        application: a.name,
        environment: e.name,
        strategy,
        prometheus,
    })
}

/// The strategy a deploy of `app_id` into `env_id` is planned with.
pub async fn strategy_for(c: &mut prism_store::AnyConnection, app_id: i64, env_id: i64) -> OpResult<Strategy> {
    match rollouts::strategy(c, app_id, env_id).await? {
        Some(v) => serde_json::from_value(v).map_err(|e| OpError::internal(format!("stored rollout strategy: {e}"))),
        None => Ok(Strategy::Rolling),
    }
}

/// Chooses the strategy (the project's operators). Gates need the
/// environment's cluster to have a Prometheus registered.
pub async fn set_strategy(
    ctx: &Ctx,
    caller: &Caller,
    app: &str,
    env: &str,
    strategy: Strategy,
) -> OpResult<RolloutSetting> {
    strategy.validate()?;
    let mut tx = ctx.store.begin().await?;
    let (a, roles) = access::application(&mut tx, caller, app).await?;
    if !access::may_edit_application(roles) {
        return Err(OpError::forbidden(
            "choosing how a release rolls out takes the operator role in the project",
        ));
    }
    let e = environments::by_name(&mut tx, env).await?;
    // A gate's query runs with Prism's Prometheus credentials, which see the
    // whole cluster's metrics (other projects' too): only admins write them.
    if strategy.has_gates() && !caller.is_admin() {
        return Err(OpError::forbidden(
            "metric gates run queries with Prism's Prometheus credentials over the whole cluster: an admin sets a strategy with gates",
        ));
    }
    if strategy.has_gates() {
        let has = match e.cluster_id {
            Some(id) => rollouts::prometheus(&mut tx, id).await?.is_some(),
            None => false,
        };
        if !has {
            return Err(OpError::invalid(
                "gates",
                format!(
                    "environment {}'s cluster has no Prometheus registered (PUT /api/v1/clusters/NAME/prometheus)",
                    e.name
                ),
            ));
        }
    }
    let spec = serde_json::to_value(&strategy).expect("strategy serialises");
    if strategy.is_progressive() {
        rollouts::set_strategy(&mut tx, a.id, e.id, &spec, &caller.user.username).await?;
    } else {
        rollouts::clear_strategy(&mut tx, a.id, e.id).await?;
    }
    audit::record(
        &mut tx,
        &caller.origin(),
        "application.rollout_strategy",
        "application",
        &a.name,
        json!({"environment": e.name, "strategy": spec}),
    )
    .await?;
    tx.commit().await?;
    get_strategy(ctx, caller, app, env).await
}

/// A person's word to a running canary or blue-green rollout, left for the
/// deploy job (which folds it in at its next look, within a second).
pub async fn command(
    ctx: &Ctx,
    caller: &Caller,
    id: &str,
    action: &str,
    req: RolloutCommandRequest,
) -> OpResult<deploys::Deploy> {
    let cmd =
        Command::parse(action).ok_or_else(|| OpError::invalid("action", "must be promote, pause, resume or abort"))?;
    if req.reason.len() > 2000 {
        return Err(OpError::invalid("reason", "must be at most 2000 characters"));
    }
    let mut tx = ctx.store.begin().await?;
    let (d, roles) = access::deploy(&mut tx, caller, id).await?;
    let env = environments::get(&mut tx, d.env_id).await?;
    if !access::may_deploy(roles, &env) {
        return Err(OpError::forbidden(format!(
            "steering a rollout in {} takes one of the roles {}",
            env.name,
            env.policy.roles_csv()
        )));
    }
    let progress: Option<Progress> = d.rollout.clone().and_then(|v| serde_json::from_value(v).ok());
    let running = matches!(d.state, DeployState::Applying | DeployState::Watching);
    let Some(progress) = progress.filter(|p| p.strategy.is_progressive() && running) else {
        return Err(OpError::conflict_as(
            "not_progressive",
            format!("deploy {} is not a running canary or blue-green rollout", d.id),
        ));
    };
    if matches!(
        progress.phase,
        prism_kube::progressive::progress::Phase::Done
            | prism_kube::progressive::progress::Phase::Aborted
            | prism_kube::progressive::progress::Phase::Aborting
    ) {
        return Err(OpError::conflict_as(
            "rollout_over",
            format!("deploy {}'s rollout is over", d.id),
        ));
    }
    if !deploys::set_rollout_command(&mut tx, d.id, cmd.as_str()).await? {
        return Err(OpError::conflict_as(
            "abort_pending",
            format!("deploy {} is being aborted", d.id),
        ));
    }
    let note = if req.reason.is_empty() {
        String::new()
    } else {
        format!(": {}", req.reason)
    };
    deploys::event(
        &mut tx,
        d.id,
        "rollout",
        &format!("{} asked to {}{note}", caller.user.username, cmd.as_str()),
        json!({"command": cmd.as_str(), "by": caller.user.username}),
    )
    .await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        &format!("deploy.rollout_{}", cmd.as_str()),
        "deploy",
        &d.id.to_string(),
        json!({"environment": d.environment, "release": d.release, "reason": req.reason}),
    )
    .await?;
    tx.commit().await?;
    ctx.job_wakeup.notify_one();
    Ok(super::deploys::shown(
        deploys::get(&mut *ctx.store.conn().await?, d.id).await?,
    ))
}

/// What is sealed: never serialised anywhere else.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SealedAuth {
    Basic { username: String, password: String },
    Bearer { token: String },
}

pub async fn set_prometheus(
    ctx: &Ctx,
    caller: &Caller,
    cluster: &str,
    req: PrometheusRequest,
) -> OpResult<PrometheusSetting> {
    access::require_admin(caller)?;
    super::clusters::validate_url("url", &req.url)?;
    // Credentials go in username/password or token, where they are sealed.
    let parsed = reqwest::Url::parse(&req.url).map_err(|_| OpError::invalid("url", "is not a URL"))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(OpError::invalid(
            "url",
            "must not hold credentials: give username and password, or token",
        ));
    }
    let auth = match (&req.username, &req.password, &req.token) {
        (None, None, None) => None,
        (Some(u), Some(p), None) if !u.is_empty() && u.len() <= 256 && !p.is_empty() && p.len() <= 4096 => {
            Some(SealedAuth::Basic {
                username: u.clone(),
                password: p.clone(),
            })
        }
        (None, None, Some(t)) => {
            super::clusters::validate_token("token", t)?;
            Some(SealedAuth::Bearer { token: t.clone() })
        }
        (_, _, Some(_)) => {
            return Err(OpError::invalid(
                "token",
                "give a token or a username and password, not both",
            ))
        }
        _ => {
            return Err(OpError::invalid(
                "password",
                "basic auth needs a username and a password (1 to 4096 characters)",
            ))
        }
    };
    let kind = match &auth {
        None => "none",
        Some(SealedAuth::Basic { .. }) => "basic",
        Some(SealedAuth::Bearer { .. }) => "bearer",
    };
    let mut tx = ctx.store.begin().await?;
    let cl = clusters::by_name(&mut tx, cluster).await?;
    let row = PrometheusRow {
        url: req.url.trim_end_matches('/').to_owned(),
        auth_enc: auth.as_ref().map(|a| {
            ctx.secrets
                .seal(serde_json::to_string(a).expect("auth serialises").as_bytes())
        }),
    };
    rollouts::set_prometheus(&mut tx, cl.id, Some(&row)).await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "cluster.prometheus_set",
        "cluster",
        &cl.name,
        json!({"url": row.url, "auth": kind}),
    )
    .await?;
    tx.commit().await?;
    Ok(PrometheusSetting {
        cluster: cl.name,
        url: Some(row.url),
        auth: kind.into(),
    })
}

pub async fn get_prometheus(ctx: &Ctx, caller: &Caller, cluster: &str) -> OpResult<PrometheusSetting> {
    access::require_admin(caller)?;
    let mut c = ctx.store.conn().await?;
    let cl = clusters::by_name(&mut c, cluster).await?;
    let row = rollouts::prometheus(&mut c, cl.id).await?;
    let auth = match row.as_ref().and_then(|r| r.auth_enc.as_ref()) {
        None => "none".to_owned(),
        Some(enc) => match ctx
            .secrets
            .open(enc)
            .ok()
            .and_then(|b| serde_json::from_slice::<SealedAuth>(&b).ok())
        {
            Some(SealedAuth::Basic { .. }) => "basic".into(),
            Some(SealedAuth::Bearer { .. }) => "bearer".into(),
            None => "unreadable".into(),
        },
    };
    Ok(PrometheusSetting {
        cluster: cl.name,
        url: row.map(|r| r.url),
        auth,
    })
}

pub async fn clear_prometheus(ctx: &Ctx, caller: &Caller, cluster: &str) -> OpResult<()> {
    access::require_admin(caller)?;
    let mut tx = ctx.store.begin().await?;
    let cl = clusters::by_name(&mut tx, cluster).await?;
    rollouts::set_prometheus(&mut tx, cl.id, None).await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "cluster.prometheus_removed",
        "cluster",
        &cl.name,
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The endpoint the deploy job asks, credentials opened (never logged).
pub async fn endpoint(
    c: &mut prism_store::AnyConnection,
    secrets: &crate::secrets::SecretBox,
    cluster_id: i64,
) -> Result<Option<prism_kube::progressive::prometheus::PrometheusEndpoint>, String> {
    use prism_kube::progressive::prometheus::{PrometheusAuth, PrometheusEndpoint};
    let Some(row) = rollouts::prometheus(c, cluster_id).await.map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let auth = match &row.auth_enc {
        None => PrometheusAuth::None,
        Some(enc) => {
            let plain = secrets
                .open(enc)
                .map_err(|_| "the Prometheus credentials cannot be opened with this key".to_string())?;
            match serde_json::from_slice::<SealedAuth>(&plain) {
                Ok(SealedAuth::Basic { username, password }) => PrometheusAuth::Basic { username, password },
                Ok(SealedAuth::Bearer { token }) => PrometheusAuth::Bearer(token),
                Err(_) => return Err("the stored Prometheus credentials are unreadable".into()),
            }
        }
    };
    Ok(Some(PrometheusEndpoint { url: row.url, auth }))
}

/// One environment's strategy for the application's page.
#[derive(Serialize)]
pub struct EnvRollout {
    pub environment: String,
    pub strategy: Strategy,
    /// The strategy as the editor shows it.
    pub json: String,
}

/// The application's strategy in every environment (rolling where none was chosen).
pub async fn for_application(c: &mut prism_store::AnyConnection, app_id: i64) -> OpResult<Vec<EnvRollout>> {
    let mut out = vec![];
    for e in environments::list(c).await? {
        let strategy = strategy_for(c, app_id, e.id).await?;
        out.push(EnvRollout {
            environment: e.name,
            json: serde_json::to_string_pretty(&strategy).unwrap_or_default(),
            strategy,
        });
    }
    Ok(out)
}
