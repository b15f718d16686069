//! Builds on a Kubernetes build runner: the whole pipeline (checkout, build,
//! package and push) runs as one `batch/v1` Job on the runner's cluster;
//! this server only orchestrates it.
//!
//! ```text
//! pod: checkout (prism executor image, git credential)
//!   -> build (builder image by digest, no credential)
//!   -> package (prism executor image, registry credential)
//! ```
//!
//! Prism's own steps run Prism's own binary from the *executor image*
//! (built and pushed by this server from its own binary, see
//! `prism_image::executor_image`), never inside the builder image: a copied
//! binary would run with the builder image's dynamic loader and libraries, so
//! a hostile builder image could take over the step that holds the registry
//! credential. The credentials go into a per-build Secret whose keys are
//! handed to those two steps only (as environment variables), deleted as soon
//! as the build ends. The build step gets no credential, no service-account
//! token and nothing of this server's host.
//!
//! Prism's steps report through their termination message (the kubelet
//! keeps up to 4 KiB of `/dev/termination-log`): the checkout the commit, the
//! package step the digests it pushed. That needs no path from the pod back
//! to this server, and no token the build step could steal; the commit the
//! package step labelled the image with is checked against the one the
//! checkout reported, so a build step that rewrites it fails the build.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prism_builder::{CancellationToken, LogSink, SecretMasker, Stream};
use prism_domain::{BuildEvent, BuildFailure as Kind, BuildSettings, BuildState};
use prism_image::executor_image::{push_executor_image, ExecutorImage};
use prism_image::ImageReference;
use prism_kube::build_job::{
    self, BuildJobRunner, BuildJobSpec, JobOutcome, PodState, PodStep, RunnerOptions, RunnerSettings, StepResources,
};
use prism_store::builds::{Build, RunnerSlot};
use prism_store::{apps, base_images, builds, clusters, credentials};
use serde::{Deserialize, Serialize};

use super::build::{stage, unseal, Failure, Outcome};
use crate::services::build_config::ResolvedBuild;
use crate::services::build_log::BuildLog;
use crate::state::AppState;

/// The hidden subcommand of the `prism` binary that runs Prism's steps in the pod.
pub const STEP_COMMAND: &str = "__build-step";
/// Environment of the in-pod steps.
pub const CHECKOUT_ENV: &str = "PRISM_CHECKOUT";
pub const PACKAGE_ENV: &str = "PRISM_PACKAGE";
pub const REGISTRIES_ENV: &str = "PRISM_REGISTRIES";
pub const GIT_USERNAME_ENV: &str = "PRISM_GIT_USERNAME";
pub const GIT_PASSWORD_ENV: &str = "PRISM_GIT_PASSWORD";
/// Where things are in the pod's workspace.
pub const SOURCE_DIR: &str = "/workspace/src";
pub const COMMIT_FILE: &str = "/workspace/commit";
/// The dependency cache of a runner that keeps none: the build's own
/// workspace (npm and pip still find a writable cache, gone with the pod).
pub const CACHE_DIR: &str = "/workspace/cache";

/// What the checkout step does.
#[derive(Debug, Serialize, Deserialize)]
pub struct CheckoutPlan {
    pub git_url: String,
    pub git_ref: String,
    /// Sub-directory of the checkout the build runs in (must exist).
    pub workdir: Option<String>,
    /// The only `host[:port]` the git credential may be offered to.
    #[serde(default)]
    pub git_host: Option<String>,
}

/// What the checkout step reports.
#[derive(Debug, Serialize, Deserialize)]
pub struct CheckoutReport {
    pub commit: String,
}

/// What the package step does.
#[derive(Debug, Serialize, Deserialize)]
pub struct PackagePlan {
    /// The directory the artifacts are taken from (in the pod).
    pub workdir: String,
    pub artifact_paths: Vec<String>,
    pub image_dir: String,
    /// gzip from a server that predates the setting.
    #[serde(default)]
    pub layer_compression: prism_domain::build::LayerCompression,
    /// The base image, by digest.
    pub base: String,
    pub target: String,
    pub env: Vec<(String, String)>,
    pub labels: BTreeMap<String, String>,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub release: String,
    pub application: String,
    /// The server's address policy: the step connects where Prism would.
    #[serde(default)]
    pub address_rules: prism_domain::AddressRules,
}

