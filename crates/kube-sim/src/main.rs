//! `prism-kube-sim`: a simulated Kubernetes node (a kubelet stand-in in the manner of
//! kwok) for Prism's tests against a real control plane (`scripts/k8s/cluster.sh`).
//!
//! It registers a Node (Ready, with capacity) and keeps it and its Lease renewed, watches
//! all pods, binds each unscheduled pod to its node (the `pods/binding` subresource, so no
//! kube-scheduler is needed) and reports each pod on its node as a kubelet would: Running
//! with a pod IP and ready containers. Failures on request:
//! - an image in a registry given with `--registry HOST:PORT` that the registry does not
//!   have: `ErrImagePull`, phase Pending (checked again every few seconds);
//! - pod annotation `prism.test/fail: crashloop`: `CrashLoopBackOff` with a growing
//!   restart count;
//! - pod annotation `prism.test/fail: never-ready`: Running, never ready.
//!
//! Pods in graceful deletion on its node are deleted at once (grace period 0).

mod image;
mod ipam;
mod node;
mod pods;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{controller, watcher, Controller};
use kube::{Api, Client, Config};

#[derive(Parser, Debug)]
#[command(
    name = "prism-kube-sim",
    version,
    about = "A simulated Kubernetes node for Prism's tests"
)]
struct Args {
    /// Kubeconfig of the cluster (its current context is used).
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Name of the simulated Node.
    #[arg(long, default_value = "prism-sim-node")]
    node_name: String,
    /// A registry (HOST:PORT, plain HTTP) whose images must exist for a pod to start;
    /// may be given several times. Images of other registries always "pull".
    #[arg(long = "registry", value_name = "HOST:PORT")]
    registries: Vec<String>,
    /// Address range of pod IPs.
    #[arg(long, default_value = "10.244.0.0/16")]
    pod_cidr: String,
    /// The node's InternalIP (and every pod's hostIP).
    #[arg(long, default_value = "127.0.0.1")]
    node_ip: String,
    /// Node capacity: CPU.
    #[arg(long, default_value = "32")]
    cpu: String,
    /// Node capacity: memory.
    #[arg(long, default_value = "256Gi")]
    memory: String,
    /// Node capacity: pods.
    #[arg(long, default_value = "1000")]
    max_pods: String,
    /// Seconds between two restarts of a crash-looping container.
    #[arg(long, default_value_t = 2.0)]
    crashloop_interval: f64,
    /// How many pods are worked on at once.
    #[arg(long, default_value_t = 64)]
    concurrency: u16,
    /// Exit when this process is gone (tests pass their own pid).
    #[arg(long)]
    owner_pid: Option<u32>,
}

/// The reconciler's error (the controller runtime wants a std error).
#[derive(Debug)]
pub struct SimError(String);

impl std::fmt::Display for SimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SimError {}

impl From<kube::Error> for SimError {
    fn from(e: kube::Error) -> Self {
        SimError(e.to_string())
    }
}

/// Whether a client error is the API's answer with that HTTP status code.
pub fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

/// Now, as a Kubernetes `Time` (seconds).
pub fn now_time() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Now, as a Kubernetes `MicroTime`.
pub fn now_micro() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

async fn client(args: &Args) -> anyhow::Result<Client> {
    let config = match &args.kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path).with_context(|| format!("reading kubeconfig {}", path.display()))?;
            Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .with_context(|| format!("loading kubeconfig {}", path.display()))?
        }
        None => Config::infer().await.context("no --kubeconfig and no usable default")?,
    };
    Client::try_from(config).context("building the client")
}

fn main() -> anyhow::Result<()> {
    // kube's rustls client needs a process-wide crypto provider.
    rustls::crypto::ring::default_provider()
        .install_default()
        .map_err(|_| anyhow!("could not install the rustls crypto provider"))?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PRISM_KUBE_SIM_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    if !(args.crashloop_interval > 0.0 && args.crashloop_interval < 86400.0) {
        return Err(anyhow!("--crashloop-interval must be a positive number of seconds"));
    }
    let ipam = ipam::Ipam::new(&args.pod_cidr).map_err(|e| anyhow!(e))?;
    if let Some(pid) = args.owner_pid {
        tokio::spawn(async move {
            let proc = PathBuf::from(format!("/proc/{pid}"));
            loop {
                if !proc.exists() {
                    tracing::info!(pid, "owner process is gone: exiting");
                    std::process::exit(0);
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    }
    let client = client(&args).await?;
    let version = client
        .apiserver_version()
        .await
        .context("the API server does not answer")?;

    let spec = node::NodeSpec {
        name: args.node_name.clone(),
        ip: args.node_ip.clone(),
        pod_cidr: args.pod_cidr.clone(),
        cpu: args.cpu.clone(),
        memory: args.memory.clone(),
        pods: args.max_pods.clone(),
        kubelet_version: version.git_version.clone(),
    };
    let node_labels = spec.labels();
    let transition = node::register(&client, &spec)
        .await
        .with_context(|| format!("registering node {}", spec.name))?;
    tracing::info!(node = %spec.name, server = %version.git_version, "node registered and Ready");
    tokio::spawn(node::heartbeat(
        client.clone(),
        spec,
        transition,
        Duration::from_secs(10),
    ));

    // Addresses of pods already on this node (a restarted simulator) are taken first, so a
    // new pod never gets one of them.
    let mut ipam = ipam;
    let on_node = Api::<Pod>::all(client.clone())
        .list(&ListParams::default().fields(&format!("spec.nodeName={}", args.node_name)))
        .await
        .context("listing the node's pods")?;
    for p in &on_node.items {
        if let (Some(uid), Some(ip)) = (&p.metadata.uid, p.status.as_ref().and_then(|s| s.pod_ip.as_deref())) {
            ipam.assign(uid, Some(ip));
        }
    }

    let sim = Arc::new(pods::Sim::new(
        client.clone(),
        args.node_name.clone(),
        args.node_ip.clone(),
        node_labels,
        args.registries.clone(),
        Duration::from_secs_f64(args.crashloop_interval),
        ipam,
    ));
    let controller = Controller::new(Api::<Pod>::all(client.clone()), watcher::Config::default())
        .with_config(controller::Config::default().concurrency(args.concurrency));
    let store = controller.store();
    {
        let sim = sim.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                let live: HashSet<String> = store.state().iter().filter_map(|p| p.metadata.uid.clone()).collect();
                sim.forget_except(&live);
            }
        });
    }
    let pods = controller
        .shutdown_on_signal()
        .run(pods::reconcile, pods::error_policy, sim)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "pod controller");
            }
        });
    tracing::info!("watching pods");
    pods.await;
    tracing::info!("stopped");
    Ok(())
}
