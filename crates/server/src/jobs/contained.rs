//! The local executor's runner: each build command in a runc container from
//! the builder image (the application's `builder_image`, else its base
//! image), pinned to the digest Prism recorded and unpacked once per digest
//! under the data dir. The container sees the build's workspace at
//! `/workspace` and the application's dependency cache at `/cache`, nothing
//! else of the host (see `prism_builder::container`).
//!
//! The unsandboxed runner (`PRISM_BUILD_RUNNER=unsandboxed`, an admin's
//! choice only) runs the command as a host process instead.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use prism_builder::container::{sweep as sweep_containers, Cache, ContainerConfig, ContainerExecutor, Limits, Network};
use prism_builder::{Executor, LocalExecutor};
use prism_domain::build::{BuildNetwork, LocalRunner};
use prism_domain::BuildFailure as Kind;
use prism_store::{base_images, credentials};

use super::build::Failure;
use crate::services::build_config::{self, ResolvedBuild};
use crate::state::AppState;

/// Where the dependency cache appears inside a build container.
const CACHE: &str = "/cache";

/// The local executor, ready for one build.
pub struct LocalRun {
    pub executor: Box<dyn Executor>,
    /// The builder image's name and digest (None on the unsandboxed runner).
    pub builder: Option<(String, String)>,
    /// The dependency cache as the build command sees it.
    pub cache_dir: String,
}

/// The dependency cache of one application and stack on the host (kept
/// between its builds, never inside a workspace or an image).
fn cache_dir(state: &AppState, app_id: i64, stack: &str) -> PathBuf {
    state.settings.build.caches.join(format!("app-{app_id}-{stack}"))
}

/// runc's state directory and the containers' bundles.
fn runc_dirs(state: &AppState) -> (PathBuf, PathBuf) {
    let root = &state.settings.build.runc_root;
    (root.join("state"), root.join("bundles"))
}

/// Every container of this instance's builds has an id starting with this.
fn id_prefix(state: &AppState) -> String {
    let clean: String = state
        .settings
        .instance_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect();
    format!("prism-{clean}-")
}

/// The local executor for a build of application `app_id` whose workspace is `workspace`.
pub async fn local(state: &AppState, app_id: i64, r: &ResolvedBuild, workspace: &Path) -> Result<LocalRun, Failure> {
    let cache = cache_dir(state, app_id, &r.stack);
    if state.settings.build.runner == LocalRunner::Unsandboxed {
        std::fs::create_dir_all(&cache)
            .map_err(|e| Failure::new(Kind::Internal, format!("dependency cache {}: {e}", cache.display())))?;
        return Ok(LocalRun {
            executor: Box::new(LocalExecutor::new().with_recorder(super::leftovers::recorder(state))),
            builder: None,
            cache_dir: cache.display().to_string(),
        });
    }
    let (name, digest, rootfs) = builder_rootfs(state, r).await?;
    let (state_dir, bundle_dir) = runc_dirs(state);
    let limits = Limits {
        memory_bytes: r.memory_bytes.unwrap_or(Limits::default().memory_bytes),
        cpu_millis: r.cpu_millis.unwrap_or(Limits::default().cpu_millis),
        pids: r.pids_limit.map(u64::from).unwrap_or(Limits::default().pids),
    };
    let config = ContainerConfig {
        runc: "runc".into(),
        state_dir,
        bundle_dir,
        rootfs,
        workspace: workspace.to_path_buf(),
        caches: vec![Cache {
            host: cache,
            container: CACHE.into(),
        }],
        host_id: state.settings.build.build_uid,
        cgroup_parent: "prism-builds".into(),
        limits,
        network: match r.network {
            BuildNetwork::Egress => Network::UserMode {
                slirp4netns: "slirp4netns".into(),
            },
            BuildNetwork::None => Network::None,
        },
        id_prefix: id_prefix(state),
        grace: Duration::from_secs(5),
    };
    Ok(LocalRun {
        executor: Box::new(ContainerExecutor::new(config)),
        builder: Some((name, digest)),
        cache_dir: CACHE.into(),
    })
}

