//! The build job: turns a release into an image, one persisted stage at a time.
//!
//! ```text
//! queued -> checkout -> building -> pushing -> succeeded
//!                \-----------\----------\----> failed | cancelled
//! ```
//!
//! Each stage is written before its work starts. A build whose server died
//! is started again from a fresh workspace by the job's next attempt (the
//! checkout resolves the same commit, the layer is byte-for-byte the same and
//! pushing a blob or manifest twice is a no-op), or failed with the reason by
//! the maintenance sweep once no attempt is left. Nothing is tagged with the
//! release id until the manifest push, the last step.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prism_builder::{
    BuildFailure, BuildStep, CancellationToken, Executor, LogSink, SecretMasker, TailBuffer, TeeSink, WorkspaceRoot,
};
use prism_domain::release::Action;
use prism_domain::{BuildEvent, BuildFailure as Kind, BuildState};
use prism_image::{ConfigChanges, ImageReference, LayerSpec};
use prism_jobs::{Job, Quarantine, TaskGuard};
use prism_store::builds::{self, Build, Pushed};
use prism_store::releases::BuildInfo;
use prism_store::{audit, base_images, credentials, releases};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Cancel, JobError};
use crate::ops::transitions::{transition_in, Move, Who};
use crate::services::build_config::{self, ResolvedBuild};
use crate::services::build_log::BuildLog;
use crate::services::notices::{announce, Event};
use crate::state::AppState;
use prism_notify::NoticeKind;

pub const BUILD: &str = BuildJob::KIND;

/// The job that runs one build (CPU-bound: compilers, compression).
#[derive(Debug, Serialize, Deserialize)]
pub struct BuildJob {
    pub build_id: i64,
}

impl Job for BuildJob {
    const KIND: &'static str = "build";
    const MAX_ATTEMPTS: i64 = 2;
    const CPU_BOUND: bool = true;
    type Context = AppState;

    fn dedup_key(&self) -> Option<String> {
        Some(format!("build:{}", self.build_id))
    }

    async fn run(&self, ctx: &AppState, cancel: Cancel) -> Result<(), JobError> {
        run(ctx, self.build_id, cancel).await
    }

    async fn quarantined(&self, ctx: &AppState, q: &Quarantine) -> Result<(), JobError> {
        let f = Failure::new(
            Kind::Crashed,
            format!(
                "{}; its log: /api/v1/builds/{}/log",
                q.describe().replacen("during it", "during this build", 1),
                self.build_id
            ),
        );
        fail(ctx, self.build_id, &f).await
    }
}

/// Enqueues the job that runs build `id` (deduplicated: one job per build).
pub async fn enqueue(c: &mut prism_store::AnyConnection, id: i64) -> prism_store::Result<()> {
    prism_jobs::enqueue(c, &BuildJob { build_id: id }).await?;
    Ok(())
}

/// Why a build failed: a stable kind for the record and a message for people.
#[derive(Debug)]
pub struct Failure {
    pub kind: Kind,
    pub message: String,
}

impl Failure {
    pub(crate) fn new(kind: Kind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
        }
    }
}

impl From<BuildFailure> for Failure {
    fn from(f: BuildFailure) -> Self {
        let kind = match f.kind() {
            prism_builder::FailureKind::RefNotFound => Kind::RefNotFound,
            prism_builder::FailureKind::AuthRefused => Kind::AuthRefused,
            prism_builder::FailureKind::Checkout => Kind::Checkout,
            prism_builder::FailureKind::Build => Kind::Build,
            prism_builder::FailureKind::Timeout => Kind::Timeout,
            prism_builder::FailureKind::Cancelled => Kind::Cancelled,
        };
        Failure::new(kind, f.to_string())
    }
}

impl From<prism_store::StoreError> for Failure {
    fn from(e: prism_store::StoreError) -> Self {
        Failure::new(Kind::Internal, e.to_string())
    }
}

