//! What a build runs with: the application's build settings over its stack
//! preset, every reference (stack, base image, registry, executor, git
//! credential) checked when the build is requested, and the result stored on
//! the build so a later edit of the stack does not change a running build.
//! Also the registry clients a build or base image push uses.

use std::collections::BTreeMap;

use prism_domain::build::LOCAL_EXECUTOR;
use prism_domain::BuildSettings;
use prism_store::apps::Application;
use prism_store::{base_images, credentials, stacks, AnyConnection, StoreError};
use serde::{Deserialize, Serialize};

use crate::ops::{referenced, OpError, OpResult};
use crate::state::AppState;

/// The settings a build runs with; stored on the build record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResolvedBuild {
    pub stack: String,
    pub git_url: String,
    pub git_credential: Option<String>,
    pub build_command: String,
    pub workdir: Option<String>,
    pub artifact_paths: Vec<String>,
    pub image_dir: String,
    pub cmd: Vec<String>,
    pub entrypoint: Vec<String>,
    /// Environment of the build command.
    pub build_env: BTreeMap<String, String>,
    /// Environment written into the image config (the stack's variables).
    pub image_env: BTreeMap<String, String>,
    pub timeout_seconds: u64,
    pub executor: String,
    pub base_image: String,
    pub registry: String,
    pub repository: String,
    /// The registered image whose file system the build command runs in
    /// (default: `base_image`); absent on builds recorded before it existed.
    #[serde(default)]
    pub builder_image: Option<String>,
    #[serde(default)]
    pub network: prism_domain::build::BuildNetwork,
    /// The build container's limits (the defaults where absent).
    #[serde(default)]
    pub memory_bytes: Option<u64>,
    #[serde(default)]
    pub cpu_millis: Option<u64>,
    #[serde(default)]
    pub pids_limit: Option<u32>,
    /// gzip on builds recorded before the setting existed.
    #[serde(default)]
    pub layer_compression: prism_domain::build::LayerCompression,
}

/// The image layer's compression a build asked for, as the image builder names it.
pub fn layer_compression(c: prism_domain::build::LayerCompression) -> prism_image::Compression {
    match c {
        prism_domain::build::LayerCompression::Gzip => prism_image::Compression::Gzip,
        prism_domain::build::LayerCompression::Zstd => prism_image::Compression::Zstd,
    }
}

fn missing(field: &str, what: &str) -> OpError {
    OpError::invalid(
        &format!("build_settings.{field}"),
        format!("the application has no {what}: set build_settings.{field} first"),
    )
}

/// A registry may be shared by several projects: each pushes under its own
/// name only (`<project>/...`), so one project cannot overwrite another's
/// images with the shared credentials.
fn check_repository(s: &BuildSettings, project: &str) -> OpResult<()> {
    match &s.repository {
        Some(r) if !r.starts_with(&format!("{project}/")) => Err(OpError::invalid(
            "build_settings.repository",
            format!("must be under the project's own name: {project}/..."),
        )),
        _ => Ok(()),
    }
}

/// Resolves and checks the application's build settings.
pub async fn resolve(c: &mut AnyConnection, app: &Application, default_executor: &str) -> OpResult<ResolvedBuild> {
    let s = BuildSettings::parse("build_settings", &app.build_settings)?;
    check_repository(&s, &app.project)?;
    let stack_name = s.stack.clone().unwrap_or_else(|| "generic".into());
    let stack = referenced("build_settings.stack", stacks::by_name(c, &stack_name).await)?;
    let base_image = s
        .base_image
        .clone()
        .ok_or_else(|| missing("base_image", "base image"))?;
    referenced("build_settings.base_image", base_images::by_name(c, &base_image).await)?;
    let registry = s.registry.clone().ok_or_else(|| missing("registry", "registry"))?;
    // Registries, git credentials and executors: only those the
    // application's project may use; another project's reads as unknown.
    referenced(
        "build_settings.registry",
        credentials::registry_for_project(c, &registry, app.project_id).await,
    )?;
    if let Some(g) = &s.git_credential {
        referenced(
            "build_settings.git_credential",
            credentials::git_credential_for_project(c, g, app.project_id).await,
        )?;
    }
    if let Some(b) = &s.builder_image {
        referenced("build_settings.builder_image", base_images::by_name(c, b).await)?;
    }
    s.check_executor("build_settings", default_executor)?;
    let limits = s.limits("build_settings")?;
    let executor = s.executor.clone().unwrap_or_else(|| default_executor.to_string());
    if executor != LOCAL_EXECUTOR {
        referenced(
            "build_settings.executor",
            credentials::executor_for_project(c, &executor, app.project_id).await,
        )?;
    }
    let artifact_paths = s.artifact_paths.clone().unwrap_or(stack.artifact_paths.clone());
    if artifact_paths.is_empty() {
        return Err(missing("artifact_paths", "artifact paths (and its stack has none)"));
    }
    let build_command = s.build_command.clone().unwrap_or(stack.build_command.clone());
    let mut build_env = stack.env.clone();
    build_env.extend(s.env.clone());
    Ok(ResolvedBuild {
        stack: stack.name,
        git_url: app.git_url.clone(),
        git_credential: s.git_credential.clone(),
        timeout_seconds: s.timeout().as_secs(),
        build_command,
        workdir: s.workdir.clone(),
        artifact_paths,
        image_dir: s.image_dir.clone().unwrap_or(stack.image_dir),
        cmd: s.cmd.clone().unwrap_or(stack.cmd),
        entrypoint: s.entrypoint.clone().unwrap_or(stack.entrypoint),
        image_env: stack.env,
        build_env,
        executor,
        base_image,
        registry,
        repository: s
            .repository
            .clone()
            .unwrap_or_else(|| format!("{}/{}", app.project, app.name)),
        builder_image: s.builder_image.clone(),
        network: s.network.unwrap_or_default(),
        layer_compression: s.layer_compression.unwrap_or_default(),
        memory_bytes: Some(limits.memory.bytes()),
        cpu_millis: Some(limits.cpu.millicores()),
        pids_limit: Some(limits.pids),
    })
}