/// A registry the package step reads from or pushes to (in the Secret).
#[derive(Debug, Serialize, Deserialize)]
pub struct RegistryAuth {
    pub host: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub insecure_http: bool,
    /// Token realm hosts that may receive the credentials (besides `host`).
    #[serde(default)]
    pub token_realm_hosts: Vec<String>,
}

/// What the package step reports.
#[derive(Debug, Serialize, Deserialize)]
pub struct PackageReport {
    pub commit: String,
    pub image_digest: String,
    pub layer_digest: String,
    pub layer_size: u64,
    pub base_digest: Option<String>,
    pub bytes_uploaded: u64,
}

/// The Kubernetes runner build `r` names, if it names one.
pub(super) async fn runner_for(
    state: &AppState,
    b: &Build,
    r: &ResolvedBuild,
) -> Result<Option<RunnerSettings>, Failure> {
    if r.executor == prism_domain::build::LOCAL_EXECUTOR {
        return Ok(None);
    }
    let project_id = b.project_id;
    let rec = match credentials::executor_for_project(&mut *state.store.conn().await?, &r.executor, project_id).await {
        Ok(rec) => rec,
        // The caller reports a missing executor as before.
        Err(_) => return Ok(None),
    };
    if rec.kind != crate::ops::executors::KUBERNETES {
        return Ok(None);
    }
    let value: serde_json::Value = serde_json::from_str(&rec.settings)
        .map_err(|e| Failure::new(Kind::Internal, format!("executor {}: stored settings: {e}", rec.name)))?;
    RunnerSettings::parse("kubernetes", &value)
        .map(Some)
        .map_err(|e| Failure::new(Kind::Config, format!("executor {}: {e}", rec.name)))
}