async fn run(state: &AppState, id: i64, cancel: Cancel) -> Result<(), JobError> {
    let b = builds::get(&mut *state.store.conn().await?, id).await?;
    if b.state.is_final() {
        return Ok(());
    }
    let resolved: ResolvedBuild =
        serde_json::from_value(b.settings.clone()).map_err(|e| JobError::Payload(format!("build settings: {e}")))?;
    // A build on a Kubernetes runner uses no CPU here: this instance's
    // CPU-bound slot goes back at once, so builds on the cluster are bounded
    // by the runner's limit, not by this machine's cores.
    if matches!(super::build_kube::runner_for(state, &b, &resolved).await, Ok(Some(_))) {
        cancel.release_cpu_slot();
    }
    let masker = Arc::new(SecretMasker::new());
    let (log, writer) = BuildLog::start(state.store.clone(), id, masker.clone()).await?;
    if b.state != BuildState::Queued {
        log.system(&format!(
            "[prism] the previous attempt stopped during {}; starting again from a fresh workspace",
            b.state
        ));
        builds::restart(&mut *state.store.conn().await?, id).await?;
    }

    // One token stops the running step: a person's cancel (seen in the store)
    // or this job's own interruption (shutdown, lost lease).
    let token = CancellationToken::new();
    let by_user = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (store, token, by_user, cancel) = (state.store.clone(), token.clone(), by_user.clone(), cancel.clone());
        // Held by a guard: it stops however this function ends, panics included.
        TaskGuard::spawn(async move {
            loop {
                if cancel.is_cancelled() {
                    token.cancel();
                    return;
                }
                if let Ok(mut c) = store.conn().await {
                    if builds::cancel_requested(&mut c, id).await.unwrap_or(false) {
                        by_user.store(true, Ordering::SeqCst);
                        token.cancel();
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };
    let root = WorkspaceRoot::new(&state.settings.build.work_dir);
    let ws_name = format!("build-{id}");
    let outcome = match &root {
        Ok(root) => {
            let work = pipeline(state, &b, &resolved, root, &ws_name, &log, &masker, token.clone());
            super::leftovers::owned_by(cancel.job_id(), cancel.attempt(), id, work).await
        }
        Err(e) => Err(Failure::new(Kind::Internal, format!("build directory: {e}"))),
    };
    drop(watcher);
    if let Ok(root) = &root {
        if let Err(e) = root.remove(&ws_name) {
            tracing::warn!(build = id, error = %e, "could not remove the build workspace");
        }
    }
    let user_cancelled = by_user.load(Ordering::SeqCst);
    if outcome.is_err() && token.is_cancelled() && !user_cancelled {
        log.system("[prism] interrupted (server shutting down); the build will start again");
        writer.finish().await;
        return Err(JobError::Interrupted);
    }
    match outcome {
        Ok(pushed) => {
            log.system(&format!(
                "[prism] pushed {} ({}), {} bytes uploaded",
                pushed.image_ref, pushed.image_digest, pushed.bytes_uploaded
            ));
            writer.finish().await;
            succeed(state, &b, pushed).await
        }
        Err(mut f) => {
            if user_cancelled {
                f = Failure::new(Kind::Cancelled, "cancelled by a user");
            }
            log.system(&format!(
                "[prism] build {}: {}",
                if f.kind == Kind::Cancelled {
                    "cancelled"
                } else {
                    "failed"
                },
                f.message
            ));
            writer.finish().await;
            fail(state, id, &f).await
        }
    }
}

pub(super) struct Outcome {
    pub(super) commit: String,
    pub(super) image_ref: String,
    pub(super) image_digest: String,
    pub(super) layer_digest: String,
    pub(super) base_digest: Option<String>,
    pub(super) bytes_uploaded: u64,
}

#[allow(clippy::too_many_arguments)]
async fn pipeline(
    state: &AppState,
    b: &Build,
    r: &ResolvedBuild,
    root: &WorkspaceRoot,
    ws_name: &str,
    log: &Arc<BuildLog>,
    masker: &SecretMasker,
    token: CancellationToken,
) -> Result<Outcome, Failure> {
    let deadline = Instant::now() + Duration::from_secs(r.timeout_seconds);
    let rel = releases::get(&mut *state.store.conn().await?, b.release).await?;
    // A Kubernetes runner runs the whole pipeline as a Job on its cluster.
    if let Some(runner) = super::build_kube::runner_for(state, b, r).await? {
        return super::build_kube::pipeline(state, b, r, &rel.git_ref, &runner, log, masker, token).await;
    }

    // checkout
    stage(state, b.id, BuildState::Queued, BuildEvent::Start).await?;
    let creds = git_credentials(state, b.project_id, r, masker).await?;
    let ws = root
        .create(ws_name)
        .map_err(|e| Failure::new(Kind::Internal, format!("workspace: {e}")))?;
    let src = ws.path().join("src");
    log.system(&format!("[prism] checkout {} at {}", r.git_url, rel.git_ref));
    let guard = crate::services::address_policy::guard(&mut *state.store.conn().await?).await?;
    let checkout = prism_builder::checkout_guarded(&r.git_url, &rel.git_ref, &src, creds.as_ref(), &guard);
    let commit = tokio::select! {
        res = checkout => res.map_err(|e| Failure::from(BuildFailure::Checkout(e)))?,
        _ = token.cancelled() => return Err(Failure::new(Kind::Cancelled, "cancelled during checkout")),
        _ = tokio::time::sleep_until(deadline.into()) => {
            return Err(Failure::new(Kind::Timeout, format!("timed out after {}s during checkout", r.timeout_seconds)))
        }
    };
    log.system(&format!("[prism] commit {}", commit.as_str()));
    builds::set_commit(&mut *state.store.conn().await?, b.id, commit.as_str()).await?;
    // The image gets the files, not the repository's history.
    let _ = std::fs::remove_dir_all(src.join(".git"));
    let workdir = match &r.workdir {
        Some(w) => src.join(w),
        None => src.clone(),
    };
    if !workdir.is_dir() {
        return Err(Failure::new(
            Kind::Config,
            format!(
                "build_settings.workdir {:?} is not a directory of the checkout",
                r.workdir.as_deref().unwrap_or(".")
            ),
        ));
    }

    // build
    stage(state, b.id, BuildState::Checkout, BuildEvent::CheckedOut).await?;
    if r.build_command.trim().is_empty() {
        log.system("[prism] no build command: packaging the checkout as it is");
    } else {
        let runner = executor_for(state, b, r, masker, ws.path()).await?;
        let mut env: BTreeMap<String, String> = r.build_env.clone();
        env.insert("PRISM_RELEASE".into(), b.release.to_string());
        env.insert("PRISM_APPLICATION".into(), b.application.clone());
        env.insert("PRISM_COMMIT".into(), commit.as_str().to_string());
        env.insert("PRISM_GIT_URL".into(), r.git_url.clone());
        env.insert("PRISM_GIT_REF".into(), rel.git_ref.clone());
        // Tool caches (npm, pip, maven) go to the application's dependency
        // cache (local runners) or beside the checkout (Jenkins), never into the artifacts.
        match &runner.cache_dir {
            Some(dir) => super::contained::cache_env(&mut env, dir),
            None => {
                let dir = ws.path().join("cache");
                let _ = std::fs::create_dir_all(&dir);
                env.insert("PRISM_CACHE_DIR".into(), dir.display().to_string());
            }
        }
        if let Some((image, digest)) = &runner.builder {
            log.system(&format!("[prism] builder image {image} @ {digest}"));
            builds::set_builder(&mut *state.store.conn().await?, b.id, image, digest).await?;
        } else if runner.unsandboxed {
            log.system("[prism] unsandboxed runner: the build command runs on Prism's host as Prism's own user");
        }
        let executor = runner.executor;
        let step = BuildStep {
            name: "build".into(),
            command: r.build_command.clone(),
            workdir: workdir.clone(),
            env,
            timeout: deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_secs(1)),
        };
        log.system(&format!("[prism] {} executor: {}", executor.name(), r.build_command));
        let tail = Arc::new(TailBuffer::new(20));
        let sink: Arc<dyn LogSink> = Arc::new(TeeSink::new(vec![log.clone(), tail.clone()]));
        let outcome = executor
            .run(step.clone(), sink, token.clone())
            .await
            .map_err(|e| Failure::new(Kind::Build, format!("build step could not run: {e}")))?;
        if let Some(f) = BuildFailure::from_outcome(&step, outcome, masked_tail(&tail, masker)) {
            return Err(f.into());
        }
    }

    // package and push
    stage(state, b.id, BuildState::Building, BuildEvent::Built).await?;
    let paths = expand_artifacts(&workdir, &r.artifact_paths)?;
    log.system(&format!("[prism] packaging {} into {}", paths.join(", "), r.image_dir));
    let mut spec = LayerSpec::new(workdir.clone(), paths, &r.image_dir);
    spec.compression = crate::services::build_config::layer_compression(r.layer_compression);
    let layer = tokio::task::spawn_blocking(move || prism_image::build_layer(&spec))
        .await
        .map_err(|e| Failure::new(Kind::Internal, e.to_string()))?
        .map_err(|e| Failure::new(Kind::Artifact, e.to_string()))?;
    log.system(&format!("[prism] layer {} ({} bytes)", layer.digest, layer.size));

    let mut c = state.store.conn().await?;
    let base = base_images::by_name(&mut c, &r.base_image)
        .await
        .map_err(|e| Failure::new(Kind::BaseNotFound, e.to_string()))?;
    let base_registry = match base.registry_id {
        Some(id) => Some(credentials::registry(&mut c, id).await?),
        None => None,
    };
    // Checked again at build time: the scope may have changed since the request.
    let target_registry = credentials::registry_for_project(&mut c, &r.registry, b.project_id)
        .await
        .map_err(|e| Failure::new(Kind::Config, e.to_string()))?;
    drop(c);
    let Some(base_digest) = base.digest.clone() else {
        return Err(Failure::new(
            Kind::BaseNotFound,
            format!("base image {} has not been built yet", base.name),
        ));
    };
    let base_host = base_registry
        .as_ref()
        .map(|r| r.host.as_str())
        .unwrap_or(&target_registry.host);
    // Pinned to the digest Prism recorded, so the lineage names exactly what the image is built on.
    let base_ref = ImageReference::parse(&format!("{base_host}/{}@{base_digest}", base.repository))
        .map_err(|e| Failure::new(Kind::Config, format!("base image {}: {e}", base.name)))?;
    let target = ImageReference::parse(&format!("{}/{}:{}", target_registry.host, r.repository, b.release))
        .map_err(|e| Failure::new(Kind::Config, format!("build_settings.repository: {e}")))?;
    let mut changes = ConfigChanges {
        env: r.image_env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        workdir: Some(r.image_dir.clone()),
        cmd: (!r.cmd.is_empty()).then(|| r.cmd.clone()),
        entrypoint: (!r.entrypoint.is_empty()).then(|| r.entrypoint.clone()),
        history_comment: format!("prism build of {} {} at {}", b.application, b.release, commit.as_str()),
        ..ConfigChanges::default()
    }
    .with_release(&b.release.to_string(), commit.as_str(), &b.application);
    changes
        .labels
        .insert("io.prism.base".into(), format!("{}@{base_digest}", base.name));
    let registries = build_config::registries(state).await?;
    log.system(&format!("[prism] pushing {target} on {base_ref}"));
    let push = prism_image::append_layer(&registries, &base_ref, &layer, &changes, &target);
    let pushed = tokio::select! {
        res = push => res.map_err(|e| match e {
            prism_image::ImageError::BaseNotFound { .. } => Failure::new(Kind::BaseNotFound, e.to_string()),
            other => Failure::new(Kind::Push, other.to_string()),
        })?,
        _ = token.cancelled() => return Err(Failure::new(Kind::Cancelled, "cancelled during push")),
    };
    Ok(Outcome {
        commit: commit.as_str().to_string(),
        image_ref: target.to_string(),
        image_digest: pushed.manifest_digest,
        layer_digest: layer.digest,
        base_digest: pushed.base_digest.or(Some(base_digest)),
        bytes_uploaded: pushed.bytes_uploaded,
    })
}

pub(super) async fn stage(state: &AppState, id: i64, from: BuildState, event: BuildEvent) -> Result<(), Failure> {
    if builds::step(&mut *state.store.conn().await?, id, from, event).await? {
        Ok(())
    } else {
        Err(Failure::new(
            Kind::Interrupted,
            format!("the build left {from} while this attempt ran"),
        ))
    }
}

fn masked_tail(tail: &TailBuffer, masker: &SecretMasker) -> Vec<prism_builder::LogLine> {
    tail.tail()
        .into_iter()
        .map(|mut l| {
            l.line = masker.mask(&l.line);
            l
        })
        .collect()
}

async fn git_credentials(
    state: &AppState,
    project_id: i64,
    r: &ResolvedBuild,
    masker: &SecretMasker,
) -> Result<Option<prism_builder::Credentials>, Failure> {
    let Some(name) = &r.git_credential else {
        return Ok(None);
    };
    let cred = credentials::git_credential_for_project(&mut *state.store.conn().await?, name, project_id)
        .await
        .map_err(|e| Failure::new(Kind::Config, format!("build_settings.git_credential: {e}")))?;
    // Bound to its host: the checkout offers it to that host only.
    let Some(host) = cred.host.clone() else {
        return Err(Failure::new(
            Kind::Config,
            format!("git credential {name} has no host; an admin must set the host it may be sent to"),
        ));
    };
    let password = unseal(state, &cred.password_enc)?;
    masker.register(&password);
    Ok(Some(
        prism_builder::Credentials::new(cred.username, password).for_host(host),
    ))
}

pub(super) fn unseal(state: &AppState, sealed: &[u8]) -> Result<String, Failure> {
    let plain = state
        .secrets
        .open(sealed)
        .map_err(|e| Failure::new(Kind::Internal, format!("cannot unseal a stored secret: {e}")))?;
    String::from_utf8(plain).map_err(|_| Failure::new(Kind::Internal, "a stored secret is not UTF-8"))
}

/// What runs a build's command, and where its dependency cache is as the command sees it.
struct Runner {
    executor: Box<dyn Executor>,
    /// None: a directory in the workspace (Jenkins).
    cache_dir: Option<String>,
    /// The builder image's name and digest (the contained local runner).
    builder: Option<(String, String)>,
    unsandboxed: bool,
}

async fn executor_for(
    state: &AppState,
    b: &Build,
    r: &ResolvedBuild,
    masker: &SecretMasker,
    workspace: &Path,
) -> Result<Runner, Failure> {
    if r.executor == prism_domain::build::LOCAL_EXECUTOR {
        let local = super::contained::local(state, b.app_id, r, workspace).await?;
        return Ok(Runner {
            unsandboxed: local.builder.is_none(),
            executor: local.executor,
            cache_dir: Some(local.cache_dir),
            builder: local.builder,
        });
    }
    let rec = credentials::executor_for_project(&mut *state.store.conn().await?, &r.executor, b.project_id)
        .await
        .map_err(|e| Failure::new(Kind::Config, format!("build_settings.executor: {e}")))?;
    let token = unseal(state, &rec.token_enc)?;
    masker.register(&token);
    if rec.kind != "jenkins" {
        return Err(Failure::new(
            Kind::Config,
            format!(
                "executor {} is of kind {:?}, which this server cannot run",
                rec.name, rec.kind
            ),
        ));
    }
    let guard = crate::services::address_policy::guard(&mut *state.store.conn().await?).await?;
    let mut config = prism_builder::JenkinsConfig::new(rec.url.clone(), rec.job.clone(), rec.username.clone(), token)
        .with_guard(guard);
    if let Some(ms) = std::env::var("PRISM_JENKINS_POLL_MS").ok().and_then(|v| v.parse().ok()) {
        config = config.with_poll_interval(Duration::from_millis(ms));
    }
    let executor = prism_builder::JenkinsExecutor::new(config)
        .map_err(|e| Failure::new(Kind::Config, format!("executor {}: {e}", rec.name)))?;
    Ok(Runner {
        executor: Box::new(executor),
        cache_dir: None,
        builder: None,
        unsandboxed: false,
    })
}

/// Expands `.` (the whole directory without `.git`) and a trailing `*`
/// pattern into paths; everything else is passed through to the layer
/// builder, which refuses paths that escape the directory.
pub fn expand_artifacts(dir: &Path, patterns: &[String]) -> Result<Vec<String>, Failure> {
    let mut out = Vec::new();
    for (i, p) in patterns.iter().enumerate() {
        let field = format!("build_settings.artifact_paths[{i}]");
        if p == "." || p == "./" {
            out.extend(list(dir, &field)?.into_iter().filter(|n| n != ".git"));
        } else {
            let (parent, last) = p.rsplit_once('/').unwrap_or(("", p.as_str()));
            let Some((prefix, suffix)) = last.split_once('*') else {
                out.push(p.clone());
                continue;
            };
            let base: PathBuf = if parent.is_empty() {
                dir.to_path_buf()
            } else {
                dir.join(parent)
            };
            let matched: Vec<String> = list(&base, &field)?
                .into_iter()
                .filter(|n| n.starts_with(prefix) && n.ends_with(suffix) && n.len() >= prefix.len() + suffix.len())
                .map(|n| if parent.is_empty() { n } else { format!("{parent}/{n}") })
                .collect();
            if matched.is_empty() {
                return Err(Failure::new(Kind::Artifact, format!("{field}: {p:?} matches nothing")));
            }
            out.extend(matched);
        }
    }
    if out.is_empty() {
        return Err(Failure::new(
            Kind::Artifact,
            "build_settings.artifact_paths: nothing to package",
        ));
    }
    Ok(out)
}

fn list(dir: &Path, field: &str) -> Result<Vec<String>, Failure> {
    // A directory named through a symlink that leaves the checkout is refused
    // later by the layer builder; listing it here reads only names.
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| Failure::new(Kind::Artifact, format!("{field}: {}: {e}", dir.display())))?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names)
}

impl Outcome {
    fn pushed(&self) -> Pushed<'_> {
        Pushed {
            image_ref: &self.image_ref,
            image_digest: &self.image_digest,
            layer_digest: &self.layer_digest,
            base_digest: self.base_digest.as_deref(),
            bytes_uploaded: self.bytes_uploaded as i64,
        }
    }
}

