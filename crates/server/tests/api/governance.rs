//! Release governance through the API, on both stores: approval policies
//! with separation of duties (2 of 3, requester and creator refused, a
//! rejection ends the deploy, concurrent approvals counted once), deploy
//! windows with the server's clock pinned (a deploy approved in a deny
//! window waits and starts when it opens), and break-glass (allowed role
//! with a reason; other roles and API tokens refused; all audited).
//!
//! A deploy awaiting review is made through the store (planning needs a
//! cluster; the review flow does not): the release is moved to deploying
//! through the API, then the planned deploy is recorded as the deploy job
//! records it. With no cluster bound, an approved deploy fails when it
//! applies, which is after everything these tests look at.

use std::sync::Arc;
use std::time::{Duration, Instant};

use prism_domain::{DeployEvent, DeployKind, DeployState, ReleaseId};
use prism_store::deploys::{self, NewDeploy};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::both_backends;
use crate::harness::{TestApp, PASSWORD};

struct Team {
    rita: String,
    cora: String,
    ann: String,
    bob: String,
    cy: String,
    tess: String,
}

/// Project shop with application web; rita requests deploys, cora creates
/// releases (developer and operator), ann, bob and cy are operators, tess a tester.
async fn team(app: &TestApp) -> Team {
    app.project_with_app("shop", "web").await;
    Team {
        rita: app.user("rita", Some("shop"), &["operator"]).await,
        cora: app.user("cora", Some("shop"), &["developer", "operator"]).await,
        ann: app.user("ann", Some("shop"), &["operator"]).await,
        bob: app.user("bob", Some("shop"), &["operator"]).await,
        cy: app.user("cy", Some("shop"), &["operator"]).await,
        tess: app.user("tess", Some("shop"), &["tester"]).await,
    }
}

async fn set_policy(app: &TestApp, env: &str, policy: Value) {
    app.ok(
        Method::PUT,
        &format!("/api/v1/environments/{env}/approval-policy"),
        &app.admin,
        Some(json!({ "policy": policy })),
    )
    .await;
}