/// Runs build `b` as a Job on the runner's cluster and returns what it pushed.
#[allow(clippy::too_many_arguments)]
pub(super) async fn pipeline(
    state: &AppState,
    b: &Build,
    r: &ResolvedBuild,
    git_ref: &str,
    runner: &RunnerSettings,
    log: &Arc<BuildLog>,
    masker: &SecretMasker,
    token: CancellationToken,
) -> Result<Outcome, Failure> {
    let config = |m: String| Failure::new(Kind::Config, m);
    wait_for_slot(state, b, &r.executor, runner, log, &token).await?;
    let mut c = state.store.conn().await?;
    let cluster_rec = clusters::by_name(&mut c, &runner.cluster)
        .await
        .map_err(|e| config(format!("executor {}: {e}", r.executor)))?;
    let app = apps::by_name(&mut c, &b.application).await?;
    let settings = BuildSettings::parse("build_settings", &app.build_settings).map_err(|e| config(e.to_string()))?;
    // Checked again at build time: the scope may have changed since the request.
    let target_registry = credentials::registry_for_project(&mut c, &r.registry, b.project_id)
        .await
        .map_err(|e| config(e.to_string()))?;
    let image_by_digest = |img: &base_images::BaseImage, host: &str| -> Result<(String, String), Failure> {
        let Some(d) = img.digest.clone() else {
            return Err(Failure::new(
                Kind::BaseNotFound,
                format!("base image {} has not been built yet", img.name),
            ));
        };
        Ok((format!("{host}/{}@{d}", img.repository), d))
    };
    let base = base_images::by_name(&mut c, &r.base_image)
        .await
        .map_err(|e| Failure::new(Kind::BaseNotFound, e.to_string()))?;
    let base_registry = match base.registry_id {
        Some(id) => Some(credentials::registry(&mut c, id).await?),
        None => None,
    };
    let base_host = base_registry
        .as_ref()
        .map(|x| x.host.clone())
        .unwrap_or_else(|| target_registry.host.clone());
    let (base_ref, base_digest) = image_by_digest(&base, &base_host)?;
    // The toolchain the build command runs in: the builder image, else the base.
    let builder = match &settings.builder_image {
        Some(name) => {
            let img = base_images::by_name(&mut c, name)
                .await
                .map_err(|e| config(format!("build_settings.builder_image: {e}")))?;
            let host = match img.registry_id {
                Some(id) => credentials::registry(&mut c, id).await?.host,
                None => target_registry.host.clone(),
            };
            image_by_digest(&img, &host)?.0
        }
        None => base_ref.clone(),
    };
    let git_cred = match &r.git_credential {
        Some(name) => {
            let cred = credentials::git_credential_for_project(&mut c, name, b.project_id)
                .await
                .map_err(|e| config(format!("build_settings.git_credential: {e}")))?;
            // Bound to its host: the checkout step offers it to that host only.
            let Some(host) = cred.host.clone() else {
                return Err(config(format!(
                    "git credential {name} has no host; an admin must set the host it may be sent to"
                )));
            };
            Some((cred.username, unseal(state, &cred.password_enc)?, host))
        }
        None => None,
    };
    let mut auths = vec![];
    for reg in std::iter::once(&target_registry).chain(base_registry.as_ref()) {
        if auths.iter().any(|a: &RegistryAuth| a.host == reg.host) {
            continue;
        }
        let password = match &reg.password_enc {
            Some(p) => Some(unseal(state, p)?),
            None => None,
        };
        auths.push(RegistryAuth {
            host: reg.host.clone(),
            username: reg.username.clone(),
            password,
            insecure_http: reg.insecure_http != 0,
            token_realm_hosts: reg.token_realm_hosts(),
        });
    }
    drop(c);
    let cluster = crate::services::deploy_plan::cluster_client(state, cluster_rec)
        .await
        .map_err(|e| config(format!("executor {}: cluster {}: {e}", r.executor, runner.cluster)))?;
    let client = cluster.client();

    // Credentials: masked in every line, handed to Prism's steps only.
    let mut secret: BTreeMap<String, String> = BTreeMap::new();
    if let Some((user, password, _)) = &git_cred {
        masker.register(password);
        secret.insert("git-username".into(), user.clone());
        secret.insert("git-password".into(), password.clone());
    }
    for a in &auths {
        if let Some(p) = &a.password {
            masker.register(p);
        }
    }
    secret.insert(
        "registries".into(),
        serde_json::to_string(&auths).expect("registries serialize"),
    );

    log.system(&format!(
        "[prism] kubernetes runner {}: cluster {}, namespace {}",
        r.executor, runner.cluster, runner.namespace
    ));
    let registries = crate::services::build_config::registries(state).await?;
    let target_host = target_registry.host.clone();
    let (executor, binary) = executor_image(&registries, &target_host).await?;
    log.system(&format!("[prism] executor image {executor}"));

    let workdir = match &r.workdir {
        Some(w) => format!("{SOURCE_DIR}/{w}"),
        None => SOURCE_DIR.to_string(),
    };
    let checkout_plan = CheckoutPlan {
        git_url: r.git_url.clone(),
        git_ref: git_ref.to_string(),
        workdir: r.workdir.clone(),
        git_host: git_cred.as_ref().map(|(_, _, host)| host.clone()),
    };
    let target = ImageReference::parse(&format!("{target_host}/{}:{}", r.repository, b.release))
        .map_err(|e| config(format!("build_settings.repository: {e}")))?;
    let mut labels = BTreeMap::new();
    labels.insert("io.prism.base".to_string(), format!("{}@{base_digest}", base.name));
    let package_plan = PackagePlan {
        workdir: workdir.clone(),
        artifact_paths: r.artifact_paths.clone(),
        image_dir: r.image_dir.clone(),
        layer_compression: r.layer_compression,
        base: base_ref.clone(),
        target: target.to_string(),
        env: r.image_env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        labels,
        cmd: (!r.cmd.is_empty()).then(|| r.cmd.clone()),
        entrypoint: (!r.entrypoint.is_empty()).then(|| r.entrypoint.clone()),
        release: b.release.to_string(),
        application: b.application.clone(),
        address_rules: prism_store::address_policy::get(&mut *state.store.conn().await?).await?,
    };
    let prism_step = |name: &str, sub: &str, env: (&str, String), secret_env: Vec<(String, String)>| PodStep {
        name: name.into(),
        image: executor.clone(),
        command: vec![binary.clone(), STEP_COMMAND.into(), sub.into()],
        env: BTreeMap::from([(env.0.to_string(), env.1)]),
        secret_env,
        resources: StepResources::default(),
        workdir: build_job::spec::WORKSPACE.into(),
        mounts_cache: false,
    };
    let mut git_env = vec![];
    if git_cred.is_some() {
        git_env.push((GIT_USERNAME_ENV.to_string(), "git-username".to_string()));
        git_env.push((GIT_PASSWORD_ENV.to_string(), "git-password".to_string()));
    }
    let cache_claim = runner.cache_claim(&b.application);
    let mut steps = vec![prism_step(
        "checkout",
        "checkout",
        (CHECKOUT_ENV, serde_json::to_string(&checkout_plan).expect("plan")),
        git_env,
    )];
    if r.build_command.trim().is_empty() {
        log.system("[prism] no build command: packaging the checkout as it is");
    } else {
        let mut env = r.build_env.clone();
        env.insert("PRISM_RELEASE".into(), b.release.to_string());
        env.insert("PRISM_APPLICATION".into(), b.application.clone());
        env.insert("PRISM_GIT_URL".into(), r.git_url.clone());
        env.insert("PRISM_GIT_REF".into(), git_ref.to_string());
        let cache = if cache_claim.is_some() {
            build_job::spec::CACHE
        } else {
            CACHE_DIR
        };
        super::contained::cache_env(&mut env, cache);
        steps.push(PodStep {
            name: "build".into(),
            image: builder.clone(),
            command: vec!["/bin/sh".into(), "-c".into(), r.build_command.clone()],
            env,
            secret_env: vec![],
            resources: StepResources {
                cpu_request: runner.cpu_request.clone(),
                memory_request: runner.memory_request.clone(),
                cpu_limit: settings
                    .cpu_limit
                    .clone()
                    .or_else(|| runner.cpu_limit.clone())
                    .or_else(|| Some(prism_domain::build::DEFAULT_BUILD_CPU.into())),
                memory_limit: settings
                    .memory_limit
                    .clone()
                    .or_else(|| runner.memory_limit.clone())
                    .or_else(|| Some(prism_domain::build::DEFAULT_BUILD_MEMORY.into())),
            },
            workdir: workdir.clone(),
            mounts_cache: true,
        });
        log.system(&format!("[prism] build in {builder}: {}", r.build_command));
    }
    steps.push(prism_step(
        "package",
        "package",
        (PACKAGE_ENV, serde_json::to_string(&package_plan).expect("plan")),
        vec![(REGISTRIES_ENV.to_string(), "registries".to_string())],
    ));

    // A Job of an earlier attempt of this build (a crashed server) goes first.
    let _ = build_job::reap(&client, &runner.namespace, |id| id != b.id).await;
    let attempt = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let spec = BuildJobSpec {
        build_id: b.id,
        attempt,
        namespace: runner.namespace.clone(),
        instance: state.settings.instance_id.clone(),
        steps,
        workspace_size: runner.workspace_size(),
        deadline_seconds: r.timeout_seconds as i64,
        ttl_seconds_after_finished: runner.ttl_seconds(),
        node_selector: runner.node_selector.clone(),
        tolerations: runner.tolerations_json(),
        image_pull_secrets: runner.image_pull_secrets.clone(),
        cache_claim,
        host_network: runner.host_network,
    };
    let options = RunnerOptions {
        poll: Duration::from_millis(300),
        queue_timeout: Duration::from_secs(runner.queue_timeout_seconds()),
    };
    let job_runner = BuildJobRunner::new(client.clone(), options);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let sink = KubeLog {
        log: log.clone(),
        started: tx,
    };
    let run = {
        let (spec, secret, token, job_runner) = (&spec, &secret, &token, &job_runner);
        async move {
            let out = job_runner.run(spec, secret, &sink, token).await;
            drop(sink);
            out
        }
    };
    // The build leaves the queue when its first step starts, and moves on with its steps.
    let stages = async {
        let mut at = BuildState::Queued;
        while let Some(step) = rx.recv().await {
            let moves: &[(BuildState, BuildEvent)] = match step.as_str() {
                "checkout" => &[(BuildState::Queued, BuildEvent::Start)],
                "build" => &[(BuildState::Checkout, BuildEvent::CheckedOut)],
                _ => &[
                    (BuildState::Checkout, BuildEvent::CheckedOut),
                    (BuildState::Building, BuildEvent::Built),
                ],
            };
            for (from, event) in moves {
                if *from == at {
                    stage(state, b.id, *from, *event).await?;
                    at = from.next(*event).unwrap_or(at);
                }
            }
        }
        Ok::<BuildState, Failure>(at)
    };
    let (outcome, staged) = tokio::join!(run, stages);
    let outcome = outcome.map_err(|e| config(format!("kubernetes runner {}: {e}", r.executor)))?;
    staged?;
    let name = spec.name();
    let messages = build_job::step_messages(&client, &runner.namespace, &name)
        .await
        .unwrap_or_default();
    let state_now = match outcome {
        JobOutcome::Cancelled => return Err(Failure::new(Kind::Cancelled, "cancelled; the build Job was deleted")),
        JobOutcome::Unschedulable { reason } => {
            return Err(Failure::new(
                Kind::Timeout,
                format!(
                    "unschedulable: no node took the build within {}s{}",
                    runner.queue_timeout_seconds(),
                    reason.map(|r| format!(": {r}")).unwrap_or_default()
                ),
            ))
        }
        JobOutcome::Ended(s) => s,
    };
    if state_now != PodState::Succeeded {
        return Err(judged_failure(state_now, r.timeout_seconds));
    }
    let checkout: CheckoutReport = report(&messages, "checkout")?;
    let package: PackageReport = report(&messages, "package")?;
    if package.commit != checkout.commit {
        return Err(Failure::new(
            Kind::Build,
            format!(
                "the image was labelled with commit {} but {} was checked out: the build step changed {COMMIT_FILE}",
                package.commit, checkout.commit
            ),
        ));
    }
    builds::set_commit(&mut *state.store.conn().await?, b.id, &checkout.commit).await?;
    Ok(Outcome {
        commit: checkout.commit,
        image_ref: target.to_string(),
        image_digest: package.image_digest,
        layer_digest: package.layer_digest,
        base_digest: package.base_digest.or(Some(base_digest)),
        bytes_uploaded: package.bytes_uploaded,
    })
}