/// Points npm, pip and Maven at the dependency cache (the application's own
/// MAVEN_OPTS kept after Prism's).
pub fn cache_env(env: &mut BTreeMap<String, String>, dir: &str) {
    env.insert("PRISM_CACHE_DIR".into(), dir.to_string());
    env.entry("npm_config_cache".into())
        .or_insert_with(|| format!("{dir}/npm"));
    env.entry("PIP_CACHE_DIR".into())
        .or_insert_with(|| format!("{dir}/pip"));
    let maven = format!("-Dmaven.repo.local={dir}/maven");
    let opts = match env.get("MAVEN_OPTS") {
        Some(own) if !own.contains("maven.repo.local") => format!("{maven} {own}"),
        Some(own) => own.clone(),
        None => maven,
    };
    env.insert("MAVEN_OPTS".into(), opts);
}

/// The builder image's root filesystem, unpacked (once per digest) under
/// the data dir with root inside owned by the containers' unprivileged uid.
async fn builder_rootfs(state: &AppState, r: &ResolvedBuild) -> Result<(String, String, PathBuf), Failure> {
    let name = r.builder_image.clone().unwrap_or_else(|| r.base_image.clone());
    let field = if r.builder_image.is_some() {
        "build_settings.builder_image"
    } else {
        "build_settings.base_image"
    };
    let mut c = state.store.conn().await?;
    let image = base_images::by_name(&mut c, &name)
        .await
        .map_err(|e| Failure::new(Kind::BaseNotFound, format!("{field}: {e}")))?;
    let host = match image.registry_id {
        Some(id) => credentials::registry(&mut c, id).await?.host,
        None => {
            credentials::registry_by_name(&mut c, &r.registry)
                .await
                .map_err(|e| Failure::new(Kind::Config, e.to_string()))?
                .host
        }
    };
    drop(c);
    let Some(digest) = image.digest.clone() else {
        return Err(Failure::new(
            Kind::BaseNotFound,
            format!("{field}: builder image {name} has not been built yet"),
        ));
    };
    let registries = build_config::registries(state).await?;
    let client = registries
        .client(&host)
        .map_err(|e| Failure::new(Kind::Config, format!("builder image {name}: {e}")))?;
    let rootfs = prism_image::unpack::unpack_image(
        &client,
        &image.repository,
        &digest,
        &state.settings.build.builder_images,
        state.settings.build.build_uid,
    )
    .await
    .map_err(|e| match e {
        prism_image::ImageError::BaseNotFound { .. } => {
            Failure::new(Kind::BaseNotFound, format!("builder image {name}: {e}"))
        }
        other => Failure::new(Kind::Internal, format!("builder image {name}: {other}")),
    })?;
    Ok((name, digest, rootfs))
}

/// Ends the build containers this instance's previous run left (a server
/// that died mid-build), before any build of this run starts.
pub async fn sweep(state: &AppState) {
    if state.settings.build.runner == LocalRunner::Unsandboxed {
        return;
    }
    let (state_dir, bundle_dir) = runc_dirs(state);
    if !state_dir.exists() {
        return;
    }
    let prefix = id_prefix(state);
    for id in sweep_containers(Path::new("runc"), &state_dir, &prefix).await {
        tracing::info!(container = %id, "ended a build container left by the last run");
    }
    if let Ok(entries) = std::fs::read_dir(&bundle_dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_managers_use_the_cache_and_maven_keeps_its_options() {
        let mut env = BTreeMap::from([("MAVEN_OPTS".to_string(), "-Xmx1g".to_string())]);
        cache_env(&mut env, "/cache");
        assert_eq!(env["npm_config_cache"], "/cache/npm");
        assert_eq!(env["PIP_CACHE_DIR"], "/cache/pip");
        assert_eq!(env["MAVEN_OPTS"], "-Dmaven.repo.local=/cache/maven -Xmx1g");
        assert_eq!(env["PRISM_CACHE_DIR"], "/cache");
    }
}
