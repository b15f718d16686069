//! Prism's REST API as it is on the wire: the request and response bodies
//! the server documents (OpenAPI) and answers with, and the CLI sends and
//! reads. One module per concept. No storage and no HTTP here: the server
//! converts its store rows into these types, so a table can change without
//! the API changing by accident.

pub mod app_secrets;
pub mod applications;
pub mod audit;
pub mod base_images;
pub mod board;
pub mod builds;
pub mod clusters;
pub mod credentials;
pub mod deploys;
pub mod directory;
pub mod environments;
pub mod error;
pub mod governance;
pub mod jobs;
pub mod notifications;
pub mod ops_tools;
pub mod patch;
pub mod projects;
pub mod releases;
pub mod rollouts;
pub mod sessions;
pub mod stacks;
pub mod templates;
pub mod tokens;
pub mod users;
pub mod webhooks;
