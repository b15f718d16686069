//! What each benchmark needs besides itself (peer tools, the Kubernetes
//! binaries, PostgreSQL, the `prism` binary built beside this one), checked
//! before it starts: a missing one is named with how to get it, instead of a
//! bare "No such file or directory (os error 2)" and a backtrace from deep
//! inside the run (what `prism-bench image` printed on a fresh machine
//! without buildah). With `--install` the Debian packages and the Kubernetes
//! binaries are installed first, as the test command (scripts/test.sh) does.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// One thing a benchmark needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Need {
    /// A binary on `PATH` and the Debian package that has it.
    Tool {
        binary: &'static str,
        package: &'static str,
    },
    /// A binary of this workspace built beside `prism-bench` (`prism`, `prism-kube-sim`).
    Sibling(&'static str),
    /// kube-apiserver and kube-controller-manager v1.20.2 in the binary cache
    /// that `scripts/k8s/ensure-binaries.sh` fills (the control plane
    /// `scripts/k8s/cluster.sh` starts; etcd and docker-registry are `Tool`s).
    KubeBinaries,
    /// PostgreSQL answering at this URL (a server URL without a database).
    Postgres(String),
}

pub const BUILDAH: Need = tool("buildah", "buildah");
pub const REGISTRY: Need = tool("docker-registry", "docker-registry");
pub const SKOPEO: Need = tool("skopeo", "skopeo");
pub const UMOCI: Need = tool("umoci", "umoci");
pub const RUNC: Need = tool("runc", "runc");
pub const SLIRP4NETNS: Need = tool("slirp4netns", "slirp4netns");
pub const KUBECTL: Need = tool("kubectl", "kubernetes-client");
pub const ETCD: Need = tool("etcd", "etcd-server");
pub const GIT: Need = tool("git", "git");
pub const TAR: Need = tool("tar", "tar");
pub const BUSYBOX: Need = tool("busybox", "busybox-static");
pub const NODE: Need = tool("node", "nodejs");
pub const NPM: Need = tool("npm", "npm");
pub const NGINX: Need = tool("nginx", "nginx");
pub const PRISM: Need = Need::Sibling("prism");
pub const KUBE_SIM: Need = Need::Sibling("prism-kube-sim");

const fn tool(binary: &'static str, package: &'static str) -> Need {
    Need::Tool { binary, package }
}

/// A Kubernetes v1.20.2 control plane with a simulated node (what `deploy`
/// and the crash drill's deploys run on).
pub fn control_plane() -> Vec<Need> {
    vec![KUBECTL, ETCD, REGISTRY, Need::KubeBinaries, KUBE_SIM]
}

/// Where ensure-binaries.sh keeps the Kubernetes binaries.
fn kube_cache() -> PathBuf {
    std::env::var_os("PRISM_K8S_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/prism-k8s/bin"))
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from("."))
}

/// Whether `binary` is a file in one of `PATH`'s directories.
fn on_path(binary: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| Path::new(&d).join(binary).is_file()))
        .unwrap_or(false)
}

fn sibling(name: &str) -> Option<PathBuf> {
    std::env::current_exe().ok().map(|e| e.with_file_name(name))
}

