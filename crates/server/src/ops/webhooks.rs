//! Git webhooks: a push or tag from GitHub, Gitea/Forgejo or GitLab creates
//! a release of the pushed commit (and builds it) when the application's
//! rules match the ref.
//!
//! Configuring (operators of the application's project, and admins): create,
//! show, update, rotate the secret, delete. The secret is returned once,
//! when it is set (create, rotate), and stored sealed (`secret_enc`).
//!
//! Receiving (`receive`, no login: the forge signs the body):
//!
//! ```text
//! webhook by (app, public id) ── none ──> not found
//!   │ verify the signature in constant time, before the body is read as JSON
//!   ├── bad or missing ──> unauthenticated (nothing written)
//!   │ record the delivery id (unique per webhook)
//!   ├── seen before ──> "duplicate" (nothing else)
//!   │ parse: not a push (ping, issues...) ──> "ignored_event"; a deleted ref ──> "deleted_ref"
//!   │ disabled ──> "disabled"; no rule matches the branch or tag ──> "no_rule"
//!   │ a release of this ref and commit exists ──> "already_released"
//!   └── release (git ref = the commit, its message the change note) [+ build] ──> "created"
//! ```
//!
//! The delivery, the release, its build and their audit events (actor
//! `webhook:APP`) are written in one transaction.

use std::collections::HashMap;

use prism_api::webhooks::{CreateWebhook, Outcome, Receipt, RotateWebhook, UpdateWebhook, WebhookSecret, WebhookView};
use prism_domain::{GitRef, ReleaseId};
use prism_store::audit::Origin;
use prism_store::releases::{self, BuildInfo};
use prism_store::webhooks::{self as store, Hooks, NewDelivery, NewWebhook, Webhook};
use prism_store::{apps, audit, Tx};
use prism_webhooks::{EventError, Forge, PushEvent, ReleaseRules, VerifyError};
use rand::RngCore;
use serde_json::json;

use super::transitions::Who;
use super::{access, Ctx, OpError, OpResult};
use crate::auth::Caller;
use crate::wire::ToApi;

/// Deliveries kept per webhook for the replay check and the panel.
pub(super) const KEEP_DELIVERIES_MS: i64 = 90 * 24 * 3600 * 1000;
/// How many recent deliveries `show` lists.
pub(super) const RECENT: i64 = 20;
/// GitLab's signed deliveries older or newer than this are refused.
const SIGNED_TOLERANCE_MS: i64 = 5 * 60 * 1000;

pub(super) fn generate_secret() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

pub(super) fn generate_public_id() -> String {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// A secret given by the caller: long enough, printable, and for a GitLab
/// signing token (`whsec_<base64 key>`) a key that decodes.
pub(super) fn check_secret(secret: &str, forge: Forge) -> OpResult<()> {
    if !(16..=512).contains(&secret.chars().count()) || secret.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(OpError::invalid(
            "secret",
            "must be 16 to 512 characters without spaces",
        ));
    }
    if let Some(key) = secret.strip_prefix("whsec_") {
        use base64::Engine;
        if forge != Forge::Gitlab {
            return Err(OpError::invalid(
                "secret",
                "a signing token (whsec_...) is GitLab's; GitHub and Gitea sign with a plain secret",
            ));
        }
        let ok = base64::engine::general_purpose::STANDARD
            .decode(key)
            .is_ok_and(|k| k.len() >= 16);
        if !ok {
            return Err(OpError::invalid(
                "secret",
                "a signing token is whsec_ followed by a base64 key of at least 16 bytes",
            ));
        }
    }
    Ok(())
}

fn parse_rules(w: &Webhook) -> OpResult<ReleaseRules> {
    serde_json::from_str(&w.rules)
        .map_err(|e| OpError::internal(format!("webhook of {}: stored rules: {e}", w.application)))
}

fn path_of(w: &Webhook) -> String {
    format!("/hooks/git/{}/{}", w.application, w.public_id)
}

