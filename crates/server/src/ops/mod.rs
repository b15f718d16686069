//! The use cases: one function per operation the REST API and the console
//! offer (create a release, promote it, start a deploy, review it, roll back,
//! hold an environment, start or cancel a build, put a registry ...).
//!
//! ```text
//! routes/* (JSON) ──┐
//!                   ├──> ops::<concept>::<operation>(ctx, caller, input) ──> store, jobs
//! web/* (HTML)  ────┘         │ authorization (ops::access), one transaction,
//!                             │ the audit record, the job enqueue
//!                             └──> Ok(typed result) | Err(OpError)
//! ```
//!
//! An operation takes the context (the server's state), the caller and a
//! typed input; it never sees HTTP. The transports are thin adapters: they
//! extract the input, call the operation and render the result, and they
//! decide what an [`OpError`] is in HTTP (`crate::error` for JSON,
//! `crate::web::error` for pages). Neither transport calls the other.
//!
//! Reads follow the same path: what a caller may see (and which actions a
//! page may offer) is decided in [`access`] only.
//!
//! One module per concept: `applications`, `releases` (and the release state
//! machine's moves, `transitions`), `holds` (and the board), `builds`,
//! `deploys` (start, review, rollback and auto-rollback), `templates`,
//! `base_images`, `registries`, `git_credentials`, `executors`, `stacks`,
//! `clusters`, `environments`, `projects`, `members`, `users`, `tokens`,
//! `sessions` (sign in and out), `audit`, `jobs`, `webhooks` (git pushes
//! that create releases), `notifications` (channels, subscriptions, the
//! delivery log).
//!
//! To add an operation: write `ops::<concept>::<verb>(ctx, caller, input)`
//! returning `OpResult<T>`; then a handler in `routes/<concept>.rs` (and its
//! OpenAPI path) and, when the console offers it, a form handler in `web/`.

pub mod access;
pub mod address_policy;
pub mod app_secrets;
pub mod applications;
pub mod approvals;
pub mod audit;
pub mod base_images;
pub mod builds;
pub mod cli_logins;
pub mod clusters;
pub mod credential_scope;
pub mod deploys;
pub mod directory;
pub mod environments;
mod error;
pub mod executors;
pub mod git_credentials;
pub mod governance_events;
pub mod holds;
pub mod jobs;
pub mod members;
pub mod notifications;
pub mod ops_tools;
pub mod project_webhooks;
pub mod projects;
pub mod registries;
pub mod releases;
pub mod retry;
pub mod rollouts;
pub mod sessions;
pub mod sso;
pub mod stacks;
pub mod templates;
pub mod tokens;
pub mod transitions;
pub mod users;
pub mod webhooks;
pub mod windows;

pub use error::{referenced, OpError, OpResult};

/// What every operation runs with: the store, the secret box, the settings,
/// the cluster clients and the job runner's wake-up.
pub type Ctx = crate::state::AppState;

/// A secret or name typed by a person (a username, a password, a token):
/// 1 to `max` characters without control characters.
pub(crate) fn secret_text(field: &str, v: &str, max: usize) -> OpResult<()> {
    if v.is_empty() || v.chars().count() > max || v.chars().any(|c| c.is_control()) {
        return Err(OpError::invalid(
            field,
            format!("must be 1 to {max} characters without control characters"),
        ));
    }
    Ok(())
}
