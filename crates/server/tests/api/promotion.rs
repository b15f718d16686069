//! Promotion through the environments, over the real HTTP API on both
//! backends: every transition of the release state machine (and every refusal
//! leaving the release untouched), busy and held environments, hold and token
//! expiry and the notification delivery log's retention by the real job
//! runner, and concurrent requests racing for one environment.

use std::sync::Arc;
use std::time::Duration;

use prism_store::jobs::NewJob;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::both_backends;
use crate::harness::{TestApp, PASSWORD};

/// Every action of the state machine.
const ACTIONS: [&str; 10] = [
    "start_build",
    "build_succeeded",
    "build_failed",
    "promote",
    "deploy",
    "deploy_succeeded",
    "deploy_failed",
    "pass",
    "close",
    "abandon",
];

/// How many requests each race fires at once.
const RACERS: usize = 50;

/// A release as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snapshot {
    state: String,
    environment: Option<String>,
    version: i64,
}

async fn snapshot(app: &TestApp, id: &str) -> Snapshot {
    let r = app
        .ok(Method::GET, &format!("/api/v1/releases/{id}"), &app.admin, None)
        .await;
    Snapshot {
        state: r["state"].as_str().expect("state").to_owned(),
        environment: r["environment"].as_str().map(str::to_owned),
        version: r["version"].as_i64().expect("version"),
    }
}

/// One number from the store, for "exactly this was written" checks.
async fn scalar(app: &TestApp, sql: &str) -> i64 {
    let mut c = app.store.conn().await.unwrap();
    sqlx::query_scalar::<_, i64>(sql).fetch_one(&mut *c).await.unwrap()
}

/// Changes the store behind the server's back (to move a time into the past).
async fn exec(app: &TestApp, sql: &str) {
    let mut tx = app.store.begin().await.unwrap();
    sqlx::query(sql).execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
}

async fn promote_rows(app: &TestApp) -> i64 {
    scalar(app, "SELECT COUNT(*) FROM release_transitions WHERE action = 'promote'").await
}

/// The request body an action needs, aimed at `env`.
fn body_for(action: &str, env: &str) -> Value {
    match action {
        "promote" | "deploy" => json!({"environment": env}),
        _ => json!({}),
    }
}

/// Performs a step that must succeed, and checks where it lands and that the
/// version moved by exactly one.
async fn step(app: &TestApp, id: &str, action: &str, token: &str, body: Value, state: &str, env: Option<&str>) {
    let before = snapshot(app, id).await;
    let r = app.act(id, action, token, body.clone()).await;
    assert_eq!(
        (r["state"].as_str(), r["environment"].as_str()),
        (Some(state), env),
        "{action} {body} on {id} from {before:?}: {r}"
    );
    assert_eq!(r["version"].as_i64(), Some(before.version + 1), "{action} on {id}: {r}");
    let after = snapshot(app, id).await;
    assert_eq!((after.state.as_str(), after.environment.as_deref()), (state, env));
}

/// Asserts that a step is refused with 409 `code` and changes nothing: not the
/// release's state, environment or version, and no transition row.
async fn refused(app: &TestApp, id: &str, action: &str, token: &str, body: Value, code: &str) {
    let before = snapshot(app, id).await;
    let rows = app.count("release_transitions").await;
    let (s, e) = app.try_act(id, action, token, body.clone()).await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::CONFLICT, Some(code)),
        "{action} {body} on {id} ({before:?}) should be refused as {code}: {e}"
    );
    let field = if code == "invalid_transition" {
        "state"
    } else {
        "environment"
    };
    assert_eq!(e["field"], field, "{e}");
    assert_eq!(snapshot(app, id).await, before, "a refused {action} changed {id}");
    assert_eq!(
        app.count("release_transitions").await,
        rows,
        "a refused {action} on {id} was recorded"
    );
}

/// Every action (as the admin, who has every role) is refused as invalid.
async fn refuses(app: &TestApp, id: &str, actions: &[&str], env: &str) {
    for action in actions {
        refused(app, id, action, &app.admin, body_for(action, env), "invalid_transition").await;
    }
}

/// A final release refuses everything, whatever the target environment.
async fn refuses_everything(app: &TestApp, id: &str) {
    for env in ["fat", "uat", "prd"] {
        refuses(app, id, &ACTIONS, env).await;
    }
}

/// A release created (as the admin) and left in `created`.
async fn created_release(app: &TestApp, application: &str) -> String {
    let r = app
        .ok(
            Method::POST,
            "/api/v1/releases",
            &app.admin,
            Some(json!({"application": application, "git_ref": "main", "change_note": "test"})),
        )
        .await;
    assert_eq!(r["state"], "created");
    r["id"].as_str().unwrap().to_owned()
}

/// The board cell of one application in one environment.
async fn cell(app: &TestApp, application: &str, env: &str) -> Value {
    let (s, board) = app
        .get(&format!("/api/v1/board?application={application}"), &app.admin)
        .await;
    assert_eq!(s, StatusCode::OK, "{board}");
    board
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["environment"] == env)
        .cloned()
        .unwrap_or_else(|| panic!("no {env} cell for {application}: {board}"))
}

/// Audit events with this action, newest first.
async fn audit(app: &TestApp, action: &str) -> Vec<Value> {
    let v = app
        .ok(
            Method::GET,
            &format!("/api/v1/audit?action={action}&limit=1000"),
            &app.admin,
            None,
        )
        .await;
    v.as_array().unwrap().clone()
}

async fn hold(app: &TestApp, application: &str, env: &str, token: &str, body: Value) -> (StatusCode, Value) {
    app.post(
        &format!("/api/v1/applications/{application}/environments/{env}/hold"),
        token,
        body,
    )
    .await
}

async fn unhold(app: &TestApp, application: &str, env: &str, token: &str, query: &str) -> (StatusCode, Value) {
    app.call(
        Method::DELETE,
        &format!("/api/v1/applications/{application}/environments/{env}/hold{query}"),
        Some(token),
        None,
    )
    .await
}

/// Puts a maintenance sweep on the queue for the server's own job runner.
async fn enqueue_maintenance(app: &TestApp) -> i64 {
    let mut tx = app.store.begin().await.unwrap();
    let id = prism_store::jobs::enqueue(
        &mut tx,
        NewJob {
            kind: "maintenance",
            payload: json!({}),
            dedup_key: Some(format!("maintenance:test:{}", uuid::Uuid::new_v4().simple())),
            run_at: None,
            max_attempts: 3,
        },
    )
    .await
    .unwrap()
    .expect("a fresh dedup key enqueues");
    tx.commit().await.unwrap();
    id
}

