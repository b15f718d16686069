//! Administration pages (users and roles, projects with their members and
//! applications, clusters with a health check, environments and their
//! policies), what builds need (registries, base images and their lineage,
//! stacks, git credentials, executors), notification channels and their
//! delivery logs, and every user's API tokens. Each form calls the operation
//! the API calls for the same change (`crate::ops`), so the admin check and the audit event are
//! the same. A refused form shows the page again with the error on top (status kept).

mod address_policy;
mod base_images;
mod build_setup;
mod clusters;
mod directory;
mod environments;
mod executors;
mod git_credentials;
mod governance;
mod notifications;
mod projects;
mod registries;
mod stacks;
mod tokens;
mod users;

pub use address_policy::put_address_policy;
pub use base_images::{base_image, base_images, build_base, create_base, rebuild_applications};
pub use build_setup::setup as build_setup;
pub use clusters::{cluster_health, clusters, create_cluster};
pub use directory::{add_rule as add_directory_rule, delete_rule as delete_directory_rule};
pub use environments::{bind_namespace, create_environment, environments, unbind_namespace, update_environment};
pub use executors::{create_executor, delete_executor};
pub use git_credentials::{delete_git_credential, put_git_credential};
pub use governance::{put_policy as put_env_policy, put_schedule as put_env_schedule};
pub(crate) use notifications::event_label;
pub use notifications::{
    channel_log as notification_log, channels as notification_channels, delete_channel as delete_notification_channel,
    put_channel as put_notification_channel, test_channel as test_notification_channel,
};
pub use projects::{create_app, create_project, grant, project, projects};
pub use registries::{delete_registry, put_registry, registries};
pub use stacks::put_stack;
pub use tokens::{create_token, revoke_token, tokens};
pub use users::{create_user, update_user, users};

use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};

use super::error::{WebError, WebResult};
use crate::error::ApiError;
use crate::ops::OpResult;

/// A refused form: its message and the field it names.
#[derive(Serialize)]
pub(crate) struct Notice {
    message: String,
    field: Option<String>,
}

/// Redirects after a change; shows `page` again with the error when the
/// request was refused for something the user can fix.
pub(crate) async fn after<T, F, Fut>(result: OpResult<T>, to: String, again: F) -> WebResult<Response>
where
    F: FnOnce(Notice) -> Fut,
    Fut: std::future::Future<Output = WebResult<Html<String>>>,
{
    match result {
        Ok(_) => Ok(Redirect::to(&to).into_response()),
        Err(e) if e.is_correctable() => {
            let e = ApiError::from(e);
            let html = again(Notice {
                message: e.message,
                field: e.field,
            })
            .await?;
            Ok((e.status, html).into_response())
        }
        Err(e) => Err(WebError::from(e)),
    }
}

pub(crate) fn checked(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|v| v == "on" || v == "true" || v == "1")
}

/// A comma-separated list field (`shop, blog`), empty entries dropped.
pub(crate) fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

pub(crate) fn opt(s: &str) -> Option<String> {
    Some(s.trim().to_owned()).filter(|s| !s.is_empty())
}

#[derive(Deserialize)]
pub struct NoFields {}