/// Waits in Prism's queue (not as a Pending pod) until the runner has a
/// free slot for this build; its place in the runner's queue goes to the log.
async fn wait_for_slot(
    state: &AppState,
    b: &Build,
    executor: &str,
    runner: &RunnerSettings,
    log: &Arc<BuildLog>,
    token: &CancellationToken,
) -> Result<(), Failure> {
    let limit = runner.max_concurrent_builds.map(i64::from);
    let mut said = None;
    loop {
        let mut tx = state.store.begin().await?;
        let slot = builds::take_runner_slot(&mut tx, b.id, executor, limit).await?;
        tx.commit().await?;
        match slot {
            RunnerSlot::Taken => {
                if said.is_some() {
                    log.system(&format!("[prism] runner {executor} has a free slot: starting"));
                }
                return Ok(());
            }
            RunnerSlot::Wait { in_use, place } => {
                if said != Some((in_use, place)) {
                    log.system(&format!(
                        "[prism] runner {executor} runs {in_use} of at most {} builds: waiting, place {place} in its queue",
                        limit.unwrap_or(in_use)
                    ));
                    said = Some((in_use, place));
                }
            }
        }
        tokio::select! {
            _ = token.cancelled() => {
                return Err(Failure::new(Kind::Cancelled, "cancelled while waiting for a runner slot"));
            }
            _ = tokio::time::sleep(SLOT_POLL) => {}
        }
    }
}

