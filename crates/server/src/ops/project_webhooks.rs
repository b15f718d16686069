//! A project's git webhook: one URL and secret for every repository of the
//! project (an organisation-level webhook on the forge), so that adding an
//! application needs no new webhook. A push releases each application of
//! the project whose git URL is the pushed repository
//! ([`prism_webhooks::is_repository`]) under the project webhook's rules.
//!
//! Configured like an application's webhook (operators of the project and
//! admins; the secret shown once), received like one (signature first,
//! delivery ids remembered, one release per ref and commit: a push that an
//! application's own webhook released already makes none here).

use std::collections::HashMap;

use prism_api::webhooks::{
    ApplicationReceipt, CreateWebhook, Outcome, ProjectApplication, ProjectReceipt, ProjectWebhookSecret,
    ProjectWebhookView, RotateWebhook, UpdateWebhook,
};
use prism_store::audit::Origin;
use prism_store::projects::Project;
use prism_store::webhooks::{self as store, Hooks, NewDelivery, NewProjectWebhook, ProjectWebhook};
use prism_store::{apps, audit, Tx};
use prism_webhooks::{Forge, PushEvent, ReleaseRules};
use serde_json::json;

use super::webhooks::{
    check_secret, forge_of_row, generate_public_id, generate_secret, open_sealed, refused, release_push, rules_detail,
    verified, Creator, Decided, Parsed, Refusal, Target, Verified, KEEP_DELIVERIES_MS, RECENT,
};
use super::{access, Ctx, OpError, OpResult};
use crate::auth::Caller;
use crate::wire::ToApi;

fn parse_rules(w: &ProjectWebhook) -> OpResult<ReleaseRules> {
    serde_json::from_str(&w.rules)
        .map_err(|e| OpError::internal(format!("webhook of project {}: stored rules: {e}", w.project)))
}

fn path_of(w: &ProjectWebhook) -> String {
    format!("/hooks/git-project/{}/{}", w.project, w.public_id)
}

async fn view(c: &mut prism_store::AnyConnection, w: ProjectWebhook) -> OpResult<ProjectWebhookView> {
    let deliveries = store::recent_deliveries(c, Hooks::Project, w.id, RECENT).await?;
    let applications = applications(c, w.project_id).await?;
    Ok(ProjectWebhookView {
        release_rules: parse_rules(&w)?,
        path: path_of(&w),
        applications,
        deliveries: deliveries.to_api(),
        webhook: w.to_api(),
    })
}

/// The project, when the caller may configure its webhook: its operators
/// and admins (other members get 403, everyone else 404).
async fn configurable(c: &mut prism_store::AnyConnection, caller: &Caller, project: &str) -> OpResult<Project> {
    let p = access::project(c, caller, project).await?;
    if !access::may_edit_application(access::roles_in(c, caller, p.id).await?) {
        return Err(OpError::forbidden(
            "a project's webhook is configured by the operators of the project",
        ));
    }
    Ok(p)
}

async fn existing(c: &mut prism_store::AnyConnection, p: &Project) -> OpResult<ProjectWebhook> {
    store::for_project(c, p.id)
        .await?
        .ok_or_else(|| OpError::not_found("webhook", &p.name))
}

pub async fn create(ctx: &Ctx, caller: &Caller, project: &str, req: CreateWebhook) -> OpResult<ProjectWebhookSecret> {
    req.release_rules.validate("release_rules")?;
    if let Some(s) = &req.secret {
        check_secret(s, req.forge)?;
    }
    let secret = req.secret.clone().unwrap_or_else(generate_secret);
    let mut tx = ctx.store.begin().await?;
    let p = configurable(&mut tx, caller, project).await?;
    if store::for_project(&mut tx, p.id).await?.is_some() {
        return Err(OpError::conflict(format!(
            "project {} has a webhook already; rotate its secret or delete it",
            p.name
        )));
    }
    let rules = serde_json::to_string(&req.release_rules).expect("rules serialise");
    let public_id = generate_public_id();
    let w = store::create_for_project(
        &mut tx,
        NewProjectWebhook {
            project_id: p.id,
            project: &p.name,
            public_id: &public_id,
            forge: req.forge.as_str(),
            secret_enc: &ctx.secrets.seal(secret.as_bytes()),
            rules: &rules,
            enabled: req.enabled,
            created_by: &caller.user.username,
        },
    )
    .await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "webhook.create",
        "project",
        &p.name,
        json!({"forge": req.forge, "release_rules": rules_detail(&req.release_rules), "enabled": req.enabled,
               "secret_given": req.secret.is_some()}),
    )
    .await?;
    let view = view(&mut tx, w).await?;
    tx.commit().await?;
    Ok(ProjectWebhookSecret { view, secret })
}

pub async fn show(ctx: &Ctx, caller: &Caller, project: &str) -> OpResult<ProjectWebhookView> {
    let mut c = ctx.store.conn().await?;
    let p = configurable(&mut c, caller, project).await?;
    let w = existing(&mut c, &p).await?;
    view(&mut c, w).await
}

