//! A test cluster with a REAL node (`scripts/k8s/cluster.sh up NAME --node`:
//! kubelet v1.20.2 + containerd + runc beside a v1.20.2 control plane), torn
//! down on drop. Pods really run; see scripts/k8s/node.sh for what the node
//! does on the host and what its pods can reach.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

use crate::kube::repo;

/// How the node is set up (each maps to a node.sh variable).
#[derive(Debug, Clone, Default)]
pub struct NodeOptions {
    /// `127.0.0.1:PORT` of the caller's registry (`PRISM_K8S_REGISTRY`).
    pub registry: Option<String>,
    /// Give the pod bridge an address pods can reach (`PRISM_K8S_POD_GATEWAY`).
    pub pod_gateway: bool,
    /// Processes per pod (`PRISM_K8S_POD_PIDS_LIMIT`; node.sh's default 1024).
    pub pod_pids_limit: Option<usize>,
    /// The pods' resolv.conf (`PRISM_K8S_POD_RESOLV_CONF`).
    pub pod_resolv_conf: Option<PathBuf>,
}

pub struct NodeCluster {
    pub name: String,
    pub kubeconfig: PathBuf,
}

impl NodeCluster {
    /// Why a real node cannot run here (`PRISM_K8S=0`, `PRISM_K8S_NODE=0`,
    /// or not root: a kubelet needs root), if it cannot.
    pub fn unavailable() -> Option<String> {
        for var in ["PRISM_K8S", "PRISM_K8S_NODE"] {
            if std::env::var(var).as_deref() == Ok("0") {
                return Some(format!("{var}=0"));
            }
        }
        let uid = Command::new("id").arg("-u").output();
        if uid
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() != "0")
            .unwrap_or(true)
        {
            return Some("not root (a kubelet needs root)".into());
        }
        None
    }

    /// Starts the cluster `PREFIX-PID` with its node; panics when it does not come up.
    pub fn up(prefix: &str, options: &NodeOptions) -> NodeCluster {
        Self::try_up(prefix, options).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn try_up(prefix: &str, options: &NodeOptions) -> Result<NodeCluster, String> {
        let name = format!("{prefix}-{}", std::process::id());
        let t0 = Instant::now();
        let mut cmd = Command::new("bash");
        cmd.arg(repo().join("scripts/k8s/cluster.sh"))
            .args(["up", &name, "--node"])
            .env("PRISM_K8S_OWNER_PID", std::process::id().to_string())
            .stderr(Stdio::inherit());
        if let Some(r) = &options.registry {
            cmd.env("PRISM_K8S_REGISTRY", r);
        }
        if options.pod_gateway {
            cmd.env("PRISM_K8S_POD_GATEWAY", "1");
        }
        if let Some(n) = options.pod_pids_limit {
            cmd.env("PRISM_K8S_POD_PIDS_LIMIT", n.to_string());
        }
        if let Some(f) = &options.pod_resolv_conf {
            cmd.env("PRISM_K8S_POD_RESOLV_CONF", f);
        }
        let out = cmd.output().map_err(|e| format!("cluster.sh: {e}"))?;
        let mut cluster = NodeCluster {
            name,
            kubeconfig: PathBuf::new(),
        };
        if !out.status.success() {
            return Err(format!("cluster.sh up {} --node failed", cluster.name));
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        cluster.kubeconfig = PathBuf::from(stdout.lines().last().unwrap_or_default().trim());
        eprintln!(
            "cluster {} with a real node up in {:.1} s",
            cluster.name,
            t0.elapsed().as_secs_f64()
        );
        Ok(cluster)
    }

    /// The node's address on its pod bridge (with `pod_gateway`): pods reach
    /// what listens there; the host's loopback they do not.
    pub fn gateway(&self) -> IpAddr {
        self.node_file("gateway").parse().expect("an address")
    }

    /// Lets the node pull over plain HTTP from `host` (`ip:port`) too.
    pub fn trust_registry(&self, host: &str) {
        let out = Command::new("bash")
            .arg(repo().join("scripts/k8s/node.sh"))
            .args(["trust-registry", &self.name, host])
            .output()
            .expect("node.sh");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    /// `127.0.0.1:PORT` of the registry the node pulls from (the caller's,
    /// or the one node.sh started, holding `busybox:1` and `pause:3.4`).
    pub fn registry(&self) -> String {
        self.node_file("registry.addr")
    }

    /// What node.sh wrote in its state directory (STATE/NAME/node/FILE).
    fn node_file(&self, file: &str) -> String {
        let path = self.kubeconfig.parent().unwrap().join("node").join(file);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .trim()
            .to_owned()
    }

    /// A hostPath PersistentVolume `name` of storage class `class` on `dir`:
    /// the test node has no provisioner, so a claim of that class binds to it.
    pub fn try_host_path_volume(&self, name: &str, class: &str, size: &str, dir: &Path) -> Result<(), String> {
        let pv = serde_json::json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
            "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                     "storageClassName": class, "persistentVolumeReclaimPolicy": "Retain",
                     "hostPath": {"path": dir, "type": "DirectoryOrCreate"}}});
        let file = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
        std::fs::write(file.path(), pv.to_string()).map_err(|e| e.to_string())?;
        self.try_kubectl(&["create", "-f", &file.path().to_string_lossy()])
            .map(|_| ())
    }

    pub fn kubeconfig_text(&self) -> String {
        std::fs::read_to_string(&self.kubeconfig).unwrap()
    }

    /// kubectl against the cluster; panics with kubectl's message when it fails.
    pub fn kubectl(&self, args: &[&str]) -> String {
        self.try_kubectl(args).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn try_kubectl(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new(kubectl())
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .map_err(|e| format!("kubectl: {e}"))?;
        if !out.status.success() {
            return Err(format!("kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr)));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// kubectl from scripts/k8s/ensure-binaries.sh's directory, else the PATH's
/// (looked up once per process, not at every call).
fn kubectl() -> &'static Path {
    static KUBECTL: OnceLock<PathBuf> = OnceLock::new();
    KUBECTL.get_or_init(|| {
        let dir = Command::new("bash")
            .arg(repo().join("scripts/k8s/ensure-binaries.sh"))
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let k = Path::new(dir.trim().lines().last().unwrap_or("")).join("kubectl");
        if k.is_file() {
            k
        } else {
            PathBuf::from("kubectl")
        }
    })
}

impl Drop for NodeCluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo().join("scripts/k8s/cluster.sh"))
            .args(["down", &self.name])
            .stdout(Stdio::null())
            .status();
    }
}
