//! An application's build settings, parsed once at the edge: every field is
//! checked (and named in the error) before anything is stored, so the build
//! pipeline only ever reads settings that can run.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::env_var::validate_env_vars;
use crate::{Cpu, Memory, Name, ValidationError};

pub const DEFAULT_TIMEOUT_SECONDS: u64 = 30 * 60;
/// Limits of a build container unless the application says otherwise.
pub const DEFAULT_BUILD_MEMORY: &str = "2Gi";
pub const DEFAULT_BUILD_CPU: &str = "2";
pub const DEFAULT_BUILD_PIDS: u32 = 1024;
pub const MAX_BUILD_PIDS: u32 = 65_536;
pub const MAX_TIMEOUT_SECONDS: u64 = 24 * 60 * 60;
/// The executor that runs builds on the Prism server's machine, each step in
/// a container from the stack's builder image (never as a host process).
pub const LOCAL_EXECUTOR: &str = "local";

/// How the `local` executor runs build steps: an admin-level server setting
/// (`PRISM_BUILD_RUNNER`), never an application's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LocalRunner {
    /// Each step in a runc container (the default).
    #[default]
    Contained,
    /// Each step as a process on Prism's own host, as Prism's own user: the
    /// build can read Prism's key and database. Only for trusted code.
    Unsandboxed,
}

impl LocalRunner {
    /// Parses `PRISM_BUILD_RUNNER` (`contained` or `unsandboxed`).
    pub fn parse(field: &str, v: &str) -> Result<Self, ValidationError> {
        match v {
            "contained" => Ok(Self::Contained),
            "unsandboxed" => Ok(Self::Unsandboxed),
            _ => Err(ValidationError::new(
                field,
                format!("must be `contained` or `unsandboxed`, not {v:?}"),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Contained => "contained",
            Self::Unsandboxed => "unsandboxed",
        }
    }
}

/// What Prism needs to turn a release of an application into an image.
/// Unset fields fall back to the stack preset's values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildSettings {
    /// A stack preset (`java-maven`, `node`, `python`, `static`, `generic`, or one an admin added).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    /// Shell command run in the checkout (in `workdir`); empty: no build step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_command: Option<String>,
    /// Paths (relative to `workdir`) that become the image layer; `.` is the whole
    /// checkout without `.git`, and `*` may end the last component (`target/*.jar`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_paths: Option<Vec<String>>,
    /// The registered base image the application image is built on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_image: Option<String>,
    /// The registered registry the image is pushed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    /// Repository in that registry (default `<project>/<application>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Sub-directory of the checkout the build runs in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// Where the artifacts go in the image (default: the stack's, `/app`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// Environment of the build command (and of the image, for the stack's variables).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    /// `local` or the name of a registered Jenkins executor (default: the server's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<String>,
    /// A registered git credential for private repositories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_credential: Option<String>,
    /// The registered base image whose file system the build command runs in
    /// (its toolchain: JDK and Maven, Node.js and npm ...); default: `base_image`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builder_image: Option<String>,
    /// What the build container may reach: `egress` (default: outside
    /// networks such as package registries, never the host's loopback) or `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<BuildNetwork>,
    /// Memory limit of the build container (a Kubernetes quantity, default 2Gi).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<String>,
    /// CPU limit of the build container (a Kubernetes quantity, default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_limit: Option<String>,
    /// Most processes the build container may run at once (default 1024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<u32>,
    /// How the application's image layer is compressed: `gzip` (default,
    /// every runtime reads it) or `zstd` (faster and smaller; needs
    /// containerd 1.5+, CRI-O 1.20+ or Docker 23+ on the nodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_compression: Option<LayerCompression>,
}

/// How an application's image layer is compressed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerCompression {
    /// Read by every container runtime (a Docker schema 2 image when the base is one).
    #[default]
    Gzip,
    /// Zstandard, in an OCI image (`tar+zstd` layers).
    Zstd,
}

