//! `prism __build-step checkout|package`: Prism's own steps of a build on a
//! Kubernetes runner, run in the build pod from the executor image (see
//! `prism_server::jobs::build_kube`). Each reads its plan from the
//! environment (credentials come from the build's Secret, for that step
//! only), logs to stdout/stderr (followed into the build log), and reports
//! in its termination message.

use std::path::Path;
use std::process::ExitCode;

use prism_server::jobs::build_kube::{
    CheckoutPlan, CheckoutReport, PackagePlan, PackageReport, RegistryAuth, CHECKOUT_ENV, COMMIT_FILE,
    GIT_PASSWORD_ENV, GIT_USERNAME_ENV, PACKAGE_ENV, REGISTRIES_ENV, SOURCE_DIR,
};

/// Where the kubelet reads a container's termination message.
const TERMINATION_LOG: &str = "/dev/termination-log";

pub fn main(step: Option<&str>) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = match step {
        Some("checkout") => runtime.block_on(checkout()),
        Some("package") => runtime.block_on(package()),
        _ => Err("usage: prism __build-step checkout|package".to_string()),
    };
    match result {
        Ok(report) => {
            if let Err(e) = std::fs::write(TERMINATION_LOG, &report) {
                eprintln!("error: writing {TERMINATION_LOG}: {e}");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            // The reason is the message Prism shows (else the log's tail).
            let _ = std::fs::write(TERMINATION_LOG, &e);
            ExitCode::FAILURE
        }
    }
}

fn plan<T: serde::de::DeserializeOwned>(var: &str) -> Result<T, String> {
    let raw = std::env::var(var).map_err(|_| format!("{var} is not set"))?;
    serde_json::from_str(&raw).map_err(|e| format!("{var}: {e}"))
}

async fn checkout() -> Result<String, String> {
    let p: CheckoutPlan = plan(CHECKOUT_ENV)?;
    let creds = match (std::env::var(GIT_USERNAME_ENV), std::env::var(GIT_PASSWORD_ENV)) {
        (Ok(u), Ok(pw)) => {
            let Some(host) = &p.git_host else {
                return Err("a git credential without the host it is bound to".into());
            };
            Some(prism_builder::Credentials::new(u, pw).for_host(host))
        }
        _ => None,
    };
    println!("checkout {} at {}", p.git_url, p.git_ref);
    let src = Path::new(SOURCE_DIR);
    let commit = prism_builder::checkout(&p.git_url, &p.git_ref, src, creds.as_ref())
        .await
        .map_err(|e| e.to_string())?;
    println!("commit {}", commit.as_str());
    // The image gets the files, not the repository's history (nor its config).
    let _ = std::fs::remove_dir_all(src.join(".git"));
    if let Some(w) = &p.workdir {
        if !src.join(w).is_dir() {
            return Err(format!(
                "build_settings.workdir {w:?} is not a directory of the checkout"
            ));
        }
    }
    std::fs::write(COMMIT_FILE, commit.as_str()).map_err(|e| format!("{COMMIT_FILE}: {e}"))?;
    serde_json::to_string(&CheckoutReport {
        commit: commit.as_str().to_string(),
    })
    .map_err(|e| e.to_string())
}

async fn package() -> Result<String, String> {
    let p: PackagePlan = plan(PACKAGE_ENV)?;
    let auths: Vec<RegistryAuth> = plan(REGISTRIES_ENV)?;
    let policy = prism_domain::AddressPolicy::parse("address_policy", &p.address_rules).map_err(|e| e.to_string())?;
    let guard = prism_netguard::Guard::new(policy);
    let mut registries = prism_image::Registries::new();
    for a in auths {
        let credentials = match (a.username, a.password) {
            (Some(username), Some(password)) => Some(prism_image::Credentials { username, password }),
            _ => None,
        };
        registries = registries.with(
            &a.host,
            prism_image::RegistryOptions {
                credentials,
                scheme: if a.insecure_http {
                    prism_image::Scheme::Http
                } else {
                    prism_image::Scheme::Https
                },
                token_realm_hosts: a.token_realm_hosts,
                guard: guard.clone(),
            },
        );
    }
    // Written by the checkout; checked by the server against the checkout's own report.
    let commit = std::fs::read_to_string(COMMIT_FILE)
        .map_err(|e| format!("{COMMIT_FILE}: {e}"))?
        .trim()
        .to_string();
    let workdir = Path::new(&p.workdir);
    let paths = prism_server::jobs::build::expand_artifacts(workdir, &p.artifact_paths).map_err(|f| f.message)?;
    println!("packaging {} into {}", paths.join(", "), p.image_dir);
    let mut spec = prism_image::LayerSpec::new(workdir.to_path_buf(), paths, &p.image_dir);
    spec.compression = prism_server::services::build_config::layer_compression(p.layer_compression);
    let layer = prism_image::build_layer(&spec).map_err(|e| e.to_string())?;
    println!("layer {} ({} bytes)", layer.digest, layer.size);
    let mut changes = prism_image::ConfigChanges {
        env: p.env.clone(),
        workdir: Some(p.image_dir.clone()),
        cmd: p.cmd.clone(),
        entrypoint: p.entrypoint.clone(),
        history_comment: format!("prism build of {} {} at {commit}", p.application, p.release),
        ..Default::default()
    }
    .with_release(&p.release, &commit, &p.application);
    changes.labels.extend(p.labels.clone());
    let base = prism_image::ImageReference::parse(&p.base).map_err(|e| format!("base {}: {e}", p.base))?;
    let target = prism_image::ImageReference::parse(&p.target).map_err(|e| format!("target {}: {e}", p.target))?;
    println!("pushing {target} on {base}");
    let pushed = prism_image::append_layer(&registries, &base, &layer, &changes, &target)
        .await
        .map_err(|e| e.to_string())?;
    println!("pushed {} ({})", target, pushed.manifest_digest);
    serde_json::to_string(&PackageReport {
        commit,
        image_digest: pushed.manifest_digest,
        layer_digest: layer.digest,
        layer_size: layer.size,
        base_digest: pushed.base_digest,
        bytes_uploaded: pushed.bytes_uploaded,
    })
    .map_err(|e| e.to_string())
}