async fn view(c: &mut prism_store::AnyConnection, w: Webhook) -> OpResult<WebhookView> {
    let deliveries = store::recent_deliveries(c, Hooks::Application, w.id, RECENT).await?;
    Ok(WebhookView {
        release_rules: parse_rules(&w)?,
        path: path_of(&w),
        deliveries: deliveries.to_api(),
        webhook: w.to_api(),
    })
}

/// The application, when the caller may configure its webhook: operators of
/// its project and admins (others who may see it get 403, the rest 404).
async fn configurable(c: &mut prism_store::AnyConnection, caller: &Caller, app: &str) -> OpResult<apps::Application> {
    let (app, roles) = access::application(c, caller, app).await?;
    if !access::may_edit_application(roles) {
        return Err(OpError::forbidden(
            "an application's webhook is configured by the operators of its project",
        ));
    }
    Ok(app)
}

pub(super) fn rules_detail(r: &ReleaseRules) -> serde_json::Value {
    json!({"branches": r.branches, "tags": r.tags, "build": r.build})
}

pub async fn create(ctx: &Ctx, caller: &Caller, app: &str, req: CreateWebhook) -> OpResult<WebhookSecret> {
    req.release_rules.validate("release_rules")?;
    if let Some(s) = &req.secret {
        check_secret(s, req.forge)?;
    }
    let secret = req.secret.clone().unwrap_or_else(generate_secret);
    let mut tx = ctx.store.begin().await?;
    let app = configurable(&mut tx, caller, app).await?;
    if store::for_app(&mut tx, app.id).await?.is_some() {
        return Err(OpError::conflict(format!(
            "application {} has a webhook already; rotate its secret or delete it",
            app.name
        )));
    }
    let rules = serde_json::to_string(&req.release_rules).expect("rules serialise");
    let public_id = generate_public_id();
    let w = store::create(
        &mut tx,
        NewWebhook {
            app_id: app.id,
            application: &app.name,
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
        "application",
        &app.name,
        json!({"forge": req.forge, "release_rules": rules_detail(&req.release_rules), "enabled": req.enabled,
               "secret_given": req.secret.is_some()}),
    )
    .await?;
    let view = view(&mut tx, w).await?;
    tx.commit().await?;
    Ok(WebhookSecret { view, secret })
}

pub async fn show(ctx: &Ctx, caller: &Caller, app: &str) -> OpResult<WebhookView> {
    let mut c = ctx.store.conn().await?;
    let app = configurable(&mut c, caller, app).await?;
    let w = store::for_app(&mut c, app.id)
        .await?
        .ok_or_else(|| OpError::not_found("webhook", &app.name))?;
    view(&mut c, w).await
}

/// The application's webhook for its page: None when it has none or the
/// caller may not configure it.
pub async fn for_page(ctx: &Ctx, caller: &Caller, app: &str) -> OpResult<Option<WebhookView>> {
    match show(ctx, caller, app).await {
        Ok(v) => Ok(Some(v)),
        Err(OpError::NotFound { .. } | OpError::Forbidden(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

pub async fn update(ctx: &Ctx, caller: &Caller, app: &str, req: UpdateWebhook) -> OpResult<WebhookView> {
    if let Some(r) = &req.release_rules {
        r.validate("release_rules")?;
    }
    let mut tx = ctx.store.begin().await?;
    let app = configurable(&mut tx, caller, app).await?;
    let w = store::for_app(&mut tx, app.id)
        .await?
        .ok_or_else(|| OpError::not_found("webhook", &app.name))?;
    let forge = match req.forge {
        Some(f) => f,
        None => stored_forge(&w)?,
    };
    if forge != Forge::Gitlab {
        // A GitLab signing token cannot check another forge's signature.
        let secret = open_secret(ctx, &w)?;
        if secret.starts_with("whsec_") {
            return Err(OpError::invalid(
                "forge",
                "the secret is a GitLab signing token: rotate it when changing the forge",
            ));
        }
    }
    let rules = match &req.release_rules {
        Some(r) => r.clone(),
        None => parse_rules(&w)?,
    };
    let enabled = req.enabled.unwrap_or(w.enabled != 0);
    let rules_json = serde_json::to_string(&rules).expect("rules serialise");
    store::update(&mut tx, Hooks::Application, w.id, forge.as_str(), &rules_json, enabled).await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "webhook.update",
        "application",
        &app.name,
        json!({"forge": forge, "release_rules": rules_detail(&rules), "enabled": enabled}),
    )
    .await?;
    let w = store::for_app(&mut tx, app.id)
        .await?
        .ok_or_else(|| OpError::not_found("webhook", &app.name))?;
    let v = view(&mut tx, w).await?;
    tx.commit().await?;
    Ok(v)
}

pub async fn rotate(ctx: &Ctx, caller: &Caller, app: &str, req: RotateWebhook) -> OpResult<WebhookSecret> {
    let mut tx = ctx.store.begin().await?;
    let app = configurable(&mut tx, caller, app).await?;
    let w = store::for_app(&mut tx, app.id)
        .await?
        .ok_or_else(|| OpError::not_found("webhook", &app.name))?;
    if let Some(s) = &req.secret {
        check_secret(s, stored_forge(&w)?)?;
    }
    let secret = req.secret.clone().unwrap_or_else(generate_secret);
    store::set_secret(&mut tx, Hooks::Application, w.id, &ctx.secrets.seal(secret.as_bytes())).await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "webhook.rotate",
        "application",
        &app.name,
        json!({"secret_given": req.secret.is_some()}),
    )
    .await?;
    let w = store::for_app(&mut tx, app.id)
        .await?
        .ok_or_else(|| OpError::not_found("webhook", &app.name))?;
    let view = view(&mut tx, w).await?;
    tx.commit().await?;
    Ok(WebhookSecret { view, secret })
}

pub async fn delete(ctx: &Ctx, caller: &Caller, app: &str) -> OpResult<()> {
    let mut tx = ctx.store.begin().await?;
    let app = configurable(&mut tx, caller, app).await?;
    let w = store::for_app(&mut tx, app.id)
        .await?
        .ok_or_else(|| OpError::not_found("webhook", &app.name))?;
    store::delete(&mut tx, Hooks::Application, w.id).await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "webhook.delete",
        "application",
        &app.name,
        json!({"forge": w.forge}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

fn stored_forge(w: &Webhook) -> OpResult<Forge> {
    forge_of_row(&w.application, &w.forge)
}

pub(super) fn forge_of_row(owner: &str, forge: &str) -> OpResult<Forge> {
    Forge::parse(forge).ok_or_else(|| OpError::internal(format!("webhook of {owner}: forge {forge:?}")))
}

fn open_secret(ctx: &Ctx, w: &Webhook) -> OpResult<String> {
    open_sealed(ctx, &w.application, &w.secret_enc)
}

pub(super) fn open_sealed(ctx: &Ctx, owner: &str, sealed: &[u8]) -> OpResult<String> {
    let bytes = ctx
        .secrets
        .open(sealed)
        .map_err(|e| OpError::internal(format!("webhook of {owner}: {e}")))?;
    String::from_utf8(bytes).map_err(|_| OpError::internal(format!("webhook of {owner}: secret is not text")))
}

/// A delivery as it arrived: the address it was posted to, its headers
/// (names lowercase) and its body, unread.
pub struct Incoming<'a> {
    pub application: &'a str,
    pub public_id: &'a str,
    pub headers: &'a HashMap<String, String>,
    pub body: &'a [u8],
    /// The sender's address, for the audit log.
    pub address: &'a str,
}

/// A receipt with nothing released.
pub(super) fn plain(outcome: Outcome, message: impl Into<String>) -> Receipt {
    Receipt {
        outcome,
        message: message.into(),
        release: None,
        build: None,
        build_error: None,
    }
}

/// Receives one delivery (see the module's diagram).
pub async fn receive(ctx: &Ctx, inc: Incoming<'_>) -> OpResult<Receipt> {
    let w = store::by_address(&mut *ctx.store.conn().await?, inc.application, inc.public_id)
        .await?
        .ok_or_else(|| OpError::not_found("webhook", inc.application))?;
    let configured = stored_forge(&w)?;
    let secret = open_secret(ctx, &w)?;
    let Verified {
        event,
        delivery,
        parsed,
    } = verified(configured, &secret, inc.headers, inc.body).map_err(|e| match e {
        Refusal::Signature(e) => refused(&w.application, e),
        Refusal::Other(e) => e,
    })?;
    let push = match &parsed {
        Parsed::Push(p) => Some(p),
        _ => None,
    };
    let mut tx = ctx.store.begin().await?;
    store::prune_deliveries(
        &mut tx,
        Hooks::Application,
        w.id,
        prism_store::now_ms() - KEEP_DELIVERIES_MS,
    )
    .await?;
    let Some(delivery_row) = store::record_delivery(
        &mut tx,
        NewDelivery {
            hooks: Hooks::Application,
            webhook_id: w.id,
            delivery_id: delivery.as_deref(),
            event: &event,
            git_ref: push.map(|p| p.full_ref.as_str()),
            commit_sha: push.map(|p| p.commit.as_str()),
            outcome: "received",
            detail: "",
        },
    )
    .await?
    else {
        return Ok(plain(
            Outcome::Duplicate,
            format!("delivery {} was received before; ignored", delivery.unwrap_or_default()),
        ));
    };
    let receipt = match &parsed {
        Parsed::Push(p) => match decide(&mut tx, ctx, &w, p, inc.address, delivery.as_deref()).await? {
            Decided::Receipt(r) => r,
            Decided::LostRace => {
                // A concurrent delivery of the same push made the release
                // first: this attempt is rolled back and recorded afresh.
                drop(tx);
                return record_lost_race(ctx, &w, delivery.as_deref(), &event, p).await;
            }
        },
        Parsed::Deleted(r) => plain(Outcome::DeletedRef, format!("{r} was deleted; nothing to release")),
        Parsed::Other => plain(
            Outcome::IgnoredEvent,
            format!("event {event:?} is not a push; acknowledged and ignored"),
        ),
    };
    store::set_outcome(
        &mut tx,
        Hooks::Application,
        delivery_row,
        receipt.outcome.as_str(),
        receipt.build_error.as_deref().unwrap_or(&receipt.message),
        receipt.release.map(|r| r.seq()),
    )
    .await?;
    tx.commit().await?;
    if receipt.build.is_some() {
        ctx.job_wakeup.notify_one();
    }
    Ok(receipt)
}

/// A delivery's body as far as it matters.
pub(super) enum Parsed {
    Push(PushEvent),
    Deleted(String),
    Other,
}

pub(super) enum Decided {
    Receipt(Receipt),
    LostRace,
}

/// A delivery whose signature holds, read.
pub(super) struct Verified {
    /// The event's name (at most 100 characters).
    pub event: String,
    /// The forge's delivery id (at most 200 characters).
    pub delivery: Option<String>,
    pub parsed: Parsed,
}

pub(super) enum Refusal {
    /// The signature is missing or wrong (nothing is written).
    Signature(VerifyError),
    Other(OpError),
}

impl From<OpError> for Refusal {
    fn from(e: OpError) -> Self {
        Refusal::Other(e)
    }
}

/// Checks a delivery's signature as the forge the webhook is set up for
/// (whatever other headers it carries) before anything of the body is
/// read, then reads it.
pub(super) fn verified(
    configured: Forge,
    secret: &str,
    headers: &HashMap<String, String>,
    body: &[u8],
) -> Result<Verified, Refusal> {
    let forge = prism_webhooks::verify_as(configured, headers, body, secret).map_err(Refusal::Signature)?;
    if forge == Forge::Gitlab && secret.starts_with("whsec_") {
        let ts = headers
            .get("webhook-timestamp")
            .and_then(|t| t.trim().parse::<i64>().ok());
        let fresh = ts.is_some_and(|t| {
            (t.saturating_mul(1000) - crate::clock::Clock::system().now_ms()).abs() <= SIGNED_TOLERANCE_MS
        });
        if !fresh {
            return Err(
                OpError::Unauthenticated("webhook-timestamp is missing or more than 5 minutes off".into()).into(),
            );
        }
    }
    let Some(envelope) = prism_webhooks::envelope(headers) else {
        let header = match configured {
            Forge::Github => "X-GitHub-Event",
            Forge::Gitea => "X-Gitea-Event",
            Forge::Gitlab => "X-Gitlab-Event",
        };
        return Err(OpError::invalid(header, "the event header is missing").into());
    };
    let event = envelope.event.chars().take(100).collect::<String>();
    let delivery = envelope.delivery.map(|d| d.chars().take(200).collect::<String>());
    let parsed = match prism_webhooks::parse(headers, body) {
        Ok(p) => Parsed::Push(p),
        Err(EventError::Deleted(r)) => Parsed::Deleted(r),
        Err(EventError::NotAPush(_)) => Parsed::Other,
        Err(EventError::Malformed { reason, .. }) => {
            return Err(OpError::invalid("body", format!("not a {} push event: {reason}", forge.as_str())).into());
        }
    };
    Ok(Verified {
        event,
        delivery,
        parsed,
    })
}

pub(super) fn refused(owner: &str, e: VerifyError) -> OpError {
    tracing::warn!(webhook = %owner, error = %e, "webhook delivery refused");
    OpError::Unauthenticated(e.to_string())
}

/// A push to an application's own webhook: enabled, then the rules, then
/// [`release_push`].
async fn decide(
    tx: &mut Tx,
    ctx: &Ctx,
    w: &Webhook,
    p: &PushEvent,
    address: &str,
    delivery: Option<&str>,
) -> OpResult<Decided> {
    if w.enabled == 0 {
        return Ok(Decided::Receipt(plain(
            Outcome::Disabled,
            "the webhook is disabled; nothing released",
        )));
    }
    let origin = Origin {
        actor_id: None,
        actor: store::actor_name(&w.application),
        address: address.to_owned(),
    };
    let target = Target {
        app_id: w.app_id,
        application: &w.application,
        rules: &parse_rules(w)?,
        origin: &origin,
        creator: Creator::Application,
    };
    release_push(tx, ctx, &target, p, delivery).await
}

/// Whose user row a release made by a push names as its creator.
pub(super) enum Creator<'a> {
    /// The application's own webhook (`webhook:APP`).
    Application,
    /// The project's webhook (`webhook:project:NAME`).
    Project(&'a str),
}

/// The application a push may release, under whose rules and name.
pub(super) struct Target<'a> {
    pub app_id: i64,
    pub application: &'a str,
    pub rules: &'a ReleaseRules,
    pub origin: &'a Origin,
    pub creator: Creator<'a>,
}

/// A push for one application: the rules, the existing releases, then the
/// release and its build.
pub(super) async fn release_push(
    tx: &mut Tx,
    ctx: &Ctx,
    t: &Target<'_>,
    p: &PushEvent,
    delivery: Option<&str>,
) -> OpResult<Decided> {
    let kind = if p.is_tag { "tag" } else { "branch" };
    if !t.rules.matches(p.is_tag, p.name.as_str()) {
        return Ok(Decided::Receipt(plain(
            Outcome::NoRule,
            format!("no rule of {} releases {kind} {}", t.application, p.name),
        )));
    }
    if let Some(existing) = store::release_for_push(tx, t.app_id, &p.full_ref, p.name.as_str(), &p.commit).await? {
        let r = ReleaseId::from_seq(existing);
        return Ok(Decided::Receipt(Receipt {
            release: Some(r),
            ..plain(
                Outcome::AlreadyReleased,
                format!("{kind} {} at {} has release {r} already", p.name, p.commit),
            )
        }));
    }
    let creator = match t.creator {
        Creator::Application => store::webhook_user(tx, t.application).await?,
        Creator::Project(project) => store::project_webhook_user(tx, project).await?,
    };
    let git_ref = GitRef::parse("git_ref", &p.commit)?;
    let note = if p.message.trim().is_empty() {
        format!("{kind} {} at {}", p.name, p.commit)
    } else {
        // PostgreSQL cannot store NUL characters.
        p.message.chars().filter(|c| *c != '\0').take(10_000).collect()
    };
    let rel = releases::create(tx, t.app_id, git_ref.as_str(), &note, creator).await?;
    releases::set_build_info(
        tx,
        rel.id,
        BuildInfo {
            commit_sha: Some(&p.commit),
            image_ref: None,
            image_digest: None,
        },
    )
    .await?;
    if !store::claim_push(tx, t.app_id, &p.full_ref, &p.commit, rel.id.seq()).await? {
        // Another delivery of this push won meanwhile (its transaction committed first).
        return Ok(Decided::LostRace);
    }
    audit::record(
        tx,
        t.origin,
        "release.create",
        "release",
        &rel.id.to_string(),
        json!({"application": t.application, "git_ref": git_ref, "change_note": note, "ref": p.full_ref,
               "commit": p.commit, "forge": p.forge, "delivery": delivery, "pusher": p.pusher}),
    )
    .await?;
    let mut receipt = Receipt {
        release: Some(rel.id),
        ..plain(
            Outcome::Created,
            format!("release {} of {kind} {} at {}", rel.id, p.name, p.commit),
        )
    };
    if t.rules.build {
        // Settings that cannot build leave the release created, not built:
        // the push is recorded, and the reason shown in the delivery log.
        let app = apps::get(tx, t.app_id).await?;
        match crate::services::build_config::resolve(tx, &app, &ctx.settings.build.default_executor).await {
            Ok(_) => {
                let b = super::builds::start_as(tx, ctx, &Who::Webhook(t.origin.clone()), t.app_id, rel.id).await?;
                receipt.build = Some(b.id);
            }
            Err(e) => receipt.build_error = Some(format!("not built: {e}")),
        }
    }
    Ok(Decided::Receipt(receipt))
}

/// Records a delivery whose push another delivery released first.
async fn record_lost_race(
    ctx: &Ctx,
    w: &Webhook,
    delivery: Option<&str>,
    event: &str,
    p: &PushEvent,
) -> OpResult<Receipt> {
    let mut tx = ctx.store.begin().await?;
    let existing = store::release_for_push(&mut tx, w.app_id, &p.full_ref, p.name.as_str(), &p.commit).await?;
    let row = store::record_delivery(
        &mut tx,
        NewDelivery {
            hooks: Hooks::Application,
            webhook_id: w.id,
            delivery_id: delivery,
            event,
            git_ref: Some(&p.full_ref),
            commit_sha: Some(&p.commit),
            outcome: Outcome::AlreadyReleased.as_str(),
            detail: "released by a concurrent delivery",
        },
    )
    .await?;
    if let (Some(row), Some(r)) = (row, existing) {
        store::set_outcome(
            &mut tx,
            Hooks::Application,
            row,
            Outcome::AlreadyReleased.as_str(),
            "released by a concurrent delivery",
            Some(r),
        )
        .await?;
    }
    tx.commit().await?;
    let outcome = if row.is_some() {
        Outcome::AlreadyReleased
    } else {
        Outcome::Duplicate
    };
    Ok(Receipt {
        release: existing.map(ReleaseId::from_seq),
        ..plain(outcome, "this push was released by a concurrent delivery")
    })
}