/// Where a build container's network leads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuildNetwork {
    /// User-mode networking: outside hosts yes, the build host's loopback no.
    #[default]
    Egress,
    /// Loopback only.
    None,
}

/// A build container's limits, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildLimits {
    pub memory: Memory,
    pub cpu: Cpu,
    pub pids: u32,
}

fn named(field: &str, v: &Option<String>) -> Result<(), ValidationError> {
    if let Some(v) = v {
        Name::parse(field, v)?;
    }
    Ok(())
}

/// A path relative to the checkout: no `..`, not absolute, no NUL, no backslash.
pub fn validate_relative_path(field: &str, p: &str) -> Result<(), ValidationError> {
    if p.is_empty() || p.len() > 1024 {
        return Err(ValidationError::new(field, "must be 1 to 1024 characters"));
    }
    if p.starts_with('/') {
        return Err(ValidationError::new(
            field,
            "must be relative to the checkout, not absolute",
        ));
    }
    if p.split('/').any(|c| c == "..") {
        return Err(ValidationError::new(field, "must not contain '..'"));
    }
    if p.chars().any(|c| c.is_control() || c == '\\') {
        return Err(ValidationError::new(
            field,
            "must not contain control characters or '\\'",
        ));
    }
    if p.contains('*') && (p.matches('*').count() > 1 || p.rsplit('/').next().is_none_or(|last| !last.contains('*'))) {
        return Err(ValidationError::new(
            field,
            "may contain one '*', in its last component only",
        ));
    }
    Ok(())
}

pub fn validate_image_dir(field: &str, p: &str) -> Result<(), ValidationError> {
    if !p.starts_with('/') || p.len() > 512 || p.split('/').any(|c| c == ".." || c == ".") {
        return Err(ValidationError::new(
            field,
            "must be an absolute path without '.' or '..'",
        ));
    }
    if p.chars().any(|c| c.is_control() || c == '\\') {
        return Err(ValidationError::new(
            field,
            "must not contain control characters or '\\'",
        ));
    }
    Ok(())
}

/// A registry repository path: lowercase components of `[a-z0-9._-]` separated by `/`.
pub fn validate_repository(field: &str, r: &str) -> Result<(), ValidationError> {
    let ok = !r.is_empty()
        && r.len() <= 255
        && r.split('/').all(|c| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
                && c.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        });
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            "must be lowercase path components of a-z, 0-9, '.', '_' or '-' separated by '/'",
        ))
    }
}

pub fn validate_argv(field: &str, v: &[String]) -> Result<(), ValidationError> {
    if v.len() > 64 || v.iter().any(|a| a.len() > 4096 || a.contains('\0')) {
        return Err(ValidationError::new(
            field,
            "at most 64 arguments of at most 4096 characters",
        ));
    }
    Ok(())
}

impl BuildSettings {
    /// Parses and checks settings given as JSON; `field` prefixes error fields.
    pub fn parse(field: &str, v: &serde_json::Value) -> Result<Self, ValidationError> {
        let s: BuildSettings = serde_json::from_value(v.clone()).map_err(|e| {
            // serde names the unknown or mistyped field in its message.
            ValidationError::new(field, e.to_string())
        })?;
        s.validate(field)?;
        Ok(s)
    }

