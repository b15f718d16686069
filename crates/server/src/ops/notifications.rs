//! Notifications (issue 12 item 3): admins set up channels (a generic
//! signed webhook, Slack, DingTalk, Feishu/Lark, WeCom, e-mail), for every
//! project or for one; a project's operators subscribe channels to the
//! project's events, each in a language; admins read each channel's
//! delivery log and send a test message. A channel's URL (robots' URLs
//! carry their token) and its secret are sealed and never returned: the
//! API shows the URL's scheme and host only. What is announced when, and how
//! it is delivered: `services::notices` and `jobs::notify`.

use prism_api::notifications::{ChannelView, EmailSettings, PutChannel, PutSubscription, TestMessage};
use prism_domain::Name;
use prism_notify::{is_mailbox, ChannelKind, Lang, Notice, NoticeKind, SmtpTls};
use prism_store::notifications::{self, Channel, ChannelFields, Delivery, Subscription};
use prism_store::{audit, projects};
use serde::Deserialize;
use serde_json::json;

use super::{access, referenced, Ctx, OpError, OpResult};
use crate::auth::Caller;

fn kind_of(ch: &Channel) -> OpResult<ChannelKind> {
    ChannelKind::parse(&ch.kind)
        .ok_or_else(|| OpError::internal(format!("channel {}: unknown kind {:?}", ch.name, ch.kind)))
}

/// The stored e-mail settings of a channel (None for other kinds).
pub fn email_of(ch: &Channel) -> Option<EmailSettings> {
    serde_json::from_str(&ch.settings).ok()
}

async fn view(c: &mut prism_store::AnyConnection, ch: &Channel, admin: bool) -> OpResult<ChannelView> {
    Ok(ChannelView {
        name: ch.name.clone(),
        kind: kind_of(ch)?,
        project: ch.project.clone(),
        target: admin.then(|| ch.target.clone()),
        email: if admin { email_of(ch) } else { None },
        has_secret: ch.secret_enc.is_some(),
        subscribed_by: if admin {
            Some(notifications::subscribing_projects(c, ch.id).await?)
        } else {
            None
        },
        created_by: ch.created_by.clone(),
        created_at: ch.created_at,
        updated_at: ch.updated_at,
    })
}

/// The channels the caller may see: admins every one (with where it goes),
/// others those their projects may subscribe to (name and kind only).
pub async fn list_channels(ctx: &Ctx, caller: &Caller) -> OpResult<Vec<ChannelView>> {
    let mut c = ctx.store.conn().await?;
    let all = notifications::list_channels(&mut c).await?;
    let mine: Option<Vec<i64>> = match access::visibility(caller) {
        None => None,
        Some(user) => Some(
            projects::list_visible(&mut c, Some(user))
                .await?
                .into_iter()
                .map(|p| p.id)
                .collect(),
        ),
    };
    let mut out = Vec::new();
    for ch in &all {
        let visible = match (&mine, ch.project_id) {
            (None, _) | (Some(_), None) => true,
            (Some(ids), Some(p)) => ids.contains(&p),
        };
        if visible {
            out.push(view(&mut c, ch, caller.is_admin()).await?);
        }
    }
    Ok(out)
}

/// One channel (admins).
pub async fn get_channel(ctx: &Ctx, caller: &Caller, name: &str) -> OpResult<ChannelView> {
    access::require_admin(caller)?;
    let mut c = ctx.store.conn().await?;
    let ch = notifications::channel_by_name(&mut c, name).await?;
    view(&mut c, &ch, true).await
}

/// The channels project `project_id` may subscribe to (every project's and its own).
pub async fn channels_for_project(ctx: &Ctx, project_id: i64) -> OpResult<Vec<ChannelView>> {
    let mut c = ctx.store.conn().await?;
    let all = notifications::list_channels(&mut c).await?;
    let mut out = Vec::new();
    for ch in all.iter().filter(|ch| ch.project_id.is_none_or(|p| p == project_id)) {
        out.push(view(&mut c, ch, false).await?);
    }
    Ok(out)
}

/// Whether a kind signs its messages with a secret (Slack and WeCom URLs
/// are their only credential).
fn signs(kind: ChannelKind) -> bool {
    matches!(
        kind,
        ChannelKind::Webhook | ChannelKind::Dingtalk | ChannelKind::Feishu | ChannelKind::Email
    )
}