/// The project's webhook page: the webhook (None when it has none yet) and
/// the applications a push can release; only for those who may configure it.
pub async fn for_page(
    ctx: &Ctx,
    caller: &Caller,
    project: &str,
) -> OpResult<(Option<ProjectWebhookView>, Vec<ProjectApplication>)> {
    let mut c = ctx.store.conn().await?;
    let p = configurable(&mut c, caller, project).await?;
    match store::for_project(&mut c, p.id).await? {
        Some(w) => {
            let v = view(&mut c, w).await?;
            let apps = v.applications.clone();
            Ok((Some(v), apps))
        }
        None => Ok((None, applications(&mut c, p.id).await?)),
    }
}

async fn applications(c: &mut prism_store::AnyConnection, project_id: i64) -> OpResult<Vec<ProjectApplication>> {
    Ok(apps::repositories(c, project_id)
        .await?
        .into_iter()
        .map(|(_, name, git_url)| ProjectApplication { name, git_url })
        .collect())
}

pub async fn update(ctx: &Ctx, caller: &Caller, project: &str, req: UpdateWebhook) -> OpResult<ProjectWebhookView> {
    if let Some(r) = &req.release_rules {
        r.validate("release_rules")?;
    }
    let mut tx = ctx.store.begin().await?;
    let p = configurable(&mut tx, caller, project).await?;
    let w = existing(&mut tx, &p).await?;
    let forge = match req.forge {
        Some(f) => f,
        None => forge_of_row(&w.project, &w.forge)?,
    };
    if forge != Forge::Gitlab && open_sealed(ctx, &w.project, &w.secret_enc)?.starts_with("whsec_") {
        // A GitLab signing token cannot check another forge's signature.
        return Err(OpError::invalid(
            "forge",
            "the secret is a GitLab signing token: rotate it when changing the forge",
        ));
    }
    let rules = match &req.release_rules {
        Some(r) => r.clone(),
        None => parse_rules(&w)?,
    };
    let enabled = req.enabled.unwrap_or(w.enabled != 0);
    let rules_json = serde_json::to_string(&rules).expect("rules serialise");
    store::update(&mut tx, Hooks::Project, w.id, forge.as_str(), &rules_json, enabled).await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "webhook.update",
        "project",
        &p.name,
        json!({"forge": forge, "release_rules": rules_detail(&rules), "enabled": enabled}),
    )
    .await?;
    let w = existing(&mut tx, &p).await?;
    let v = view(&mut tx, w).await?;
    tx.commit().await?;
    Ok(v)
}

pub async fn rotate(ctx: &Ctx, caller: &Caller, project: &str, req: RotateWebhook) -> OpResult<ProjectWebhookSecret> {
    let mut tx = ctx.store.begin().await?;
    let p = configurable(&mut tx, caller, project).await?;
    let w = existing(&mut tx, &p).await?;
    if let Some(s) = &req.secret {
        check_secret(s, forge_of_row(&w.project, &w.forge)?)?;
    }
    let secret = req.secret.clone().unwrap_or_else(generate_secret);
    store::set_secret(&mut tx, Hooks::Project, w.id, &ctx.secrets.seal(secret.as_bytes())).await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "webhook.rotate",
        "project",
        &p.name,
        json!({"secret_given": req.secret.is_some()}),
    )
    .await?;
    let w = existing(&mut tx, &p).await?;
    let view = view(&mut tx, w).await?;
    tx.commit().await?;
    Ok(ProjectWebhookSecret { view, secret })
}

