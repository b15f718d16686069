//! Telling a project's subscribers what happened (issue 12 item 3). The
//! places where a build or deploy ends, a deploy waits for approval or rolls
//! back, a hold is placed or overridden, or glass is broken call
//! [`announce`] inside the transaction of that change: for each of the
//! project's subscriptions to the event it records a delivery (in the
//! subscription's language) and queues its first attempt as a job
//! (`jobs::notify`). Nothing is sent here, so a slow or failing receiver
//! never holds up the change; if the change rolls back, so do its notices.

use prism_domain::ReleaseId;
use prism_notify::{Notice, NoticeKind};
use prism_store::builds::Build;
use prism_store::deploys::Deploy;
use prism_store::{notifications, projects, AnyConnection};

/// Reasons longer than this are cut before they are stored (messages cut
/// them further).
const MAX_REASON: usize = 2000;

/// One event, with what a reader needs to act on it.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub kind: NoticeKind,
    pub project_id: i64,
    pub application: &'a str,
    pub release: ReleaseId,
    pub environment: Option<&'a str>,
    /// Who did it (a username, or `system:...`).
    pub actor: &'a str,
    pub reason: Option<&'a str>,
    /// The console page, relative (`/deploys/7`); the delivery makes it
    /// absolute with the server's public URL.
    pub link: String,
}

impl<'a> Event<'a> {
    /// About a deploy; the link is its page.
    pub fn deploy(kind: NoticeKind, d: &'a Deploy, actor: &'a str, reason: Option<&'a str>) -> Self {
        Event {
            kind,
            project_id: d.project_id,
            application: &d.application,
            release: d.release,
            environment: Some(&d.environment),
            actor,
            reason,
            link: format!("/deploys/{}", d.id),
        }
    }

    /// About a build; the link is its page, the actor who started it.
    pub fn build(kind: NoticeKind, b: &'a Build, reason: Option<&'a str>) -> Self {
        Event {
            kind,
            project_id: b.project_id,
            application: &b.application,
            release: b.release,
            environment: None,
            actor: &b.requested_by,
            reason,
            link: format!("/builds/{}", b.id),
        }
    }
}

/// Records a delivery of `e` to every channel the event's project
/// subscribes to it, and queues their first attempts; returns how many.
pub async fn announce(c: &mut AnyConnection, e: Event<'_>) -> prism_store::Result<usize> {
    let subs = notifications::subscribers(c, e.project_id, e.kind.as_str()).await?;
    if subs.is_empty() {
        return Ok(0);
    }
    let project = projects::get(c, e.project_id).await?.name;
    let notice = Notice {
        kind: e.kind,
        project: project.clone(),
        application: e.application.to_owned(),
        release: e.release.to_string(),
        environment: e.environment.map(str::to_owned),
        actor: e.actor.to_owned(),
        reason: e
            .reason
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(|r| r.chars().take(MAX_REASON).collect()),
        link: e.link,
    };
    let body = serde_json::to_string(&notice).expect("notices serialise");
    for s in &subs {
        let uid = uuid::Uuid::new_v4().to_string();
        let id = notifications::create_delivery(
            c,
            notifications::NewDelivery {
                uid: &uid,
                channel_id: s.channel_id,
                project: Some(&project),
                event: e.kind.as_str(),
                lang: &s.lang,
                notice: &body,
            },
        )
        .await?;
        crate::jobs::notify::enqueue(c, id, 1, None).await?;
    }
    Ok(subs.len())
}
