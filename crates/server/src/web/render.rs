//! Templates and what every page's layout needs. Templates are compiled into
//! the binary (include_str!) and auto-escaped (their names end in `.html`);
//! interface text comes from `t("message.id")` (see `text`).

use std::sync::OnceLock;

use axum::response::Html;
use minijinja::{context, Environment, Value};
use prism_store::projects;

use super::error::WebResult;
use super::session::csrf_of;
use super::text;
use crate::auth::Caller;
use crate::state::AppState;

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        pub const TEMPLATES: &[(&str, &str)] = &[$(($name, include_str!(concat!("templates/", $name)))),*];
    };
}

templates!(
    "layout.html",
    "macros.html",
    "error.html",
    "login.html",
    "dashboard.html",
    "apps.html",
    "app.html",
    "app_webhook.html",
    "project_webhook.html",
    "templates.html",
    "release_rows.html",
    "deploy_rows.html",
    "windows_notice.html",
    "releases.html",
    "release.html",
    "build_facts.html",
    "build_log.html",
    "build.html",
    "deploy.html",
    "audit.html",
    "tokens.html",
    "users.html",
    "projects.html",
    "project.html",
    "clusters.html",
    "environments.html",
    "stats.html",
    "registries.html",
    "base_images.html",
    "base_image.html",
    "build_setup.html",
    "notifications.html",
    "notification_log.html",
    "subscriptions.html",
    "secrets.html",
    "ops_tools.html",
    "cli_login.html",
);

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("template {name}: {e:#}"));
        }
        env.add_function("t", |id: &str| text::get(id));
        // A fresh key for each form drawn that makes or moves something
        // (`web::resend`): sent twice, it is applied once.
        env.add_function("form_key", || uuid::Uuid::new_v4().to_string());
        env.add_filter("ts", timestamp);
        // `next` for a link: encoded whole (minijinja's urlencode keeps `/`).
        env.add_filter("pathencode", |s: &str| super::error::encode_path(s));
        env
    })
}

/// Unix milliseconds as `2026-01-31 12:00 UTC`.
fn timestamp(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

/// A page without the signed-in layout (login, errors).
pub fn standalone(name: &str, ctx: Value) -> Result<String, minijinja::Error> {
    env().get_template(name)?.render(ctx)
}

/// A page for a signed-in user: the layout shows who they are, their roles
/// per project, and the navigation their roles may use.
pub async fn page(state: &AppState, caller: &Caller, name: &str, ctx: Value) -> WebResult<Html<String>> {
    let memberships = projects::memberships_of(&mut *state.store.conn().await?, caller.user.id).await?;
    let me = context! {
        username => caller.user.username,
        display_name => caller.user.display_name,
        admin => caller.is_admin(),
        memberships => memberships,
    };
    let full = context! { me => me, csrf => csrf_of(caller), ..ctx };
    Ok(Html(env().get_template(name)?.render(full)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every message id a template asks for exists in the text table.
    #[test]
    fn templates_use_known_message_ids() {
        let mut missing = vec![];
        for (name, source) in TEMPLATES {
            let mut rest = *source;
            while let Some(i) = rest.find("t(\"") {
                rest = &rest[i + 3..];
                let id = &rest[..rest.find('"').unwrap()];
                // `t("action." ~ x)`: the prefix's ids are checked below.
                if !id.ends_with('.') && !text::has(id) {
                    missing.push(format!("{name}: {id}"));
                }
            }
        }
        // Ids templates build from data: every action, diff kind and error title.
        let built = ["start_build", "promote", "deploy", "pass", "close", "abandon"]
            .map(|a| format!("action.{a}"))
            .into_iter()
            .chain(["create", "update", "unchanged", "prune", "unknown"].map(|d| format!("diff.{d}")))
            .chain(["forbidden", "not_found", "conflict", "bad_request", "internal"].map(|e| format!("error.{e}")));
        missing.extend(built.filter(|id| !text::has(id)));
        assert!(missing.is_empty(), "unknown message ids: {missing:#?}");
        for (name, _) in TEMPLATES {
            env().get_template(name).expect(name);
        }
    }
}
