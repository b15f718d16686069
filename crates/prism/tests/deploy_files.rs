//! The files that run Prism elsewhere (issue 18 item 2), checked by the tools
//! that read them: the systemd unit by `systemd-analyze verify` (no warning
//! at all: it only warns about a misspelt option), and both kustomize
//! overlays rendered by kubectl v1.20.2's own kustomize and accepted by a
//! v1.20.2 API server in a server-side dry run (policy/v1beta1 PDB,
//! apps/v1 Deployment). The real-node run of the HA overlay is a benchmark
//! (see the README), not part of the suite.

use std::path::{Path, PathBuf};
use std::process::Command;

use prism_test_support::kube::KubeCluster;
use prism_test_support::process::prism_bin;
use prism_test_support::TempDir;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The kubectl of the control plane's own version when it is installed
/// (scripts/k8s/ensure-binaries.sh), so the old kustomize is the one checked.
fn kubectl() -> PathBuf {
    let cache = std::env::var("PRISM_K8S_CACHE").unwrap_or_else(|_| "/var/cache/prism-k8s/bin".into());
    let pinned = Path::new(&cache).join("kubectl");
    if pinned.exists() {
        pinned
    } else {
        PathBuf::from("kubectl")
    }
}

#[test]
fn the_systemd_unit_verifies_without_a_warning() {
    let unit = std::fs::read_to_string(repo().join("deploy/systemd/prism.service")).unwrap();
    assert!(
        unit.contains("ExecStart=/usr/local/bin/prism serve"),
        "the unit runs prism serve"
    );
    // verify checks that ExecStart's binary exists: point it at the one under test.
    let dir = TempDir::new("systemd-unit");
    let path = dir.path().join("prism.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/prism", prism_bin().to_str().unwrap()),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", path.to_str().unwrap()])
        .output()
        .expect("systemd-analyze (Debian package systemd; scripts/test.sh installs it)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let about_unit: Vec<&str> = said.lines().filter(|l| l.contains("prism.service")).collect();
    assert!(out.status.success() && about_unit.is_empty(), "{said}");

    // The check can fail: a misspelt option is reported.
    std::fs::write(
        &path,
        std::fs::read_to_string(&path)
            .unwrap()
            .replace("ProtectHome=yes", "ProtectHome=maybe"),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", path.to_str().unwrap()])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("prism.service:") && said.contains("protect home"),
        "{said}"
    );
}

fn render(overlay: &str) -> String {
    let out = Command::new(kubectl())
        .arg("kustomize")
        .arg(repo().join("deploy/kubernetes/overlays").join(overlay))
        .output()
        .expect("kubectl kustomize");
    assert!(
        out.status.success(),
        "{overlay}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn both_overlays_render_and_pass_a_server_side_dry_run_on_v1_20() {
    let ha = render("ha");
    let sqlite = render("sqlite");
    for needle in [
        "replicas: 2",
        "kind: PodDisruptionBudget",
        "apiVersion: policy/v1beta1",
        "name: PRISM_DATABASE_URL",
        "readOnlyRootFilesystem: true",
        "automountServiceAccountToken: false",
        "terminationGracePeriodSeconds: 120",
        "path: /healthz",
    ] {
        assert!(ha.contains(needle), "ha overlay lacks {needle:?}:\n{ha}");
    }
    for needle in [
        "type: Recreate",
        "kind: PersistentVolumeClaim",
        "claimName: prism-data",
        "replicas: 1",
    ] {
        assert!(sqlite.contains(needle), "sqlite overlay lacks {needle:?}:\n{sqlite}");
    }
    assert!(!sqlite.contains("PRISM_DATABASE_URL"));
    // Every object lands in the prism namespace (none left in default).
    for doc in ha.split("\n---\n").chain(sqlite.split("\n---\n")) {
        if !doc.contains("kind: Namespace") {
            assert!(doc.contains("namespace: prism"), "object outside the namespace:\n{doc}");
        }
    }

    let cluster = KubeCluster::up_without_node();
    // The namespace for real (a dry run of it would not let the others in).
    cluster.kubectl(&["create", "namespace", "prism"]);
    let files = TempDir::new("overlays");
    for (name, text) in [("ha", &ha), ("sqlite", &sqlite)] {
        let path = files.path().join(format!("{name}.yaml"));
        std::fs::write(&path, text).unwrap();
        let out = Command::new(kubectl())
            .arg("--kubeconfig")
            .arg(&cluster.kubeconfig)
            .args([
                "apply",
                "--server-side",
                "--dry-run=server",
                "--field-manager",
                "prism-test",
                "-f",
            ])
            .arg(&path)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{name}: {said}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            said.contains("deployment.apps/prism serverside-applied (server dry run)"),
            "{name}: {said}"
        );
    }
}