async fn job_state(app: &TestApp, id: i64) -> (String, Option<String>) {
    let mut c = app.store.conn().await.unwrap();
    let job = prism_store::jobs::get(&mut c, id).await.unwrap();
    (job.state, job.last_error)
}

/// Polls (every 100 ms, up to 10 s) until `done` holds; on timeout reports the job.
async fn wait_for<F, Fut>(app: &TestApp, job: i64, what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "after 10 s still waiting for {what}; maintenance job {job}: {:?}",
        job_state(app, job).await
    );
}

/// How a racing request authenticates.
#[derive(Clone)]
enum Credential {
    /// An API token (`Authorization: Bearer`).
    Bearer(String),
    /// A browser session: the session cookie and its CSRF token.
    Session { cookie: String, csrf: String },
}

/// Logs in through the browser flow and returns the session credential.
async fn session_for(app: &TestApp, username: &str) -> Credential {
    let resp = app
        .http
        .post(format!("{}/api/v1/auth/login", app.base))
        .json(&json!({"username": username, "password": PASSWORD}))
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
        .expect("a session cookie")
        .to_owned();
    let body: Value = resp.json().await.unwrap();
    let csrf = body["csrf_token"].as_str().expect("csrf_token").to_owned();
    Credential::Session { cookie, csrf }
}

/// Fires all requests at once (released together by a barrier) from separate
/// tasks; returns each status and body, in request order.
async fn race(app: &TestApp, requests: Vec<(Method, String, Credential, Option<Value>)>) -> Vec<(StatusCode, Value)> {
    let barrier = Arc::new(tokio::sync::Barrier::new(requests.len()));
    let tasks = requests.into_iter().map(|(method, path, credential, body)| {
        let mut req = app.http.request(method, format!("{}{path}", app.base));
        req = match credential {
            Credential::Bearer(token) => req.bearer_auth(token),
            Credential::Session { cookie, csrf } => req
                .header(reqwest::header::COOKIE, format!("prism_session={cookie}"))
                .header("x-csrf-token", csrf),
        };
        if let Some(b) = body {
            req = req.json(&b);
        }
        let barrier = barrier.clone();
        tokio::spawn(async move {
            barrier.wait().await;
            let resp = req.send().await.expect("request");
            let status = resp.status();
            let text = resp.text().await.unwrap();
            let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
            (status, value)
        })
    });
    futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.expect("request task"))
        .collect()
}

/// Splits race results into the winners' indexes and the losers' error codes,
/// asserting every response is a success (`won`) or a 409.
fn tally(results: &[(StatusCode, Value)], won: StatusCode) -> (Vec<usize>, Vec<String>) {
    let mut winners = vec![];
    let mut codes = vec![];
    for (i, (s, v)) in results.iter().enumerate() {
        if *s == won {
            winners.push(i);
        } else {
            assert_eq!(*s, StatusCode::CONFLICT, "request {i}: {s} {v}");
            codes.push(v["code"].as_str().unwrap_or("?").to_owned());
        }
    }
    (winners, codes)
}

// 1. Every transition, and every refusal from each reachable state.

