//! Prism's Kubernetes layer. Talks to any number of clusters with the
//! credentials Prism stores (a bearer token limited to one namespace is
//! enough), applies objects with server-side apply as field manager `prism`
//! (dry run for diffs and drift, real for deploys), prunes only objects that
//! carry Prism's ownership labels, and judges rollouts the way
//! `kubectl rollout status` does.

pub mod build_job;
mod cache;
mod cluster;
mod diff;
mod error;
mod namespaces;
pub mod progressive;
mod rollout;

pub use cache::ClientCache;
pub use cluster::{Cluster, ClusterConfig, Live};
pub use diff::{diff_objects, redact_secrets, Change, ObjectDiff, REDACTED};
pub use error::{KubeError, Result};
pub use namespaces::NamespaceState;
pub use rollout::{daemonset_status, deployment_status, rollout_status, statefulset_status, RolloutStatus};

pub const FIELD_MANAGER: &str = "prism";

/// kube's rustls client panics without a process-wide crypto provider.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
