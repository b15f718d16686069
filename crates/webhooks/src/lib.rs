//! Inbound git webhooks: a push or tag from GitHub, Gitea/Forgejo or GitLab
//! becomes a release when the application's rules say so.
//!
//! - [`verify`]: the forge's signature (or token), checked in constant time
//!   before the body is read as JSON.
//! - [`parse`]: the event as one [`PushEvent`], whatever the forge.
//! - [`ReleaseRules`]: which branches and tags make releases (prism-domain's,
//!   shared with the REST API's types, as [`Forge`] is).
//! - [`is_repository`]: which applications of a project a push is for.
//!
//! Nothing here does I/O; the server stores delivery ids (a repeated
//! delivery is ignored) and creates the release.

mod event;
mod repository;
mod verify;

pub use event::{envelope, parse, Envelope, EventError, PushEvent};
pub use prism_domain::release_rules::{glob_match, ReleaseRules};
pub use prism_domain::Forge;
pub use repository::is_repository;
pub use verify::{forge_of, verify, verify_as, Headers, VerifyError};
