//! A real Kubernetes v1.20.2 control plane (scripts/k8s/cluster.sh) with the
//! simulated node (prism-kube-sim) playing the kubelet, torn down on drop:
//! what the review and live deploy pages show comes from a real API server.
//! (The web console and crash tests use it; deploy_e2e.rs drives its own cluster.)

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The repository's root (where `scripts/k8s` is).
pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub struct KubeCluster {
    name: String,
    pub kubeconfig: PathBuf,
    sim: Option<Child>,
}

impl KubeCluster {
    /// A control plane with the simulated node running.
    pub fn up() -> KubeCluster {
        let mut k = KubeCluster::up_without_node();
        k.start_sim(&[]);
        k
    }

    /// A control plane whose pods stay Pending until [`KubeCluster::start_sim`]
    /// (a rollout that a test wants to keep in progress).
    pub fn up_without_node() -> KubeCluster {
        Self::start(None)
    }

    /// Like [`KubeCluster::up_without_node`], its API server on `address`
    /// (an address of this host, e.g. a real test node's pod gateway, for
    /// pods that deploy to it) instead of 127.0.0.1.
    pub fn up_without_node_on(address: std::net::IpAddr) -> KubeCluster {
        Self::start(Some(address))
    }

    fn start(address: Option<std::net::IpAddr>) -> KubeCluster {
        let st = Command::new("bash")
            .arg(repo().join("scripts/k8s/ensure-binaries.sh"))
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "scripts/k8s/ensure-binaries.sh failed");
        // One more try on a fresh name: on a loaded machine etcd has been
        // seen to exit while starting (cluster.sh tears down what it started).
        let (name, out) = (0..2)
            .map(|_| {
                let name = format!("web{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
                let mut cmd = Command::new("bash");
                cmd.arg(repo().join("scripts/k8s/cluster.sh"))
                    .args(["up", &name])
                    .env("PRISM_K8S_OWNER_PID", std::process::id().to_string())
                    .stderr(Stdio::inherit());
                if let Some(a) = address {
                    cmd.env("PRISM_K8S_API_ADDRESS", a.to_string());
                }
                let out = cmd.output().expect("cluster.sh");
                (name, out)
            })
            .find(|(_, out)| out.status.success())
            .expect("cluster.sh up failed twice");
        let kubeconfig = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim().lines().last().unwrap());
        KubeCluster {
            name,
            kubeconfig,
            sim: None,
        }
    }

    /// Starts the simulated node (`extra` arguments to prism-kube-sim, e.g.
    /// `["--registry", "127.0.0.1:1"]`); a running one is stopped first.
    pub fn start_sim(&mut self, extra: &[&str]) {
        self.stop_sim();
        let exe = crate::process::sibling_bin("prism-kube-sim");
        assert!(exe.exists(), "{} missing: build the workspace", exe.display());
        let sim = Command::new(exe)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["--owner-pid", &std::process::id().to_string()])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        self.sim = Some(sim);
    }

    /// Stops the simulated node: pods stop being reported (a rollout stalls).
    pub fn stop_sim(&mut self) {
        if let Some(mut s) = self.sim.take() {
            let _ = s.kill();
            let _ = s.wait();
        }
    }

    pub fn kubectl(&self, args: &[&str]) -> String {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .expect("kubectl");
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn kubeconfig_text(&self) -> String {
        std::fs::read_to_string(&self.kubeconfig).unwrap()
    }
}

impl Drop for KubeCluster {
    fn drop(&mut self) {
        self.stop_sim();
        let _ = Command::new("bash")
            .arg(repo().join("scripts/k8s/cluster.sh"))
            .args(["down", &self.name])
            .status();
    }
}
