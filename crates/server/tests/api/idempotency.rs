//! Idempotency keys (issue 15 item 1): a request sent again with the same
//! `Idempotency-Key` (a load balancer's retry, the CLI's) is answered with the
//! first one's response and changes nothing more; twins sent at the same
//! moment make one change; a key used for another request, or malformed, is
//! refused naming the header; a failed request does not use its key up.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::both_backends;
use crate::harness::TestApp;

/// One request with a key; status, `Idempotent-Replayed`, JSON body.
async fn keyed(app: &TestApp, path: &str, token: &str, key: &str, body: Value) -> (StatusCode, bool, Value) {
    let resp = app
        .http
        .request(Method::POST, format!("{}{path}", app.base))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = resp.status();
    let replayed = resp.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
    (status, replayed, resp.json().await.unwrap_or(Value::Null))
}

async fn audit_count(app: &TestApp, action: &str) -> i64 {
    let mut c = app.store.conn().await.unwrap();
    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM audit_events WHERE action = $1")
        .bind(action)
        .fetch_one(&mut *c)
        .await
        .unwrap()
}

both_backends!(a_retried_release_creation_is_made_once, |app| {
    app.project_with_app("shop", "web").await;
    let dana = app.user("dana", Some("shop"), &["developer"]).await;
    let dora = app.user("dora", Some("shop"), &["developer"]).await;
    let body = json!({"application": "web", "git_ref": "main", "change_note": "retry me"});

    let (s, replayed, first) = keyed(app, "/api/v1/releases", &dana, "key-1", body.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    assert!(!replayed, "the first request is not a replay");
    let (s, replayed, again) = keyed(app, "/api/v1/releases", &dana, "key-1", body.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{again}");
    assert!(replayed, "the retry is answered from the stored response");
    assert_eq!(again, first, "the same response, the same release");
    assert_eq!(app.count("releases").await, 1);
    assert_eq!(audit_count(app, "release.create").await, 1, "audited once");

    // The same key with another body: refused, naming the header; nothing made.
    let other = json!({"application": "web", "git_ref": "main", "change_note": "something else"});
    let (s, _, e) = keyed(app, "/api/v1/releases", &dana, "key-1", other).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["code"], "idempotency_key_reused");
    assert_eq!(e["field"], "Idempotency-Key");
    assert_eq!(app.count("releases").await, 1);

    // Keys are each caller's own: another user's key-1 is a new request.
    let (s, replayed, theirs) = keyed(app, "/api/v1/releases", &dora, "key-1", body.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{theirs}");
    assert!(!replayed);
    assert_ne!(theirs["id"], first["id"]);
    assert_eq!(app.count("releases").await, 2);

    // A malformed key: 400 naming the header, nothing written.
    let (s, _, e) = keyed(app, "/api/v1/releases", &dana, "two words", body.clone()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["field"], "Idempotency-Key");
    assert_eq!(app.count("releases").await, 2);

    // A failed request leaves its key unused: corrected, the same key works.
    let wrong = json!({"application": "nope", "git_ref": "main", "change_note": "x"});
    let (s, _, e) = keyed(app, "/api/v1/releases", &dana, "key-2", wrong).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let (s, replayed, _) = keyed(app, "/api/v1/releases", &dana, "key-2", body.clone()).await;
    assert_eq!(s, StatusCode::CREATED);
    assert!(!replayed);
    assert_eq!(app.count("releases").await, 3);

    // Twins at the same moment (a retry racing the original): one release,
    // every twin answered with it.
    let twins =
        futures::future::join_all((0..8).map(|_| keyed(app, "/api/v1/releases", &dana, "key-twins", body.clone())))
            .await;
    let ids: Vec<&Value> = twins
        .iter()
        .map(|(s, _, r)| {
            assert_eq!(*s, StatusCode::CREATED, "{r}");
            &r["id"]
        })
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "one release for all twins: {ids:?}");
    assert_eq!(
        twins.iter().filter(|(_, replayed, _)| !replayed).count(),
        1,
        "one made it, the others replay"
    );
    assert_eq!(app.count("releases").await, 4);
    assert_eq!(audit_count(app, "release.create").await, 4);
});

both_backends!(retried_actions_and_deploy_starts_change_the_release_once, |app| {
    app.project_with_app("shop", "web").await;
    let otto = app.user("otto", Some("shop"), &["operator", "tester"]).await;
    // A cluster nobody answers on: the deploy is recorded, then fails planning,
    // after what this test looks at.
    app.ok(
        Method::POST,
        "/api/v1/clusters",
        &app.admin,
        Some(json!({"name": "c1", "api_url": "https://127.0.0.1:1", "token": "abc123"})),
    )
    .await;
    app.ok(
        Method::PATCH,
        "/api/v1/environments/fat",
        &app.admin,
        Some(json!({"cluster": "c1"})),
    )
    .await;
    let rel = app.built_release("web").await;

    // A retried promotion: answered with the first response, not "already promoted".
    let path = format!("/api/v1/releases/{rel}/actions/promote");
    let body = json!({"environment": "fat"});
    let (s, _, first) = keyed(app, &path, &otto, "promote-1", body.clone()).await;
    assert_eq!(s, StatusCode::OK, "{first}");
    let (s, replayed, again) = keyed(app, &path, &otto, "promote-1", body.clone()).await;
    assert_eq!((s, replayed), (StatusCode::OK, true), "{again}");
    assert_eq!(again, first);
    // Without the key, the same request is a second promotion, which the
    // state machine refuses: the key is what made the retry safe.
    let (s, _) = app.post(&path, &otto, body.clone()).await;
    assert_eq!(s, StatusCode::CONFLICT);

    // Deploy start, six twins at once: one deploy.
    let path = format!("/api/v1/releases/{rel}/deploys");
    let twins =
        futures::future::join_all((0..6).map(|_| keyed(app, &path, &otto, "deploy-1", json!({"environment": "fat"}))))
            .await;
    for (s, _, r) in &twins {
        assert_eq!(*s, StatusCode::CREATED, "{r}");
        assert_eq!(r["id"], twins[0].2["id"]);
    }
    assert_eq!(app.count("deploys").await, 1);
    assert_eq!(audit_count(app, "deploy.create").await, 1);
    let transitions = app.get(&format!("/api/v1/releases/{rel}/history"), &otto).await.1;
    let deploying = transitions
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["action"] == "deploy")
        .count();
    assert_eq!(deploying, 1, "the release moved to deploying once: {transitions}");
});