    pub fn validate(&self, field: &str) -> Result<(), ValidationError> {
        let f = |name: &str| format!("{field}.{name}");
        named(&f("stack"), &self.stack)?;
        named(&f("base_image"), &self.base_image)?;
        named(&f("registry"), &self.registry)?;
        named(&f("git_credential"), &self.git_credential)?;
        named(&f("builder_image"), &self.builder_image)?;
        self.limits(field)?;
        if let Some(e) = &self.executor {
            if e != LOCAL_EXECUTOR {
                Name::parse(&f("executor"), e)?;
            }
        }
        if let Some(c) = &self.build_command {
            if c.len() > 16 * 1024 || c.contains('\0') {
                return Err(ValidationError::new(
                    f("build_command"),
                    "must be at most 16 KiB without NUL",
                ));
            }
        }
        if let Some(paths) = &self.artifact_paths {
            if paths.len() > 100 {
                return Err(ValidationError::new(f("artifact_paths"), "at most 100 paths"));
            }
            for (i, p) in paths.iter().enumerate() {
                validate_relative_path(&format!("{field}.artifact_paths[{i}]"), p)?;
            }
        }
        if let Some(w) = &self.workdir {
            validate_relative_path(&f("workdir"), w)?;
            if w.contains('*') {
                return Err(ValidationError::new(f("workdir"), "must not contain '*'"));
            }
        }
        if let Some(d) = &self.image_dir {
            validate_image_dir(&f("image_dir"), d)?;
        }
        if let Some(r) = &self.repository {
            validate_repository(&f("repository"), r)?;
        }
        if let Some(c) = &self.cmd {
            validate_argv(&f("cmd"), c)?;
        }
        if let Some(e) = &self.entrypoint {
            validate_argv(&f("entrypoint"), e)?;
        }
        validate_env_vars(&f("env"), &self.env)?;
        if let Some(t) = self.timeout_seconds {
            if !(1..=MAX_TIMEOUT_SECONDS).contains(&t) {
                return Err(ValidationError::new(
                    f("timeout_seconds"),
                    format!("must be 1 to {MAX_TIMEOUT_SECONDS}"),
                ));
            }
        }
        Ok(())
    }