/// A release created by cora, built, and deploying to fat, with its deploy
/// (requested by rita) planned and awaiting review. Returns the deploy id.
async fn deploy_awaiting_review(app: &TestApp, t: &Team) -> i64 {
    let (s, r) = app
        .post(
            "/api/v1/releases",
            &t.cora,
            json!({"application": "web", "git_ref": "main", "change_note": "governed"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let id = r["id"].as_str().unwrap().to_owned();
    app.act(&id, "start_build", &app.admin, json!({})).await;
    app.act(
        &id,
        "build_succeeded",
        &app.admin,
        json!({"commit_sha": "0123456789abcdef0123456789abcdef01234567", "image_digest": format!("sha256:{}", "a".repeat(64))}),
    )
    .await;
    app.act(&id, "promote", &app.admin, json!({"environment": "fat"})).await;
    app.act(&id, "deploy", &app.admin, json!({"environment": "fat"})).await;
    let mut c = app.store.conn().await.unwrap();
    let web = prism_store::apps::by_name(&mut c, "web").await.unwrap();
    let fat = prism_store::environments::by_name(&mut c, "fat").await.unwrap();
    let d = deploys::create(
        &mut c,
        NewDeploy {
            release: ReleaseId::parse("id", &id).unwrap(),
            app_id: web.id,
            env_id: fat.id,
            kind: DeployKind::Deploy,
            requested_by: "rita",
            rollback_of: None,
            manifests: Some(&json!([])),
        },
    )
    .await
    .unwrap();
    let planned = DeployEvent::Planned { review: true };
    assert!(deploys::advance(&mut c, d.id, DeployState::Planning, planned)
        .await
        .unwrap());
    d.id
}

async fn vote(app: &TestApp, id: i64, verb: &str, token: &str, comment: &str) -> (StatusCode, Value) {
    app.post(
        &format!("/api/v1/deploys/{id}/{verb}"),
        token,
        json!({"comment": comment}),
    )
    .await
}

async fn state(app: &TestApp, id: i64) -> String {
    let d = app
        .ok(Method::GET, &format!("/api/v1/deploys/{id}"), &app.admin, None)
        .await;
    d["state"].as_str().unwrap().to_owned()
}

/// Waits until the deploy leaves `from` (the job moved it), returning the new state.
async fn left(app: &TestApp, id: i64, from: &str) -> String {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let s = state(app, id).await;
        if s != from {
            return s;
        }
        assert!(Instant::now() < until, "deploy {id} stayed {from}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn audit_count(app: &TestApp, action: &str) -> usize {
    let v = app
        .ok(
            Method::GET,
            &format!("/api/v1/audit?action={action}&limit=100"),
            &app.admin,
            None,
        )
        .await;
    v.as_array().unwrap().len()
}

both_backends!(two_of_three_approvals_with_separation_of_duties, |app| {
    let t = team(app).await;
    // Only admins set policies, and they are checked naming the field.
    let (s, e) = app
        .call(
            Method::PUT,
            "/api/v1/environments/fat/approval-policy",
            Some(&t.ann),
            Some(json!({"policy": {"required": 2, "roles": ["operator"]}})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    let (s, e) = app
        .call(
            Method::PUT,
            "/api/v1/environments/fat/approval-policy",
            Some(&app.admin),
            Some(json!({"policy": {"required": 11, "roles": ["operator"]}})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["field"], "policy.required", "{e}");
    set_policy(app, "fat", json!({"required": 2, "roles": ["operator"]})).await;
    let p = app
        .ok(
            Method::GET,
            "/api/v1/environments/fat/approval-policy?project=shop",
            &t.ann,
            None,
        )
        .await;
    assert_eq!(p["source"], "environment", "{p}");
    assert_eq!(
        p["policy"]["exclude_creator"], true,
        "the creator is excluded by default: {p}"
    );

    let id = deploy_awaiting_review(app, &t).await;
    // The requester and the release's creator are refused, saying why.
    let (s, e) = vote(app, id, "approve", &t.rita, "mine").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    assert!(
        e["error"].as_str().unwrap().contains("you requested this deploy"),
        "{e}"
    );
    let (s, e) = vote(app, id, "approve", &t.cora, "my release").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    assert!(e["error"].as_str().unwrap().contains("you created this release"), "{e}");
    let (s, e) = vote(app, id, "approve", &t.tess, "tested").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    assert!(e["error"].as_str().unwrap().contains("needs the role operator"), "{e}");

    let a = app
        .ok(Method::GET, &format!("/api/v1/deploys/{id}/approvals"), &t.rita, None)
        .await;
    assert_eq!(a["may_still_approve"], json!(["admin", "ann", "bob", "cy"]), "{a}");
    assert_eq!(a["you_may_vote"], false, "{a}");
    assert!(a["why_not"].as_str().unwrap().contains("requested"), "{a}");

    let (s, d) = vote(app, id, "approve", &t.ann, "looks right").await;
    assert_eq!(s, StatusCode::OK, "{d}");
    assert_eq!(d["state"], "awaiting_review", "one of two approvals: {d}");
    let (s, e) = vote(app, id, "approve", &t.ann, "again").await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    let a = app
        .ok(Method::GET, &format!("/api/v1/deploys/{id}/approvals"), &t.bob, None)
        .await;
    assert_eq!(a["approvals"][0]["username"], "ann", "{a}");
    assert_eq!(a["approvals"][0]["comment"], "looks right", "{a}");
    assert_eq!(a["may_still_approve"], json!(["admin", "bob", "cy"]), "{a}");
    assert_eq!(a["you_may_vote"], true, "{a}");

    let (s, d) = vote(app, id, "approve", &t.bob, "agreed").await;
    assert_eq!(s, StatusCode::OK, "{d}");
    assert_ne!(d["state"], "awaiting_review", "two approvals meet the policy: {d}");
    assert_eq!(d["reviewer"], "bob");
    let (s, e) = vote(app, id, "approve", &t.cy, "late").await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert_eq!(audit_count(app, "deploy.approved").await, 2);
    left(app, id, "applying").await;
});

both_backends!(a_rejection_by_anyone_allowed_ends_the_deploy, |app| {
    let t = team(app).await;
    set_policy(app, "fat", json!({"required": 2, "roles": ["operator"]})).await;
    let id = deploy_awaiting_review(app, &t).await;
    vote(app, id, "approve", &t.ann, "fine by me").await;
    let (s, e) = vote(app, id, "reject", &t.bob, " ").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["field"], "comment");
    // The requester may not reject either.
    let (s, _) = vote(app, id, "reject", &t.rita, "changed my mind").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, d) = vote(app, id, "reject", &t.bob, "wrong config for fat").await;
    assert_eq!(s, StatusCode::OK, "{d}");
    assert_eq!(d["state"], "rejected", "{d}");
    let (s, _) = vote(app, id, "approve", &t.cy, "too late").await;
    assert_eq!(s, StatusCode::CONFLICT);
    let a = app
        .ok(Method::GET, &format!("/api/v1/deploys/{id}/approvals"), &t.cy, None)
        .await;
    assert_eq!(a["verdict"], "rejected", "{a}");
    assert_eq!(a["rejections"][0]["username"], "bob", "{a}");
    assert_eq!(a["rejections"][0]["comment"], "wrong config for fat", "{a}");
    assert_eq!(audit_count(app, "deploy.rejected").await, 1);
    assert_eq!(audit_count(app, "event.deploy_rejected").await, 1);
});

both_backends!(concurrent_approvals_are_counted_once, |app| {
    let t = team(app).await;
    let dan = app.user("dan", Some("shop"), &["operator"]).await;
    let eve = app.user("eve", Some("shop"), &["operator"]).await;
    set_policy(app, "fat", json!({"required": 5, "roles": ["operator"]})).await;
    let id = deploy_awaiting_review(app, &t).await;
    // One person, four tabs at once: one vote.
    let statuses = race(app, id, vec![t.ann.clone(); 4]).await;
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == StatusCode::OK || *s == StatusCode::CONFLICT), "{statuses:?}");
    assert_eq!(state(app, id).await, "awaiting_review");
    let mut c = app.store.conn().await.unwrap();
    assert_eq!(prism_store::governance::votes(&mut c, id).await.unwrap().len(), 1);
    drop(c);
    // Four people at once: every vote counts, and the last one sees all the
    // others (the deploy is not left pending with enough approvals).
    let statuses = race(app, id, vec![t.bob.clone(), t.cy.clone(), dan, eve]).await;
    assert!(statuses.iter().all(|s| *s == StatusCode::OK), "{statuses:?}");
    let after = left(app, id, "awaiting_review").await;
    assert_ne!(after, "rejected");
});

/// Approvals by `tokens`, all released at once.
async fn race(app: &TestApp, id: i64, tokens: Vec<String>) -> Vec<StatusCode> {
    let barrier = Arc::new(tokio::sync::Barrier::new(tokens.len()));
    let tasks: Vec<_> = tokens
        .into_iter()
        .map(|token| {
            let req = app
                .http
                .post(format!("{}/api/v1/deploys/{id}/approve", app.base))
                .bearer_auth(token)
                .json(&json!({"comment": "at once"}));
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                req.send().await.unwrap().status()
            })
        })
        .collect();
    let mut out = vec![];
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn ms(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_millis()
}

both_backends!(
    a_deploy_approved_in_a_deny_window_waits_and_starts_when_it_opens,
    |app| {
        let t = team(app).await;
        set_policy(app, "fat", json!({"required": 1, "roles": ["operator"]})).await;
        // Nightly batch 22:30-23:00 Shanghai (14:30-15:00 UTC); now 22:45 there.
        app.clock.set(ms("2026-12-08T14:45:00Z"));
        let schedule = json!({"windows": [{"kind": "deny", "rule": "DTSTART;TZID=Asia/Shanghai:20260105T223000\nRRULE:FREQ=DAILY",
                                       "duration_minutes": 30, "label": "nightly batch"}]});
        let (s, e) = app
            .call(
                Method::PUT,
                "/api/v1/environments/fat/schedule",
                Some(&t.ann),
                Some(schedule.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "only admins edit schedules: {e}");
        let bad = json!({"windows": [{"kind": "deny", "rule": "DTSTART:20260105T223000\nRRULE:FREQ=DAILY", "duration_minutes": 30}]});
        let (s, e) = app
            .call(
                Method::PUT,
                "/api/v1/environments/fat/schedule",
                Some(&app.admin),
                Some(bad),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert_eq!(e["field"], "schedule.windows[0].rule", "{e}");
        let v = app
            .ok(
                Method::PUT,
                "/api/v1/environments/fat/schedule",
                &app.admin,
                Some(schedule),
            )
            .await;
        assert_eq!(v["now"]["open"], false, "{v}");
        assert_eq!(v["now"]["opens_local"], "2026-12-08 23:00 Asia/Shanghai", "{v}");

        let id = deploy_awaiting_review(app, &t).await;
        let (s, d) = vote(app, id, "approve", &t.ann, "ship it after the batch").await;
        assert_eq!(s, StatusCode::OK, "{d}");
        assert_eq!(d["state"], "waiting_window", "{d}");
        assert_eq!(d["opens_local"], "2026-12-08 23:00 Asia/Shanghai", "{d}");
        assert_eq!(d["opens_at"], ms("2026-12-08T15:00:00Z"));
        // The job looks again and again; the pinned clock has not moved.
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(state(app, id).await, "waiting_window");
        app.clock.set(ms("2026-12-08T14:59:59Z"));
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            state(app, id).await,
            "waiting_window",
            "one second before the window ends"
        );
        app.clock.set(ms("2026-12-08T15:00:00Z"));
        left(app, id, "waiting_window").await;
        let ev = app
            .ok(Method::GET, &format!("/api/v1/deploys/{id}/events"), &app.admin, None)
            .await;
        let messages: Vec<&str> = ev
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["message"].as_str().unwrap())
            .collect();
        assert!(
            messages
                .iter()
                .any(|m| m.contains("deploys at 2026-12-08 23:00 Asia/Shanghai")),
            "{messages:?}"
        );
        assert!(messages.iter().any(|m| m.contains("opened; applying")), "{messages:?}");
        assert_eq!(audit_count(app, "event.deploy_waiting_for_window").await, 1);
        assert_eq!(audit_count(app, "environment.schedule").await, 1);
    }
);

/// Logs in as a person (a browser session), returning the cookie and CSRF token.
async fn session(app: &TestApp, user: &str) -> (String, String) {
    let resp = app
        .http
        .post(format!("{}/api/v1/auth/login", app.base))
        .json(&json!({"username": user, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let cookie = resp
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("prism_session="))
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_owned();
    let body: Value = resp.json().await.unwrap();
    (cookie, body["csrf_token"].as_str().unwrap().to_owned())
}

async fn start_as_session(app: &TestApp, who: &(String, String), rel: &str, body: Value) -> (StatusCode, Value) {
    let resp = app
        .http
        .post(format!("{}/api/v1/releases/{rel}/deploys", app.base))
        .header(reqwest::header::COOKIE, format!("prism_session={}", who.0))
        .header("x-csrf-token", &who.1)
        .json(&body)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap_or(Value::Null))
}

both_backends!(break_glass_by_an_allowed_person_with_a_reason_never_a_token, |app| {
    let t = team(app).await;
    // A cluster that answers nothing (loopback, closed port): the deploy is
    // recorded and then fails planning, after what this test looks at.
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
    app.clock.set(ms("2026-12-24T10:00:00Z"));
    let schedule = json!({"freezes": [{"from_ms": ms("2026-12-23T00:00:00Z"), "until_ms": ms("2026-12-27T00:00:00Z"), "reason": "holiday freeze"}],
                          "when_closed": "refuse", "break_glass_roles": ["operator"]});
    app.ok(
        Method::PUT,
        "/api/v1/environments/fat/schedule",
        &app.admin,
        Some(schedule),
    )
    .await;
    let rel = app.built_release("web").await;
    app.act(&rel, "promote", &app.admin, json!({"environment": "fat"}))
        .await;
    let path = format!("/api/v1/releases/{rel}/deploys");

    // Closed and the environment refuses: said why and until when.
    let (s, e) = app.post(&path, &t.rita, json!({"environment": "fat"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    let m = e["error"].as_str().unwrap();
    assert!(
        m.contains("frozen: holiday freeze") && m.contains("2026-12-27 00:00"),
        "{m}"
    );
    // An API token never breaks glass, whoever holds it.
    let (s, e) = app
        .post(
            &path,
            &t.rita,
            json!({"environment": "fat", "break_glass_reason": "outage"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    assert!(
        e["error"].as_str().unwrap().contains("API tokens never break glass"),
        "{e}"
    );
    let (s, _) = app
        .post(
            &path,
            &app.admin,
            json!({"environment": "fat", "break_glass_reason": "outage"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "not even an admin's token");
    // A person without the role is refused.
    let tess = session(app, "tess").await;
    let (s, e) = start_as_session(
        app,
        &tess,
        &rel,
        json!({"environment": "fat", "break_glass_reason": "outage"}),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    let rita = session(app, "rita").await;
    let (s, e) = start_as_session(
        app,
        &rita,
        &rel,
        json!({"environment": "fat", "break_glass_reason": "  "}),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["field"], "break_glass_reason");
    assert_eq!(app.count("deploys").await, 0, "nothing was started");

    let (s, d) = start_as_session(
        app,
        &rita,
        &rel,
        json!({"environment": "fat", "break_glass_reason": "payment outage, fix needed now"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{d}");
    assert_eq!(d["break_glass_by"], "rita");
    assert_eq!(d["break_glass_reason"], "payment outage, fix needed now");
    assert_eq!(audit_count(app, "deploy.break_glass").await, 1);
    assert_eq!(audit_count(app, "event.freeze_broken").await, 1);
    assert_eq!(audit_count(app, "deploy.break_glass_refused").await, 3);
    let id = d["id"].as_i64().unwrap();
    let end = left(app, id, "planning").await;
    assert_ne!(end, "waiting_window", "a broken glass does not wait for the freeze");
    let _ = (&t.cora, &t.bob, &t.cy, &t.ann);
});

both_backends!(a_project_override_wins_over_the_environment_policy, |app| {
    let t = team(app).await;
    set_policy(app, "fat", json!({"required": 2, "roles": ["operator"]})).await;
    // A policy that lets the requester approve is refused, naming the field.
    let (s, e) = app
        .call(
            Method::PUT,
            "/api/v1/environments/fat/approval-policy",
            Some(&app.admin),
            Some(json!({"project": "shop", "policy": {"required": 1, "roles": ["operator"], "exclude_requester": false}})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["field"], "policy.exclude_requester", "{e}");
    app.ok(
        Method::PUT,
        "/api/v1/environments/fat/approval-policy",
        &app.admin,
        Some(json!({"project": "shop", "policy": {"required": 1, "roles": ["operator"]}})),
    )
    .await;
    let p = app
        .ok(
            Method::GET,
            "/api/v1/environments/fat/approval-policy?project=shop",
            &t.ann,
            None,
        )
        .await;
    assert_eq!(
        (p["source"].as_str(), p["policy"]["required"].as_i64()),
        (Some("project"), Some(1)),
        "{p}"
    );
    let id = deploy_awaiting_review(app, &t).await;
    let (s, d) = vote(app, id, "approve", &t.ann, "one is enough for shop").await;
    assert_eq!(s, StatusCode::OK, "{d}");
    assert_ne!(d["state"], "awaiting_review", "the project's policy applies: {d}");
    // Removing the override brings the environment's back.
    app.ok(
        Method::PUT,
        "/api/v1/environments/fat/approval-policy",
        &app.admin,
        Some(json!({"project": "shop", "policy": null})),
    )
    .await;
    let p = app
        .ok(
            Method::GET,
            "/api/v1/environments/fat/approval-policy?project=shop",
            &t.ann,
            None,
        )
        .await;
    assert_eq!(p["source"], "environment", "{p}");
    assert_eq!(audit_count(app, "environment.approval_policy").await, 3);
});
