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
//!   `builds`, `deploys`, `audit`, `stats`, `admin`, `webhooks` (an
//!   application's git webhook panel), `notifications` (a project's
//!   subscriptions).
//!
//! Accessibility (WCAG 2.1 AA): every GET page goes through `Routes::page`,
//! so `page_paths` lists them all and the browser suite runs axe-core over
//! each (crates/prism/tests/web_a11y.rs). `page.js` runs on every page (the
//! polite announcements after a live reload, keyboard access to boxes that
//! scroll); `live.js` follows a running build or deploy.

mod admin;
mod apps;
mod audit;
mod builds;
mod cli_login;
mod dashboard;
mod deploys;
mod error;
mod login;
mod notifications;
mod ops_tools;
mod releases;
mod render;
mod resend;
mod secrets;
mod session;
mod stats;
mod text;
mod text_zh_cn;
mod webhooks;

use axum::handler::Handler;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

/// The console's router: the route table below with the language and the
/// security headers around it.
pub fn router() -> Router<AppState> {
    routes()
        .router
        .fallback(not_found)
        .layer(axum::middleware::from_fn(text::with_language))
        .layer(axum::middleware::from_fn(security_headers))
}

/// Every path the console answers GET with an HTML page for, in the order of
/// the route table (with `{param}` placeholders). The accessibility test
/// (crates/prism/tests/web_a11y.rs) checks each of them, so a page added to
/// the table is checked without anyone listing it again.
pub fn page_paths() -> Vec<&'static str> {
    routes().pages
}

/// The route table being built: a page (GET, HTML), a form's target
/// (POST), or a resource (GET of a stylesheet, script, icon or redirect).
/// Keeping GET pages behind `page` is what makes `page_paths` complete.
struct Routes {
    router: Router<AppState>,
    pages: Vec<&'static str>,
}

impl Routes {
    fn page<H: Handler<T, AppState>, T: 'static>(mut self, path: &'static str, handler: H) -> Self {
        self.pages.push(path);
        self.router = self.router.route(path, get(handler));
        self
    }

    fn form<H: Handler<T, AppState>, T: 'static>(mut self, path: &'static str, handler: H) -> Self {
        self.router = self.router.route(path, post(handler));
        self
    }

    fn resource<H: Handler<T, AppState>, T: 'static>(mut self, path: &'static str, handler: H) -> Self {
        self.router = self.router.route(path, get(handler));
        self
    }
}