    /// An application may name the local executor only where it is the
    /// server's default: where an admin made a Jenkins executor the default,
    /// builds on Prism's own machine are not the application's choice.
    pub fn check_executor(&self, field: &str, default_executor: &str) -> Result<(), ValidationError> {
        if self.executor.as_deref() == Some(LOCAL_EXECUTOR) && default_executor != LOCAL_EXECUTOR {
            return Err(ValidationError::new(
                format!("{field}.executor"),
                format!(
                    "builds on this server run on the executor {default_executor:?}; `local` may not be chosen by an application"
                ),
            ));
        }
        Ok(())
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS))
    }

    /// The build container's limits (defaults where unset); `field` prefixes error fields.
    pub fn limits(&self, field: &str) -> Result<BuildLimits, ValidationError> {
        let memory = Memory::parse(
            &format!("{field}.memory_limit"),
            self.memory_limit.as_deref().unwrap_or(DEFAULT_BUILD_MEMORY),
        )?;
        if memory.bytes() < 16 << 20 {
            return Err(ValidationError::new(
                format!("{field}.memory_limit"),
                "must be at least 16Mi",
            ));
        }
        let cpu = Cpu::parse(
            &format!("{field}.cpu_limit"),
            self.cpu_limit.as_deref().unwrap_or(DEFAULT_BUILD_CPU),
        )?;
        if cpu.millicores() < 100 {
            return Err(ValidationError::new(
                format!("{field}.cpu_limit"),
                "must be at least 100m",
            ));
        }
        let pids = self.pids_limit.unwrap_or(DEFAULT_BUILD_PIDS);
        if !(16..=MAX_BUILD_PIDS).contains(&pids) {
            return Err(ValidationError::new(
                format!("{field}.pids_limit"),
                format!("must be 16 to {MAX_BUILD_PIDS}"),
            ));
        }
        Ok(BuildLimits { memory, cpu, pids })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: serde_json::Value) -> ValidationError {
        BuildSettings::parse("build_settings", &v).unwrap_err()
    }

    #[test]
    fn accepts_a_complete_setting() {
        let s = BuildSettings::parse(
            "b",
            &json!({"stack": "node", "build_command": "npm ci", "artifact_paths": [".", "target/*.jar"],
                    "base_image": "node-20", "registry": "main", "repository": "shop/web", "workdir": "app",
                    "image_dir": "/srv", "cmd": ["node", "index.js"], "env": {"A": "1"}, "timeout_seconds": 60,
                    "executor": "local", "git_credential": "gitea"}),
        )
        .unwrap();
        assert_eq!(s.timeout(), Duration::from_secs(60));
        let limits = BuildSettings::parse(
            "b",
            &json!({"memory_limit": "512Mi", "cpu_limit": "500m", "pids_limit": 64, "network": "none", "builder_image": "node-tools"}),
        )
        .unwrap();
        assert_eq!(limits.network, Some(BuildNetwork::None));
        let l = limits.limits("b").unwrap();
        assert_eq!((l.memory.bytes(), l.cpu.millicores(), l.pids), (512 << 20, 500, 64));
        let d = BuildSettings::default().limits("b").unwrap();
        assert_eq!(
            (d.memory.bytes(), d.cpu.millicores(), d.pids),
            (2 << 30, 2000, DEFAULT_BUILD_PIDS)
        );
        assert_eq!(
            BuildSettings::parse("b", &json!({})).unwrap().timeout().as_secs(),
            DEFAULT_TIMEOUT_SECONDS
        );
    }

    #[test]
    fn local_is_refused_where_jenkins_is_the_default() {
        let local = BuildSettings::parse("b", &json!({"executor": "local"})).unwrap();
        assert!(local.check_executor("b", LOCAL_EXECUTOR).is_ok());
        assert_eq!(local.check_executor("b", "ci").unwrap_err().field, "b.executor");
        let unset = BuildSettings::parse("b", &json!({})).unwrap();
        assert!(unset.check_executor("b", "ci").is_ok());
        let jenkins = BuildSettings::parse("b", &json!({"executor": "ci"})).unwrap();
        assert!(jenkins.check_executor("b", "ci").is_ok());
        assert_eq!(
            LocalRunner::parse("r", "unsandboxed").unwrap(),
            LocalRunner::Unsandboxed
        );
        assert_eq!(LocalRunner::parse("r", "host").unwrap_err().field, "r");
    }

    #[test]
    fn names_the_field_at_fault() {
        assert_eq!(
            err(json!({"artifact_paths": ["ok", "../etc"]})).field,
            "build_settings.artifact_paths[1]"
        );
        assert_eq!(
            err(json!({"artifact_paths": ["/etc/passwd"]})).field,
            "build_settings.artifact_paths[0]"
        );
        assert_eq!(
            err(json!({"artifact_paths": ["a/*/b"]})).field,
            "build_settings.artifact_paths[0]"
        );
        assert_eq!(err(json!({"workdir": "a/../../b"})).field, "build_settings.workdir");
        assert_eq!(err(json!({"image_dir": "app"})).field, "build_settings.image_dir");
        assert_eq!(
            err(json!({"repository": "Shop/Web"})).field,
            "build_settings.repository"
        );
        assert_eq!(
            err(json!({"timeout_seconds": 0})).field,
            "build_settings.timeout_seconds"
        );
        assert_eq!(err(json!({"stack": "No Such"})).field, "build_settings.stack");
        assert!(err(json!({"env": {"1BAD": "x"}}))
            .field
            .starts_with("build_settings.env"));
        assert_eq!(
            err(json!({"memory_limit": "lots"})).field,
            "build_settings.memory_limit"
        );
        assert_eq!(err(json!({"memory_limit": "1Mi"})).field, "build_settings.memory_limit");
        assert_eq!(err(json!({"cpu_limit": "10m"})).field, "build_settings.cpu_limit");
        assert_eq!(err(json!({"pids_limit": 3})).field, "build_settings.pids_limit");
        assert_eq!(err(json!({"network": "host"})).field, "build_settings");
        assert_eq!(
            err(json!({"builder_image": "../x"})).field,
            "build_settings.builder_image"
        );
        let unknown = err(json!({"stakc": "node"}));
        assert_eq!(unknown.field, "build_settings");
        assert!(unknown.message.contains("stakc"), "{}", unknown.message);
    }
}
