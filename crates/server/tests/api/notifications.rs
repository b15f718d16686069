//! Notifications through the API on both stores, delivered by the real job
//! runner to local HTTP receivers (axum on 127.0.0.1) that check Prism's
//! generic webhook signature the way a receiver would (HMAC-SHA256 of
//! "<timestamp>.<body>" with the shared secret, written here apart from
//! Prism's own signing code): a build that fails and holds reach the
//! project's subscribers and no other project's; a receiver answering 500
//! is retried after a backoff and the delivery log shows both attempts; a
//! receiver that hangs times out while a real deploy (a real control plane)
//! waits for approval and completes; secrets never appear in the delivery
//! log or in any answer; input is checked naming the field.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::routing::post;
use axum::Router;
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::both_backends;
use crate::harness::TestApp;
use prism_test_support::app::PUBLIC_URL;

const SECRET: &str = "whsec-notify-0123456789abcdef";
/// A robot's token in a channel URL: as secret as the signing secret.
const URL_TOKEN: &str = "URLTOKEN-fedcba9876543210";

/// What the receivers saw, in order.
#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<Value>>>,
    flaky_calls: Arc<AtomicUsize>,
}

impl Receiver {
    fn seen(&self) -> Vec<Value> {
        self.seen.lock().unwrap().clone()
    }

    fn at(&self, path: &str) -> Vec<Value> {
        self.seen().into_iter().filter(|v| v["path"] == path).collect()
    }

