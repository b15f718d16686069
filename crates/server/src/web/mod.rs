//! The web console: server-rendered pages over the same operations
//! (`crate::ops`), checks and audit trail as the REST API; it never calls the
//! API's handlers (`routes`). No front-end toolchain: minijinja templates
//! (auto-escaped), one stylesheet, a few lines of script for live updates.
//! Forms post and redirect (303), so every page works without JavaScript.
//!
//! - `session`: who is asking (the session cookie) and the CSRF check of every form;
//! - `render`: templates, the layout's data, the text table (`text`);
//! - `error`: the one place errors become HTML pages (the API keeps its JSON);
//!   an operation's `OpError` gets the status the API would answer with;
//! - one file per page group: `login`, `dashboard`, `apps`, `releases`,
//!   `builds`, `deploys`, `audit`, `stats`, `notifications` (a project's
//!   subscriptions), `admin`.

mod admin;
mod apps;
mod audit;
mod builds;
mod dashboard;
mod deploys;
mod error;
mod login;
mod notifications;
mod releases;
mod render;
mod session;
mod stats;
mod text;
mod text_zh_cn;

use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(dashboard::page))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/static/prism.css", get(stylesheet))
        .route("/static/live.js", get(live_script))
        .route("/apps", get(apps::list))
        .route("/apps/{name}", get(apps::page))
        .route("/apps/{name}/settings/{env}", post(apps::save_settings))
        .route(
            "/apps/{name}/templates",
            get(apps::templates).post(apps::save_templates),
        )
        .route("/apps/{name}/preview", post(apps::preview))
        .route("/apps/{name}/build-settings", post(apps::save_build_settings))
        .route("/apps/{name}/envs/{env}/hold", post(releases::hold))
        .route("/apps/{name}/envs/{env}/unhold", post(releases::unhold))
        .route("/apps/{name}/envs/{env}/rollback", post(deploys::rollback))
        .route("/releases", get(releases::list).post(releases::create))
        .route("/releases/{id}", get(releases::page))
        .route("/releases/{id}/act", post(releases::act))
        .route("/releases/{id}/build", post(builds::start))
        .route("/builds/{id}", get(builds::page))
        .route("/builds/{id}/cancel", post(builds::cancel))
        .route("/builds/{id}/retry", post(builds::retry))
        .route("/deploys/{id}", get(deploys::page))
        .route("/deploys/{id}/review", post(deploys::review))
        .route("/deploys/{id}/retry", post(deploys::retry))
        .route("/audit", get(audit::page))
        .route("/stats", get(stats::page))
        .route("/tokens", get(admin::tokens).post(admin::create_token))
        .route("/tokens/{id}/revoke", post(admin::revoke_token))
        .route("/admin/users", get(admin::users).post(admin::create_user))
        .route("/admin/users/{name}", post(admin::update_user))
        .route("/admin/projects", get(admin::projects).post(admin::create_project))
        .route("/admin/projects/{name}", get(admin::project))
        .route("/admin/projects/{name}/members", post(admin::grant))
        .route("/admin/projects/{name}/apps", post(admin::create_app))
        .route("/admin/clusters", get(admin::clusters).post(admin::create_cluster))
        .route("/admin/clusters/{name}/health", post(admin::cluster_health))
        .route(
            "/admin/environments",
            get(admin::environments).post(admin::create_environment),
        )
        .route("/admin/environments/{name}", post(admin::update_environment))
        .route("/admin/environments/{name}/namespaces", post(admin::bind_namespace))
        .route(
            "/admin/environments/{name}/namespaces/{project}/delete",
            post(admin::unbind_namespace),
        )
        .route(
            "/admin/environments/{name}/approval-policy",
            post(admin::put_env_policy),
        )
        .route("/admin/environments/{name}/schedule", post(admin::put_env_schedule))
        .route("/admin/registries", get(admin::registries).post(admin::put_registry))
        .route("/admin/registries/{name}/delete", post(admin::delete_registry))
        .route("/admin/base-images", get(admin::base_images).post(admin::create_base))
        .route("/admin/base-images/{name}", get(admin::base_image))
        .route("/admin/base-images/{name}/build", post(admin::build_base))
        .route(
            "/admin/base-images/{name}/rebuild-applications",
            post(admin::rebuild_applications),
        )
        .route("/admin/build-setup", get(admin::build_setup))
        .route("/admin/stacks", post(admin::put_stack))
        .route("/admin/address-policy", post(admin::put_address_policy))
        .route("/admin/git-credentials", post(admin::put_git_credential))
        .route(
            "/admin/git-credentials/{name}/delete",
            post(admin::delete_git_credential),
        )
        .route("/admin/executors", post(admin::create_executor))
        .route("/admin/executors/{name}/delete", post(admin::delete_executor))
        .route(
            "/admin/notifications",
            get(admin::notification_channels).post(admin::put_notification_channel),
        )
        .route("/admin/notifications/{name}", get(admin::notification_log))
        .route(
            "/admin/notifications/{name}/delete",
            post(admin::delete_notification_channel),
        )
        .route("/admin/notifications/{name}/test", post(admin::test_notification_channel))
        .route(
            "/projects/{name}/notifications",
            get(notifications::page).post(notifications::subscribe),
        )
        .route(
            "/projects/{name}/notifications/{channel}/delete",
            post(notifications::unsubscribe),
        )
        .route("/lang/{code}", get(language))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(text::with_language))
        .layer(axum::middleware::from_fn(security_headers))
}

/// Pages load only our own stylesheet and script, post forms only to us, and
/// may not be framed by another site (clickjacking).
async fn security_headers(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::http::header::{
        HeaderValue, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
    };
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    resp
}

/// Any other path: an HTML 404 (the API's own paths keep their JSON 404).
async fn not_found(uri: axum::http::Uri) -> error::WebError {
    crate::error::ApiError::not_found("page", uri.path()).into()
}

/// Switches the interface language (a cookie) and goes back to the dashboard.
async fn language(axum::extract::Path(code): axum::extract::Path<String>) -> axum::response::Response {
    let Some(lang) = text::Lang::parse(&code) else {
        return axum::http::StatusCode::NOT_FOUND.into_response();
    };
    let value = match lang {
        text::Lang::En => "en",
        text::Lang::ZhCn => "zh-CN",
    };
    let cookie = format!("{}={value}; Path=/; Max-Age=31536000; SameSite=Lax", text::LANG_COOKIE);
    (
        [(axum::http::header::SET_COOKIE, cookie)],
        axum::response::Redirect::to("/"),
    )
        .into_response()
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (axum::http::header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("prism.css"),
    )
}

async fn live_script() -> impl IntoResponse {
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (axum::http::header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("live.js"),
    )
}
