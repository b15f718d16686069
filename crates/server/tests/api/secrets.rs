//! Application secrets through the API on both stores (issue 19): values are
//! write-only (no answer holds one, not the admin's), every change is a new
//! version, changing one needs the right to deploy where it applies (one
//! for every environment needs it everywhere), members of other projects
//! learn nothing, bad input names its field, and the audit log records
//! names and versions, never values. The deploy side is in
//! `crates/prism/tests/secrets_e2e.rs` (real kube-apiserver).

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::both_backends;

const MARKER: &str = "s3cret-marker-9f2c41";

both_backends!(secrets_are_write_only_and_changed_only_where_one_may_deploy, |app| {
    app.project_with_app("shop", "web").await;
    app.project_with_app("other", "blog").await;
    let admin = app.admin.clone();
    for (env, roles) in [("fat", json!(["developer", "operator"])), ("prd", json!(["operator"]))] {
        app.ok(
            Method::PATCH,
            &format!("/api/v1/environments/{env}"),
            &admin,
            Some(json!({"policy": {"deploy_roles": roles, "requires_review": false, "requires_previous": false}})),
        )
        .await;
    }
    let dev = app.user("dev", Some("shop"), &["developer"]).await;
    let tess = app.user("tess", Some("shop"), &["tester"]).await;
    let sam = app.user("sam", Some("other"), &["operator"]).await;
    let put = |token: &str, path: &str, body: serde_json::Value| {
        let (token, path) = (token.to_owned(), path.to_owned());
        async move { app.call(Method::PUT, &path, Some(&token), Some(body)).await }
    };

    // The admin sets a PRD value twice: versions 1 and 2, the value never comes back.
    let (s, v) = put(
        &admin,
        "/api/v1/applications/web/secrets/DB_PASSWORD",
        json!({"value": MARKER, "environment": "prd"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["version"].as_i64(), v["environment"].as_str()),
        (Some(1), Some("prd")),
        "{v}"
    );
    assert!(v.get("value").is_none() && !v.to_string().contains(MARKER), "{v}");
    let (s, v) = put(
        &admin,
        "/api/v1/applications/web/secrets/DB_PASSWORD",
        json!({"value": format!("{MARKER}-2"), "environment": "prd"}),
    )
    .await;
    assert_eq!((s, v["version"].as_i64()), (StatusCode::OK, Some(2)), "{v}");
    assert_eq!(app.count("app_secret_values").await, 2);

    // A tester lists it (name, scope, version) but may change nothing.
    let (s, list) = app.get("/api/v1/applications/web/secrets", &tess).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list[0]["name"], "DB_PASSWORD");
    assert_eq!(list[0]["source"], "value");
    assert!(!list.to_string().contains(MARKER), "{list}");
    let (s, _) = put(
        &tess,
        "/api/v1/applications/web/secrets/DB_PASSWORD",
        json!({"value": "x", "environment": "fat"}),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // A developer changes FAT, not PRD, not every environment, and deletes nothing in PRD.
    let (s, v) = put(
        &dev,
        "/api/v1/applications/web/secrets/DB_PASSWORD",
        json!({"value": "fat-value", "environment": "fat"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = put(
        &dev,
        "/api/v1/applications/web/secrets/DB_PASSWORD",
        json!({"value": "x", "environment": "prd"}),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, v) = put(&dev, "/api/v1/applications/web/secrets/OTHER", json!({"value": "x"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(v["error"].as_str().unwrap().contains("every environment"), "{v}");
    let (s, v) = put(&dev, "/api/v1/projects/shop/secrets/OTHER", json!({"value": "x"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, _) = app
        .call(
            Method::DELETE,
            "/api/v1/applications/web/secrets/DB_PASSWORD?environment=prd",
            Some(&dev),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Another project's operator learns nothing.
    let (s, _) = app.get("/api/v1/applications/web/secrets", &sam).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = put(
        &sam,
        "/api/v1/applications/web/secrets/DB_PASSWORD",
        json!({"value": "x", "environment": "fat"}),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app.get("/api/v1/projects/shop/secrets", &sam).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Bad input names the field and writes nothing.
    let before = app.count("app_secret_values").await;
    for (path, body, field) in [
        ("/api/v1/applications/web/secrets/9LIVES", json!({"value": "x"}), "name"),
        ("/api/v1/applications/web/secrets/A-B", json!({"value": "x"}), "name"),
        (
            "/api/v1/applications/web/secrets/BIG",
            json!({"value": "x".repeat(300 * 1024)}),
            "value",
        ),
        (
            "/api/v1/applications/web/secrets/BOTH",
            json!({"value": "x", "existing": {"secret": "s", "key": "k"}}),
            "value",
        ),
        ("/api/v1/applications/web/secrets/NONE", json!({}), "value"),
        (
            "/api/v1/applications/web/secrets/REF",
            json!({"existing": {"secret": "Vault_DB", "key": "k"}}),
            "existing.secret",
        ),
        (
            "/api/v1/applications/web/secrets/REF",
            json!({"existing": {"secret": "vault", "key": "../k"}}),
            "existing.key",
        ),
        (
            "/api/v1/applications/web/secrets/ENV",
            json!({"value": "x", "environment": "nowhere"}),
            "environment",
        ),
        (
            "/api/v1/applications/web/secrets/DEL",
            json!({"value": "x", "delivery": "carrier-pigeon"}),
            "delivery",
        ),
    ] {
        let (s, v) = put(&admin, path, body).await;
        assert!(
            s == StatusCode::UNPROCESSABLE_ENTITY || s == StatusCode::BAD_REQUEST,
            "{path}: {s} {v}"
        );
        assert_eq!(v["field"].as_str(), Some(field), "{path}: {v}");
    }
    assert_eq!(app.count("app_secret_values").await, before, "nothing half-written");

    // A reference, and a project secret the application inherits.
    let (s, v) = put(
        &admin,
        "/api/v1/applications/web/secrets/VAULT",
        json!({"existing": {"secret": "vault-db", "key": "password"}}),
    )
    .await;
    assert_eq!(
        (s, v["source"].as_str(), v["ref_secret"].as_str()),
        (StatusCode::OK, Some("reference"), Some("vault-db")),
        "{v}"
    );
    let (s, v) = put(
        &admin,
        "/api/v1/projects/shop/secrets/API_TOKEN",
        json!({"value": MARKER, "delivery": "file"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, list) = app.get("/api/v1/applications/web/secrets", &dev).await;
    let names: Vec<(String, Option<String>, Option<String>)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["application"].as_str().map(String::from),
                s["environment"].as_str().map(String::from),
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![
            ("API_TOKEN".into(), None, None),
            ("DB_PASSWORD".into(), Some("web".into()), Some("fat".into())),
            ("DB_PASSWORD".into(), Some("web".into()), Some("prd".into())),
            ("VAULT".into(), Some("web".into()), None),
        ]
    );

    // The audit log names who changed which name where; never a value.
    let (_, audit) = app.get("/api/v1/audit", &admin).await;
    let text = audit.to_string();
    assert!(!text.contains(MARKER), "{text}");
    let puts = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "secret.put")
        .count();
    assert_eq!(puts, 5, "{text}");

    // Removing keeps the sealed versions (a rollback may still need them).
    let (s, _) = app
        .call(
            Method::DELETE,
            "/api/v1/applications/web/secrets/DB_PASSWORD?environment=prd",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app
        .call(
            Method::DELETE,
            "/api/v1/applications/web/secrets/DB_PASSWORD?environment=prd",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(app.count("app_secret_values").await, 4);
});

// A template that sets Prism's own secret label and annotation would have
// Prism fill in the sealed values it names (another application's, another
// project's): refused when rendered, naming the template. Before, such an
// object was taken for the Secret Prism makes and filled in at apply time.
both_backends!(a_template_may_not_claim_the_secret_prism_fills_in, |app| {
    let (dev, rel) = crate::preview_world::shop_with_release(app).await;
    let hostile = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: stolen\n  namespace: {{ env.namespace | tojson }}\n  \
                   labels: {\"prism.io/secret\": application}\n  annotations: {\"prism.io/sealed-data\": '{\"X\": [1, 1]}'}\n";
    for (name, body) in [
        ("steal.yaml", hostile.to_owned()),
        (
            "steal-annotation.yaml",
            hostile.replace("  labels: {\"prism.io/secret\": application}\n", ""),
        ),
    ] {
        let files = json!({ name: body });
        let (s, v) = crate::preview_world::preview(app, &dev, &rel, files).await;
        assert!(s.is_client_error(), "{name}: {s} {v}");
        let error = v["error"].as_str().unwrap_or_default();
        assert!(error.contains(name) && error.contains("are Prism's own"), "{name}: {v}");
    }
});
