//! Progressive delivery's settings through the API on both stores (issue
//! 14): a cluster's Prometheus credentials are sealed and never returned,
//! logged or audited; bad strategies and bad Prometheus settings name their
//! field and change nothing; steering a deploy that is not a running canary
//! or blue-green is a conflict. The rollouts themselves run against a real
//! control plane in `crates/prism/tests/progressive_e2e.rs`.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::both_backends;

const PASSWORD: &str = "prom-pass-7d1e0a";

both_backends!(prometheus_credentials_are_sealed_and_never_shown, |app| {
    let admin = app.admin.clone();
    app.ok(
        Method::POST,
        "/api/v1/clusters",
        &admin,
        Some(json!({"name": "edge", "api_url": "https://10.0.0.1:6443"})),
    )
    .await;
    let path = "/api/v1/clusters/edge/prometheus";
    let set = app
        .ok(
            Method::PUT,
            path,
            &admin,
            Some(json!({"url": "http://prometheus.monitoring:9090/", "username": "prism", "password": PASSWORD})),
        )
        .await;
    assert_eq!(
        (set["url"].as_str(), set["auth"].as_str()),
        (Some("http://prometheus.monitoring:9090"), Some("basic"))
    );
    let shown = app.ok(Method::GET, path, &admin, None).await;
    assert_eq!(shown["auth"], "basic");
    assert!(!shown.to_string().contains(PASSWORD));
    let mut c = app.store.conn().await.unwrap();
    let sealed: Vec<u8> = sqlx::query_scalar("SELECT prometheus_auth_enc FROM clusters WHERE name = 'edge'")
        .fetch_one(&mut *c)
        .await
        .unwrap();
    assert!(!String::from_utf8_lossy(&sealed).contains(PASSWORD), "sealed at rest");
    let audit: Vec<String> =
        sqlx::query_scalar("SELECT detail FROM audit_events WHERE action = 'cluster.prometheus_set'")
            .fetch_all(&mut *c)
            .await
            .unwrap();
    assert_eq!(audit.len(), 1);
    assert!(!audit[0].contains(PASSWORD) && audit[0].contains("basic"), "{audit:?}");
    drop(c);

    // Bad settings name the field and leave the stored one as it was.
    for (body, field) in [
        (json!({"url": "ftp://prometheus"}), "url"),
        (json!({"url": "http://p:9090", "username": "prism"}), "password"),
        (json!({"url": "http://p:9090", "token": "has spaces"}), "token"),
        (json!({"url": "http://prism:secret@p:9090"}), "url"),
        (
            json!({"url": "http://p:9090", "token": "t", "username": "u", "password": "p"}),
            "token",
        ),
    ] {
        let (s, e) = app.call(Method::PUT, path, Some(&admin), Some(body.clone())).await;
        assert_eq!(
            (s, e["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{body}: {e}"
        );
    }
    assert_eq!(app.ok(Method::GET, path, &admin, None).await, shown);
    let (s, _) = app.call(Method::DELETE, path, Some(&admin), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let gone = app.ok(Method::GET, path, &admin, None).await;
    assert_eq!(
        (gone["url"].clone(), gone["auth"].as_str()),
        (serde_json::Value::Null, Some("none"))
    );
});

both_backends!(
    strategies_are_checked_naming_the_field_and_steering_needs_a_running_rollout,
    |app| {
        app.project_with_app("shop", "web").await;
        let admin = app.admin.clone();
        let path = "/api/v1/applications/web/environments/fat/rollout";
        let rolling = app.ok(Method::GET, path, &admin, None).await;
        assert_eq!(rolling["strategy"]["type"], "rolling");
        let gate = json!({"name": "errors", "query": "sum(x)", "condition": "result < 0.01"});
        for (body, field) in [
            (json!({"type": "canary", "steps": []}), "steps"),
            (json!({"type": "canary", "steps": [{"weight": 0}]}), "steps[0].weight"),
            (json!({"type": "canary", "steps": [{"weight": 101}]}), "steps[0].weight"),
            (
                json!({"type": "canary", "steps": [{"weight": 20, "gates": [{"name": "e", "query": "x", "condition": "result ~ 1"}]}]}),
                "steps[0].gates[0].condition",
            ),
            (
                json!({"type": "canary", "steps": [{"weight": 20, "gates": [{"name": "e", "query": "", "condition": "result < 1"}]}]}),
                "steps[0].gates[0].query",
            ),
            (
                json!({"type": "blue-green", "scale_down_delay_seconds": 99999999}),
                "scale_down_delay_seconds",
            ),
            // Gates need the environment's cluster to have a Prometheus.
            (
                json!({"type": "canary", "steps": [{"weight": 20, "gates": [gate]}]}),
                "gates",
            ),
        ] {
            let (s, e) = app.call(Method::PUT, path, Some(&admin), Some(body.clone())).await;
            assert_eq!(
                (s, e["field"].as_str()),
                (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
                "{body}: {e}"
            );
        }
        // Gates run queries with Prism's Prometheus credentials over the whole
        // cluster: a project's operator may choose a canary, not write gates.
        let otto = app.user("otto", Some("shop"), &["operator"]).await;
        let gated = json!({"type": "canary", "steps": [{"weight": 20, "gates": [gate]}]});
        let (s, e) = app.call(Method::PUT, path, Some(&otto), Some(gated)).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
        // Not a strategy at all: refused before anything is looked up.
        let (s, _) = app
            .call(Method::PUT, path, Some(&admin), Some(json!({"type": "linear"})))
            .await;
        assert!(s.is_client_error(), "{s}");
        assert_eq!(
            app.ok(Method::GET, path, &admin, None).await,
            rolling,
            "nothing was written"
        );
        let (s, _) = app
            .call(
                Method::GET,
                "/api/v1/applications/web/environments/nowhere/rollout",
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);

        // A valid canary, then back to rolling: both audited.
        let set = app
            .ok(
                Method::PUT,
                path,
                &admin,
                Some(json!({"type": "canary", "steps": [{"weight": 10, "manual": true}, {"weight": 100}]})),
            )
            .await;
        assert_eq!(set["strategy"]["steps"][0]["weight"], 10);
        app.ok(Method::PUT, path, &admin, Some(json!({"type": "rolling"})))
            .await;
        assert_eq!(
            app.ok(Method::GET, path, &admin, None).await["strategy"]["type"],
            "rolling"
        );
        let mut c = app.store.conn().await.unwrap();
        let audited: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'application.rollout_strategy'")
                .fetch_one(&mut *c)
                .await
                .unwrap();
        assert_eq!(audited, 2);
        drop(c);

        // Steering: an unknown action names it; a deploy that is no rollout is a conflict.
        let (s, e) = app
            .call(Method::POST, "/api/v1/deploys/1/rollout/explode", Some(&admin), None)
            .await;
        assert_eq!(
            (s, e["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("action")),
            "{e}"
        );
        let rel = app.built_release("web").await;
        let mut c = app.store.conn().await.unwrap();
        let (app_id, env_id): (i64, i64) = sqlx::query_as(
            "SELECT a.id, e.id FROM applications a, environments e WHERE a.name = 'web' AND e.name = 'fat'",
        )
        .fetch_one(&mut *c)
        .await
        .unwrap();
        let d = prism_store::deploys::create(
            &mut c,
            prism_store::deploys::NewDeploy {
                release: prism_domain::ReleaseId::parse("id", &rel).unwrap(),
                app_id,
                env_id,
                kind: prism_domain::DeployKind::Deploy,
                requested_by: "admin",
                rollback_of: None,
                manifests: None,
            },
        )
        .await
        .unwrap();
        drop(c);
        let (s, e) = app
            .call(
                Method::POST,
                &format!("/api/v1/deploys/{}/rollout/pause", d.id),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(
            (s, e["code"].as_str()),
            (StatusCode::CONFLICT, Some("not_progressive")),
            "{e}"
        );

        // A running canary (made in the store: no cluster here): an abort not
        // yet taken is never replaced by a later promote or resume.
        let mut c = app.store.conn().await.unwrap();
        sqlx::query("UPDATE deploys SET state = 'watching' WHERE id = $1")
            .bind(d.id)
            .execute(&mut *c)
            .await
            .unwrap();
        let progress = json!({"strategy": {"type": "canary", "steps": [{"weight": 50, "manual": true}]},
                              "replicas": 2, "phase": "checking"});
        prism_store::deploys::set_rollout(&mut c, d.id, &progress)
            .await
            .unwrap();
        drop(c);
        for (action, want, code) in [
            ("pause", StatusCode::ACCEPTED, None),
            ("abort", StatusCode::ACCEPTED, None),
            ("promote", StatusCode::CONFLICT, Some("abort_pending")),
        ] {
            let path = format!("/api/v1/deploys/{}/rollout/{action}", d.id);
            let (s, e) = app.call(Method::POST, &path, Some(&admin), None).await;
            assert_eq!((s, e["code"].as_str()), (want, code), "{action}: {e}");
        }
        let pending = app
            .ok(Method::GET, &format!("/api/v1/deploys/{}", d.id), &admin, None)
            .await;
        assert!(
            pending["rollout_command"].as_str().unwrap().starts_with("abort@"),
            "{pending}"
        );
    }
);