    /// Waits until `path` received `event` (for up to 60 s) and returns it.
    async fn wait(&self, path: &str, event: &str) -> Value {
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(v) = self.at(path).into_iter().find(|v| v["event"] == event) {
                return v;
            }
            assert!(
                Instant::now() < until,
                "{path} never received {event}; it saw {:#?}",
                self.seen()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn hmac_hex(key: &[u8], msg: &[u8]) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    m.update(msg);
    hex::encode(m.finalize().into_bytes())
}

/// What a receiver of Prism's generic webhook checks, recorded.
fn check(path: &str, headers: &HeaderMap, body: &[u8]) -> Value {
    let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let ts = h("x-prism-timestamp");
    let mut signed = format!("{ts}.").into_bytes();
    signed.extend_from_slice(body);
    let sig_ok = h("x-prism-signature") == format!("sha256={}", hmac_hex(SECRET.as_bytes(), &signed));
    // A receiver refuses old timestamps (replays); five minutes of slack.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let fresh = ts.parse::<i64>().is_ok_and(|t| (now - t).abs() < 300);
    json!({
        "path": path, "sig_ok": sig_ok, "fresh": fresh, "delivery": h("x-prism-delivery"),
        "event": h("x-prism-event"), "body": serde_json::from_slice::<Value>(body).unwrap_or(Value::Null),
    })
}

async fn ok(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> AxumStatus {
    let v = check("ok", &headers, &body);
    let good = v["sig_ok"] == true && v["fresh"] == true;
    r.seen.lock().unwrap().push(v);
    if good {
        AxumStatus::NO_CONTENT
    } else {
        AxumStatus::UNAUTHORIZED
    }
}

async fn other(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> AxumStatus {
    r.seen.lock().unwrap().push(check("other", &headers, &body));
    AxumStatus::NO_CONTENT
}

/// Fails the first call with a 500 whose body repeats the secrets a careless
/// receiver might echo; then accepts correctly signed deliveries.
async fn flaky(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> (AxumStatus, String) {
    let v = check("flaky", &headers, &body);
    let good = v["sig_ok"] == true && v["fresh"] == true;
    r.seen.lock().unwrap().push(v);
    if r.flaky_calls.fetch_add(1, Ordering::SeqCst) == 0 {
        return (
            AxumStatus::INTERNAL_SERVER_ERROR,
            format!("overloaded; you sent token={URL_TOKEN} and we know {SECRET}"),
        );
    }
    if good {
        (AxumStatus::NO_CONTENT, String::new())
    } else {
        (AxumStatus::UNAUTHORIZED, String::new())
    }
}

/// Takes the request and never answers in time.
async fn hang(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> AxumStatus {
    r.seen.lock().unwrap().push(check("hang", &headers, &body));
    tokio::time::sleep(Duration::from_secs(120)).await;
    AxumStatus::NO_CONTENT
}

async fn receiver() -> (String, Receiver) {
    let r = Receiver::default();
    let router = Router::new()
        .route("/ok", post(ok))
        .route("/other", post(other))
        .route("/flaky", post(flaky))
        .route("/hang", post(hang))
        .with_state(r.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, router).await.unwrap() });
    (format!("http://{addr}"), r)
}

async fn put_channel(app: &TestApp, name: &str, body: Value) -> Value {
    app.ok(
        Method::PUT,
        &format!("/api/v1/notification-channels/{name}"),
        &app.admin,
        Some(body),
    )
    .await
}

async fn subscribe(app: &TestApp, token: &str, project: &str, channel: &str, body: Value) -> (StatusCode, Value) {
    app.call(
        Method::PUT,
        &format!("/api/v1/projects/{project}/subscriptions/{channel}"),
        Some(token),
        Some(body),
    )
    .await
}

async fn deliveries(app: &TestApp, channel: &str) -> Vec<Value> {
    let v = app
        .ok(
            Method::GET,
            &format!("/api/v1/notification-channels/{channel}/deliveries"),
            &app.admin,
            None,
        )
        .await;
    v.as_array().unwrap().clone()
}

/// Waits until every delivery of `channel` has ended and there are `n`; returns them.
async fn settled(app: &TestApp, channel: &str, n: usize, within: Duration) -> Vec<Value> {
    let until = Instant::now() + within;
    loop {
        let list = deliveries(app, channel).await;
        if list.len() == n
            && list
                .iter()
                .all(|d| d["status"] == "delivered" || d["status"] == "failed")
        {
            return list;
        }
        assert!(
            Instant::now() < until,
            "{channel}'s deliveries never settled: {list:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A release of `app_name` built (as the engine would report it) with an image.
async fn release_with_image(app: &TestApp, app_name: &str, n: u32) -> String {
    let r = app
        .ok(
            Method::POST,
            "/api/v1/releases",
            &app.admin,
            Some(json!({"application": app_name, "git_ref": "main", "change_note": format!("cut {n}")})),
        )
        .await;
    let id = r["id"].as_str().unwrap().to_owned();
    app.act(&id, "start_build", &app.admin, json!({})).await;
    app.act(
        &id,
        "build_succeeded",
        &app.admin,
        json!({"commit_sha": "0123456789abcdef0123456789abcdef01234567",
               "image_ref": format!("registry.example/{app_name}:{n}"),
               "image_digest": format!("sha256:{}", n.to_string().repeat(64))}),
    )
    .await;
    id
}

/// Everything the API and the store hold about channels and deliveries, as
/// text: none of it may contain a secret.
async fn everything_shown(app: &TestApp, channels: &[&str], project: &str) -> String {
    let mut shown = String::new();
    let mut paths = vec![
        "/api/v1/notification-channels".to_string(),
        format!("/api/v1/projects/{project}/subscriptions"),
        "/api/v1/audit?limit=500".to_string(),
    ];
    for c in channels {
        paths.push(format!("/api/v1/notification-channels/{c}"));
        paths.push(format!("/api/v1/notification-channels/{c}/deliveries"));
    }
    for p in paths {
        let (s, v) = app.get(&p, &app.admin).await;
        assert_eq!(s, StatusCode::OK, "{p}: {v}");
        shown.push_str(&v.to_string());
    }
    let mut c = app.store.conn().await.unwrap();
    type Row = (Option<String>, Option<String>, Option<Vec<u8>>, Option<Vec<u8>>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT d.error, d.notice, c.url_enc, c.secret_enc FROM notification_channels c \
         LEFT JOIN notification_deliveries d ON d.channel_id = c.id",
    )
    .fetch_all(&mut *c)
    .await
    .unwrap();
    for (error, notice, url, secret) in rows {
        shown.push_str(&error.unwrap_or_default());
        shown.push_str(&notice.unwrap_or_default());
        // Sealed: the plain text is nowhere in the stored bytes.
        for sealed in [url, secret].into_iter().flatten() {
            shown.push_str(&String::from_utf8_lossy(&sealed));
        }
    }
    let errors: Vec<Option<String>> = sqlx::query_scalar("SELECT error FROM notification_attempts")
        .fetch_all(&mut *c)
        .await
        .unwrap();
    for e in errors.into_iter().flatten() {
        shown.push_str(&e);
    }
    shown
}

fn assert_no_secrets(shown: &str) {
    for s in [SECRET, URL_TOKEN] {
        assert!(!shown.contains(s), "{s} was shown: {shown}");
    }
}

both_backends!(build_failures_and_holds_reach_their_projects_subscribers_only, |app| {
    let (base, rx) = receiver().await;
    app.project_with_app("alpha", "web").await;
    app.project_with_app("beta", "api").await;
    let otto = app.user("otto", Some("alpha"), &["operator"]).await;
    let tess = app.user("tess", Some("alpha"), &["tester"]).await;
    let dana = app.user("dana", Some("alpha"), &["developer"]).await;
    let bea = app.user("bea", Some("beta"), &["operator"]).await;

    let ch = put_channel(
        app,
        "ops",
        json!({"kind": "webhook", "url": format!("{base}/ok?token={URL_TOKEN}"), "secret": SECRET}),
    )
    .await;
    assert_eq!(ch["target"], base.as_str(), "only the scheme and host are shown: {ch}");
    assert_eq!(ch["has_secret"], true);
    put_channel(
        app,
        "beta-only",
        json!({"kind": "webhook", "url": format!("{base}/other"), "secret": SECRET, "project": "beta"}),
    )
    .await;

    // alpha's operator subscribes alpha (in Chinese); beta's channel is not alpha's to use.
    let (s, sub) = subscribe(
        app,
        &otto,
        "alpha",
        "ops",
        json!({"events": ["hold_placed", "build_failed", "hold_overridden", "build_failed"], "language": "zh-CN"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{sub}");
    assert_eq!(sub["events"], json!(["build_failed", "hold_placed", "hold_overridden"]));
    assert_eq!(sub["language"], "zh-CN");
    let (s, e) = subscribe(app, &otto, "alpha", "beta-only", json!({"events": ["build_failed"]})).await;
    assert_eq!((s, &e["code"]), (StatusCode::NOT_FOUND, &json!("not_found")), "{e}");
    // A tester may read the subscriptions but not change them; beta's operator sees none of alpha's.
    let (s, _) = subscribe(app, &tess, "alpha", "ops", json!({"events": ["build_failed"]})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, list) = app.get("/api/v1/projects/alpha/subscriptions", &tess).await;
    assert_eq!((s, list.as_array().unwrap().len()), (StatusCode::OK, 1), "{list}");
    let (s, _) = app.get("/api/v1/projects/alpha/subscriptions", &bea).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // beta subscribes to everything, on its own channel and on the shared one.
    let all = json!({"events": ["build_failed", "build_succeeded", "deploy_awaiting_approval", "deploy_succeeded",
        "deploy_failed", "auto_rollback", "hold_placed", "hold_overridden", "freeze_broken"]});
    for channel in ["beta-only", "ops"] {
        let (s, e) = subscribe(app, &bea, "beta", channel, all.clone()).await;
        assert_eq!(s, StatusCode::OK, "{e}");
    }
    // A non-admin sees the channels its projects may use, never where they go.
    let (_, seen_by_bea) = app.get("/api/v1/notification-channels", &bea).await;
    assert_eq!(seen_by_bea.as_array().unwrap().len(), 2, "{seen_by_bea}");
    assert!(seen_by_bea[0].get("target").is_none(), "{seen_by_bea}");
    let (_, seen_by_otto) = app.get("/api/v1/notification-channels", &otto).await;
    assert_eq!(seen_by_otto.as_array().unwrap().len(), 1, "{seen_by_otto}");

    // A real build that fails: its git server does not answer.
    app.ok(
        Method::PUT,
        "/api/v1/registries/r",
        &app.admin,
        Some(json!({"host": "127.0.0.1:9", "all_projects": true})),
    )
    .await;
    app.ok(
        Method::POST,
        "/api/v1/base-images",
        &app.admin,
        Some(json!({"name": "b", "tier": 1, "registry": "r", "repository": "base/b"})),
    )
    .await;
    app.ok(
        Method::PATCH,
        "/api/v1/applications/web",
        &app.admin,
        Some(json!({"git_url": "http://127.0.0.1:9/web.git", "build_settings": {"base_image": "b", "registry": "r", "artifact_paths": ["dist"]}})),
    )
    .await;
    let r = app
        .ok(
            Method::POST,
            "/api/v1/releases",
            &app.admin,
            Some(json!({"application": "web", "git_ref": "main", "change_note": "doomed"})),
        )
        .await;
    let rid = r["id"].as_str().unwrap().to_owned();
    let b = app
        .ok(
            Method::POST,
            &format!("/api/v1/releases/{rid}/builds"),
            &dana,
            Some(json!({})),
        )
        .await;
    let got = rx.wait("ok", "build_failed").await;
    assert_eq!(got["sig_ok"], true, "{got}");
    assert_eq!(got["fresh"], true, "{got}");
    let n = &got["body"]["notice"];
    assert_eq!(n["project"], "alpha");
    assert_eq!(n["application"], "web");
    assert_eq!(n["release"], rid.as_str());
    assert_eq!(n["actor"], "dana");
    assert_eq!(n["link"], format!("{PUBLIC_URL}/builds/{}", b["id"]));
    assert_eq!(got["body"]["title"], format!("web {rid} 构建失败"), "{got}");
    assert!(got["body"]["text"].as_str().unwrap().contains("项目: alpha"), "{got}");
    let b = app
        .ok(Method::GET, &format!("/api/v1/builds/{}", b["id"]), &app.admin, None)
        .await;
    assert_eq!(b["state"], "failed", "{b}");

    // Holds: placed by a tester, lifted over her by the operator with a reason.
    let live = release_with_image(app, "web", 1).await;
    app.deploy_to(&live, "fat").await;
    let hold = "/api/v1/applications/web/environments/fat/hold";
    app.ok(Method::POST, hold, &tess, Some(json!({"note": "exploratory testing"})))
        .await;
    let placed = rx.wait("ok", "hold_placed").await;
    assert_eq!(placed["body"]["notice"]["environment"], "fat");
    assert_eq!(placed["body"]["notice"]["reason"], "exploratory testing");
    assert_eq!(placed["body"]["notice"]["link"], format!("{PUBLIC_URL}/apps/web"));
    app.ok(Method::DELETE, &format!("{hold}?reason=hotfix%20needed"), &otto, None)
        .await;
    let overridden = rx.wait("ok", "hold_overridden").await;
    assert_eq!(overridden["body"]["notice"]["actor"], "otto");
    assert_eq!(overridden["body"]["notice"]["reason"], "hotfix needed");
    assert_eq!(overridden["body"]["notice"]["release"], live.as_str());

    // alpha's three deliveries, each delivered at the first attempt; beta,
    // subscribed to everything on both channels, heard nothing of alpha.
    let log = settled(app, "ops", 3, Duration::from_secs(30)).await;
    let events: Vec<&str> = log.iter().map(|d| d["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["hold_overridden", "hold_placed", "build_failed"], "{log:#?}");
    for d in &log {
        assert_eq!(d["status"], "delivered", "{d}");
        assert_eq!(
            (d["attempts"].as_i64(), d["response_code"].as_i64()),
            (Some(1), Some(204)),
            "{d}"
        );
        assert_eq!(d["project"], "alpha");
        assert_eq!(d["language"], "zh-CN");
        let seen = rx.at("ok").into_iter().find(|v| v["delivery"] == d["delivery"]);
        assert!(
            seen.is_some(),
            "the receiver saw delivery {} under its id",
            d["delivery"]
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(rx.at("other").is_empty(), "{:#?}", rx.at("other"));
    assert!(
        rx.seen().iter().all(|v| v["body"]["notice"]["project"] == "alpha"),
        "{:#?}",
        rx.seen()
    );
    assert!(deliveries(app, "beta-only").await.is_empty());
    assert_no_secrets(&everything_shown(app, &["ops", "beta-only"], "alpha").await);

    // The delivery log is the admins'.
    let (s, _) = app.get("/api/v1/notification-channels/ops/deliveries", &otto).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Ending the subscription stops the notices.
    let (s, _) = app
        .call(
            Method::DELETE,
            "/api/v1/projects/alpha/subscriptions/ops",
            Some(&otto),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    app.ok(Method::POST, hold, &tess, Some(json!({"note": "again"}))).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(deliveries(app, "ops").await.len(), 3);
});

both_backends!(
    a_receiver_answering_500_is_retried_and_secrets_stay_out_of_the_log,
    |app| {
        let (base, rx) = receiver().await;
        app.project_with_app("alpha", "web").await;
        let live = release_with_image(app, "web", 1).await;
        app.deploy_to(&live, "fat").await;
        put_channel(
            app,
            "flaky",
            json!({"kind": "webhook", "url": format!("{base}/flaky?token={URL_TOKEN}"), "secret": SECRET}),
        )
        .await;
        let (s, e) = subscribe(app, &app.admin, "alpha", "flaky", json!({"events": ["hold_placed"]})).await;
        assert_eq!(s, StatusCode::OK, "{e}");
        app.ok(
            Method::POST,
            "/api/v1/applications/web/environments/fat/hold",
            &app.admin,
            Some(json!({"note": "checking"})),
        )
        .await;

        let log = settled(app, "flaky", 1, Duration::from_secs(30)).await;
        let d = &log[0];
        assert_eq!(d["status"], "delivered", "{d:#}");
        assert_eq!(
            (d["attempts"].as_i64(), d["response_code"].as_i64()),
            (Some(2), Some(204)),
            "{d:#}"
        );
        assert!(d["error"].is_null() && d["next_retry_at"].is_null(), "{d:#}");
        let tries = d["attempt_log"].as_array().unwrap();
        assert_eq!(tries.len(), 2, "{d:#}");
        assert_eq!(tries[0]["delivered"], false);
        assert_eq!(tries[0]["response_code"], 500);
        let first_error = tries[0]["error"].as_str().unwrap();
        assert!(
            first_error.contains("500") && first_error.contains("overloaded"),
            "{first_error}"
        );
        assert!(
            first_error.contains("***"),
            "the echoed secrets are masked: {first_error}"
        );
        assert_eq!(
            (tries[1]["delivered"].as_bool(), tries[1]["response_code"].as_i64()),
            (Some(true), Some(204))
        );
        let waited = tries[1]["at"].as_i64().unwrap() - tries[0]["at"].as_i64().unwrap();
        assert!(waited >= 300, "the retry waited for its backoff (300 ms): {waited} ms");
        // The receiver saw the same delivery twice, signed both times.
        let calls = rx.at("flaky");
        assert_eq!(calls.len(), 2, "{calls:#?}");
        assert!(
            calls
                .iter()
                .all(|c| c["sig_ok"] == true && c["delivery"] == d["delivery"]),
            "{calls:#?}"
        );

        // A test message: one attempt, in the log, answered with its outcome.
        let t = app
            .ok(
                Method::POST,
                "/api/v1/notification-channels/flaky/test",
                &app.admin,
                Some(json!({"language": "zh-CN"})),
            )
            .await;
        assert_eq!(
            (t["status"].as_str(), t["event"].as_str()),
            (Some("delivered"), Some("test")),
            "{t}"
        );
        let got = rx.wait("flaky", "test").await;
        assert_eq!(got["body"]["title"], "Prism 发往 flaky 的测试消息");
        // To a closed port: failed at once, never retried.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        put_channel(
        app,
        "nowhere",
        json!({"kind": "dingtalk", "url": format!("http://127.0.0.1:{port}/robot/send?access_token={URL_TOKEN}"), "secret": SECRET}),
    )
    .await;
        let t = app
            .ok(
                Method::POST,
                "/api/v1/notification-channels/nowhere/test",
                &app.admin,
                None,
            )
            .await;
        assert_eq!(t["status"], "failed", "{t}");
        assert_eq!(t["attempts"], 1);
        assert!(t["next_retry_at"].is_null());
        assert!(t["error"].as_str().unwrap().contains("could not be reached"), "{t}");
        assert_no_secrets(&everything_shown(app, &["flaky", "nowhere"], "alpha").await);
    }
);

/// A minimal SMTP server: enough of RFC 5321 for one message per connection.
async fn smtp_sink() -> (u16, Arc<Mutex<Vec<String>>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let store = got.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let store = store.clone();
            tokio::spawn(async move {
                let (r, mut w) = s.into_split();
                let mut r = BufReader::new(r);
                let _ = w.write_all(b"220 sink ESMTP\r\n").await;
                let (mut line, mut data, mut in_data) = (String::new(), String::new(), false);
                loop {
                    line.clear();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if in_data {
                        if line == ".\r\n" {
                            in_data = false;
                            store.lock().unwrap().push(std::mem::take(&mut data));
                            let _ = w.write_all(b"250 queued\r\n").await;
                        } else {
                            data.push_str(&line);
                        }
                        continue;
                    }
                    let cmd = line.to_ascii_uppercase();
                    let reply: &[u8] = if cmd.starts_with("DATA") {
                        in_data = true;
                        b"354 go ahead\r\n"
                    } else if cmd.starts_with("QUIT") {
                        let _ = w.write_all(b"221 bye\r\n").await;
                        return;
                    } else {
                        b"250 ok\r\n"
                    };
                    let _ = w.write_all(reply).await;
                }
            });
        }
    });
    (port, got)
}

both_backends!(channel_and_subscription_input_is_checked_naming_the_field, |app| {
    app.project_with_app("alpha", "web").await;
    app.project_with_app("beta", "api").await;
    let audit_before = app.count("audit_events").await;
    let bad = |body: Value, field: &'static str| (body, field);
    let web = "https://hooks.example.com/prism";
    let cases = [
        bad(json!({"kind": "pager", "url": web}), "kind"),
        bad(json!({"kind": "webhook"}), "url"),
        bad(json!({"kind": "webhook", "url": "ftp://hooks.example.com/x"}), "url"),
        bad(
            json!({"kind": "webhook", "url": "https://user:pw@hooks.example.com/x"}),
            "url",
        ),
        bad(
            json!({"kind": "webhook", "url": "http://169.254.169.254/latest"}),
            "url",
        ),
        bad(json!({"kind": "webhook", "url": web, "secret": ""}), "secret"),
        bad(
            json!({"kind": "webhook", "url": web, "secret": "s", "clear_secret": true}),
            "clear_secret",
        ),
        bad(json!({"kind": "slack", "url": web, "secret": "s"}), "secret"),
        bad(json!({"kind": "webhook", "url": web, "project": "nope"}), "project"),
        bad(
            json!({"kind": "webhook", "url": web, "email": {"host": "smtp", "from": "a@b.c", "to": ["d@e.f"]}}),
            "email",
        ),
        bad(json!({"kind": "email"}), "email"),
        bad(
            json!({"kind": "email", "url": web, "email": {"host": "smtp", "from": "a@b.c", "to": ["d@e.f"]}}),
            "url",
        ),
        bad(
            json!({"kind": "email", "email": {"host": "smtp", "from": "nobody", "to": ["d@e.f"]}}),
            "email.from",
        ),
        bad(
            json!({"kind": "email", "email": {"host": "smtp", "from": "a@b.c", "to": []}}),
            "email.to",
        ),
        bad(
            json!({"kind": "email", "email": {"host": "smtp", "from": "a@b.c", "to": ["d@e.f", "x"]}}),
            "email.to[1]",
        ),
        bad(
            json!({"kind": "email", "email": {"host": "smtp", "tls": "ssl", "from": "a@b.c", "to": ["d@e.f"]}}),
            "email.tls",
        ),
        bad(
            json!({"kind": "email", "email": {"host": "smtp", "username": "u", "from": "a@b.c", "to": ["d@e.f"]}}),
            "secret",
        ),
    ];
    for (body, field) in cases {
        let (s, e) = app
            .call(
                Method::PUT,
                "/api/v1/notification-channels/c1",
                Some(&app.admin),
                Some(body.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {e}");
        assert_eq!(e["field"], field, "{body}: {e}");
    }
    let (s, e) = app
        .call(
            Method::PUT,
            "/api/v1/notification-channels/Bad%20Name",
            Some(&app.admin),
            Some(json!({"kind": "webhook", "url": web})),
        )
        .await;
    assert_eq!(
        (s, &e["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("name")),
        "{e}"
    );
    assert_eq!(app.count("notification_channels").await, 0, "nothing half-written");
    assert_eq!(
        app.count("audit_events").await,
        audit_before,
        "refusals are not changes"
    );

    put_channel(app, "hook", json!({"kind": "webhook", "url": web})).await;
    let sub = |body: Value| async move { subscribe(app, &app.admin, "alpha", "hook", body).await };
    for (body, field) in [
        (json!({"events": []}), "events"),
        (json!({"events": ["build_failed", "exploded"]}), "events[1]"),
        (json!({"events": ["test"]}), "events[0]"),
        (json!({"events": ["build_failed"], "language": "fr"}), "language"),
    ] {
        let (s, e) = sub(body.clone()).await;
        assert_eq!(
            (s, &e["field"]),
            (StatusCode::UNPROCESSABLE_ENTITY, &json!(field)),
            "{body}: {e}"
        );
    }
    let (s, e) = subscribe(app, &app.admin, "alpha", "nope", json!({"events": ["build_failed"]})).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{e}");
    assert_eq!(app.count("notification_subscriptions").await, 0);
    let (s, _) = sub(json!({"events": ["deploy_failed"]})).await;
    assert_eq!(s, StatusCode::OK);
    // A subscribed channel is not removed, nor limited to another project.
    let (s, e) = app
        .call(
            Method::DELETE,
            "/api/v1/notification-channels/hook",
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert!(e["error"].as_str().unwrap().contains("alpha"), "{e}");
    let (s, e) = app
        .call(
            Method::PUT,
            "/api/v1/notification-channels/hook",
            Some(&app.admin),
            Some(json!({"kind": "webhook", "project": "beta"})),
        )
        .await;
    assert_eq!((s, &e["field"]), (StatusCode::CONFLICT, &json!("project")), "{e}");
    // The URL is kept when left out; a secret can be added and cleared.
    let c = put_channel(
        app,
        "hook",
        json!({"kind": "webhook", "project": "alpha", "secret": "abcdef"}),
    )
    .await;
    assert_eq!(
        (c["has_secret"].as_bool(), c["project"].as_str()),
        (Some(true), Some("alpha")),
        "{c}"
    );
    let c = put_channel(app, "hook", json!({"kind": "webhook", "clear_secret": true})).await;
    assert_eq!(c["has_secret"], false, "{c}");
    assert_eq!(c["subscribed_by"], json!(["alpha"]), "{c}");

    // E-mail through a local SMTP server, resolved through the address policy.
    let (port, mails) = smtp_sink().await;
    let c = put_channel(
        app,
        "mail",
        json!({"kind": "email", "email": {"host": "localhost", "port": port, "tls": "none",
               "from": "Prism <prism@example.com>", "to": ["ops@example.com"]}}),
    )
    .await;
    assert_eq!(c["target"], format!("localhost:{port}"));
    let t = app
        .ok(
            Method::POST,
            "/api/v1/notification-channels/mail/test",
            &app.admin,
            None,
        )
        .await;
    assert_eq!(t["status"], "delivered", "{t}");
    let mail = mails.lock().unwrap()[0].clone();
    assert!(mail.contains("Subject: Test message from Prism to mail"), "{mail}");
    assert!(
        mail.contains(&format!("{PUBLIC_URL}/admin/notifications/mail")),
        "{mail}"
    );
    // Every change was audited, once each.
    let audited = app
        .ok(
            Method::GET,
            "/api/v1/audit?record_type=notification_channel&limit=100",
            &app.admin,
            None,
        )
        .await;
    let actions: Vec<&str> = audited
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions.iter().filter(|a| **a == "notification_channel.put").count(),
        4,
        "{actions:?}"
    );
    assert_eq!(actions.iter().filter(|a| **a == "notification_channel.test").count(), 1);
});

/// With a real control plane: a deploy waits for approval, which is
/// announced to a signed webhook and to a receiver that hangs; the hanging
/// receiver times out (three attempts, each cut off) while the deploy is
/// approved, rolls out and succeeds, and the other channel hears of that too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_receiver_times_out_and_the_deploy_still_completes() {
    let kube = tokio::task::spawn_blocking(prism_test_support::kube::KubeCluster::up)
        .await
        .unwrap();
    kube.kubectl(&["create", "namespace", "shop-fat-sqlite"]);
    kube.kubectl(&["create", "namespace", "shop-fat-postgres"]);
    for backend in [
        prism_test_support::Backend::Sqlite,
        prism_test_support::Backend::Postgres,
    ] {
        let app = TestApp::spawn(backend).await;
        let ns = match backend {
            prism_test_support::Backend::Sqlite => "shop-fat-sqlite",
            _ => "shop-fat-postgres",
        };
        hanging_receiver_body(&app, &kube, ns).await;
        app.stop().await;
    }
}

async fn hanging_receiver_body(app: &TestApp, kube: &prism_test_support::kube::KubeCluster, ns: &str) {
    let (base, rx) = receiver().await;
    app.project_with_app("shop", "web").await;
    let rita = app.user("rita", Some("shop"), &["operator"]).await;
    let ann = app.user("ann", Some("shop"), &["operator"]).await;
    app.ok(
        Method::POST,
        "/api/v1/clusters",
        &app.admin,
        Some(json!({"name": "one", "kubeconfig": kube.kubeconfig_text()})),
    )
    .await;
    app.ok(
        Method::PATCH,
        "/api/v1/environments/fat",
        &app.admin,
        Some(json!({"cluster": "one", "namespace": ns})),
    )
    .await;
    app.ok(
        Method::PUT,
        "/api/v1/environments/fat/approval-policy",
        &app.admin,
        Some(json!({"policy": {"required": 1, "roles": ["operator"]}})),
    )
    .await;
    put_channel(
        app,
        "ops",
        json!({"kind": "webhook", "url": format!("{base}/ok"), "secret": SECRET}),
    )
    .await;
    put_channel(
        app,
        "slow",
        json!({"kind": "webhook", "url": format!("{base}/hang"), "secret": SECRET}),
    )
    .await;
    let events = json!({"events": ["deploy_awaiting_approval", "deploy_succeeded", "deploy_failed"]});
    for channel in ["slow", "ops"] {
        let (s, e) = subscribe(app, &rita, "shop", channel, events.clone()).await;
        assert_eq!(s, StatusCode::OK, "{e}");
    }

    let rid = release_with_image(app, "web", 1).await;
    app.act(&rid, "promote", &app.admin, json!({"environment": "fat"}))
        .await;
    let (s, d) = app
        .post(
            &format!("/api/v1/releases/{rid}/deploys"),
            &rita,
            json!({"environment": "fat"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{d}");
    let id = d["id"].as_i64().unwrap();
    let waiting = rx.wait("ok", "deploy_awaiting_approval").await;
    assert_eq!(waiting["sig_ok"], true, "{waiting}");
    assert_eq!(waiting["body"]["notice"]["actor"], "rita");
    assert_eq!(waiting["body"]["notice"]["link"], format!("{PUBLIC_URL}/deploys/{id}"));
    assert_eq!(waiting["body"]["title"], format!("web {rid} to fat waits for approval"));
    // The slow receiver got the same notice and is keeping it.
    rx.wait("hang", "deploy_awaiting_approval").await;

    let (s, v) = app
        .post(
            &format!("/api/v1/deploys/{id}/approve"),
            &ann,
            json!({"comment": "ship it"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let until = Instant::now() + Duration::from_secs(180);
    let done = loop {
        let d = app
            .ok(Method::GET, &format!("/api/v1/deploys/{id}"), &app.admin, None)
            .await;
        if ["succeeded", "failed"].contains(&d["state"].as_str().unwrap()) {
            break d;
        }
        assert!(Instant::now() < until, "the deploy never finished: {d}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(done["state"], "succeeded", "{done}");
    let succeeded = rx.wait("ok", "deploy_succeeded").await;
    assert_eq!(succeeded["body"]["notice"]["release"], rid.as_str());

    // Each of the slow channel's deliveries was cut off by the timeout, three times.
    let slow = settled(app, "slow", 2, Duration::from_secs(60)).await;
    for d in &slow {
        assert_eq!(d["status"], "failed", "{d:#}");
        assert_eq!(d["attempts"], 3, "{d:#}");
        for a in d["attempt_log"].as_array().unwrap() {
            let e = a["error"].as_str().unwrap();
            assert!(e.contains("timed out"), "{e}");
            let took = a["duration_ms"].as_i64().unwrap();
            assert!(
                (1_900..10_000).contains(&took),
                "cut off after the 2 s timeout: {took} ms"
            );
        }
    }
    // The fast channel did not wait for the slow one.
    let ops = settled(app, "ops", 2, Duration::from_secs(10)).await;
    assert!(
        ops.iter().all(|d| d["status"] == "delivered" && d["attempts"] == 1),
        "{ops:#?}"
    );
    let slow_awaiting = slow.iter().find(|d| d["event"] == "deploy_awaiting_approval").unwrap();
    let ops_awaiting = ops.iter().find(|d| d["event"] == "deploy_awaiting_approval").unwrap();
    assert!(
        ops_awaiting["updated_at"].as_i64() < slow_awaiting["attempt_log"][0]["at"].as_i64().map(|t| t + 1_900),
        "the signed webhook was delivered while the slow one still hung: {ops_awaiting} / {slow_awaiting}"
    );
}

/// Signs in as a person (API tokens never break glass): the session cookie and CSRF token.
async fn session(app: &TestApp, user: &str) -> (String, String) {
    let resp = app
        .http
        .post(format!("{}/api/v1/auth/login", app.base))
        .json(&json!({"username": user, "password": crate::harness::PASSWORD}))
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

both_backends!(broken_glass_and_the_failed_deploy_after_it_are_announced, |app| {
    let (base, rx) = receiver().await;
    app.project_with_app("shop", "web").await;
    app.user("rita", Some("shop"), &["operator"]).await;
    // A cluster that answers nothing: the deploy fails when it plans.
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
    let now = prism_store::now_ms();
    app.ok(
        Method::PUT,
        "/api/v1/environments/fat/schedule",
        &app.admin,
        Some(
            json!({"freezes": [{"from_ms": now - 3_600_000, "until_ms": now + 3_600_000, "reason": "incident"}],
                    "when_closed": "refuse", "break_glass_roles": ["operator"]}),
        ),
    )
    .await;
    put_channel(
        app,
        "ops",
        json!({"kind": "webhook", "url": format!("{base}/ok"), "secret": SECRET}),
    )
    .await;
    let (s, e) = subscribe(
        app,
        &app.admin,
        "shop",
        "ops",
        json!({"events": ["freeze_broken", "deploy_failed"], "language": "zh-CN"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{e}");
    let rel = app.built_release("web").await;
    app.act(&rel, "promote", &app.admin, json!({"environment": "fat"}))
        .await;
    let (cookie, csrf) = session(app, "rita").await;
    let resp = app
        .http
        .post(format!("{}/api/v1/releases/{rel}/deploys", app.base))
        .header(reqwest::header::COOKIE, format!("prism_session={cookie}"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"environment": "fat", "break_glass_reason": "payments are down"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let d: Value = resp.json().await.unwrap();

    let broken = rx.wait("ok", "freeze_broken").await;
    assert_eq!(broken["sig_ok"], true);
    let n = &broken["body"]["notice"];
    assert_eq!(
        (n["actor"].as_str(), n["reason"].as_str()),
        (Some("rita"), Some("payments are down")),
        "{n}"
    );
    assert_eq!(n["link"], format!("{PUBLIC_URL}/deploys/{}", d["id"]));
    assert_eq!(broken["body"]["title"], format!("封网期间紧急发布: web {rel} 到 fat"));
    let failed = rx.wait("ok", "deploy_failed").await;
    assert_eq!(failed["body"]["notice"]["environment"], "fat");
    assert!(
        failed["body"]["notice"]["reason"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{failed}"
    );
    assert_eq!(failed["body"]["title"], format!("web {rel} 发布到 fat 失败"));
});

// Issue 11 item 9 for notifications: the address policy is applied to the
// address a channel's host name resolves to when a delivery is made, not
// only to a literal address when the channel is saved.
both_backends!(
    a_channel_whose_host_resolves_to_a_denied_range_is_never_contacted,
    |app| {
        let (base, rx) = receiver().await;
        let port = base.rsplit(':').next().unwrap().to_owned();
        // By name: saving checks no resolution.
        put_channel(
            app,
            "local",
            json!({"kind": "webhook", "url": format!("http://localhost:{port}/ok"), "secret": SECRET}),
        )
        .await;
        let t = app
            .ok(
                Method::POST,
                "/api/v1/notification-channels/local/test",
                &app.admin,
                None,
            )
            .await;
        assert_eq!(t["status"], "delivered", "allowed by default: {t}");
        assert_eq!(rx.seen.lock().unwrap().len(), 1);
        app.ok(
            Method::PUT,
            "/api/v1/address-policy",
            &app.admin,
            Some(json!({"allowed": [], "denied": ["127.0.0.0/8", "::1/128"]})),
        )
        .await;
        let t = app
            .ok(
                Method::POST,
                "/api/v1/notification-channels/local/test",
                &app.admin,
                None,
            )
            .await;
        assert_eq!(t["status"], "failed", "{t}");
        assert!(
            t["error"].as_str().unwrap().contains("could not be reached"),
            "the same words as a closed port: {t}"
        );
        assert_eq!(rx.seen.lock().unwrap().len(), 1, "the receiver was never contacted");
    }
);