/// Records the image on the build and moves the release to built, in one
/// transaction. A release that moved on while it built (abandoned) keeps its
/// state; the build's record is kept all the same.
async fn succeed(state: &AppState, b: &Build, o: Outcome) -> Result<(), JobError> {
    let mut tx = state.store.begin().await?;
    let moved = transition_in(
        &mut tx,
        &Who::Engine("build"),
        b.release,
        Move {
            action: Action::BuildSucceeded,
            note: "",
            build_info: Some(BuildInfo {
                commit_sha: Some(&o.commit),
                image_ref: Some(&o.image_ref),
                image_digest: Some(&o.image_digest),
            }),
        },
    )
    .await;
    if let Err(e) = moved {
        tracing::warn!(build = b.id, error = %e, "release did not take the build result");
        drop(tx);
        tx = state.store.begin().await?;
    }
    if !builds::succeed(&mut tx, b.id, o.pushed()).await? {
        return Ok(()); // cancelled or failed meanwhile: the transaction is dropped
    }
    audit::record(
        &mut tx,
        &prism_store::audit::Origin::system("build"),
        "build.succeeded",
        "build",
        &b.id.to_string(),
        json!({"release": b.release, "image": o.image_ref, "digest": o.image_digest, "base_digest": o.base_digest}),
    )
    .await?;
    announce(&mut tx, Event::build(NoticeKind::BuildSucceeded, b, None)).await?;
    tx.commit().await?;
    Ok(())
}