/// The cargo command that builds a sibling where this binary is.
fn build_command(name: &str) -> String {
    let release = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.ends_with("release")))
        .unwrap_or(true);
    format!("cargo build{} -p {name}", if release { " --release" } else { "" })
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Why `need` is not met here (what is missing and how to get it), or None.
pub async fn unmet(need: &Need) -> Option<String> {
    match need {
        Need::Tool { binary, package } => {
            (!on_path(binary)).then(|| format!("{binary} (apt-get install {package}, or --install)"))
        }
        Need::Sibling(name) => {
            let path = sibling(name)?;
            (!path.exists()).then(|| format!("{} ({})", path.display(), build_command(name)))
        }
        Need::KubeBinaries => {
            let dir = kube_cache();
            let missing: Vec<&str> = ["kube-apiserver", "kube-controller-manager"]
                .into_iter()
                .filter(|b| !dir.join(b).is_file())
                .collect();
            (!missing.is_empty()).then(|| {
                format!(
                    "{} v1.20.2 in {} (bash scripts/k8s/ensure-binaries.sh, or --install)",
                    missing.join(" and "),
                    dir.display()
                )
            })
        }
        Need::Postgres(url) => {
            let connect = sqlx::Connection::connect(&format!("{}/postgres", url.trim_end_matches('/')));
            let why = match tokio::time::timeout(Duration::from_secs(5), connect).await {
                Ok(Ok(c)) => {
                    let c: sqlx::PgConnection = c;
                    let _ = sqlx::Connection::close(c).await;
                    return None;
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => "no answer in 5 s".into(),
            };
            Some(format!(
                "PostgreSQL at {url} (--pg or PRISM_TEST_PG_URL; {why}): start one there \
                 (apt-get install postgresql; pg_ctlcluster 15 main start) or pass --backend sqlite"
            ))
        }
    }
}

/// Every unmet need of `needs`, each with how to meet it.
pub async fn missing(needs: &[Need]) -> Vec<String> {
    let mut out = Vec::new();
    for n in needs {
        if let Some(why) = unmet(n).await {
            out.push(why);
        }
    }
    out
}

/// The sentence naming what `bench` lacks.
pub fn sentence(bench: &str, missing: &[String]) -> String {
    format!("prism-bench {bench} needs {}", missing.join("; "))
}

/// Fails naming every unmet need of `bench` and how to meet it; with
/// `install`, installs what it can first.
pub async fn require(bench: &str, needs: &[Need], install: bool) -> anyhow::Result<()> {
    if install {
        self::install(needs).await;
    }
    let missing = missing(needs).await;
    anyhow::ensure!(missing.is_empty(), "{}", sentence(bench, &missing));
    Ok(())
}

/// Installs what is missing of `needs` as the test command does: Debian
/// packages with apt-get (root only), then the Kubernetes binaries with
/// scripts/k8s/ensure-binaries.sh (control plane only; the build bench's
/// real node installs its own through scripts/k8s/cluster.sh). Failures are
/// printed; the check that follows names what is still missing.
pub async fn install(needs: &[Need]) {
    let mut packages: Vec<&str> = Vec::new();
    for n in needs {
        if let Need::Tool { package, .. } = n {
            if unmet(n).await.is_some() && !packages.contains(package) {
                packages.push(package);
            }
        }
    }
    if !packages.is_empty() {
        if is_root() {
            eprintln!("prism-bench: installing {}", packages.join(" "));
            let apt = |args: &[&str]| {
                Command::new("apt-get")
                    .args(["-o", "DPkg::Lock::Timeout=600", "-y", "-q"])
                    .args(args)
                    .env("DEBIAN_FRONTEND", "noninteractive")
                    .stdout(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            };
            let mut args = vec!["install", "--no-install-recommends"];
            args.extend(&packages);
            // A fresh machine's package lists may be stale or empty: update once and retry.
            let installed = apt(&args) || (apt(&["update"]) && apt(&args));
            if !installed {
                eprintln!("prism-bench: apt-get install {} failed", packages.join(" "));
            }
        } else {
            eprintln!("prism-bench: --install needs root to install {}", packages.join(" "));
        }
    }
    if needs.contains(&Need::KubeBinaries) && unmet(&Need::KubeBinaries).await.is_some() {
        eprintln!("prism-bench: running scripts/k8s/ensure-binaries.sh (control plane only)");
        let ok = Command::new("bash")
            .arg(repo_root().join("scripts/k8s/ensure-binaries.sh"))
            .env("PRISM_K8S_NO_NODE", "1")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("prism-bench: scripts/k8s/ensure-binaries.sh failed");
        }
    }
}

/// Why the real node of the build bench's Kubernetes runner cannot run here
/// (its rows are then left out, the rest of the bench runs), or None.
pub fn real_node_unavailable() -> Option<String> {
    if let Some(why) = prism_test_support::node_cluster::NodeCluster::unavailable() {
        return Some(why);
    }
    let mut missing = Vec::new();
    if !kube_cache().join("kubelet").is_file() {
        missing.push(format!("kubelet v1.20.2 in {}", kube_cache().display()));
    }
    for b in ["containerd", "runc", "etcd"] {
        if !on_path(b) {
            missing.push(b.to_string());
        }
    }
    (!missing.is_empty()).then(|| {
        format!(
            "the real node needs {} (bash scripts/k8s/ensure-binaries.sh as root, or --install)",
            missing.join(", ")
        )
    })
}

/// With `--install`: what the build bench's real node needs (kubelet,
/// containerd, the CNI plugins, the pause and busybox images), through
/// scripts/k8s/ensure-binaries.sh as root.
pub fn install_real_node() {
    if prism_test_support::node_cluster::NodeCluster::unavailable().is_some() || real_node_unavailable().is_none() {
        return;
    }
    eprintln!("prism-bench: running scripts/k8s/ensure-binaries.sh (with what a real node needs)");
    let ok = Command::new("bash")
        .arg(repo_root().join("scripts/k8s/ensure-binaries.sh"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("prism-bench: scripts/k8s/ensure-binaries.sh failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_peer_is_named_with_how_to_get_it() {
        assert!(require("image", &[tool("sh", "dash")], false).await.is_ok());
        let e = require(
            "image",
            &[tool("sh", "x"), tool("no-such-peer-7f3", "no-such-peer")],
            false,
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("prism-bench image needs no-such-peer-7f3 (apt-get install no-such-peer, or --install)")
                && !e.contains("sh ("),
            "{e}"
        );
    }

    #[tokio::test]
    async fn an_unreachable_postgres_names_the_url_and_the_way_out() {
        let why = unmet(&Need::Postgres("postgres://postgres@127.0.0.1:1".into()))
            .await
            .expect("nothing listens on port 1");
        assert!(
            why.contains("postgres://postgres@127.0.0.1:1")
                && why.contains("PRISM_TEST_PG_URL")
                && why.contains("--backend sqlite"),
            "{why}"
        );
    }
}
