//! The OpenAPI 3 document, generated from the handlers' annotations and
//! served at `/api/openapi.json`.

use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::*;

mod constraints;
mod errors;
mod ids;

#[derive(OpenApi)]
#[openapi(
    info(title = "Prism", description = "Continuous delivery for Kubernetes: release orders, builds, environments, promotion, deploys, roles, notifications and audit."),
    paths(
        auth::login, auth::logout, auth::token, auth::cli_login, auth::cli_login_poll, auth::me,
        users::list, users::create, users::get, users::update, users::end_sessions,
        tokens::list, tokens::create, tokens::revoke,
        clusters::list, clusters::create, clusters::get, clusters::update, clusters::delete,
        environments::list, environments::create, environments::get, environments::update, environments::delete,
        projects::list, projects::create, projects::get, projects::update, projects::delete, projects::members, projects::grant, projects::revoke,
        applications::list, applications::create, applications::get, applications::update, applications::delete, applications::settings, applications::put_settings,
        releases::list, releases::create, releases::get, releases::history, releases::act, releases::hold, releases::unhold,
        board::board, audit_log::list, jobs::list, jobs::get, jobs::selftest, clusters::health,
        deploys::start, deploys::list, deploys::get, deploys::events, deploys::stream, deploys::review, deploys::rollback, deploys::drift,
        templates::get, templates::versions, templates::version, templates::save, templates::preview,
        builds::start, builds::for_release, builds::list, builds::get, builds::log, builds::log_text, builds::stream, builds::cancel,
        retry::deploy, retry::build,
        stacks::list_stacks, stacks::put_stack, stacks::delete_stack,
        address_policy::get, address_policy::put,
        registries::list_registries, registries::put_registry, registries::delete_registry,
        git_credentials::list_git_credentials, git_credentials::put_git_credential, git_credentials::delete_git_credential,
        executors::list_executors, executors::create_executor, executors::delete_executor,
        base_images::list, base_images::create, base_images::get, base_images::build, base_images::rebuild_applications, base_images::delete,
        environment_namespaces::list, environment_namespaces::bind, environment_namespaces::unbind,
        webhooks::create, webhooks::show, webhooks::update, webhooks::rotate, webhooks::delete, webhooks::receive,
        project_webhooks::create, project_webhooks::show, project_webhooks::update, project_webhooks::rotate,
        project_webhooks::delete, project_webhooks::receive,
        ops_tools::list, ops_tools::put, ops_tools::delete, ops_tools::nginx_config, ops_tools::check,
        governance::list_approvals, governance::approve, governance::reject, governance::get_policy, governance::put_policy, governance::get_schedule, governance::put_schedule,
        notifications::list_channels, notifications::get_channel, notifications::put_channel, notifications::delete_channel,
        notifications::test_channel, notifications::deliveries,
        notifications::subscriptions, notifications::put_subscription, notifications::delete_subscription,
        app_secrets::list_for_application, app_secrets::put_for_application, app_secrets::delete_for_application,
        app_secrets::list_for_project, app_secrets::put_for_project, app_secrets::delete_for_project,
        directory::get_rules, directory::put_rules,
        rollouts::get_strategy, rollouts::put_strategy, rollouts::command,
        rollouts::get_prometheus, rollouts::put_prometheus, rollouts::delete_prometheus,
    ),
    components(schemas(crate::error::ErrorBody)),
    modifiers(&Security),
    security(("bearer" = []), ("session" = [])),
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(crate::auth::caller::SESSION_COOKIE))),
        );
    }
}

/// The document as served: the handlers' annotations, then what is the same
/// for every operation (unique ids, the errors the HTTP edge gives, the
/// request rules the server checks) added in one place.
pub fn document() -> serde_json::Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serializes");
    ids::assign(&mut doc);
    errors::add(&mut doc);
    constraints::apply(&mut doc);
    doc
}

/// Calls `f` with every operation of `doc` and its `METHOD path` key
/// (`POST /api/v1/clusters`), its lower-case method and its path.
fn for_each_operation(doc: &mut serde_json::Value, mut f: impl FnMut(&str, &str, &str, &mut serde_json::Value)) {
    let Some(paths) = doc.get_mut("paths").and_then(serde_json::Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        for method in ["get", "post", "put", "patch", "delete"] {
            if let Some(op) = item.get_mut(method) {
                f(&format!("{} {path}", method.to_uppercase()), method, path, op);
            }
        }
    }
}

/// The same for the life of the process: built once, at the first request.
pub async fn serve() -> Json<serde_json::Value> {
    static DOCUMENT: std::sync::LazyLock<serde_json::Value> = std::sync::LazyLock::new(document);
    Json(DOCUMENT.clone())
}