/// How often a build waiting for a runner slot asks again.
const SLOT_POLL: Duration = Duration::from_millis(500);

fn report<T: serde::de::DeserializeOwned>(messages: &BTreeMap<String, String>, step: &str) -> Result<T, Failure> {
    let m = messages
        .get(step)
        .ok_or_else(|| Failure::new(Kind::Internal, format!("step {step} ended without a report")))?;
    serde_json::from_str(m).map_err(|e| Failure::new(Kind::Internal, format!("step {step} reported {m:?}: {e}")))
}

/// Why a build Job failed, in the build's terms.
fn judged_failure(s: PodState, timeout: u64) -> Failure {
    match s {
        PodState::PullFailed { step, image, message } => Failure::new(
            if step == "build" { Kind::Config } else { Kind::Internal },
            format!("step {step}: image {image} cannot be pulled: {message}"),
        ),
        PodState::OutOfMemory { step, limit } => Failure::new(
            Kind::Build,
            format!(
                "step {step} was OOMKilled: it used more than its memory limit{}",
                limit.map(|l| format!(" of {l}")).unwrap_or_default()
            ),
        ),
        PodState::DeadlineExceeded => Failure::new(Kind::Timeout, format!("timed out after {timeout}s")),
        PodState::StepFailed {
            step,
            exit_code,
            message,
        } => {
            let kind = match step.as_str() {
                "checkout" => Kind::Checkout,
                "package" => Kind::Push,
                _ => Kind::Build,
            };
            let tail = message
                .map(|m| format!(": {}", m.trim().lines().last().unwrap_or_default()))
                .unwrap_or_default();
            // 137 is SIGKILL. containerd sometimes handles the exit before its OOM event,
            // and the kubelet then says "Error" for what was an out-of-memory kill.
            let killed = if exit_code == 137 {
                " (killed by SIGKILL: most often the memory limit, else a kill from outside)"
            } else {
                ""
            };
            Failure::new(kind, format!("step {step} exited with {exit_code}{killed}{tail}"))
        }
        PodState::Failed { message } => Failure::new(Kind::Build, format!("the build Job failed: {message}")),
        other => Failure::new(Kind::Internal, format!("the build Job ended as {other:?}")),
    }
}

