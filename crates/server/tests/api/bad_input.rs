//! Bad input, table-driven: every malformed, invalid or dangling request is
//! refused with the documented error body (`{"error", "code", "field"?}`) and
//! leaves the store exactly as it was. Cases that currently fail because of a
//! server bug are at the end, as ignored tests that describe the bug.

use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::Row;

use crate::both_backends;
use crate::harness::{TestApp, ADMIN_PASSWORD};

/// Tables whose row count must not move when a request is refused. `slots`
/// is checked by content instead (see [`Snapshot::changes_since`]).
const COUNTED: &[&str] = &[
    "users",
    "sessions",
    "api_tokens",
    "projects",
    "memberships",
    "clusters",
    "environments",
    "applications",
    "app_env_settings",
    "releases",
    "release_transitions",
    "audit_events",
];

/// Tables whose rows must not change either (a refused PATCH, PUT or action
/// must not half-apply), with the columns compared.
const CONTENT: &[(&str, &str)] = &[
    ("users", "username, display_name, password_hash, is_admin, disabled"),
    ("api_tokens", "id, name, expires_at, revoked_at"),
    ("projects", "name, description"),
    ("memberships", "project_id, user_id, role"),
    (
        "clusters",
        "name, api_url, ca_cert, insecure_skip_tls_verify, updated_at",
    ),
    (
        "environments",
        "name, position, cluster_id, namespace, deploy_roles, requires_review, requires_previous",
    ),
    ("environment_namespaces", "env_id, project_id, namespace"),
    (
        "applications",
        "name, git_url, build_settings, template_settings, updated_at",
    ),
    (
        "app_env_settings",
        "app_id, env_id, replicas, cpu_request, cpu_limit, memory_request, memory_limit, env_vars, updated_at",
    ),
    (
        "releases",
        "id, state, env_id, change_note, commit_sha, image_ref, image_digest, version, updated_at",
    ),
    (
        "stacks",
        "name, build_command, artifact_paths, image_dir, cmd, env, updated_at",
    ),
    ("registries", "name, host, insecure_http, username, updated_at"),
    ("git_credentials", "name, username, host, all_projects, updated_at"),
    ("credential_projects", "kind, credential_id, project_id"),
    ("address_policy", "rules"),
    ("executors", "name, kind, url, job"),
    ("base_images", "name, tier, recipe"),
    ("builds", "id, state"),
];

const SLOT_COLUMNS: &str = "app_id, env_id, current_release_id, incoming_release_id, hold_release_id, hold_user, \
                            hold_since, hold_note, hold_expires_at, version";

type Rows = Vec<Vec<Option<String>>>;

/// All rows of `table`, each column cast to text, sorted.
async fn rows(app: &TestApp, table: &str, columns: &str) -> Rows {
    let casts: Vec<String> = columns
        .split(',')
        .map(|c| format!("CAST({} AS TEXT)", c.trim()))
        .collect();
    let mut c = app.store.conn().await.unwrap();
    let found = sqlx::query(&format!("SELECT {} FROM {table}", casts.join(", ")))
        .fetch_all(&mut *c)
        .await
        .unwrap();
    let mut out: Rows = found
        .iter()
        .map(|r| {
            (0..r.len())
                .map(|i| r.try_get::<Option<String>, _>(i).unwrap())
                .collect()
        })
        .collect();
    out.sort();
    out
}

