//! Releases: created by developers from a git ref (and built at once when
//! asked), listed and read by the project's members, and moved through their
//! state machine one action at a time (`transitions`).

use prism_api::releases::{ActRequest, CreateRelease, CreatedRelease, ReleasePage};
use prism_domain::release::Action;
use prism_domain::{GitRef, ReleaseId};
use prism_store::releases::{self, BuildInfo, Release, ReleaseFilter, Transition};
use prism_store::{apps, audit, environments};
use serde::Deserialize;
use serde_json::json;

use super::transitions::{self, Move};
use super::{access, referenced, Ctx, OpError, OpResult};
use crate::auth::Caller;
use crate::wire::ToApi;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
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

pub async fn list(ctx: &Ctx, caller: &Caller, q: ReleaseQuery) -> OpResult<ReleasePage> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(OpError::invalid("limit", "must be between 1 and 500"));
    }
    if let Some(s) = &q.state {
        if !prism_domain::ReleaseState::KINDS.contains(&s.as_str()) {
            return Err(OpError::invalid(
                "state",
                format!(
                    "unknown state {s:?}; one of {}",
                    prism_domain::ReleaseState::KINDS.join(", ")
                ),
            ));
        }
    }
    let before = q.before.as_deref().map(|b| ReleaseId::parse("before", b)).transpose()?;
    let mut c = ctx.store.conn().await?;
    let app_id = match &q.application {
        Some(a) => Some(access::application(&mut c, caller, a).await?.0.id),
        None => None,
    };
    let project_id = match &q.project {
        Some(p) => Some(access::project(&mut c, caller, p).await?.id),
        None => None,
    };
    let filter = ReleaseFilter {
        visible_to: access::visibility(caller),
        app_id,
        project_id,
        state: q.state.clone(),
        before: before.map(|b| b.seq()),
        limit,
        ..Default::default()
    };
    let items = releases::list(&mut c, &filter).await?;
    let next = (items.len() as i64 == limit)
        .then(|| items.last().map(|r| r.id.to_string()))
        .flatten();
    Ok(ReleasePage {
        items: items.to_api(),
        next,
    })
}

pub async fn create(ctx: &Ctx, caller: &Caller, req: CreateRelease) -> OpResult<CreatedRelease> {
    let git_ref = GitRef::parse("git_ref", &req.git_ref)?;
    let note = req.change_note.trim();
    if note.is_empty() || note.chars().count() > 10_000 {
        return Err(OpError::invalid("change_note", "must be 1 to 10000 characters"));
    }
    let mut tx = ctx.store.begin().await?;
    crate::idempotency::claim(&mut tx, caller).await?;
    let app = referenced("application", apps::by_name(&mut tx, &req.application).await)?;
    let roles = access::roles_in(&mut tx, caller, app.project_id).await?;
    if !roles.is_member() {
        return Err(OpError::invalid(
            "application",
            format!("no application named {:?}", req.application),
        ));
    }
    if !access::may_create_release(roles) {
        return Err(OpError::forbidden(
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
        Some(super::builds::start_in(&mut tx, ctx, caller, rel.id).await?)
    } else {
        None
    };
    let rel = releases::get(&mut tx, rel.id).await?;
    let created = CreatedRelease {
        release: rel.to_api(),
        build: build.to_api(),
    };
    crate::idempotency::complete(&mut tx, caller, crate::idempotency::Answer::Created, &created).await?;
    tx.commit().await?;
    if created.build.is_some() {
        ctx.job_wakeup.notify_one();
    }
    Ok(created)
}

pub async fn get(ctx: &Ctx, caller: &Caller, id: ReleaseId) -> OpResult<Release> {
    Ok(access::release(&mut *ctx.store.conn().await?, caller, id).await?.0)
}

pub async fn history(ctx: &Ctx, caller: &Caller, id: ReleaseId) -> OpResult<Vec<Transition>> {
    let mut c = ctx.store.conn().await?;
    access::release(&mut c, caller, id).await?;
    Ok(releases::history(&mut c, id).await?)
}

fn check_build_info(req: &ActRequest) -> OpResult<()> {
    if let Some(sha) = &req.commit_sha {
        if !(7..=64).contains(&sha.len()) || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(OpError::invalid("commit_sha", "must be 7 to 64 hex digits"));
        }
    }
    if let Some(d) = &req.image_digest {
        let ok = d
            .strip_prefix("sha256:")
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        if !ok {
            return Err(OpError::invalid(
                "image_digest",
                "must be sha256: followed by 64 lowercase hex digits",
            ));
        }
    }
    if let Some(i) = &req.image_ref {
        if i.is_empty() || i.len() > 512 || i.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(OpError::invalid(
                "image_ref",
                "must be an image reference without spaces",
            ));
        }
    }
    Ok(())
}

/// One step of the release state machine (`promote`, `pass`, `close`, ...),
/// by its name as the API and the console send it.
pub async fn act(ctx: &Ctx, caller: &Caller, id: ReleaseId, action: &str, req: ActRequest) -> OpResult<Release> {
    if req.note.len() > 10_000 {
        return Err(OpError::invalid("note", "must be at most 10000 characters"));
    }
    check_build_info(&req)?;
    let env_id = match &req.environment {
        Some(name) => Some(
            referenced(
                "environment",
                environments::by_name(&mut *ctx.store.conn().await?, name).await,
            )?
            .id,
        ),
        None => None,
    };
    let need_env = || env_id.ok_or_else(|| OpError::invalid("environment", format!("{action} needs an environment")));
    let parsed = match action {
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
        other => return Err(OpError::invalid("action", format!("unknown action {other:?}"))),
    };
    if req.override_reason.is_some() && !matches!(parsed, Action::Promote { .. }) {
        return Err(OpError::invalid(
            "override_reason",
            "only a promotion can override a hold",
        ));
    }
    let has_info = req.commit_sha.is_some() || req.image_ref.is_some() || req.image_digest.is_some();
    if has_info && parsed != Action::BuildSucceeded {
        return Err(OpError::invalid("commit_sha", "build results go with build_succeeded"));
    }
    let build_info = has_info.then_some(BuildInfo {
        commit_sha: req.commit_sha.as_deref(),
        image_ref: req.image_ref.as_deref(),
        image_digest: req.image_digest.as_deref(),
    });
    transitions::transition(
        &ctx.store,
        caller,
        id,
        Move {
            action: parsed,
            note: &req.note,
            build_info,
        },
    )
    .await
}