fn routes() -> Routes {
    Routes {
        router: Router::new(),
        pages: vec![],
    }
    .page("/", dashboard::page)
    .page("/login", login::form)
    .form("/login", login::submit)
    .form("/logout", login::logout)
    .resource("/static/prism.css", stylesheet)
    .resource("/static/live.js", live_script)
    .resource("/static/page.js", page_script)
    .resource("/favicon.ico", favicon)
    .resource("/lang/{code}", language)
    .resource("/auth/oidc/login", login::sso_start)
    .resource("/auth/oidc/callback", login::sso_callback)
    .page("/apps", apps::list)
    .page("/apps/{name}", apps::page)
    .form("/apps/{name}/settings/{env}", apps::save_settings)
    .page("/apps/{name}/templates", apps::templates)
    .form("/apps/{name}/templates", apps::save_templates)
    .form("/apps/{name}/preview", apps::preview)
    .form("/apps/{name}/build-settings", apps::save_build_settings)
    .form("/apps/{name}/rollout/{env}", apps::save_rollout)
    .page("/apps/{name}/secrets", secrets::page)
    .form("/apps/{name}/secrets", secrets::set)
    .form("/apps/{name}/secrets/{secret}/delete", secrets::delete)
    .form("/apps/{name}/webhook", webhooks::create)
    .form("/apps/{name}/webhook/update", webhooks::update)
    .form("/apps/{name}/webhook/rotate", webhooks::rotate)
    .form("/apps/{name}/webhook/delete", webhooks::delete)
    .page("/ops-tools", ops_tools::page)
    .page("/cli-login", cli_login::page)
    .form("/cli-login/check", cli_login::check)
    .form("/cli-login", cli_login::approve)
    .page("/projects/{name}/webhook", webhooks::project)
    .form("/projects/{name}/webhook", webhooks::project_create)
    .form("/projects/{name}/webhook/update", webhooks::project_update)
    .form("/projects/{name}/webhook/rotate", webhooks::project_rotate)
    .form("/projects/{name}/webhook/delete", webhooks::project_delete)
    .form("/apps/{name}/envs/{env}/hold", releases::hold)
    .form("/apps/{name}/envs/{env}/unhold", releases::unhold)
    .form("/apps/{name}/envs/{env}/rollback", deploys::rollback)
    .page("/releases", releases::list)
    .form("/releases", releases::create)
    .page("/releases/{id}", releases::page)
    .form("/releases/{id}/act", releases::act)
    .form("/releases/{id}/build", builds::start)
    .page("/builds/{id}", builds::page)
    .form("/builds/{id}/cancel", builds::cancel)
    .form("/builds/{id}/retry", builds::retry)
    .page("/deploys/{id}", deploys::page)
    .form("/deploys/{id}/review", deploys::review)
    .form("/deploys/{id}/retry", deploys::retry)
    .form("/deploys/{id}/rollout/{action}", deploys::steer)
    .page("/audit", audit::page)
    .page("/stats", stats::page)
    .page("/tokens", admin::tokens)
    .form("/tokens", admin::create_token)
    .form("/tokens/{id}/revoke", admin::revoke_token)
    .page("/admin/users", admin::users)
    .form("/admin/users", admin::create_user)
    .form("/admin/users/{name}", admin::update_user)
    .form("/admin/directory/rules", admin::add_directory_rule)
    .form("/admin/directory/rules/{index}/delete", admin::delete_directory_rule)
    .page("/admin/projects", admin::projects)
    .form("/admin/projects", admin::create_project)
    .page("/admin/projects/{name}", admin::project)
    .form("/admin/projects/{name}/members", admin::grant)
    .form("/admin/projects/{name}/apps", admin::create_app)
    .page("/admin/clusters", admin::clusters)
    .form("/admin/clusters", admin::create_cluster)
    .form("/admin/clusters/{name}/health", admin::cluster_health)
    .page("/admin/environments", admin::environments)
    .form("/admin/environments", admin::create_environment)
    .form("/admin/environments/{name}", admin::update_environment)
    .form("/admin/environments/{name}/namespaces", admin::bind_namespace)
    .form(
        "/admin/environments/{name}/namespaces/{project}/delete",
        admin::unbind_namespace,
    )
    .form("/admin/environments/{name}/approval-policy", admin::put_env_policy)
    .form("/admin/environments/{name}/schedule", admin::put_env_schedule)
    .page("/admin/registries", admin::registries)
    .form("/admin/registries", admin::put_registry)
    .form("/admin/registries/{name}/delete", admin::delete_registry)
    .page("/admin/base-images", admin::base_images)
    .form("/admin/base-images", admin::create_base)
    .page("/admin/base-images/{name}", admin::base_image)
    .form("/admin/base-images/{name}/build", admin::build_base)
    .form(
        "/admin/base-images/{name}/rebuild-applications",
        admin::rebuild_applications,
    )
    .page("/admin/build-setup", admin::build_setup)
    .form("/admin/stacks", admin::put_stack)
    .form("/admin/address-policy", admin::put_address_policy)
    .form("/admin/git-credentials", admin::put_git_credential)
    .form("/admin/git-credentials/{name}/delete", admin::delete_git_credential)
    .form("/admin/executors", admin::create_executor)
    .form("/admin/executors/{name}/delete", admin::delete_executor)
    .page("/admin/notifications", admin::notification_channels)
    .form("/admin/notifications", admin::put_notification_channel)
    .page("/admin/notifications/{name}", admin::notification_log)
    .form("/admin/notifications/{name}/delete", admin::delete_notification_channel)
    .form("/admin/notifications/{name}/test", admin::test_notification_channel)
    .page("/projects/{name}/notifications", notifications::page)
    .form("/projects/{name}/notifications", notifications::subscribe)
    .form(
        "/projects/{name}/notifications/{channel}/delete",
        notifications::unsubscribe,
    )
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

async fn page_script() -> impl IntoResponse {
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (axum::http::header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("page.js"),
    )
}

/// The console's icon (browsers ask for /favicon.ico on every page; a 404
/// there is an error in every page's console): a small SVG prism.
async fn favicon() -> impl IntoResponse {
    (
        [
            (axum::http::header::CONTENT_TYPE, "image/svg+xml"),
            (axum::http::header::CACHE_CONTROL, "max-age=86400"),
        ],
        include_str!("favicon.svg"),
    )
}