/// The runner's log sink: each step's lines into the build log (masked
/// there), and the steps as they start.
struct KubeLog {
    log: Arc<BuildLog>,
    started: tokio::sync::mpsc::UnboundedSender<String>,
}

impl build_job::BuildLog for KubeLog {
    fn line(&self, _step: &str, line: &str) {
        self.log.line(Stream::Stdout, line);
    }
    fn note(&self, message: &str) {
        self.log.system(&format!("[prism] {message}"));
    }
    fn step_started(&self, step: &str) {
        self.log.system(&format!("[prism] step {step} started"));
        let _ = self.started.send(step.to_string());
    }
}

/// The executor image pushed to each registry by this process: host -> (reference by digest, binary path).
static PUSHED: Mutex<Option<HashMap<String, (String, String)>>> = Mutex::new(None);

/// The binary the executor image carries: `PRISM_EXECUTOR_BINARY` (tests and
/// servers run from a library), else this process's own executable.
fn own_binary() -> Result<PathBuf, Failure> {
    if let Some(p) = std::env::var_os("PRISM_EXECUTOR_BINARY") {
        return Ok(PathBuf::from(p));
    }
    std::env::current_exe().map_err(|e| Failure::new(Kind::Internal, format!("this server's own binary: {e}")))
}

/// Builds (once per registry and binary) and pushes the image holding Prism's
/// own binary and git; returns it by digest and the binary's path in it.
async fn executor_image(registries: &prism_image::Registries, host: &str) -> Result<(String, String), Failure> {
    let internal = |m: String| Failure::new(Kind::Internal, m);
    let binary = own_binary()?;
    let meta = std::fs::metadata(&binary).map_err(|e| internal(format!("{}: {e}", binary.display())))?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let tag = format!("{}-{:x}{:x}", env!("CARGO_PKG_VERSION"), meta.len(), modified);
    let key = format!("{host}|{tag}|{}", binary.display());
    if let Some(found) = PUSHED.lock().expect("pushed").as_ref().and_then(|m| m.get(&key)) {
        return Ok(found.clone());
    }
    let mut programs = vec![binary.clone()];
    for p in [
        "/bin/sh",
        "/usr/bin/git",
        "/usr/lib/git-core/git",
        "/usr/lib/git-core/git-remote-http",
    ] {
        if std::path::Path::new(p).exists() {
            programs.push(PathBuf::from(p));
        }
    }
    let files = ["/etc/ssl/certs/ca-certificates.crt"]
        .into_iter()
        .map(PathBuf::from)
        .filter(|p| p.exists())
        .collect();
    let spec = ExecutorImage {
        programs,
        files,
        entrypoint: vec![binary.display().to_string()],
        strip_debug: true,
    };
    let target = ImageReference::parse(&format!("{host}/prism/executor:{tag}"))
        .map_err(|e| internal(format!("executor image: {e}")))?;
    let pushed = push_executor_image(registries, &spec, &target)
        .await
        .map_err(|e| Failure::new(Kind::Push, format!("executor image {target}: {e}")))?;
    let by_digest = format!("{host}/prism/executor@{}", pushed.manifest_digest);
    let found = (by_digest, binary.display().to_string());
    PUSHED
        .lock()
        .expect("pushed")
        .get_or_insert_with(HashMap::new)
        .insert(key, found.clone());
    Ok(found)
}