pub async fn delete(ctx: &Ctx, caller: &Caller, project: &str) -> OpResult<()> {
    let mut tx = ctx.store.begin().await?;
    let p = configurable(&mut tx, caller, project).await?;
    let w = existing(&mut tx, &p).await?;
    store::delete(&mut tx, Hooks::Project, w.id).await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "webhook.delete",
        "project",
        &p.name,
        json!({"forge": w.forge}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A delivery to a project's webhook as it arrived.
pub struct ProjectIncoming<'a> {
    pub project: &'a str,
    pub public_id: &'a str,
    pub headers: &'a HashMap<String, String>,
    pub body: &'a [u8],
    pub address: &'a str,
}

/// How often a delivery is tried again after a concurrent delivery of the
/// same push released one of its applications first.
const RACE_RETRIES: usize = 3;

/// Receives one delivery: the signature, the delivery id, then a release
/// for each application of the project whose repository was pushed.
pub async fn receive(ctx: &Ctx, inc: ProjectIncoming<'_>) -> OpResult<ProjectReceipt> {
    let w = store::by_project_address(&mut *ctx.store.conn().await?, inc.project, inc.public_id)
        .await?
        .ok_or_else(|| OpError::not_found("webhook", inc.project))?;
    let configured = forge_of_row(&w.project, &w.forge)?;
    let secret = open_sealed(ctx, &w.project, &w.secret_enc)?;
    let label = format!("project {}", w.project);
    let Verified {
        event,
        delivery,
        parsed,
    } = verified(configured, &secret, inc.headers, inc.body).map_err(|e| match e {
        Refusal::Signature(e) => refused(&label, e),
        Refusal::Other(e) => e,
    })?;
    // An organisation's or group's webhook hears every repository's events:
    // only pushes of this project's applications' repositories are worth a
    // write; the rest is answered and forgotten.
    let p = match &parsed {
        Parsed::Push(p) => p,
        Parsed::Deleted(r) => {
            return Ok(plain(
                Outcome::DeletedRef,
                format!("{r} was deleted; nothing to release"),
            ))
        }
        Parsed::Other => {
            return Ok(plain(
                Outcome::IgnoredEvent,
                format!("event {event:?} is not a push; acknowledged and ignored"),
            ))
        }
    };
    if w.enabled == 0 {
        return Ok(plain(
            Outcome::Disabled,
            "the webhook is disabled; nothing released".into(),
        ));
    }
    let matched: Vec<(i64, String, String)> = apps::repositories(&mut *ctx.store.conn().await?, w.project_id)
        .await?
        .into_iter()
        .filter(|(_, _, git_url)| prism_webhooks::is_repository(&p.repository_urls, git_url))
        .collect();
    if matched.is_empty() {
        let repo = p.repository_urls.first().map(String::as_str).unwrap_or("(none given)");
        return Ok(plain(
            Outcome::NoApplication,
            format!("no application of project {} is released from {repo}", w.project),
        ));
    }
    for _ in 0..RACE_RETRIES {
        let mut tx = ctx.store.begin().await?;
        store::prune_deliveries(
            &mut tx,
            Hooks::Project,
            w.id,
            prism_store::now_ms() - KEEP_DELIVERIES_MS,
        )
        .await?;
        let Some(row) = store::record_delivery(
            &mut tx,
            NewDelivery {
                hooks: Hooks::Project,
                webhook_id: w.id,
                delivery_id: delivery.as_deref(),
                event: &event,
                git_ref: Some(&p.full_ref),
                commit_sha: Some(&p.commit),
                outcome: "received",
                detail: "",
            },
        )
        .await?
        else {
            return Ok(ProjectReceipt {
                outcome: Outcome::Duplicate,
                message: format!("delivery {} was received before; ignored", delivery.unwrap_or_default()),
                applications: vec![],
            });
        };
        let Some(receipt) = fan_out(&mut tx, ctx, &w, &matched, p, inc.address, delivery.as_deref()).await? else {
            // A concurrent delivery of this push released an application
            // first: roll back and decide again (it reads as released).
            continue;
        };
        let first_release = receipt.applications.iter().find_map(|a| a.receipt.release);
        store::set_outcome(
            &mut tx,
            Hooks::Project,
            row,
            receipt.outcome.as_str(),
            &receipt.message,
            first_release.map(|r| r.seq()),
        )
        .await?;
        tx.commit().await?;
        if receipt.applications.iter().any(|a| a.receipt.build.is_some()) {
            ctx.job_wakeup.notify_one();
        }
        return Ok(receipt);
    }
    Err(OpError::conflict(
        "deliveries of this push kept arriving at the same time; the forge's retry will settle it",
    ))
}

fn plain(outcome: Outcome, message: String) -> ProjectReceipt {
    ProjectReceipt {
        outcome,
        message,
        applications: vec![],
    }
}

/// Releases the push for every application whose repository it is. None
/// when a concurrent delivery won a race (the caller rolls back).
async fn fan_out(
    tx: &mut Tx,
    ctx: &Ctx,
    w: &ProjectWebhook,
    matched: &[(i64, String, String)],
    p: &PushEvent,
    address: &str,
    delivery: Option<&str>,
) -> OpResult<Option<ProjectReceipt>> {
    let rules = parse_rules(w)?;
    let origin = Origin {
        actor_id: None,
        actor: store::project_actor_name(&w.project),
        address: address.to_owned(),
    };
    let mut applications = Vec::with_capacity(matched.len());
    for (app_id, name, _) in matched {
        let target = Target {
            app_id: *app_id,
            application: name,
            rules: &rules,
            origin: &origin,
            creator: Creator::Project(&w.project),
        };
        match release_push(tx, ctx, &target, p, delivery).await? {
            Decided::Receipt(receipt) => applications.push(ApplicationReceipt {
                application: name.clone(),
                receipt,
            }),
            Decided::LostRace => return Ok(None),
        }
    }
    let outcome = summary(&applications);
    let message = applications
        .iter()
        .map(|a| {
            // A release that could not be built says why (its message says it was made).
            let said = a.receipt.build_error.as_deref().unwrap_or(&a.receipt.message);
            format!("{}: {said}", a.application)
        })
        .collect::<Vec<_>>()
        .join("; ");
    Ok(Some(ProjectReceipt {
        outcome,
        message,
        applications,
    }))
}

/// One word for a delivery that touched several applications: created if
/// it released any, already released if every one had its release, else
/// no rule.
fn summary(applications: &[ApplicationReceipt]) -> Outcome {
    let outcomes = || applications.iter().map(|a| a.receipt.outcome);
    if outcomes().any(|o| o == Outcome::Created) {
        Outcome::Created
    } else if outcomes().all(|o| o == Outcome::AlreadyReleased) {
        Outcome::AlreadyReleased
    } else {
        Outcome::NoRule
    }
}