/// Checks a receiver's URL; returns what may be shown of it.
fn check_url(raw: &str, guard: &prism_netguard::Guard) -> OpResult<String> {
    let bad = |m: &str| Err(OpError::invalid("url", m));
    if raw.len() > 2048 || raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return bad("must be a URL of at most 2048 characters without spaces");
    }
    let Ok(url) = reqwest::Url::parse(raw) else {
        return bad("must be an http:// or https:// URL");
    };
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return bad("must be an http:// or https:// URL with a host");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return bad("must not hold a user or password; a signing secret goes in `secret`");
    }
    if url.fragment().is_some() {
        return bad("must not have a #fragment");
    }
    guard
        .check_url(&url)
        .map_err(|e| OpError::invalid("url", e.to_string()))?;
    let host = url.host_str().unwrap_or_default();
    Ok(match url.port() {
        Some(p) => format!("{}://{host}:{p}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    })
}

fn check_email(e: &EmailSettings) -> OpResult<()> {
    super::registries::validate_host("email.host", &e.host)?;
    if e.host.contains(':') && !e.host.starts_with('[') {
        return Err(OpError::invalid("email.host", "give the port in email.port"));
    }
    if e.port == 0 {
        return Err(OpError::invalid("email.port", "must be 1 to 65535"));
    }
    if SmtpTls::parse(&e.tls).is_none() {
        return Err(OpError::invalid("email.tls", "must be starttls, tls or none"));
    }
    if let Some(u) = &e.username {
        super::secret_text("email.username", u, 256)?;
    }
    if e.from.len() > 320 || !is_mailbox(&e.from) {
        return Err(OpError::invalid(
            "email.from",
            "must be an address such as prism@example.com or Prism <prism@example.com>",
        ));
    }
    if e.to.is_empty() || e.to.len() > 50 {
        return Err(OpError::invalid("email.to", "must list 1 to 50 addresses"));
    }
    for (i, to) in e.to.iter().enumerate() {
        if to.len() > 320 || !is_mailbox(to) {
            return Err(OpError::invalid(
                &format!("email.to[{i}]"),
                "must be an address such as ops@example.com",
            ));
        }
    }
    Ok(())
}

/// Creates or replaces a channel (admins).
pub async fn put_channel(ctx: &Ctx, caller: &Caller, name: &str, req: PutChannel) -> OpResult<ChannelView> {
    let kind = req.kind;
    access::require_admin(caller)?;
    let name = Name::parse("name", name)?;
    if let Some(s) = &req.secret {
        super::secret_text("secret", s, 4096)?;
    }
    if req.clear_secret && req.secret.is_some() {
        return Err(OpError::invalid(
            "clear_secret",
            "cannot clear and set the secret at once",
        ));
    }
    if req.secret.is_some() && !signs(kind) {
        return Err(OpError::invalid(
            "secret",
            format!("{} channels are not signed: their URL is their only credential", kind),
        ));
    }
    let email = kind == ChannelKind::Email;
    match (&req.email, email) {
        (Some(e), true) => check_email(e)?,
        (None, true) => return Err(OpError::invalid("email", "an email channel needs its SMTP settings")),
        (Some(_), false) => {
            return Err(OpError::invalid(
                "email",
                format!("only email channels have SMTP settings, not {}", kind),
            ))
        }
        (None, false) => {}
    }
    if email && req.url.is_some() {
        return Err(OpError::invalid("url", "an email channel has no URL"));
    }
    let mut tx = ctx.store.begin().await?;
    let guard = crate::services::address_policy::guard(&mut tx).await?;
    let existing = notifications::channel_by_name(&mut tx, name.as_str()).await.ok();
    let same_kind = existing.as_ref().is_some_and(|e| e.kind == kind.as_str());
    let target = match (&req.url, &req.email) {
        (Some(u), _) => check_url(u, &guard)?,
        (None, Some(e)) => format!("{}:{}", e.host, e.port),
        // The stored URL stays (for a channel of the same kind only).
        (None, None) => match &existing {
            Some(e) if same_kind && e.url_enc.is_some() => e.target.clone(),
            _ => {
                return Err(OpError::invalid(
                    "url",
                    format!("a {} channel needs the receiver's URL", kind),
                ))
            }
        },
    };
    let project_id = match &req.project {
        Some(p) => Some(referenced("project", projects::by_name(&mut tx, p).await)?.id),
        None => None,
    };
    if let (Some(ch), Some(_)) = (&existing, project_id) {
        // Narrowing the scope may not strand another project's subscription.
        let others: Vec<String> = notifications::subscribing_projects(&mut tx, ch.id)
            .await?
            .into_iter()
            .filter(|p| Some(p) != req.project.as_ref())
            .collect();
        if !others.is_empty() {
            return Err(OpError::conflict_as(
                "in_use",
                format!(
                    "project(s) {} subscribe to this channel; remove those subscriptions before limiting it to {}",
                    others.join(", "),
                    req.project.as_deref().unwrap_or_default()
                ),
            )
            .field("project"));
        }
    }
    // A kind without signing keeps no secret; an email user needs a password and the other way round.
    let clear_secret = req.clear_secret || !signs(kind) || (existing.is_some() && !same_kind && req.secret.is_none());
    let has_secret =
        req.secret.is_some() || (!clear_secret && existing.as_ref().is_some_and(|e| e.secret_enc.is_some()));
    if let Some(e) = &req.email {
        if e.username.is_some() != has_secret {
            return Err(OpError::invalid(
                if e.username.is_some() {
                    "secret"
                } else {
                    "email.username"
                },
                "an SMTP user needs its password in secret, and a password its user",
            ));
        }
    }
    let settings = match &req.email {
        Some(e) => serde_json::to_string(e).expect("email settings serialise"),
        None => "{}".to_owned(),
    };
    let fields = ChannelFields {
        kind: kind.as_str(),
        project_id,
        target: &target,
        settings: &settings,
        url_enc: match (&req.url, email) {
            (Some(u), _) => Some(ctx.secrets.seal(u.as_bytes())),
            // An e-mail channel keeps no URL: an empty one replaces a stored one.
            (None, true) => Some(ctx.secrets.seal(b"")),
            (None, false) => None,
        },
        secret_enc: req.secret.as_ref().map(|s| ctx.secrets.seal(s.as_bytes())),
        clear_secret,
        by: &caller.user.username,
    };
    let saved = match existing {
        Some(_) => notifications::update_channel(&mut tx, name.as_str(), fields).await?,
        None => notifications::create_channel(&mut tx, name.as_str(), fields).await?,
    };
    audit::record(
        &mut tx,
        &caller.origin(),
        "notification_channel.put",
        "notification_channel",
        name.as_str(),
        // Never the URL or the secret: only whether they changed.
        json!({"kind": kind, "project": req.project, "target": saved.target, "email": req.email,
               "url_changed": req.url.is_some(), "secret_changed": req.secret.is_some(),
               "secret_cleared": clear_secret && saved.secret_enc.is_none()}),
    )
    .await?;
    let shown = view(&mut tx, &saved, true).await?;
    tx.commit().await?;
    Ok(shown)
}

/// Removes a channel and its delivery log (admins); refused while a
/// project subscribes to it.
pub async fn delete_channel(ctx: &Ctx, caller: &Caller, name: &str) -> OpResult<()> {
    access::require_admin(caller)?;
    let mut tx = ctx.store.begin().await?;
    notifications::delete_channel(&mut tx, name).await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "notification_channel.delete",
        "notification_channel",
        name,
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    /// 1 to 500, default 50.
    pub limit: Option<i64>,
}

/// A channel's delivery log, newest first, each with its attempts (admins).
pub async fn deliveries(ctx: &Ctx, caller: &Caller, name: &str, q: DeliveryQuery) -> OpResult<Vec<Delivery>> {
    access::require_admin(caller)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(OpError::invalid("limit", "must be 1 to 500"));
    }
    let mut c = ctx.store.conn().await?;
    let ch = notifications::channel_by_name(&mut c, name).await?;
    Ok(notifications::deliveries_of(&mut c, ch.id, limit).await?)
}

fn language(field: &str, v: Option<&str>) -> OpResult<Lang> {
    match v {
        None => Ok(Lang::En),
        Some(w) => Lang::parse(w).ok_or_else(|| OpError::invalid(field, "must be en or zh-CN")),
    }
}

/// Sends a test message to a channel now (admins): one attempt, recorded
/// in the delivery log like any other; returns that delivery.
pub async fn test_channel(ctx: &Ctx, caller: &Caller, name: &str, req: TestMessage) -> OpResult<Delivery> {
    access::require_admin(caller)?;
    let lang = language("language", req.language.as_deref())?;
    let mut tx = ctx.store.begin().await?;
    let ch = notifications::channel_by_name(&mut tx, name).await?;
    let notice = Notice {
        kind: NoticeKind::Test,
        project: "-".into(),
        application: ch.name.clone(),
        release: "-".into(),
        environment: None,
        actor: caller.user.username.clone(),
        reason: None,
        link: format!("/admin/notifications/{}", ch.name),
    };
    let uid = uuid::Uuid::new_v4().to_string();
    let id = notifications::create_delivery(
        &mut tx,
        notifications::NewDelivery {
            uid: &uid,
            channel_id: ch.id,
            project: None,
            event: NoticeKind::Test.as_str(),
            lang: lang.as_str(),
            notice: &serde_json::to_string(&notice).expect("notices serialise"),
        },
    )
    .await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "notification_channel.test",
        "notification_channel",
        name,
        json!({"delivery": uid, "language": lang.as_str()}),
    )
    .await?;
    tx.commit().await?;
    crate::jobs::notify::attempt(ctx, id, 1, None)
        .await
        .map_err(|e| OpError::internal(format!("test message: {e}")))?;
    let mut c = ctx.store.conn().await?;
    notifications::delivery(&mut c, id)
        .await?
        .ok_or_else(|| OpError::not_found("delivery", &uid))
}