both_backends!(every_transition_and_refusal_along_the_lifecycle, |app| {
    app.project_with_app("shop", "web").await;
    let dev = app.user("dana", Some("shop"), &["developer"]).await;
    let tester = app.user("tess", Some("shop"), &["tester"]).await;
    let ops = app.user("otto", Some("shop"), &["operator"]).await;
    let admin = app.admin.clone();
    let built_info = json!({"commit_sha": "abcdef1", "image_digest": format!("sha256:{}", "c".repeat(64))});

    let r = app
        .post(
            "/api/v1/releases",
            &dev,
            json!({"application": "web", "git_ref": "main", "change_note": "x"}),
        )
        .await
        .1;
    let id = r["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (r["state"].as_str(), r["version"].as_i64()),
        (Some("created"), Some(0)),
        "{r}"
    );

    // created
    refuses(
        app,
        &id,
        &[
            "build_succeeded",
            "build_failed",
            "promote",
            "deploy",
            "deploy_succeeded",
            "deploy_failed",
            "pass",
        ],
        "fat",
    )
    .await;
    step(app, &id, "start_build", &dev, json!({}), "building", None).await;

    // building
    refuses(
        app,
        &id,
        &[
            "start_build",
            "promote",
            "deploy",
            "deploy_succeeded",
            "deploy_failed",
            "pass",
        ],
        "fat",
    )
    .await;
    step(app, &id, "build_failed", &admin, json!({}), "build_failed", None).await;

    // build_failed, then rebuilt
    refuses(
        app,
        &id,
        &[
            "build_succeeded",
            "build_failed",
            "promote",
            "deploy",
            "deploy_succeeded",
            "deploy_failed",
            "pass",
        ],
        "fat",
    )
    .await;
    step(app, &id, "start_build", &dev, json!({}), "building", None).await;
    step(app, &id, "build_succeeded", &admin, built_info, "built", None).await;

    // built: nothing but a promotion into the first environment
    refuses(
        app,
        &id,
        &[
            "start_build",
            "build_succeeded",
            "build_failed",
            "deploy",
            "deploy_succeeded",
            "deploy_failed",
            "pass",
        ],
        "fat",
    )
    .await;
    refused(app, &id, "promote", &ops, json!({"environment": "uat"}), "out_of_order").await;
    refused(
        app,
        &id,
        "promote",
        &admin,
        json!({"environment": "prd"}),
        "out_of_order",
    )
    .await;
    step(
        app,
        &id,
        "promote",
        &dev,
        json!({"environment": "fat"}),
        "promoted",
        Some("fat"),
    )
    .await;

    // promoted(fat)
    for env in ["fat", "uat", "prd"] {
        refused(app, &id, "promote", &admin, json!({"environment": env}), "out_of_order").await;
    }
    refuses(
        app,
        &id,
        &[
            "start_build",
            "build_succeeded",
            "deploy_succeeded",
            "deploy_failed",
            "pass",
        ],
        "fat",
    )
    .await;
    refuses(app, &id, &["deploy"], "uat").await;
    step(
        app,
        &id,
        "deploy",
        &dev,
        json!({"environment": "fat"}),
        "deploying",
        Some("fat"),
    )
    .await;

    // deploying(fat)
    refuses(
        app,
        &id,
        &[
            "start_build",
            "build_succeeded",
            "build_failed",
            "promote",
            "deploy",
            "pass",
        ],
        "fat",
    )
    .await;
    refuses(app, &id, &["promote"], "uat").await;
    step(
        app,
        &id,
        "deploy_failed",
        &admin,
        json!({}),
        "deploy_failed",
        Some("fat"),
    )
    .await;

    // deploy_failed(fat), then deployed again
    refuses(
        app,
        &id,
        &[
            "start_build",
            "build_succeeded",
            "deploy_succeeded",
            "deploy_failed",
            "pass",
        ],
        "fat",
    )
    .await;
    refuses(app, &id, &["deploy"], "uat").await;
    refused(
        app,
        &id,
        "promote",
        &admin,
        json!({"environment": "fat"}),
        "out_of_order",
    )
    .await;
    refused(
        app,
        &id,
        "promote",
        &admin,
        json!({"environment": "uat"}),
        "out_of_order",
    )
    .await;
    step(
        app,
        &id,
        "deploy",
        &dev,
        json!({"environment": "fat"}),
        "deploying",
        Some("fat"),
    )
    .await;
    step(app, &id, "deploy_succeeded", &admin, json!({}), "deployed", Some("fat")).await;

    // deployed(fat): a redeploy, and no promotion before it passed
    refuses(
        app,
        &id,
        &[
            "start_build",
            "build_succeeded",
            "build_failed",
            "deploy_succeeded",
            "deploy_failed",
        ],
        "fat",
    )
    .await;
    refuses(app, &id, &["deploy"], "uat").await;
    for env in ["fat", "uat", "prd"] {
        refused(
            app,
            &id,
            "promote",
            &tester,
            json!({"environment": env}),
            "out_of_order",
        )
        .await;
    }
    step(
        app,
        &id,
        "deploy",
        &ops,
        json!({"environment": "fat"}),
        "deploying",
        Some("fat"),
    )
    .await;
    step(app, &id, "deploy_succeeded", &admin, json!({}), "deployed", Some("fat")).await;
    step(app, &id, "pass", &tester, json!({"note": "ok"}), "passed", Some("fat")).await;

    // passed(fat)
    refuses(
        app,
        &id,
        &[
            "start_build",
            "build_succeeded",
            "deploy",
            "deploy_succeeded",
            "deploy_failed",
            "pass",
        ],
        "fat",
    )
    .await;
    refused(
        app,
        &id,
        "promote",
        &admin,
        json!({"environment": "fat"}),
        "out_of_order",
    )
    .await;
    refused(
        app,
        &id,
        "promote",
        &admin,
        json!({"environment": "prd"}),
        "out_of_order",
    )
    .await;
    step(
        app,
        &id,
        "promote",
        &tester,
        json!({"environment": "uat"}),
        "promoted",
        Some("uat"),
    )
    .await;

    // promoted(uat): not back to fat
    refused(
        app,
        &id,
        "promote",
        &admin,
        json!({"environment": "fat"}),
        "out_of_order",
    )
    .await;
    refused(
        app,
        &id,
        "promote",
        &admin,
        json!({"environment": "uat"}),
        "out_of_order",
    )
    .await;
    refuses(app, &id, &["deploy"], "fat").await;
    step(
        app,
        &id,
        "deploy",
        &ops,
        json!({"environment": "uat"}),
        "deploying",
        Some("uat"),
    )
    .await;
    step(app, &id, "deploy_succeeded", &admin, json!({}), "deployed", Some("uat")).await;
    refused(
        app,
        &id,
        "promote",
        &admin,
        json!({"environment": "prd"}),
        "out_of_order",
    )
    .await;
    step(app, &id, "pass", &tester, json!({}), "passed", Some("uat")).await;
    step(
        app,
        &id,
        "promote",
        &tester,
        json!({"environment": "prd"}),
        "promoted",
        Some("prd"),
    )
    .await;
    step(
        app,
        &id,
        "deploy",
        &ops,
        json!({"environment": "prd"}),
        "deploying",
        Some("prd"),
    )
    .await;
    step(app, &id, "deploy_succeeded", &admin, json!({}), "deployed", Some("prd")).await;

    // deployed(prd): backwards prd -> uat, and to itself
    for env in ["fat", "uat", "prd"] {
        refused(app, &id, "promote", &admin, json!({"environment": env}), "out_of_order").await;
    }
    refuses(app, &id, &["start_build", "deploy_succeeded", "deploy_failed"], "prd").await;
    step(app, &id, "pass", &tester, json!({}), "passed", Some("prd")).await;
    refused(
        app,
        &id,
        "promote",
        &admin,
        json!({"environment": "prd"}),
        "out_of_order",
    )
    .await;
    step(app, &id, "close", &ops, json!({}), "closed", None).await;

    // closed: nothing moves it any more
    refuses_everything(app, &id).await;

    let history = app.get(&format!("/api/v1/releases/{id}/history"), &dev).await.1;
    let actions: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "start_build",
            "build_failed",
            "start_build",
            "build_succeeded",
            "promote",
            "deploy",
            "deploy_failed",
            "deploy",
            "deploy_succeeded",
            "deploy",
            "deploy_succeeded",
            "pass",
            "promote",
            "deploy",
            "deploy_succeeded",
            "pass",
            "promote",
            "deploy",
            "deploy_succeeded",
            "pass",
            "close",
        ]
    );
    assert_eq!(snapshot(app, &id).await.version, actions.len() as i64);
    assert_eq!(app.count("release_transitions").await, actions.len() as i64);
    // Every release left fat, uat and prd free: prd runs it, nothing is incoming.
    let prd = cell(app, "web", "prd").await;
    assert_eq!(prd["current_release"], id.as_str());
    assert_eq!(prd["incoming_release"], Value::Null);
});

