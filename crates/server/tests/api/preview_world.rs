//! What the template tests render with: project `shop`, application `web`
//! with a built release, a developer, and the preview endpoint. Shared by
//! the API suite and the template fuzz test (its own process: see
//! `tests/template_fuzz.rs`).

use prism_test_support::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A project `shop` with application `web`, a built release, and a developer.
pub async fn shop_with_release(app: &TestApp) -> (String, String) {
    app.project_with_app("shop", "web").await;
    let dev = app.user("dev", Some("shop"), &["developer"]).await;
    let r = app
        .ok(
            Method::POST,
            "/api/v1/releases",
            &app.admin,
            Some(json!({"application": "web", "git_ref": "main", "change_note": "test"})),
        )
        .await;
    let rel = r["id"].as_str().unwrap().to_owned();
    app.act(&rel, "start_build", &app.admin, json!({})).await;
    let digest = format!("sha256:{}", "a".repeat(64));
    let image = format!("registry.local/web:{rel}");
    app.act(
        &rel,
        "build_succeeded",
        &app.admin,
        json!({"commit_sha": "abcdef1", "image_ref": image, "image_digest": digest}),
    )
    .await;
    (dev, rel)
}

pub async fn preview(app: &TestApp, token: &str, rel: &str, files: Value) -> (StatusCode, Value) {
    let mut body = json!({"environment": "fat", "release": rel});
    if !files.is_null() {
        body["files"] = files;
    }
    app.post("/api/v1/applications/web/preview", token, body).await
}

pub async fn still_serving(app: &TestApp, token: &str, rel: &str) {
    let (s, body) = preview(app, token, rel, Value::Null).await;
    assert_eq!(s, StatusCode::OK, "the server still renders the built-in set: {body}");
}