/// Deletes build Jobs and Secrets on every Kubernetes runner whose build is
/// gone or finished (a crashed server, a deleted build); returns what it removed.
pub async fn reap(state: &AppState) -> Vec<String> {
    let Ok(mut c) = state.store.conn().await else {
        return vec![];
    };
    let Ok(list) = credentials::list_executors(&mut c).await else {
        return vec![];
    };
    let mut reaped = vec![];
    let mut seen = std::collections::BTreeSet::new();
    for rec in list.into_iter().filter(|e| e.kind == crate::ops::executors::KUBERNETES) {
        let Ok(runner) = serde_json::from_str::<RunnerSettings>(&rec.settings) else {
            continue;
        };
        if !seen.insert((runner.cluster.clone(), runner.namespace.clone())) {
            continue;
        }
        let Ok(cluster_rec) = clusters::by_name(&mut c, &runner.cluster).await else {
            continue;
        };
        let Ok(cluster) = crate::services::deploy_plan::cluster_client(state, cluster_rec).await else {
            continue;
        };
        // Asked in this order, a build whose Job appears after the listing
        // is never taken for a lost one.
        let client = cluster.client();
        let Ok(ids) = build_job::build_ids(&client, &runner.namespace).await else {
            continue;
        };
        let mut gone = std::collections::HashSet::new();
        for id in ids {
            match builds::get(&mut c, id).await {
                Ok(b) if !b.state.is_final() => {}
                Ok(_) | Err(prism_store::StoreError::NotFound { .. }) => {
                    gone.insert(id);
                }
                Err(_) => {}
            }
        }
        if gone.is_empty() {
            continue;
        }
        match build_job::reap(&client, &runner.namespace, |id| !gone.contains(&id)).await {
            Ok(r) => reaped.extend(r.into_iter().map(|x| format!("{}: {x}", runner.cluster))),
            Err(e) => tracing::warn!(runner = %rec.name, error = %e, "could not reap build Jobs"),
        }
    }
    reaped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(step: &str, exit_code: i32) -> Failure {
        judged_failure(
            PodState::StepFailed {
                step: step.into(),
                exit_code,
                message: Some("last words\n".into()),
            },
            60,
        )
    }

    #[test]
    fn a_sigkill_without_an_oom_reason_still_points_at_the_memory_limit() {
        let f = failed("build", 137);
        assert_eq!(f.kind, Kind::Build);
        assert_eq!(
            f.message,
            "step build exited with 137 (killed by SIGKILL: most often the memory limit, else a kill from outside): last words"
        );
        let f = failed("checkout", 3);
        assert_eq!(f.kind, Kind::Checkout);
        assert_eq!(f.message, "step checkout exited with 3: last words");
    }
}