both_backends!(abandon_and_close_from_every_live_state, |app| {
    app.project_with_app("shop", "web").await;
    let dev = app.user("dana", Some("shop"), &["developer"]).await;
    let tester = app.user("tess", Some("shop"), &["tester"]).await;
    let ops = app.user("otto", Some("shop"), &["operator"]).await;
    let admin = app.admin.clone();

    // created -> abandoned (by its developer)
    let a = created_release(app, "web").await;
    step(app, &a, "abandon", &dev, json!({}), "abandoned", None).await;
    refuses_everything(app, &a).await;

    // building -> abandoned
    let b = created_release(app, "web").await;
    app.act(&b, "start_build", &admin, json!({})).await;
    step(app, &b, "abandon", &tester, json!({}), "abandoned", None).await;
    refuses_everything(app, &b).await;

    // build_failed -> closed
    let c = created_release(app, "web").await;
    app.act(&c, "start_build", &admin, json!({})).await;
    app.act(&c, "build_failed", &admin, json!({})).await;
    step(app, &c, "close", &dev, json!({}), "closed", None).await;
    refuses_everything(app, &c).await;

    // built -> closed
    let d = app.built_release("web").await;
    step(app, &d, "close", &ops, json!({}), "closed", None).await;
    refuses_everything(app, &d).await;

    // promoted(fat) -> abandoned: fat is free again
    let e = app.built_release("web").await;
    app.act(&e, "promote", &dev, json!({"environment": "fat"})).await;
    assert_eq!(cell(app, "web", "fat").await["incoming_release"], e.as_str());
    step(app, &e, "abandon", &ops, json!({}), "abandoned", None).await;
    assert_eq!(cell(app, "web", "fat").await["incoming_release"], Value::Null);
    refuses_everything(app, &e).await;

    // deploying(fat) -> closed: fat is free again
    let f = app.built_release("web").await;
    app.act(&f, "promote", &dev, json!({"environment": "fat"})).await;
    app.act(&f, "deploy", &dev, json!({"environment": "fat"})).await;
    assert_eq!(cell(app, "web", "fat").await["incoming_state"], "deploying");
    step(app, &f, "close", &ops, json!({}), "closed", None).await;
    assert_eq!(cell(app, "web", "fat").await["incoming_release"], Value::Null);
    refuses_everything(app, &f).await;

    // deploy_failed(fat) -> abandoned
    let g = app.built_release("web").await;
    app.act(&g, "promote", &dev, json!({"environment": "fat"})).await;
    app.act(&g, "deploy", &dev, json!({"environment": "fat"})).await;
    app.act(&g, "deploy_failed", &admin, json!({})).await;
    step(app, &g, "abandon", &dev, json!({}), "abandoned", None).await;
    refuses_everything(app, &g).await;

    // deployed(fat) -> abandoned
    let h = app.built_release("web").await;
    app.deploy_to(&h, "fat").await;
    step(app, &h, "abandon", &tester, json!({}), "abandoned", None).await;
    refuses_everything(app, &h).await;

    // passed(fat) -> closed
    let i = app.built_release("web").await;
    app.deploy_to(&i, "fat").await;
    app.act(&i, "pass", &tester, json!({})).await;
    step(app, &i, "close", &ops, json!({}), "closed", None).await;
    refuses_everything(app, &i).await;

    // promoted(uat) -> abandoned: uat is free again
    let j = app.built_release("web").await;
    app.deploy_to(&j, "fat").await;
    app.act(&j, "pass", &tester, json!({})).await;
    app.act(&j, "promote", &tester, json!({"environment": "uat"})).await;
    step(app, &j, "abandon", &ops, json!({}), "abandoned", None).await;
    assert_eq!(cell(app, "web", "uat").await["incoming_release"], Value::Null);
    refuses_everything(app, &j).await;

    // Nothing occupies fat any more: a new release goes straight in.
    let k = app.built_release("web").await;
    step(
        app,
        &k,
        "promote",
        &dev,
        json!({"environment": "fat"}),
        "promoted",
        Some("fat"),
    )
    .await;
});

// 2. One release at a time on its way into an environment.

