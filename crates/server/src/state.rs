//! What every part of the server runs on: the store, the secret box, the
//! settings, the Kubernetes client cache and the job runner's wake-up. It
//! lives apart from the router so that the transports (`routes`, `web`), the
//! use cases (`ops`), `auth`, `jobs` and `metrics` all depend on it and not
//! on each other.

use std::sync::Arc;

use prism_store::Store;

use crate::auth::throttle::LoginThrottle;
use crate::config::Settings;
use crate::metrics::Metrics;
use crate::secrets::SecretBox;

/// Requests larger than this are refused with 413 before they are parsed.
pub const BODY_LIMIT: usize = 1024 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub secrets: SecretBox,
    pub settings: Arc<Settings>,
    pub metrics: Arc<Metrics>,
    pub throttle: Arc<LoginThrottle>,
    /// One Kubernetes client per cluster, rebuilt when its credentials change.
    pub clusters: Arc<prism_kube::ClientCache>,
    /// Wakes this instance's job runner when a request enqueues work.
    pub job_wakeup: Arc<tokio::sync::Notify>,
    /// "Now" for deploy windows and freezes (`settings.clock`).
    pub clock: crate::clock::Clock,
    /// The OpenID Connect relying party (`settings.oidc`), with what it
    /// learnt from the provider (discovery, keys).
    pub oidc: Option<prism_identity::oidc::Oidc>,
}