/// Checks references in settings about to be saved for an application of
/// `project_id` (so a typo fails at the edit, naming the field, not at the
/// next build). A registry, git credential or executor the project may not
/// use gets the same answer as an unknown name.
pub async fn check_references(
    c: &mut AnyConnection,
    s: &BuildSettings,
    project_id: i64,
    project: &str,
) -> OpResult<()> {
    check_repository(s, project)?;
    if let Some(x) = &s.stack {
        referenced("build_settings.stack", stacks::by_name(c, x).await)?;
    }
    if let Some(x) = &s.base_image {
        referenced("build_settings.base_image", base_images::by_name(c, x).await)?;
    }
    if let Some(x) = &s.registry {
        referenced(
            "build_settings.registry",
            credentials::registry_for_project(c, x, project_id).await,
        )?;
    }
    if let Some(x) = &s.git_credential {
        referenced(
            "build_settings.git_credential",
            credentials::git_credential_for_project(c, x, project_id).await,
        )?;
    }
    if let Some(x) = &s.builder_image {
        referenced("build_settings.builder_image", base_images::by_name(c, x).await)?;
    }
    if let Some(x) = s.executor.as_ref().filter(|e| *e != LOCAL_EXECUTOR) {
        referenced(
            "build_settings.executor",
            credentials::executor_for_project(c, x, project_id).await,
        )?;
    }
    Ok(())
}

/// Registry clients with every registered registry's scheme and credentials
/// (unsealed here, in memory only), then the Docker config's for other hosts.
pub async fn registries(state: &AppState) -> Result<prism_image::Registries, StoreError> {
    let mut c = state.store.conn().await?;
    let list = credentials::list_registries(&mut c).await?;
    let guard = super::address_policy::guard(&mut c).await?;
    drop(c);
    let mut out = prism_image::Registries::new();
    let docker = state
        .settings
        .build
        .docker_config
        .as_deref()
        .and_then(|p| match prism_image::docker_config::load(p) {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::warn!(error = %e, "ignoring the Docker config file");
                None
            }
        })
        .unwrap_or_default();
    for (host, creds) in &docker {
        out = out.with(
            host,
            prism_image::RegistryOptions {
                credentials: Some(creds.clone()),
                scheme: prism_image::Scheme::Auto,
                ..Default::default()
            },
        );
    }
    for r in list {
        let password = match &r.password_enc {
            Some(sealed) => Some(
                String::from_utf8(
                    state
                        .secrets
                        .open(sealed)
                        .map_err(|e| StoreError::Corrupt(format!("registry {}: {e}", r.name)))?,
                )
                .map_err(|_| StoreError::Corrupt(format!("registry {}: password is not UTF-8", r.name)))?,
            ),
            None => None,
        };
        let credentials = match (&r.username, password) {
            (Some(u), Some(p)) => Some(prism_image::Credentials {
                username: u.clone(),
                password: p,
            }),
            _ => docker.get(&r.host).cloned(),
        };
        out = out.with(
            &r.host,
            prism_image::RegistryOptions {
                credentials,
                scheme: if r.insecure_http != 0 {
                    prism_image::Scheme::Http
                } else {
                    prism_image::Scheme::Https
                },
                token_realm_hosts: r.token_realm_hosts(),
                ..Default::default()
            },
        );
    }
    Ok(out.with_guard(guard))
}