/// Ends a build as failed (or cancelled) and moves its release to build_failed.
pub async fn fail(state: &AppState, id: i64, f: &Failure) -> Result<(), JobError> {
    let b = builds::get(&mut *state.store.conn().await?, id).await?;
    let release = b.release;
    let end = BuildState::Queued
        .next(BuildEvent::Fail(f.kind))
        .expect("an active build can fail");
    let mut tx = state.store.begin().await?;
    let moved = transition_in(
        &mut tx,
        &Who::Engine("build"),
        release,
        Move {
            action: Action::BuildFailed,
            note: &f.message.chars().take(2000).collect::<String>(),
            build_info: None,
        },
    )
    .await;
    if let Err(e) = moved {
        // The release moved on (abandoned): the build's own record still ends.
        tracing::warn!(build = id, error = %e, "release did not take the build failure");
        drop(tx);
        tx = state.store.begin().await?;
    }
    if !builds::finish_failed(&mut tx, id, f.kind, &f.message).await? {
        return Ok(()); // ended already: the transaction is dropped
    }
    audit::record(
        &mut tx,
        &prism_store::audit::Origin::system("build"),
        &format!("build.{end}"),
        "build",
        &id.to_string(),
        json!({"release": release, "kind": f.kind, "error": f.message}),
    )
    .await?;
    // A cancelled build is what someone asked for, not news.
    if f.kind != Kind::Cancelled {
        announce(&mut tx, Event::build(NoticeKind::BuildFailed, &b, Some(&f.message))).await?;
    }
    tx.commit().await?;
    Ok(())
}