/// A project's subscriptions (its members).
pub async fn subscriptions(ctx: &Ctx, caller: &Caller, project: &str) -> OpResult<Vec<Subscription>> {
    let mut c = ctx.store.conn().await?;
    let p = access::project(&mut c, caller, project).await?;
    Ok(notifications::subscriptions_of(&mut c, p.id).await?)
}

/// Managing a project's notifications: its operators (and admins).
pub fn may_manage(roles: prism_domain::RoleSet) -> bool {
    roles.has(prism_domain::Role::Operator)
}

async fn managed_project(
    c: &mut prism_store::AnyConnection,
    caller: &Caller,
    project: &str,
) -> OpResult<prism_store::projects::Project> {
    let p = access::project(c, caller, project).await?;
    if !may_manage(access::roles_in(c, caller, p.id).await?) {
        return Err(OpError::forbidden(format!(
            "managing the notifications of project {project} needs the operator role"
        )));
    }
    Ok(p)
}

/// A channel project `project_id` may subscribe to; another project's is
/// not found, exactly like one that does not exist.
async fn usable_channel(c: &mut prism_store::AnyConnection, name: &str, project_id: i64) -> OpResult<Channel> {
    let ch = notifications::channel_by_name(c, name).await?;
    if ch.project_id.is_some_and(|p| p != project_id) {
        return Err(OpError::not_found("notification channel", name));
    }
    Ok(ch)
}