struct Snapshot {
    counts: Vec<(&'static str, i64)>,
    content: Vec<(&'static str, Rows)>,
    slots: Rows,
}

impl Snapshot {
    async fn take(app: &TestApp) -> Snapshot {
        let mut counts = vec![];
        for t in COUNTED {
            counts.push((*t, app.count(t).await));
        }
        let mut content = vec![];
        for (t, cols) in CONTENT {
            content.push((*t, rows(app, t, cols).await));
        }
        Snapshot {
            counts,
            content,
            slots: rows(app, "slots", SLOT_COLUMNS).await,
        }
    }

    /// What differs from `before`, if anything. A slot row may appear (reading
    /// an application x environment creates its empty slot), but only empty,
    /// and no existing slot may change.
    fn changes_since(&self, before: &Snapshot) -> Vec<String> {
        let mut out = vec![];
        for ((t, a), (_, b)) in before.counts.iter().zip(&self.counts) {
            if a != b {
                out.push(format!("{t}: {a} -> {b} rows"));
            }
        }
        for ((t, a), (_, b)) in before.content.iter().zip(&self.content) {
            if a != b {
                out.push(format!("{t} changed: {a:?} -> {b:?}"));
            }
        }
        for s in before.slots.iter().filter(|s| !self.slots.contains(s)) {
            out.push(format!("slot {s:?} changed"));
        }
        for s in self.slots.iter().filter(|s| !before.slots.contains(s)) {
            let empty = s[2..9].iter().all(Option::is_none) && s[9].as_deref() == Some("0");
            if !empty {
                out.push(format!("slot {s:?} written"));
            }
        }
        out
    }
}

enum Body {
    None,
    Json(Value),
    /// Raw bytes with this Content-Type (none when `None`).
    Raw(Option<&'static str>, Vec<u8>),
}

struct Case {
    what: &'static str,
    method: Method,
    path: String,
    body: Body,
    status: u16,
    code: &'static str,
    /// The `field` expected in the error body; a trailing `*` matches a prefix.
    field: Option<&'static str>,
}

fn case(
    what: &'static str,
    method: Method,
    path: impl Into<String>,
    body: Body,
    status: u16,
    code: &'static str,
    field: Option<&'static str>,
) -> Case {
    Case {
        what,
        method,
        path: path.into(),
        body,
        status,
        code,
        field,
    }
}

/// The common shape: a JSON body refused with 422 `validation` naming `field`.
fn invalid(what: &'static str, method: Method, path: impl Into<String>, body: Value, field: &'static str) -> Case {
    case(what, method, path, Body::Json(body), 422, "validation", Some(field))
}

/// A request without a body.
fn bare(
    what: &'static str,
    method: Method,
    path: impl Into<String>,
    status: u16,
    code: &'static str,
    field: Option<&'static str>,
) -> Case {
    case(what, method, path, Body::None, status, code, field)
}

fn raw(content_type: &'static str, text: &str) -> Body {
    Body::Raw(Some(content_type), text.as_bytes().to_vec())
}

fn json_text(text: &str) -> Body {
    raw("application/json", text)
}

async fn send(app: &TestApp, c: &Case) -> (StatusCode, Value) {
    let mut req = app
        .http
        .request(c.method.clone(), format!("{}{}", app.base, c.path))
        .bearer_auth(&app.admin);
    match &c.body {
        Body::None => {}
        Body::Json(v) => req = req.json(v),
        Body::Raw(ct, bytes) => {
            if let Some(ct) = ct {
                req = req.header(CONTENT_TYPE, *ct);
            }
            req = req.body(bytes.clone());
        }
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}: request failed: {e}", c.what));
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn field_matches(got: Option<&Value>, want: Option<&str>) -> bool {
    match (got, want) {
        (None, None) => true,
        (Some(Value::String(g)), Some(w)) => match w.strip_suffix('*') {
            Some(prefix) => g.starts_with(prefix),
            None => g == w,
        },
        _ => false,
    }
}

/// Sends one case and returns what was wrong with the answer or the store.
async fn check(app: &TestApp, c: &Case) -> Vec<String> {
    let before = Snapshot::take(app).await;
    let (status, body) = send(app, c).await;
    let mut wrong = vec![];
    if status.as_u16() != c.status {
        wrong.push(format!("status {status}, expected {}", c.status));
    }
    if body["error"].as_str().is_none_or(|m| m.trim().is_empty()) {
        wrong.push("no error message".into());
    }
    if body["code"].as_str() != Some(c.code) {
        wrong.push(format!("code {}, expected {:?}", body["code"], c.code));
    }
    if !field_matches(body.get("field"), c.field) {
        wrong.push(format!("field {:?}, expected {:?}", body.get("field"), c.field));
    }
    wrong.extend(Snapshot::take(app).await.changes_since(&before));
    let mut shown = body.to_string();
    shown.truncate(400);
    wrong
        .into_iter()
        .map(|w| format!("{} ({} {}): {w}; body {shown}", c.what, c.method, c.path))
        .collect()
}

async fn check_all(app: &TestApp, cases: &[Case]) {
    let mut failures = vec![];
    for c in cases {
        failures.extend(check(app, c).await);
    }
    assert!(
        failures.is_empty(),
        "{} problem(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

const KUBECONFIG: &str = r#"
apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: c1
  cluster: {server: "https://127.0.0.1:6443"}
users:
- name: u1
  user: {token: abc123}
contexts:
- name: dev
  context: {cluster: c1, user: u1}
"#;

struct Fixtures {
    /// A release in `built`, not yet promoted anywhere.
    built: String,
}

/// A project with an application and its FAT settings, a cluster, a built
/// release, and a second release running in FAT under a hold.
async fn fixtures(app: &TestApp) -> Fixtures {
    app.project_with_app("shop", "web").await;
    let settings = json!({"replicas": 2, "cpu_request": "250m", "cpu_limit": "500m", "memory_request": "256Mi",
                          "memory_limit": "512Mi", "env_vars": {"JAVA_OPTS": "-Xmx256m"}});
    app.ok(
        Method::PUT,
        "/api/v1/applications/web/settings/fat",
        &app.admin,
        Some(settings),
    )
    .await;
    let cluster = json!({"name": "c1", "api_url": "https://10.0.0.1:6443", "token": "abc123"});
    app.ok(Method::POST, "/api/v1/clusters", &app.admin, Some(cluster))
        .await;
    let live = app.built_release("web").await;
    app.deploy_to(&live, "fat").await;
    let hold = json!({"note": "testing"});
    app.ok(
        Method::POST,
        "/api/v1/applications/web/environments/fat/hold",
        &app.admin,
        Some(hold),
    )
    .await;
    let built = app.built_release("web").await;
    let registry = json!({"host": "127.0.0.1:9", "insecure_http": true});
    app.ok(Method::PUT, "/api/v1/registries/main", &app.admin, Some(registry))
        .await;
    Fixtures { built }
}

fn merged(mut base: Value, patch: Value) -> Value {
    base.as_object_mut().unwrap().extend(patch.as_object().unwrap().clone());
    base
}

/// Valid settings for `PUT /applications/web/settings/fat`, with `patch` applied.
fn settings(patch: Value) -> Value {
    merged(
        json!({"replicas": 3, "cpu_request": "250m", "cpu_limit": "1", "memory_request": "256Mi", "memory_limit": "1Gi"}),
        patch,
    )
}

#[rustfmt::skip]
fn cases(f: &Fixtures) -> Vec<Case> {
    use Method as M;
    let act = |action: &str| format!("/api/v1/releases/{}/actions/{action}", f.built);
    let new_release = |git_ref: &str| json!({"application": "web", "git_ref": git_ref, "change_note": "n"});
    let new_app = |name: &str, git_url: &str| json!({"project": "shop", "name": name, "git_url": git_url});
    let new_env = |name: &str, namespace: &str| json!({"name": name, "namespace": namespace});
    let new_cluster = |extra: Value| merged(json!({"name": "c2"}), extra);
    let policy = |roles: Value| json!({"deploy_roles": roles, "requires_review": true, "requires_previous": true});
    let kubeconfig_ca = |ca: &str| KUBECONFIG.replace(r#"{server: "https://127.0.0.1:6443"}"#, &format!(r#"{{server: "https://127.0.0.1:6443", certificate-authority-data: "{ca}"}}"#));
    let big_note = "x".repeat(1024 * 1024 + 512 * 1024);
    let deep = format!(r#"{{"build_settings": {{"a": {}1{}}}}}"#, "[".repeat(5000), "]".repeat(5000));
    const S: &str = "/api/v1/applications/web/settings/fat";
    const P: &str = "/api/v1/projects";
    const A: &str = "/api/v1/applications";
    const E: &str = "/api/v1/environments";
    const C: &str = "/api/v1/clusters";
    const R: &str = "/api/v1/releases";
    const U: &str = "/api/v1/users";
    const T: &str = "/api/v1/tokens";
    const HOLD_UAT: &str = "/api/v1/applications/web/environments/uat/hold";

    vec![
        // The body itself.
        case("truncated JSON", M::POST, P, json_text(r#"{"name": "#), 400, "malformed_json", Some("name")),
        case("not JSON at all", M::POST, P, json_text("name=x"), 400, "malformed_json", None),
        case("invalid UTF-8 in a string", M::POST, P, Body::Raw(Some("application/json"), b"{\"name\": \"\xff\"}".to_vec()), 400, "malformed_json", Some("name")),
        case("nested 5000 deep", M::PATCH, format!("{A}/web"), json_text(&deep), 400, "malformed_json", Some("build_settings.a[0]*")),
        case("a JSON string instead of an object", M::POST, P, Body::Json(json!("x")), 422, "validation", None),
        case("JSON null instead of an object", M::POST, P, Body::Json(Value::Null), 422, "validation", None),
        case("an empty array as an action body", M::POST, act("pass"), Body::Json(json!([])), 422, "validation", None),
        case("text/plain body", M::POST, P, raw("text/plain", r#"{"name": "x"}"#), 415, "unsupported_media_type", None),
        case("form body", M::POST, P, raw("application/x-www-form-urlencoded", "name=x"), 415, "unsupported_media_type", None),
        case("no body, no content type", M::POST, P, Body::None, 415, "unsupported_media_type", None),
        case("settings without a body", M::PUT, S, Body::None, 415, "unsupported_media_type", None),
        case("empty JSON body", M::POST, P, json_text(""), 400, "malformed_json", None),
        case("blank settings body", M::PUT, S, json_text("  "), 400, "malformed_json", None),
        case("1.5 MiB change note", M::POST, R, Body::Json(json!({"application": "web", "git_ref": "main", "change_note": big_note})), 413, "too_large", None),
        case("1.5 MiB action body", M::POST, act("pass"), Body::Json(json!({"note": big_note})), 413, "too_large", None),
        invalid("unknown field", M::POST, P, json!({"name": "ok", "colour": "red"}), "colour"),
        invalid("unknown field in settings", M::PUT, S, settings(json!({"cpu": "1"})), "cpu"),
        invalid("unknown field in an action", M::POST, act("pass"), json!({"reason": "x"}), "reason"),
        invalid("policy not an object", M::POST, E, json!({"name": "qa", "namespace": "qa", "policy": 7}), "policy"),
        invalid("missing git_url", M::POST, A, json!({"project": "shop", "name": "api"}), "git_url"),
        invalid("missing replicas", M::PUT, S, json!({"cpu_request": "1", "cpu_limit": "1", "memory_request": "1Gi", "memory_limit": "1Gi"}), "replicas"),
        invalid("null for a required name", M::POST, P, json!({"name": null}), "name"),
        invalid("replicas as a string", M::PUT, S, settings(json!({"replicas": "3"})), "replicas"),
        invalid("replicas as a fraction", M::PUT, S, settings(json!({"replicas": 1.5})), "replicas"),
        invalid("replicas 1e30", M::PUT, S, settings(json!({"replicas": 1e30})), "replicas"),
        invalid("position beyond i64", M::POST, E, json!({"name": "qa", "namespace": "qa", "position": 1e20}), "position"),
        case("expires_in_days beyond f64", M::POST, T, json_text(r#"{"expires_in_days": 1e400}"#), 400, "malformed_json", Some("expires_in_days")),
        invalid("env_vars as a list", M::PUT, S, settings(json!({"env_vars": ["A=1"]})), "env_vars"),
        invalid("env var value a number", M::PUT, S, settings(json!({"env_vars": {"A": 1}})), "env_vars.A"),
        // Names must be DNS-1123 labels.
        invalid("uppercase project name", M::POST, P, json!({"name": "Shop"}), "name"),
        invalid("empty project name", M::POST, P, json!({"name": ""}), "name"),
        invalid("project name a/b", M::POST, P, json!({"name": "a/b"}), "name"),
        invalid("project name ../etc", M::POST, P, json!({"name": "../etc"}), "name"),
        invalid("unicode project name", M::POST, P, json!({"name": "café"}), "name"),
        invalid("project description over 2000", M::POST, P, json!({"name": "ok", "description": "d".repeat(2001)}), "description"),
        invalid("underscore in an application name", M::POST, A, new_app("my_app", "https://git.example/a.git"), "name"),
        invalid("application name ending in '-'", M::POST, A, new_app("api-", "https://git.example/a.git"), "name"),
        invalid("environment name with a leading '-'", M::POST, E, new_env("-qa", "qa"), "name"),
        invalid("environment name with a dot", M::POST, E, new_env("qa.1", "qa"), "name"),
        invalid("namespace ../etc", M::POST, E, new_env("qa", "../etc"), "namespace"),
        invalid("namespace with a space", M::POST, E, new_env("qa", "kube system"), "namespace"),
        invalid("namespace patched to uppercase", M::PATCH, format!("{E}/fat"), json!({"namespace": "FAT"}), "namespace"),
        invalid("namespace pattern with an unknown placeholder", M::POST, E, new_env("qa", "{team}-{environment}"), "namespace"),
        invalid("namespace pattern giving no label", M::PATCH, format!("{E}/fat"), json!({"namespace": "{project}_x"}), "namespace"),
        invalid("namespace binding not a label", M::PUT, format!("{E}/fat/namespaces/shop"), json!({"namespace": "Shop NS"}), "namespace"),
        invalid("namespace binding for an unknown project", M::PUT, format!("{E}/fat/namespaces/nope"), json!({"namespace": "nope-fat"}), "project"),
        invalid("cluster name of 64 characters", M::POST, C, json!({"name": "c".repeat(64), "api_url": "https://10.0.0.2:6443"}), "name"),
        invalid("cluster name with a space", M::POST, C, json!({"name": "my cluster", "api_url": "https://10.0.0.2:6443"}), "name"),
        // Users, memberships and tokens.
        invalid("username with uppercase and a space", M::POST, U, json!({"username": "John Doe", "password": "long-enough-password"}), "username"),
        invalid("username ../x", M::POST, U, json!({"username": "../x", "password": "long-enough-password"}), "username"),
        invalid("password too short", M::POST, U, json!({"username": "bob", "password": "short"}), "password"),
        invalid("display name with a control character", M::PATCH, format!("{U}/admin"), json!({"display_name": "a\u{7}b"}), "display_name"),
        case("update an unknown user", M::PATCH, format!("{U}/nobody"), Body::Json(json!({"display_name": "x"})), 404, "not_found", Some("user")),
        case("demote the last admin", M::PATCH, format!("{U}/admin"), Body::Json(json!({"admin": false})), 409, "conflict", Some("admin")),
        invalid("unknown role in a grant", M::POST, format!("{P}/shop/members"), json!({"username": "admin", "role": "boss"}), "role"),
        invalid("admin is not a project role", M::POST, format!("{P}/shop/members"), json!({"username": "admin", "role": "admin"}), "role"),
        invalid("grant to an empty username", M::POST, format!("{P}/shop/members"), json!({"username": "", "role": "developer"}), "username"),
        bare("revoke an unknown role", M::DELETE, format!("{P}/shop/members/admin/boss"), 422, "validation", Some("role")),
        bare("revoke a role not held", M::DELETE, format!("{P}/shop/members/admin/tester"), 404, "not_found", Some("membership")),
        invalid("token for 0 days", M::POST, T, json!({"expires_in_days": 0}), "expires_in_days"),
        invalid("token for 366 days", M::POST, T, json!({"expires_in_days": 366}), "expires_in_days"),
        invalid("token with a blank name", M::POST, T, json!({"name": " "}), "name"),
        invalid("login token for 0 days", M::POST, "/api/v1/auth/token", json!({"username": "admin", "password": ADMIN_PASSWORD, "expires_in_days": 0}), "expires_in_days"),
        bare("revoke token id not a number", M::DELETE, format!("{T}/abc"), 422, "validation", Some("id")),
        bare("revoke an unknown token", M::DELETE, format!("{T}/999999"), 404, "not_found", Some("token")),
        // Resources.
        invalid("cpu abc", M::PUT, S, settings(json!({"cpu_request": "abc"})), "cpu_request"),
        invalid("cpu -1", M::PUT, S, settings(json!({"cpu_request": "-1"})), "cpu_request"),
        invalid("cpu 1.2.3", M::PUT, S, settings(json!({"cpu_request": "1.2.3"})), "cpu_request"),
        invalid("cpu 0", M::PUT, S, settings(json!({"cpu_request": "0"})), "cpu_request"),
        invalid("cpu 1mi", M::PUT, S, settings(json!({"cpu_limit": "1mi"})), "cpu_limit"),
        invalid("cpu finer than a millicore", M::PUT, S, settings(json!({"cpu_request": "0.0001"})), "cpu_request"),
        invalid("cpu 1e18 overflows", M::PUT, S, settings(json!({"cpu_limit": "1e18"})), "cpu_limit"),
        invalid("memory 1Gb", M::PUT, S, settings(json!({"memory_request": "1Gb"})), "memory_request"),
        invalid("memory of 1.5 bytes", M::PUT, S, settings(json!({"memory_request": "1.5"})), "memory_request"),
        invalid("memory 0", M::PUT, S, settings(json!({"memory_limit": "0"})), "memory_limit"),
        invalid("memory 8Ei overflows", M::PUT, S, settings(json!({"memory_limit": "8Ei"})), "memory_limit"),
        invalid("cpu limit below request", M::PUT, S, settings(json!({"cpu_request": "2", "cpu_limit": "500m"})), "cpu_limit"),
        invalid("memory limit below request", M::PUT, S, settings(json!({"memory_request": "2Gi", "memory_limit": "1Gi"})), "memory_limit"),
        invalid("replicas -1", M::PUT, S, settings(json!({"replicas": -1})), "replicas"),
        invalid("replicas 100000", M::PUT, S, settings(json!({"replicas": 100_000})), "replicas"),
        invalid("env var 1ABC", M::PUT, S, settings(json!({"env_vars": {"1ABC": "x"}})), "env_vars.1ABC"),
        invalid("env var A-B", M::PUT, S, settings(json!({"env_vars": {"A-B": "x"}})), "env_vars.A-B"),
        case("settings for an unknown environment", M::PUT, format!("{A}/web/settings/qa"), Body::Json(settings(json!({}))), 404, "not_found", Some("environment")),
        case("settings for an unknown application", M::PUT, format!("{A}/nope/settings/fat"), Body::Json(settings(json!({}))), 404, "not_found", Some("application")),
        // Git.
        invalid("git ref --upload-pack=x", M::POST, R, new_release("--upload-pack=x"), "git_ref"),
        invalid("git ref a..b", M::POST, R, new_release("a..b"), "git_ref"),
        invalid("git ref a b", M::POST, R, new_release("a b"), "git_ref"),
        invalid("git ref x.lock", M::POST, R, new_release("x.lock"), "git_ref"),
        invalid("git ref a~1", M::POST, R, new_release("a~1"), "git_ref"),
        invalid("empty git ref", M::POST, R, new_release(""), "git_ref"),
        invalid("blank change note", M::POST, R, json!({"application": "web", "git_ref": "main", "change_note": "   "}), "change_note"),
        invalid("git_url ftp://x", M::POST, A, new_app("api", "ftp://x"), "git_url"),
        invalid("git_url -oProxyCommand=x", M::POST, A, new_app("api", "-oProxyCommand=x"), "git_url"),
        invalid("scp-like git_url starting with '-'", M::POST, A, new_app("api", "-oProxyCommand=x@h:p"), "git_url"),
        invalid("git_url with a space", M::POST, A, new_app("api", "https://git.example/a b.git"), "git_url"),
        invalid("git_url patched to ftp://", M::PATCH, format!("{A}/web"), json!({"git_url": "ftp://x"}), "git_url"),
        invalid("build_settings not an object", M::POST, A, merged(new_app("api", "https://git.example/a.git"), json!({"build_settings": [1]})), "build_settings"),
        invalid("template_settings patched to a string", M::PATCH, format!("{A}/web"), json!({"template_settings": "x"}), "template_settings"),
        // References to records that do not exist.
        invalid("application in an unknown project", M::POST, A, json!({"project": "nope", "name": "api", "git_url": "https://git.example/a.git"}), "project"),
        invalid("release of an unknown application", M::POST, R, json!({"application": "nope", "git_ref": "main", "change_note": "n"}), "application"),
        invalid("promote to an unknown environment", M::POST, act("promote"), json!({"environment": "nope"}), "environment"),
        invalid("environment on an unknown cluster", M::POST, E, json!({"name": "qa", "namespace": "qa", "cluster": "nope"}), "cluster"),
        invalid("environment patched to an unknown cluster", M::PATCH, format!("{E}/fat"), json!({"cluster": "nope"}), "cluster"),
        invalid("grant to an unknown user", M::POST, format!("{P}/shop/members"), json!({"username": "nobody", "role": "developer"}), "username"),
        case("grant in an unknown project", M::POST, format!("{P}/nope/members"), Body::Json(json!({"username": "admin", "role": "developer"})), 404, "not_found", Some("project")),
        bare("releases of an unknown application", M::GET, format!("{R}?application=nope"), 404, "not_found", Some("application")),
        case("patch an unknown cluster", M::PATCH, format!("{C}/nope"), Body::Json(json!({"insecure_skip_tls_verify": true})), 404, "not_found", Some("cluster")),
        bare("delete an unknown cluster", M::DELETE, format!("{C}/nope"), 404, "not_found", Some("cluster")),
        bare("delete an environment in use", M::DELETE, format!("{E}/fat"), 409, "conflict", None),
        bare("delete a project with applications", M::DELETE, format!("{P}/shop"), 409, "conflict", None),
        bare("delete an application with releases", M::DELETE, format!("{A}/web"), 409, "conflict", None),
        // Release ids and actions.
        bare("unknown release id", M::GET, format!("{R}/r999999"), 404, "not_found", Some("release")),
        case("action on an unknown release", M::POST, format!("{R}/r999999/actions/pass"), Body::Json(json!({})), 404, "not_found", Some("release")),
        bare("release id 42", M::GET, format!("{R}/42"), 404, "not_found", Some("id")),
        bare("release id r01", M::GET, format!("{R}/r01"), 404, "not_found", Some("id")),
        bare("release id ../r1", M::GET, format!("{R}/..%2Fr1"), 404, "not_found", Some("id")),
        bare("history of release id r1a", M::GET, format!("{R}/r1a/history"), 404, "not_found", Some("id")),
        case("action on release id R1", M::POST, format!("{R}/R1/actions/pass"), Body::Json(json!({})), 404, "not_found", Some("id")),
        invalid("unknown action", M::POST, act("explode"), json!({}), "action"),
        invalid("promote without environment", M::POST, act("promote"), json!({}), "environment"),
        invalid("deploy without environment", M::POST, act("deploy"), json!({"note": "go"}), "environment"),
        invalid("override_reason on close", M::POST, act("close"), json!({"override_reason": "because"}), "override_reason"),
        invalid("commit_sha not hex", M::POST, act("build_succeeded"), json!({"commit_sha": "zzzzzzz"}), "commit_sha"),
        invalid("commit_sha too short", M::POST, act("build_succeeded"), json!({"commit_sha": "abc"}), "commit_sha"),
        invalid("commit_sha with pass", M::POST, act("pass"), json!({"commit_sha": "0123456789abcdef"}), "commit_sha"),
        invalid("image_digest without sha256:", M::POST, act("build_succeeded"), json!({"image_digest": "a".repeat(64)}), "image_digest"),
        invalid("image_digest in uppercase", M::POST, act("build_succeeded"), json!({"image_digest": format!("sha256:{}", "A".repeat(64))}), "image_digest"),
        invalid("image_ref with a space", M::POST, act("build_succeeded"), json!({"image_ref": "registry.local/web: r1"}), "image_ref"),
        invalid("action note over 10000", M::POST, act("pass"), json!({"note": "n".repeat(10_001)}), "note"),
        case("pass a built release", M::POST, act("pass"), Body::Json(json!({})), 409, "invalid_transition", Some("state")),
        case("promote past FAT", M::POST, act("promote"), Body::Json(json!({"environment": "prd"})), 409, "out_of_order", Some("environment")),
        case("promote into a held FAT", M::POST, act("promote"), Body::Json(json!({"environment": "fat"})), 409, "held", Some("environment")),
        // Clusters.
        invalid("cluster api_url ftp://", M::POST, C, new_cluster(json!({"api_url": "ftp://10.0.0.2"})), "api_url"),
        invalid("cluster api_url javascript:", M::PATCH, format!("{C}/c1"), json!({"api_url": "javascript:alert(1)"}), "api_url"),
        invalid("cluster without api_url or kubeconfig", M::POST, C, new_cluster(json!({"token": "abc"})), "api_url"),
        invalid("cluster ca_cert not PEM", M::POST, C, new_cluster(json!({"api_url": "https://10.0.0.2:6443", "ca_cert": "not a cert"})), "ca_cert"),
        invalid("cluster token with spaces", M::POST, C, new_cluster(json!({"api_url": "https://10.0.0.2:6443", "token": "abc def"})), "token"),
        invalid("cluster token patched to blank", M::PATCH, format!("{C}/c1"), json!({"token": "  "}), "token"),
        invalid("kubeconfig not YAML", M::POST, C, new_cluster(json!({"kubeconfig": "clusters: [unclosed"})), "kubeconfig"),
        invalid("kubeconfig context not found", M::POST, C, new_cluster(json!({"kubeconfig": KUBECONFIG, "context": "prod"})), "context"),
        invalid("kubeconfig and api_url both", M::POST, C, new_cluster(json!({"kubeconfig": KUBECONFIG, "api_url": "https://10.0.0.2:6443"})), "kubeconfig"),
        invalid("kubeconfig server ftp://", M::POST, C, new_cluster(json!({"kubeconfig": KUBECONFIG.replace("https://127.0.0.1:6443", "ftp://x")})), "api_url"),
        invalid("kubeconfig CA not base64", M::POST, C, new_cluster(json!({"kubeconfig": kubeconfig_ca("!!!")})), "kubeconfig"),
        invalid("kubeconfig CA not PEM", M::POST, C, new_cluster(json!({"kubeconfig": kubeconfig_ca("aGVsbG8=")})), "ca_cert"),
        // Environments and policies.
        invalid("policy with no deploy roles", M::POST, E, json!({"name": "qa", "namespace": "qa", "policy": policy(json!([]))}), "policy.deploy_roles"),
        invalid("policy patched to no deploy roles", M::PATCH, format!("{E}/uat"), json!({"policy": policy(json!([]))}), "policy.deploy_roles"),
        invalid("policy with an unknown role", M::POST, E, json!({"name": "qa", "namespace": "qa", "policy": policy(json!(["boss"]))}), "policy.deploy_roles[0]"),
        invalid("environment position -1", M::POST, E, json!({"name": "qa", "namespace": "qa", "position": -1}), "position"),
        // Holds.
        invalid("hold for 0 minutes", M::POST, HOLD_UAT, json!({"expires_in_minutes": 0}), "expires_in_minutes"),
        invalid("hold for 31 days", M::POST, HOLD_UAT, json!({"expires_in_minutes": 44_641}), "expires_in_minutes"),
        case("hold an already held FAT", M::POST, format!("{A}/web/environments/fat/hold"), Body::Json(json!({})), 409, "held", Some("environment")),
        case("hold where nothing runs", M::POST, HOLD_UAT, Body::Json(json!({})), 409, "nothing_deployed", Some("environment")),
        case("hold in an unknown environment", M::POST, format!("{A}/web/environments/qa/hold"), Body::Json(json!({})), 404, "not_found", Some("environment")),
        bare("unhold where nothing is held", M::DELETE, HOLD_UAT, 409, "not_held", Some("environment")),
        bare("unhold in an unknown environment", M::DELETE, format!("{A}/web/environments/qa/hold"), 404, "not_found", Some("environment")),
        bare("unhold with an unknown parameter", M::DELETE, format!("{A}/web/environments/fat/hold?why=x"), 400, "validation", Some("why")),
        // Query strings.
        bare("release list limit 0", M::GET, format!("{R}?limit=0"), 422, "validation", Some("limit")),
        bare("release list limit 501", M::GET, format!("{R}?limit=501"), 422, "validation", Some("limit")),
        bare("release list limit abc", M::GET, format!("{R}?limit=abc"), 400, "validation", Some("limit")),
        bare("release list limit beyond i64", M::GET, format!("{R}?limit=99999999999999999999"), 400, "validation", Some("limit")),
        bare("release list unknown state", M::GET, format!("{R}?state=flying"), 422, "validation", Some("state")),
        bare("release list empty state", M::GET, format!("{R}?state="), 422, "validation", Some("state")),
        bare("release list cursor 42", M::GET, format!("{R}?before=42"), 422, "validation", Some("before")),
        bare("release list unknown parameter", M::GET, format!("{R}?colour=red"), 400, "validation", Some("colour")),
        bare("audit since not a time", M::GET, "/api/v1/audit?since=yesterday", 422, "validation", Some("since")),
        bare("audit until month 13", M::GET, "/api/v1/audit?until=2026-13-01T00:00:00Z", 422, "validation", Some("until")),
        bare("audit limit 1001", M::GET, "/api/v1/audit?limit=1001", 422, "validation", Some("limit")),
        bare("audit before not a number", M::GET, "/api/v1/audit?before=x", 400, "validation", Some("before")),
        bare("tokens all=maybe", M::GET, format!("{T}?all=maybe"), 400, "validation", Some("all")),
        bare("job id not a number", M::GET, "/api/v1/jobs/abc", 422, "validation", Some("id")),
        invalid("selftest duration -1", M::POST, "/api/v1/jobs/selftest", json!({"duration_ms": -1}), "duration_ms"),
        case("no such endpoint", M::POST, "/api/v1/nothing-here", Body::Json(json!({})), 404, "not_found", None),
        // Build setup.
        invalid("stack artifact path ../x", M::PUT, "/api/v1/stacks/mine", json!({"artifact_paths": ["../x"]}), "artifact_paths[0]"),
        invalid("stack artifact path /etc", M::PUT, "/api/v1/stacks/mine", json!({"artifact_paths": ["/etc"]}), "artifact_paths[0]"),
        invalid("stack image_dir relative", M::PUT, "/api/v1/stacks/mine", json!({"image_dir": "app"}), "image_dir"),
        invalid("stack named ../etc", M::PUT, "/api/v1/stacks/..%2Fetc", json!({}), "name"),
        invalid("stack env 1BAD", M::PUT, "/api/v1/stacks/mine", json!({"env": {"1BAD": "x"}}), "env.1BAD"),
        invalid("registry host with a space", M::PUT, "/api/v1/registries/r2", json!({"host": "a b"}), "host"),
        invalid("registry user without password", M::PUT, "/api/v1/registries/r2", json!({"host": "r.example.com", "username": "u"}), "password"),
        invalid("git credential with an empty password", M::PUT, "/api/v1/git-credentials/g", json!({"username": "u", "password": "", "host": "git.example"}), "password"),
        invalid("git credential host with a path", M::PUT, "/api/v1/git-credentials/g", json!({"username": "u", "password": "p", "host": "git.example/x"}), "host"),
        invalid("git credential for an unknown project", M::PUT, "/api/v1/git-credentials/g", json!({"username": "u", "password": "p", "host": "git.example", "projects": ["nope"]}), "projects"),
        invalid("registry for an unknown project", M::PUT, "/api/v1/registries/r2", json!({"host": "r.example.com", "projects": ["nope"]}), "projects"),
        invalid("registry token realm host with a space", M::PUT, "/api/v1/registries/r2", json!({"host": "r.example.com", "token_realm_hosts": ["a b"]}), "token_realm_hosts[0]"),
        invalid("executor for an unknown project", M::POST, "/api/v1/executors", json!({"name": "ci", "kind": "jenkins", "url": "https://ci.example.com", "job": "b", "username": "u", "token": "t", "projects": ["nope"]}), "projects"),
        invalid("address policy range /33", M::PUT, "/api/v1/address-policy", json!({"denied": ["10.0.0.0/33"]}), "denied[0]"),
        invalid("address policy host name", M::PUT, "/api/v1/address-policy", json!({"allowed": ["example.com"]}), "allowed[0]"),
        invalid("executor of kind gitlab", M::POST, "/api/v1/executors", json!({"name": "ci", "kind": "gitlab", "url": "https://ci.example.com", "job": "b", "username": "u", "token": "t"}), "kind"),
        invalid("executor job ../x", M::POST, "/api/v1/executors", json!({"name": "ci", "kind": "jenkins", "url": "https://ci.example.com", "job": "../x", "username": "u", "token": "t"}), "job"),
        invalid("executor url ftp://", M::POST, "/api/v1/executors", json!({"name": "ci", "kind": "jenkins", "url": "ftp://ci", "job": "b", "username": "u", "token": "t"}), "url"),
        invalid("executor named local", M::POST, "/api/v1/executors", json!({"name": "local", "kind": "jenkins", "url": "https://ci.example.com", "job": "b", "username": "u", "token": "t"}), "name"),
        invalid("kubernetes runner on an unknown cluster", M::POST, "/api/v1/executors", json!({"name": "k8s", "kind": "kubernetes", "kubernetes": {"cluster": "nope", "namespace": "builds"}}), "kubernetes.cluster"),
        invalid("kubernetes runner namespace Builds_1", M::POST, "/api/v1/executors", json!({"name": "k8s", "kind": "kubernetes", "kubernetes": {"cluster": "nope", "namespace": "Builds_1"}}), "kubernetes.namespace"),
        invalid("kubernetes runner toleration operator", M::POST, "/api/v1/executors", json!({"name": "k8s", "kind": "kubernetes", "kubernetes": {"cluster": "c", "namespace": "b", "tolerations": [{"key": "k", "operator": "Maybe"}]}}), "kubernetes.tolerations[0].operator"),
        invalid("kubernetes runner with a Jenkins token", M::POST, "/api/v1/executors", json!({"name": "k8s", "kind": "kubernetes", "token": "t", "kubernetes": {"cluster": "c", "namespace": "b"}}), "token"),
        invalid("executor kind docker", M::POST, "/api/v1/executors", json!({"name": "k8s", "kind": "docker"}), "kind"),
        invalid("base tier 3", M::POST, "/api/v1/base-images", json!({"name": "b", "tier": 3, "registry": "main", "repository": "base/b"}), "tier"),
        invalid("base in an unknown registry", M::POST, "/api/v1/base-images", json!({"name": "b", "tier": 1, "registry": "nope", "repository": "base/b"}), "registry"),
        invalid("base rootfs ../../etc/shadow", M::POST, "/api/v1/base-images", json!({"name": "b", "tier": 1, "registry": "main", "repository": "base/b", "recipe": {"rootfs": "../../etc/shadow"}}), "recipe.rootfs"),
        invalid("base rootfs absolute", M::POST, "/api/v1/base-images", json!({"name": "b", "tier": 1, "registry": "main", "repository": "base/b", "recipe": {"rootfs": "/etc/shadow"}}), "recipe.rootfs"),
        invalid("base layer source ../", M::POST, "/api/v1/base-images", json!({"name": "b", "tier": 1, "registry": "main", "repository": "base/b", "recipe": {"rootfs": "r.tar", "layers": [{"source": "../x"}]}}), "recipe.layers[0].source"),
        invalid("base recipe unknown key", M::POST, "/api/v1/base-images", json!({"name": "b", "tier": 1, "registry": "main", "repository": "base/b", "recipe": {"rootfz": "r.tar"}}), "recipe"),
        invalid("tier-2 base without a parent", M::POST, "/api/v1/base-images", json!({"name": "b", "tier": 2, "registry": "main", "repository": "base/b", "recipe": {"layers": [{"source": "x"}]}}), "parent"),
        invalid("base repository Base/B", M::POST, "/api/v1/base-images", json!({"name": "b", "tier": 1, "registry": "main", "repository": "Base/B"}), "repository"),
        invalid("base tag with a slash", M::POST, "/api/v1/base-images", json!({"name": "b", "tier": 1, "registry": "main", "repository": "base/b", "tag": "a/b"}), "tag"),
        invalid("build settings with an unknown key", M::PATCH, format!("{A}/web"), json!({"build_settings": {"stakc": "node"}}), "build_settings"),
        invalid("build settings artifact ../x", M::PATCH, format!("{A}/web"), json!({"build_settings": {"artifact_paths": ["ok", "../x"]}}), "build_settings.artifact_paths[1]"),
        invalid("build settings workdir ../", M::PATCH, format!("{A}/web"), json!({"build_settings": {"workdir": "../"}}), "build_settings.workdir"),
        invalid("build settings unknown registry", M::PATCH, format!("{A}/web"), json!({"build_settings": {"registry": "nope"}}), "build_settings.registry"),
        invalid("build settings unknown executor", M::PATCH, format!("{A}/web"), json!({"build_settings": {"executor": "nope"}}), "build_settings.executor"),
        invalid("build settings timeout 2 days", M::PATCH, format!("{A}/web"), json!({"build_settings": {"timeout_seconds": 172800}}), "build_settings.timeout_seconds"),
        invalid("release built at once without build settings", M::POST, R, json!({"application": "web", "git_ref": "main", "change_note": "n", "build": true}), "build_settings.base_image"),
        invalid("build of an application without build settings", M::POST, format!("{R}/{}/builds", f.built), json!({}), "build_settings.base_image"),
        bare("unknown build", M::GET, "/api/v1/builds/999", 404, "not_found", Some("build")),
        bare("builds in an unknown state", M::GET, "/api/v1/builds?state=bogus", 422, "validation", Some("state")),
        bare("build log limit 0", M::GET, "/api/v1/builds?limit=0", 422, "validation", Some("limit")),
        bare("cancel an unknown build", M::POST, "/api/v1/builds/999/cancel", 404, "not_found", Some("build")),
    ]
}

both_backends!(bad_input_is_refused_and_writes_nothing, |app| {
    let f = fixtures(app).await;
    let cases = cases(&f);
    assert!(cases.len() >= 40, "{} cases", cases.len());
    check_all(app, &cases).await;
});

both_backends!(duplicate_project_name_is_a_conflict_with_one_row, |app| {
    app.ok(
        Method::POST,
        "/api/v1/projects",
        &app.admin,
        Some(json!({"name": "shop"})),
    )
    .await;
    let again = json!({"name": "shop", "description": "again"});
    check_all(
        app,
        &[case(
            "the same project twice",
            Method::POST,
            "/api/v1/projects",
            Body::Json(again),
            409,
            "conflict",
            Some("name"),
        )],
    )
    .await;
    assert_eq!(app.count("projects").await, 1);
    let p = app.ok(Method::GET, "/api/v1/projects/shop", &app.admin, None).await;
    assert_eq!(p["description"], "", "the first project is untouched: {p}");
});

both_backends!(path_traversal_in_a_name_is_a_json_404, |app| {
    app.project_with_app("shop", "web").await;
    let cases = [
        bare(
            "project",
            Method::GET,
            "/api/v1/projects/..%2F..%2Fetc",
            404,
            "not_found",
            Some("project"),
        ),
        bare(
            "application",
            Method::GET,
            "/api/v1/applications/..%2F..%2Fetc/settings",
            404,
            "not_found",
            Some("application"),
        ),
        case(
            "environment",
            Method::PUT,
            "/api/v1/applications/web/settings/..%2F..%2Fetc",
            Body::Json(settings(json!({}))),
            404,
            "not_found",
            Some("environment"),
        ),
        bare(
            "cluster",
            Method::GET,
            "/api/v1/clusters/..%2F..%2Fetc",
            404,
            "not_found",
            Some("cluster"),
        ),
        bare(
            "user",
            Method::GET,
            "/api/v1/users/..%2F..%2Fetc",
            404,
            "not_found",
            Some("user"),
        ),
        bare(
            "release",
            Method::GET,
            "/api/v1/releases/..%2F..%2Fetc",
            404,
            "not_found",
            Some("id"),
        ),
    ];
    check_all(app, &cases).await;
    let (s, _) = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(s, StatusCode::OK, "the server is still up");
});

// ---------------------------------------------------------------------------
// Cases found by these tests and fixed in the server since.

both_backends!(json_array_body_is_refused, |app| {
    app.project_with_app("shop", "web").await;
    let cases = [
        case(
            "array body",
            Method::POST,
            "/api/v1/projects",
            Body::Json(json!(["x"])),
            422,
            "validation",
            None,
        ),
        case(
            "positional application",
            Method::POST,
            "/api/v1/applications",
            Body::Json(json!(["shop", "api", "https://git.example/api.git", null, null])),
            422,
            "validation",
            None,
        ),
    ];
    check_all(app, &cases).await;
});

both_backends!(trailing_data_after_the_json_body_is_refused, |app| {
    let cases = [
        case(
            "trailing text",
            Method::POST,
            "/api/v1/projects",
            json_text(r#"{"name": "trail"} garbage"#),
            400,
            "malformed_json",
            None,
        ),
        case(
            "two objects",
            Method::POST,
            "/api/v1/projects",
            json_text(r#"{"name": "two"}{"name": "three"}"#),
            400,
            "malformed_json",
            None,
        ),
    ];
    check_all(app, &cases).await;
});

both_backends!(nul_in_free_text_is_a_validation_error, |app| {
    app.project_with_app("shop", "web").await;
    let cases = [
        invalid(
            "NUL in a description",
            Method::POST,
            "/api/v1/projects",
            json!({"name": "nul", "description": "a\u{0}b"}),
            "description",
        ),
        invalid(
            "NUL in a change note",
            Method::POST,
            "/api/v1/releases",
            json!({"application": "web", "git_ref": "main", "change_note": "a\u{0}b"}),
            "change_note",
        ),
    ];
    check_all(app, &cases).await;
});

both_backends!(syntax_errors_name_no_bogus_field, |app| {
    let p = "/api/v1/projects";
    let cases = [
        case(
            "truncated after a value",
            Method::POST,
            p,
            json_text(r#"{"name": "x""#),
            400,
            "malformed_json",
            None,
        ),
        case(
            "truncated key",
            Method::POST,
            p,
            json_text(r#"{"na"#),
            400,
            "malformed_json",
            None,
        ),
        case(
            "trailing comma",
            Method::POST,
            p,
            json_text(r#"{"name": "x",}"#),
            400,
            "malformed_json",
            None,
        ),
        case(
            "single quotes",
            Method::POST,
            p,
            json_text("{'name': 'x'}"),
            400,
            "malformed_json",
            None,
        ),
    ];
    check_all(app, &cases).await;
});

both_backends!(duplicate_fields_are_named, |app| {
    let cases = [
        case(
            "duplicate key in a body",
            Method::POST,
            "/api/v1/projects",
            json_text(r#"{"name": "a", "name": "b"}"#),
            422,
            "validation",
            Some("name"),
        ),
        bare(
            "duplicate query parameter",
            Method::GET,
            "/api/v1/releases?limit=1&limit=2",
            400,
            "validation",
            Some("limit"),
        ),
    ];
    check_all(app, &cases).await;
});

both_backends!(content_type_must_be_json_exactly, |app| {
    let body = raw("application/jsonx", r#"{"name": "x"}"#);
    check_all(
        app,
        &[case(
            "application/jsonx",
            Method::POST,
            "/api/v1/projects",
            body,
            415,
            "unsupported_media_type",
            None,
        )],
    )
    .await;
});

both_backends!(action_body_content_type_is_checked, |app| {
    app.project_with_app("shop", "web").await;
    let r = app
        .ok(
            Method::POST,
            "/api/v1/releases",
            &app.admin,
            Some(json!({"application": "web", "git_ref": "main", "change_note": "n"})),
        )
        .await;
    let path = format!("/api/v1/releases/{}/actions/start_build", r["id"].as_str().unwrap());
    let body = raw("text/plain", r#"{"note": "via text/plain"}"#);
    check_all(
        app,
        &[case(
            "text/plain action body",
            Method::POST,
            path,
            body,
            415,
            "unsupported_media_type",
            None,
        )],
    )
    .await;
});

both_backends!(git_url_host_cannot_be_an_option, |app| {
    app.project_with_app("shop", "web").await;
    let body = json!({"project": "shop", "name": "api", "git_url": "ssh://-oProxyCommand=x/repo"});
    check_all(
        app,
        &[invalid(
            "ssh host -oProxyCommand",
            Method::POST,
            "/api/v1/applications",
            body,
            "git_url",
        )],
    )
    .await;
});