both_backends!(a_promoted_release_makes_the_environment_busy, |app| {
    app.project_with_app("shop", "web").await;
    let dev = app.user("dana", Some("shop"), &["developer"]).await;
    let tester = app.user("tess", Some("shop"), &["tester"]).await;
    let ops = app.user("otto", Some("shop"), &["operator"]).await;
    let admin = app.admin.clone();
    let a = app.built_release("web").await;
    let b = app.built_release("web").await;
    let c = app.built_release("web").await;
    let d = app.built_release("web").await;

    app.act(&a, "promote", &tester, json!({"environment": "fat"})).await;
    let busy = |e: &Value, other: &str| {
        assert_eq!(e["code"], "busy", "{e}");
        assert!(
            e["error"].as_str().unwrap().contains(other),
            "the error names {other}: {e}"
        );
    };
    let (s, e) = app.try_act(&b, "promote", &ops, json!({"environment": "fat"})).await;
    assert_eq!(s, StatusCode::CONFLICT);
    busy(&e, &a);
    refused(app, &b, "promote", &dev, json!({"environment": "fat"}), "busy").await;
    // An override is for holds, not for a release already on its way in.
    let (s, e) = app
        .try_act(
            &b,
            "promote",
            &ops,
            json!({"environment": "fat", "override_reason": "urgent"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    busy(&e, &a);

    // Still busy while A deploys; free once it runs there.
    app.act(&a, "deploy", &dev, json!({"environment": "fat"})).await;
    let (s, e) = app.try_act(&b, "promote", &ops, json!({"environment": "fat"})).await;
    assert_eq!(s, StatusCode::CONFLICT);
    busy(&e, &a);
    assert!(e["error"].as_str().unwrap().contains("deploying"), "{e}");
    app.act(&a, "deploy_succeeded", &admin, json!({})).await;
    step(
        app,
        &b,
        "promote",
        &ops,
        json!({"environment": "fat"}),
        "promoted",
        Some("fat"),
    )
    .await;
    let fat = cell(app, "web", "fat").await;
    assert_eq!(
        (fat["current_release"].as_str(), fat["incoming_release"].as_str()),
        (Some(a.as_str()), Some(b.as_str())),
        "{fat}"
    );
    assert_eq!(fat["incoming_state"], "promoted");

    // B abandoned while promoted frees fat for C.
    refused(app, &c, "promote", &tester, json!({"environment": "fat"}), "busy").await;
    app.act(&b, "abandon", &dev, json!({})).await;
    step(
        app,
        &c,
        "promote",
        &tester,
        json!({"environment": "fat"}),
        "promoted",
        Some("fat"),
    )
    .await;

    // A failed deploy frees the environment too; the failed release then
    // cannot redeploy over the newcomer.
    app.act(&c, "deploy", &dev, json!({"environment": "fat"})).await;
    app.act(&c, "deploy_failed", &admin, json!({})).await;
    assert_eq!(cell(app, "web", "fat").await["incoming_release"], Value::Null);
    step(
        app,
        &d,
        "promote",
        &dev,
        json!({"environment": "fat"}),
        "promoted",
        Some("fat"),
    )
    .await;
    refused(app, &c, "deploy", &dev, json!({"environment": "fat"}), "busy").await;
    // Nor can A, which runs there, redeploy while D is on its way in.
    refused(app, &a, "deploy", &ops, json!({"environment": "fat"}), "busy").await;

    // Another application's fat is a different slot.
    app.ok(
        Method::POST,
        "/api/v1/applications",
        &admin,
        Some(json!({"project": "shop", "name": "api", "git_url": "https://git.example/api.git"})),
    )
    .await;
    let other = app.built_release("api").await;
    step(
        app,
        &other,
        "promote",
        &dev,
        json!({"environment": "fat"}),
        "promoted",
        Some("fat"),
    )
    .await;
});

// 3. Holds.

both_backends!(holds_protect_a_test_in_progress, |app| {
    app.project_with_app("shop", "web").await;
    let dev = app.user("dana", Some("shop"), &["developer"]).await;
    let tess = app.user("tess", Some("shop"), &["tester"]).await;
    let tina = app.user("tina", Some("shop"), &["tester"]).await;
    let ops = app.user("otto", Some("shop"), &["operator"]).await;
    let admin = app.admin.clone();

    // Nothing runs in fat yet: nothing to hold.
    let (s, e) = hold(app, "web", "fat", &tess, json!({"note": "early"})).await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::CONFLICT, Some("nothing_deployed")),
        "{e}"
    );
    let (s, e) = unhold(app, "web", "fat", &tess, "").await;
    assert_eq!((s, e["code"].as_str()), (StatusCode::CONFLICT, Some("not_held")), "{e}");

    let a = app.built_release("web").await;
    app.deploy_to(&a, "fat").await;
    let (s, e) = hold(app, "web", "fat", &dev, json!({})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "developers do not hold: {e}");
    let (s, board) = hold(app, "web", "fat", &tess, json!({"note": "regression run"})).await;
    assert_eq!(s, StatusCode::CREATED, "{board}");
    assert_eq!(board.as_array().unwrap().len(), 3, "{board}");
    let fat = cell(app, "web", "fat").await;
    assert_eq!(fat["held_by"], "tess", "{fat}");
    assert_eq!(fat["hold_note"], "regression run");
    assert_eq!(fat["hold_release"], a.as_str());
    assert!(fat["hold_since"].as_i64().is_some(), "{fat}");
    assert_eq!(fat["hold_expires_at"], Value::Null);
    assert_eq!(cell(app, "web", "uat").await["held_by"], Value::Null);
    let (s, mine) = app.get("/api/v1/board?application=web", &tess).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(mine[0]["held_by"], "tess", "{mine}");

    // A second hold is refused, whoever asks.
    for who in [&tess, &tina, &ops] {
        let (s, e) = hold(app, "web", "fat", who, json!({})).await;
        assert_eq!((s, e["code"].as_str()), (StatusCode::CONFLICT, Some("held")), "{e}");
        assert!(e["error"].as_str().unwrap().contains("tess"), "{e}");
    }

    // Another release cannot come in while fat is held ...
    let b = app.built_release("web").await;
    for who in [&dev, &tina, &ops] {
        let (s, e) = app.try_act(&b, "promote", who, json!({"environment": "fat"})).await;
        assert_eq!((s, e["code"].as_str()), (StatusCode::CONFLICT, Some("held")), "{e}");
        let msg = e["error"].as_str().unwrap();
        assert!(
            msg.contains("tess") && msg.contains(a.as_str()),
            "names the holder: {e}"
        );
    }
    refused(app, &b, "promote", &tess, json!({"environment": "fat"}), "held").await;
    // ... nor by override unless an operator gives a reason.
    let rows = app.count("release_transitions").await;
    let (s, e) = app
        .try_act(
            &b,
            "promote",
            &tina,
            json!({"environment": "fat", "override_reason": "I am in a hurry"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a tester cannot override: {e}");
    let (s, e) = app
        .try_act(
            &b,
            "promote",
            &ops,
            json!({"environment": "fat", "override_reason": "  "}),
        )
        .await;
    assert_eq!(
        (s, e["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("override_reason")),
        "{e}"
    );
    assert_eq!(app.count("release_transitions").await, rows);
    assert_eq!(cell(app, "web", "fat").await["held_by"], "tess");
    assert_eq!(snapshot(app, &b).await.state, "built");

    // The operator overrides: B comes in, the hold ends, the audit log says why.
    step(
        app,
        &b,
        "promote",
        &ops,
        json!({"environment": "fat", "override_reason": "hotfix for INC-42"}),
        "promoted",
        Some("fat"),
    )
    .await;
    let fat = cell(app, "web", "fat").await;
    assert_eq!(fat["held_by"], Value::Null, "{fat}");
    assert_eq!(fat["hold_note"], Value::Null, "{fat}");
    assert_eq!(fat["incoming_release"], b.as_str());
    let promotions = audit(app, "release.promote").await;
    let ev = &promotions[0];
    assert_eq!(ev["record_id"], b.as_str(), "{ev}");
    assert_eq!(ev["actor"], "otto");
    assert_eq!(ev["detail"]["override_reason"], "hotfix for INC-42", "{ev}");
    assert_eq!(
        ev["detail"]["overrode_hold"],
        json!({"release": a, "holder": "tess"}),
        "{ev}"
    );
    // Ordinary promotions record neither.
    let plain = promotions.iter().find(|e| e["record_id"] == a.as_str()).unwrap();
    assert_eq!(plain["detail"]["override_reason"], Value::Null, "{plain}");
    assert_eq!(plain["detail"]["overrode_hold"], Value::Null, "{plain}");

    // With no hold there is nothing to override.
    app.act(&b, "deploy", &ops, json!({"environment": "fat"})).await;
    app.act(&b, "deploy_succeeded", &admin, json!({})).await;
    let c = app.built_release("web").await;
    let (s, e) = app
        .try_act(
            &c,
            "promote",
            &ops,
            json!({"environment": "fat", "override_reason": "why not"}),
        )
        .await;
    assert_eq!(
        (s, e["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("override_reason")),
        "{e}"
    );

    // A hold placed after a release came in keeps it from deploying; only a
    // promotion can override, so it waits for the hold to end.
    let d = app.built_release("web").await;
    app.act(&d, "promote", &dev, json!({"environment": "fat"})).await;
    let (s, board) = hold(app, "web", "fat", &tess, json!({"note": "do not deploy yet"})).await;
    assert_eq!(s, StatusCode::CREATED, "{board}");
    let fat = cell(app, "web", "fat").await;
    assert_eq!(
        (fat["incoming_release"].as_str(), fat["held_by"].as_str()),
        (Some(d.as_str()), Some("tess")),
        "{fat}"
    );
    refused(app, &d, "deploy", &dev, json!({"environment": "fat"}), "held").await;
    refused(app, &d, "deploy", &ops, json!({"environment": "fat"}), "held").await;
    let (s, e) = app
        .try_act(
            &d,
            "deploy",
            &ops,
            json!({"environment": "fat", "override_reason": "go"}),
        )
        .await;
    assert_eq!(
        (s, e["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("override_reason")),
        "{e}"
    );
    assert_eq!(snapshot(app, &d).await.state, "promoted");
    let (s, e) = unhold(app, "web", "fat", &tess, "").await;
    assert_eq!(s, StatusCode::OK, "{e}");
    step(
        app,
        &d,
        "deploy",
        &dev,
        json!({"environment": "fat"}),
        "deploying",
        Some("fat"),
    )
    .await;
    app.act(&d, "deploy_failed", &admin, json!({})).await;
    app.act(&d, "abandon", &dev, json!({})).await;

    // The holder lifts their own hold.
    let (s, board) = hold(app, "web", "fat", &tess, json!({"note": "round 2"})).await;
    assert_eq!(s, StatusCode::CREATED, "{board}");
    assert_eq!(cell(app, "web", "fat").await["hold_release"], b.as_str());
    let (s, board) = unhold(app, "web", "fat", &tess, "").await;
    assert_eq!(s, StatusCode::OK, "{board}");
    let fat = board
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["environment"] == "fat")
        .unwrap();
    assert_eq!(fat["held_by"], Value::Null, "{board}");
    let (s, e) = unhold(app, "web", "fat", &tess, "").await;
    assert_eq!((s, e["code"].as_str()), (StatusCode::CONFLICT, Some("not_held")), "{e}");

    // Another tester cannot lift it: without a reason it is a validation
    // error on `reason`, with one the operator role is missing.
    hold(app, "web", "fat", &tess, json!({"note": "round 3"})).await;
    let (s, e) = unhold(app, "web", "fat", &tina, "").await;
    assert_eq!(
        (s, e["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("reason")),
        "{e}"
    );
    let (s, e) = unhold(app, "web", "fat", &tina, "?reason=mine+now").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    let (s, e) = unhold(app, "web", "fat", &dev, "?reason=please").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    assert_eq!(cell(app, "web", "fat").await["held_by"], "tess");

    // An operator lifts someone else's hold only with a reason.
    let (s, e) = unhold(app, "web", "fat", &ops, "").await;
    assert_eq!(
        (s, e["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("reason")),
        "{e}"
    );
    let (s, e) = unhold(app, "web", "fat", &ops, "?reason=").await;
    assert_eq!(
        (s, e["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("reason")),
        "{e}"
    );
    assert_eq!(cell(app, "web", "fat").await["held_by"], "tess");
    let (s, e) = unhold(app, "web", "fat", &ops, "?reason=tess+is+on+leave").await;
    assert_eq!(s, StatusCode::OK, "{e}");
    assert_eq!(cell(app, "web", "fat").await["held_by"], Value::Null);
    let unholds = audit(app, "environment.unhold").await;
    assert_eq!(unholds.len(), 3, "{unholds:?}");
    assert_eq!(unholds[0]["actor"], "otto");
    assert_eq!(unholds[0]["detail"]["override"], true, "{}", unholds[0]);
    assert_eq!(unholds[0]["detail"]["reason"], "tess is on leave");
    assert_eq!(unholds[0]["detail"]["holder"], "tess");
    assert_eq!(unholds[1]["actor"], "tess");
    assert_eq!(unholds[1]["detail"]["override"], false, "{}", unholds[1]);
    assert_eq!(audit(app, "environment.hold").await.len(), 4);

    // Passing the held release ends the hold.
    hold(app, "web", "fat", &tess, json!({"note": "final round"})).await;
    refused(app, &c, "promote", &dev, json!({"environment": "fat"}), "held").await;
    step(
        app,
        &b,
        "pass",
        &tess,
        json!({"note": "all green"}),
        "passed",
        Some("fat"),
    )
    .await;
    assert_eq!(cell(app, "web", "fat").await["held_by"], Value::Null);
    step(
        app,
        &c,
        "promote",
        &dev,
        json!({"environment": "fat"}),
        "promoted",
        Some("fat"),
    )
    .await;

    // Abandoning the held release ends the hold too (here in uat).
    app.act(&b, "promote", &tess, json!({"environment": "uat"})).await;
    app.act(&b, "deploy", &ops, json!({"environment": "uat"})).await;
    app.act(&b, "deploy_succeeded", &admin, json!({})).await;
    let (s, _) = hold(app, "web", "uat", &tina, json!({})).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(cell(app, "web", "uat").await["held_by"], "tina");
    app.act(&b, "abandon", &ops, json!({})).await;
    assert_eq!(cell(app, "web", "uat").await["held_by"], Value::Null);
});

// 4. Hold expiry by the job runner.

both_backends!(an_expired_hold_is_ended_by_the_maintenance_job, |app| {
    app.project_with_app("shop", "web").await;
    let tess = app.user("tess", Some("shop"), &["tester"]).await;
    let ops = app.user("otto", Some("shop"), &["operator"]).await;
    let a = app.built_release("web").await;
    app.deploy_to(&a, "fat").await;

    for bad in [0, -5, 43_201] {
        let (s, e) = hold(app, "web", "fat", &tess, json!({"expires_in_minutes": bad})).await;
        assert_eq!(
            (s, e["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("expires_in_minutes")),
            "{e}"
        );
    }
    let before = prism_store::now_ms();
    let (s, e) = hold(
        app,
        "web",
        "fat",
        &tess,
        json!({"note": "one minute", "expires_in_minutes": 1}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{e}");
    let expires = cell(app, "web", "fat").await["hold_expires_at"].as_i64().unwrap();
    assert!(
        (before + 60_000..=prism_store::now_ms() + 60_000).contains(&expires),
        "{expires}"
    );
    let b = app.built_release("web").await;
    refused(app, &b, "promote", &ops, json!({"environment": "fat"}), "held").await;

    // Time passes (in the store), and the runner's next sweep ends the hold.
    exec(
        app,
        "UPDATE slots SET hold_expires_at = 1 WHERE hold_expires_at IS NOT NULL",
    )
    .await;
    let job = enqueue_maintenance(app).await;
    wait_for(app, job, "the hold to expire", || async move {
        cell(app, "web", "fat").await["held_by"].is_null() && !audit(app, "environment.hold_expired").await.is_empty()
    })
    .await;
    let fat = cell(app, "web", "fat").await;
    assert_eq!(
        (
            &fat["held_by"],
            &fat["hold_note"],
            &fat["hold_expires_at"],
            &fat["hold_release"]
        ),
        (&Value::Null, &Value::Null, &Value::Null, &Value::Null),
        "{fat}"
    );
    assert_eq!(fat["current_release"], a.as_str(), "{fat}");
    let expired = audit(app, "environment.hold_expired").await;
    assert_eq!(expired.len(), 1, "{expired:?}");
    assert_eq!(expired[0]["actor"], "system:maintenance");
    assert_eq!(expired[0]["detail"]["holder"], "tess", "{}", expired[0]);
    assert_eq!(expired[0]["detail"]["release"], a.as_str(), "{}", expired[0]);
    wait_for(app, job, "the job to finish", || async move {
        job_state(app, job).await.0 == "succeeded"
    })
    .await;

    // fat is open again.
    step(
        app,
        &b,
        "promote",
        &ops,
        json!({"environment": "fat"}),
        "promoted",
        Some("fat"),
    )
    .await;
});

// 5. Races.

/// 50 built releases of `web`, promoted into fat all at once: one wins.
async fn race_promotions_of_many_releases(app: &TestApp, promoter: &Credential) {
    let mut ids = vec![];
    for _ in 0..RACERS {
        ids.push(app.built_release("web").await);
    }
    let promotes = promote_rows(app).await;
    let results = race(
        app,
        ids.iter()
            .map(|id| {
                (
                    Method::POST,
                    format!("/api/v1/releases/{id}/actions/promote"),
                    promoter.clone(),
                    Some(json!({"environment": "fat"})),
                )
            })
            .collect(),
    )
    .await;
    let (winners, codes) = tally(&results, StatusCode::OK);
    assert_eq!(winners.len(), 1, "exactly one promotion wins: {results:?}");
    assert_eq!(codes.len(), RACERS - 1);
    assert!(
        codes.iter().all(|c| c == "busy" || c == "conflict"),
        "losers are busy or conflict: {codes:?}"
    );
    let winner = &ids[winners[0]];
    assert_eq!(results[winners[0]].1["id"], winner.as_str());
    let fat = cell(app, "web", "fat").await;
    assert_eq!(fat["incoming_release"], winner.as_str(), "{fat}");
    assert_eq!(fat["incoming_state"], "promoted");
    assert_eq!(promote_rows(app).await, promotes + 1);
    for id in &ids {
        let snap = snapshot(app, id).await;
        if id == winner {
            assert_eq!(snap.state, "promoted");
        } else {
            assert_eq!(snap.state, "built", "{id} lost but moved: {snap:?}");
        }
    }
    assert_eq!(
        scalar(app, "SELECT COUNT(*) FROM releases WHERE state = 'promoted'").await,
        1
    );
}

/// One built release of `application`, promoted into fat 50 times at once: it moves once.
async fn race_promotions_of_one_release(app: &TestApp, application: &str, promoter: &Credential) {
    let id = app.built_release(application).await;
    let before = snapshot(app, &id).await;
    let promotes = promote_rows(app).await;
    let results = race(
        app,
        (0..RACERS)
            .map(|_| {
                (
                    Method::POST,
                    format!("/api/v1/releases/{id}/actions/promote"),
                    promoter.clone(),
                    Some(json!({"environment": "fat"})),
                )
            })
            .collect(),
    )
    .await;
    let (winners, codes) = tally(&results, StatusCode::OK);
    assert_eq!(winners.len(), 1, "exactly one promotion wins: {results:?}");
    assert_eq!(codes.len(), RACERS - 1);
    // A loser either failed its compare-and-set or saw the release already in fat.
    assert!(
        codes
            .iter()
            .all(|c| ["busy", "conflict", "out_of_order"].contains(&c.as_str())),
        "{codes:?}"
    );
    let after = snapshot(app, &id).await;
    assert_eq!(after.version, before.version + 1, "{after:?}");
    assert_eq!(
        (after.state.as_str(), after.environment.as_deref()),
        ("promoted", Some("fat"))
    );
    assert_eq!(promote_rows(app).await, promotes + 1);
    assert_eq!(cell(app, application, "fat").await["incoming_release"], id.as_str());
}

/// A release running in `application`'s fat, held 50 times at once by two testers: one hold.
async fn race_holds(app: &TestApp, application: &str, testers: [(&str, &Credential); 2]) {
    let id = app.built_release(application).await;
    app.deploy_to(&id, "fat").await;
    let holds = audit(app, "environment.hold").await.len();
    let results = race(
        app,
        (0..RACERS)
            .map(|i| {
                (
                    Method::POST,
                    format!("/api/v1/applications/{application}/environments/fat/hold"),
                    testers[i % 2].1.clone(),
                    Some(json!({"note": format!("hold {i}")})),
                )
            })
            .collect(),
    )
    .await;
    let (winners, codes) = tally(&results, StatusCode::CREATED);
    assert_eq!(winners.len(), 1, "exactly one hold wins: {results:?}");
    assert!(codes.iter().all(|c| c == "held" || c == "conflict"), "{codes:?}");
    let w = winners[0];
    let fat = cell(app, application, "fat").await;
    assert_eq!(fat["held_by"], testers[w % 2].0, "{fat}");
    assert_eq!(fat["hold_note"], format!("hold {w}").as_str(), "{fat}");
    assert_eq!(fat["hold_release"], id.as_str(), "{fat}");
    assert_eq!(audit(app, "environment.hold").await.len(), holds + 1);
}

/// `both_backends!` with the SQLite case ignored for a server bug: under
/// concurrent writes SQLite answers some requests with 500 "database is
/// locked" (see the ignore reason; details in the report that came with this
/// file). PostgreSQL runs.
macro_rules! both_backends_sqlite_busy_bug {
    ($name:ident, |$app:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn body($app: &$crate::harness::TestApp) $body
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::harness::TestApp::spawn($crate::harness::Backend::Sqlite).await;
                body(&app).await;
                app.stop().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let app = $crate::harness::TestApp::spawn($crate::harness::Backend::Postgres).await;
                body(&app).await;
                app.stop().await;
            }
        }
    };
}

both_backends_sqlite_busy_bug!(concurrent_promotions_into_one_environment_have_one_winner, |app| {
    app.project_with_app("shop", "web").await;
    let ops = Credential::Bearer(app.user("otto", Some("shop"), &["operator"]).await);
    race_promotions_of_many_releases(app, &ops).await;
});

both_backends_sqlite_busy_bug!(concurrent_promotions_of_one_release_move_it_once, |app| {
    app.project_with_app("shop", "web").await;
    let ops = Credential::Bearer(app.user("otto", Some("shop"), &["operator"]).await);
    race_promotions_of_one_release(app, "web", &ops).await;
});

both_backends_sqlite_busy_bug!(concurrent_holds_on_one_environment_have_one_winner, |app| {
    app.project_with_app("shop", "web").await;
    let tess = Credential::Bearer(app.user("tess", Some("shop"), &["tester"]).await);
    let tina = Credential::Bearer(app.user("tina", Some("shop"), &["tester"]).await);
    race_holds(app, "web", [("tess", &tess), ("tina", &tina)]).await;
});

// The same races from browser sessions, whose authentication writes nothing:
// SQLite still fails them now and then (the dropped-Tx half of the bug).
both_backends_sqlite_busy_bug!(concurrent_races_from_browser_sessions_have_one_winner, |app| {
    app.project_with_app("shop", "web").await;
    for name in ["api", "batch"] {
        app.ok(
            Method::POST,
            "/api/v1/applications",
            &app.admin,
            Some(json!({"project": "shop", "name": name, "git_url": format!("https://git.example/{name}.git")})),
        )
        .await;
    }
    app.user("otto", Some("shop"), &["operator"]).await;
    app.user("tess", Some("shop"), &["tester"]).await;
    app.user("tina", Some("shop"), &["tester"]).await;
    let ops = session_for(app, "otto").await;
    let tess = session_for(app, "tess").await;
    let tina = session_for(app, "tina").await;
    race_promotions_of_many_releases(app, &ops).await;
    race_promotions_of_one_release(app, "api", &ops).await;
    race_holds(app, "batch", [("tess", &tess), ("tina", &tina)]).await;
});

// 6. Token expiry by the job runner.

both_backends!(a_lapsed_token_is_revoked_by_the_maintenance_job, |app| {
    app.project_with_app("shop", "web").await;
    let ops = app.user("otto", Some("shop"), &["operator"]).await;
    for bad in [0, 366] {
        let (s, e) = app
            .post("/api/v1/tokens", &ops, json!({"name": "ci", "expires_in_days": bad}))
            .await;
        assert_eq!(
            (s, e["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("expires_in_days")),
            "{e}"
        );
    }
    let before = prism_store::now_ms();
    let (s, t) = app
        .post("/api/v1/tokens", &ops, json!({"name": "ci", "expires_in_days": 1}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let token_id = t["token"]["id"].as_i64().unwrap();
    let secret = t["secret"].as_str().unwrap().to_owned();
    let expires = t["token"]["expires_at"].as_i64().unwrap();
    assert!(
        (before + 86_400_000..=prism_store::now_ms() + 86_400_000).contains(&expires),
        "{t}"
    );
    let (s, _) = app.get("/api/v1/board", &secret).await;
    assert_eq!(s, StatusCode::OK, "the new token works");

    // The day passes (in the store); the next sweep marks the token revoked.
    let lapsed = prism_store::now_ms() - 1_000;
    exec(
        app,
        &format!("UPDATE api_tokens SET expires_at = {lapsed} WHERE id = {token_id}"),
    )
    .await;
    let job = enqueue_maintenance(app).await;
    let revoked_at = |list: &Value| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == token_id)
            .map(|t| t["revoked_at"].clone())
            .unwrap_or(Value::Null)
    };
    let (ops_ref, revoked_ref) = (&ops, &revoked_at);
    wait_for(app, job, "the token to be revoked", || async move {
        let (s, list) = app.get("/api/v1/tokens", ops_ref).await;
        assert_eq!(s, StatusCode::OK, "{list}");
        !revoked_ref(&list).is_null()
    })
    .await;
    let (_, list) = app.get("/api/v1/tokens", &ops).await;
    assert_eq!(revoked_at(&list), json!(lapsed), "{list}");
    // otto's login token is untouched.
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .filter(|t| t["id"] != token_id)
            .all(|t| t["revoked_at"].is_null()),
        "{list}"
    );
    let (s, e) = app.get("/api/v1/board", &secret).await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized")),
        "{e}"
    );
    let expired = audit(app, "token.expire").await;
    assert!(!expired.is_empty(), "the sweep is audited");
    assert_eq!(expired[0]["actor"], "system:maintenance");
    wait_for(app, job, "the job to finish", || async move {
        job_state(app, job).await.0 == "succeeded"
    })
    .await;
});

// 7. The notification delivery log's retention, by the maintenance job.

both_backends!(old_finished_deliveries_are_pruned_by_the_maintenance_job, |app| {
    use prism_store::notifications::{self, AttemptRecord, ChannelFields, NewDelivery};
    let mut tx = app.store.begin().await.unwrap();
    let ch = notifications::create_channel(
        &mut tx,
        "ops-hook",
        ChannelFields {
            kind: "webhook",
            project_id: None,
            target: "https://hooks.example.com",
            settings: "{}",
            url_enc: None,
            secret_enc: None,
            clear_secret: false,
            by: "admin",
        },
    )
    .await
    .unwrap();
    // Three deliveries: delivered and queued ones older than the 30 days
    // the test server keeps, and a delivered one from today.
    for (uid, delivered) in [("old-delivered", true), ("old-queued", false), ("new-delivered", true)] {
        let id = notifications::create_delivery(
            &mut tx,
            NewDelivery {
                uid,
                channel_id: ch.id,
                project: None,
                event: "test",
                lang: "en",
                notice: "{}",
            },
        )
        .await
        .unwrap();
        if delivered {
            let r = AttemptRecord {
                attempt: 1,
                at: prism_store::now_ms(),
                duration_ms: 5,
                delivered: true,
                response_code: Some(204),
                error: None,
                status: "delivered",
                next_retry_at: None,
            };
            assert!(notifications::record_attempt(&mut tx, id, &r).await.unwrap());
        }
    }
    tx.commit().await.unwrap();
    let old = prism_store::now_ms() - 31 * 86_400_000;
    exec(
        app,
        &format!("UPDATE notification_deliveries SET updated_at = {old} WHERE uid LIKE 'old-%'"),
    )
    .await;
    let job = enqueue_maintenance(app).await;
    let log = |list: &Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|d| d["delivery"].as_str().unwrap().to_owned())
            .collect()
    };
    let log_ref = &log;
    wait_for(app, job, "the old delivery to go", || async move {
        let (s, list) = app
            .get("/api/v1/notification-channels/ops-hook/deliveries", &app.admin)
            .await;
        assert_eq!(s, StatusCode::OK, "{list}");
        log_ref(&list).len() == 2
    })
    .await;
    let (_, list) = app
        .get("/api/v1/notification-channels/ops-hook/deliveries", &app.admin)
        .await;
    assert_eq!(log(&list), ["new-delivered", "old-queued"], "{list}");
    assert_eq!(
        scalar(app, "SELECT COUNT(*) FROM notification_attempts").await,
        1,
        "the pruned delivery's attempt went with it"
    );
    wait_for(app, job, "the job to finish", || async move {
        job_state(app, job).await.0 == "succeeded"
    })
    .await;
});