/// Subscribes `channel` to events of `project` (its operators).
pub async fn put_subscription(
    ctx: &Ctx,
    caller: &Caller,
    project: &str,
    channel: &str,
    req: PutSubscription,
) -> OpResult<Subscription> {
    let lang = language("language", req.language.as_deref())?;
    let mut kinds = Vec::new();
    for (i, w) in req.events.iter().enumerate() {
        let k = NoticeKind::parse(w).filter(|k| *k != NoticeKind::Test).ok_or_else(|| {
            OpError::invalid(
                &format!("events[{i}]"),
                format!(
                    "unknown event {:?}; one of {}",
                    w.chars().take(64).collect::<String>(),
                    NoticeKind::subscribable()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    if kinds.is_empty() {
        return Err(OpError::invalid("events", "name at least one event"));
    }
    kinds.sort();
    let csv = kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(",");
    let mut tx = ctx.store.begin().await?;
    let p = managed_project(&mut tx, caller, project).await?;
    let ch = usable_channel(&mut tx, channel, p.id).await?;
    notifications::put_subscription(&mut tx, p.id, ch.id, &csv, lang.as_str(), &caller.user.username).await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "notification_subscription.put",
        "project",
        &p.name,
        json!({"channel": ch.name, "events": kinds, "language": lang.as_str()}),
    )
    .await?;
    let saved = notifications::subscriptions_of(&mut tx, p.id)
        .await?
        .into_iter()
        .find(|s| s.channel_id == ch.id)
        .ok_or_else(|| OpError::internal("the subscription just written is missing"))?;
    tx.commit().await?;
    Ok(saved)
}

/// Ends a project's subscription of `channel` (its operators).
pub async fn delete_subscription(ctx: &Ctx, caller: &Caller, project: &str, channel: &str) -> OpResult<()> {
    let mut tx = ctx.store.begin().await?;
    let p = managed_project(&mut tx, caller, project).await?;
    let ch = usable_channel(&mut tx, channel, p.id).await?;
    if !notifications::delete_subscription(&mut tx, p.id, ch.id).await? {
        return Err(OpError::not_found("subscription", format!("{project}/{channel}")));
    }
    audit::record(
        &mut tx,
        &caller.origin(),
        "notification_subscription.delete",
        "project",
        &p.name,
        json!({"channel": ch.name}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
