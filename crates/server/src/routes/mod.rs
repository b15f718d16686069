//! The REST API, one file per resource. Handlers are adapters: they extract
//! the caller and the input, call the operation in `crate::ops` (which checks
//! the caller's role and writes the change, its audit event and its job in
//! one transaction), and answer with its result as JSON; an `OpError`
//! becomes a status in `crate::error`. They never call the console (`web`).

pub mod address_policy;
pub mod app_secrets;
pub mod applications;
pub mod audit_log;
pub mod auth;
pub mod base_images;
pub mod board;
pub mod builds;
pub mod clusters;
pub mod deploys;
pub mod directory;
pub mod environment_namespaces;
pub mod environments;
pub mod executors;
pub mod git_credentials;
pub mod governance;
mod health;
pub mod jobs;
pub mod notifications;
pub mod ops_tools;
pub mod project_webhooks;
pub mod projects;
mod query;
pub mod registries;
pub mod releases;
pub mod retry;
pub mod rollouts;
pub mod stacks;
pub mod templates;
pub mod tokens;
pub mod users;
pub mod webhooks;

use axum::routing::{get, post, put};
use axum::Router;

pub use query::ApiQuery;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    let api = Router::new()
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/token", post(auth::token))
        .route("/auth/cli-login", post(auth::cli_login))
        .route("/auth/cli-login/poll", post(auth::cli_login_poll))
        .route("/me", get(auth::me))
        .route("/users", get(users::list).post(users::create))
        .route(
            "/directory/group-rules",
            get(directory::get_rules).put(directory::put_rules),
        )
        .route("/users/{username}", get(users::get).patch(users::update))
        .route("/users/{username}/sessions", axum::routing::delete(users::end_sessions))
        .route("/tokens", get(tokens::list).post(tokens::create))
        .route("/tokens/{id}", axum::routing::delete(tokens::revoke))
        .route("/clusters", get(clusters::list).post(clusters::create))
        .route(
            "/clusters/{name}",
            get(clusters::get).patch(clusters::update).delete(clusters::delete),
        )
        .route("/environments", get(environments::list).post(environments::create))
        .route(
            "/environments/{name}",
            get(environments::get)
                .patch(environments::update)
                .delete(environments::delete),
        )
        .route("/environments/{name}/namespaces", get(environment_namespaces::list))
        .route(
            "/environments/{name}/namespaces/{project}",
            axum::routing::put(environment_namespaces::bind).delete(environment_namespaces::unbind),
        )
        .route("/projects", get(projects::list).post(projects::create))
        .route(
            "/projects/{name}",
            get(projects::get).patch(projects::update).delete(projects::delete),
        )
        .route("/projects/{name}/members", get(projects::members).post(projects::grant))
        .route(
            "/projects/{name}/members/{username}/{role}",
            axum::routing::delete(projects::revoke),
        )
        .route("/applications", get(applications::list).post(applications::create))
        .route(
            "/applications/{name}",
            get(applications::get)
                .patch(applications::update)
                .delete(applications::delete),
        )
        .route(
            "/applications/{name}/webhook",
            get(webhooks::show)
                .post(webhooks::create)
                .patch(webhooks::update)
                .delete(webhooks::delete),
        )
        .route("/applications/{name}/webhook/rotate", post(webhooks::rotate))
        .route(
            "/projects/{name}/webhook",
            get(project_webhooks::show)
                .post(project_webhooks::create)
                .patch(project_webhooks::update)
                .delete(project_webhooks::delete),
        )
        .route("/projects/{name}/webhook/rotate", post(project_webhooks::rotate))
        .route("/applications/{name}/secrets", get(app_secrets::list_for_application))
        .route(
            "/applications/{name}/secrets/{secret}",
            put(app_secrets::put_for_application).delete(app_secrets::delete_for_application),
        )
        .route("/projects/{name}/secrets", get(app_secrets::list_for_project))
        .route(
            "/projects/{name}/secrets/{secret}",
            put(app_secrets::put_for_project).delete(app_secrets::delete_for_project),
        )
        .route("/applications/{name}/settings", get(applications::settings))
        .route("/applications/{name}/settings/{env}", put(applications::put_settings))
        .route(
            "/applications/{name}/environments/{env}/hold",
            post(releases::hold).delete(releases::unhold),
        )
        .route("/releases", get(releases::list).post(releases::create))
        .route("/releases/{id}", get(releases::get))
        .route("/releases/{id}/history", get(releases::history))
        .route("/releases/{id}/actions/{action}", post(releases::act))
        .route("/releases/{id}/deploys", post(deploys::start))
        .route("/releases/{id}/builds", get(builds::for_release).post(builds::start))
        .route("/builds", get(builds::list))
        .route("/base-images", get(base_images::list).post(base_images::create))
        .route("/base-images/{name}", get(base_images::get).delete(base_images::delete))
        .route("/base-images/{name}/build", post(base_images::build))
        .route(
            "/base-images/{name}/rebuild-applications",
            post(base_images::rebuild_applications),
        )
        .route("/stacks", get(stacks::list_stacks))
        .route("/stacks/{name}", put(stacks::put_stack).delete(stacks::delete_stack))
        .route("/address-policy", get(address_policy::get).put(address_policy::put))
        .route("/registries", get(registries::list_registries))
        .route(
            "/registries/{name}",
            put(registries::put_registry).delete(registries::delete_registry),
        )
        .route("/git-credentials", get(git_credentials::list_git_credentials))
        .route(
            "/git-credentials/{name}",
            put(git_credentials::put_git_credential).delete(git_credentials::delete_git_credential),
        )
        .route(
            "/executors",
            get(executors::list_executors).post(executors::create_executor),
        )
        .route("/executors/{name}", axum::routing::delete(executors::delete_executor))
        .route("/builds/{id}", get(builds::get))
        .route("/builds/{id}/log", get(builds::log))
        .route("/builds/{id}/log.txt", get(builds::log_text))
        .route("/builds/{id}/stream", get(builds::stream))
        .route("/builds/{id}/cancel", post(builds::cancel))
        .route("/builds/{id}/retry", post(retry::build))
        .route("/deploys/{id}/retry", post(retry::deploy))
        .route("/deploys", get(deploys::list))
        .route("/deploys/{id}", get(deploys::get))
        .route("/deploys/{id}/events", get(deploys::events))
        .route("/deploys/{id}/stream", get(deploys::stream))
        .route("/deploys/{id}/review", post(deploys::review))
        .route("/deploys/{id}/rollout/{action}", post(rollouts::command))
        .route("/deploys/{id}/approvals", get(governance::list_approvals))
        .route("/deploys/{id}/approve", post(governance::approve))
        .route("/deploys/{id}/reject", post(governance::reject))
        .route(
            "/environments/{name}/approval-policy",
            get(governance::get_policy).put(governance::put_policy),
        )
        .route(
            "/environments/{name}/schedule",
            get(governance::get_schedule).put(governance::put_schedule),
        )
        .route(
            "/applications/{name}/environments/{env}/rollback",
            post(deploys::rollback),
        )
        .route("/applications/{name}/environments/{env}/drift", get(deploys::drift))
        .route("/applications/{name}/preview", post(templates::preview))
        .route("/projects/{name}/templates", get(templates::get).put(templates::save))
        .route("/projects/{name}/templates/versions", get(templates::versions))
        .route("/projects/{name}/templates/versions/{version}", get(templates::version))
        .route("/clusters/{name}/health", get(clusters::health))
        .route(
            "/clusters/{name}/prometheus",
            get(rollouts::get_prometheus)
                .put(rollouts::put_prometheus)
                .delete(rollouts::delete_prometheus),
        )
        .route(
            "/applications/{name}/environments/{env}/rollout",
            get(rollouts::get_strategy).put(rollouts::put_strategy),
        )
        .route("/board", get(board::board))
        .route("/audit", get(audit_log::list))
        .route("/jobs", get(jobs::list))
        .route("/jobs/{id}", get(jobs::get))
        .route("/jobs/selftest", post(jobs::selftest))
        .route("/notification-channels", get(notifications::list_channels))
        .route(
            "/notification-channels/{name}",
            get(notifications::get_channel)
                .put(notifications::put_channel)
                .delete(notifications::delete_channel),
        )
        .route("/notification-channels/{name}/test", post(notifications::test_channel))
        .route(
            "/notification-channels/{name}/deliveries",
            get(notifications::deliveries),
        )
        .route("/projects/{name}/subscriptions", get(notifications::subscriptions))
        .route(
            "/projects/{name}/subscriptions/{channel}",
            put(notifications::put_subscription).delete(notifications::delete_subscription),
        )
        .route("/ops-tools", get(ops_tools::list))
        .route("/ops-tools/nginx-config", get(ops_tools::nginx_config))
        .route(
            "/ops-tools/{cluster}/{name}",
            put(ops_tools::put).delete(ops_tools::delete),
        )
        .fallback(health::api_not_found);
    Router::new()
        .nest("/api/v1", api)
        .route("/api/openapi.json", get(crate::openapi::serve))
        .route("/healthz", get(health::healthz))
        .route("/auth/ops/check", get(ops_tools::check))
        .route(
            "/hooks/git/{app}/{id}",
            post(webhooks::receive).layer(axum::extract::DefaultBodyLimit::max(webhooks::DELIVERY_LIMIT)),
        )
        .route(
            "/hooks/git-project/{project}/{id}",
            post(project_webhooks::receive).layer(axum::extract::DefaultBodyLimit::max(webhooks::DELIVERY_LIMIT)),
        )
        .route(
            "/metrics",
            get(crate::metrics::render).layer(axum::middleware::from_fn(crate::auth::metrics_token::guard)),
        )
}
