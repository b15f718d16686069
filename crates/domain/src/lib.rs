//! Prism's domain: the types that can only hold valid values, and the rules
//! (who may move a release where) as pure functions. Nothing here does I/O, so
//! every rule is tested exhaustively without a store or a server.

pub mod address_policy;
pub mod app_secret;
pub mod approval;
pub mod build;
pub mod build_state;
pub mod channel_kind;
pub mod deploy_state;
pub mod env_var;
pub mod error;
pub mod forge;
pub mod git_ref;
pub mod group_rule;
pub mod metric_gate;
pub mod name;
pub mod namespace;
pub mod policy;
pub mod quantity;
pub mod release;
pub mod release_id;
pub mod release_rules;
pub mod role;
pub mod rollout_strategy;
pub mod username;
pub mod window;
#[macro_use]
pub mod words;

/// What `words!` expands to needs, reachable from any crate that uses it.
#[doc(hidden)]
pub mod __private {
    pub use serde;
    pub use utoipa;
}

pub use address_policy::{AddressPolicy, AddressRules};
pub use app_secret::{SecretDelivery, SecretName, SecretScope, SecretSource};
pub use build::{BuildLimits, BuildNetwork, BuildSettings};
pub use build_state::{BaseBuildState, BuildEvent, BuildFailure, BuildState};
pub use channel_kind::ChannelKind;
pub use deploy_state::{DeployEvent, DeployFailure, DeployKind, DeployState};
pub use error::ValidationError;
pub use forge::Forge;
pub use git_ref::GitRef;
pub use group_rule::GroupRule;
pub use name::Name;
pub use namespace::NamespacePattern;
pub use policy::{DeployRules, EnvPolicy};
pub use quantity::{Cpu, Memory, Resources};
pub use release::{Action, Decision, ReleaseState, SlotEffect, TransitionError};
pub use release_id::ReleaseId;
pub use release_rules::ReleaseRules;
pub use role::{Role, RoleSet};
