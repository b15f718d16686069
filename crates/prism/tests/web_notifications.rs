//! Notifications in the console, in real Chromium against `prism serve`: an
//! admin adds a webhook channel (its URL and secret never shown again), an
//! operator subscribes the project to holds on the project's page, a hold
//! reaches a local receiver, and the admin reads the channel's delivery log
//! (and sends a test message); the log reads in Chinese too.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use prism_test_support::browser as web;
use prism_test_support::ServerProcess as Server;
use serde_json::json;
use web::{Api, Driver};

const PW: &str = "notifications-console-pw";
const SECRET: &str = "console-signing-secret-42";
const TOKEN: &str = "ROBOT-TOKEN-in-the-url-77";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_set_up_channels_and_operators_subscribe_their_project() {
    // The receiver: every event it is sent, in order.
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let rec = seen.clone();
    let router = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap| {
            let rec = rec.clone();
            async move {
                let event = headers
                    .get("x-prism-event")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                rec.lock().unwrap().push(event);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook?token={TOKEN}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, router).await.unwrap() });

    let server = tokio::task::spawn_blocking(|| Server::with_app("web-notifications"))
        .await
        .unwrap();
    let api = Api::new(&server.url).await;
    api.call("POST", "/users", json!({"username": "otto", "password": PW}))
        .await;
    api.call(
        "POST",
        "/projects/shop/members",
        json!({"username": "otto", "role": "operator"}),
    )
    .await;
    let rel = api
        .call(
            "POST",
            "/releases",
            json!({"application": "web", "git_ref": "main", "change_note": "live"}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (action, body) in [
        ("start_build", json!({})),
        (
            "build_succeeded",
            json!({"commit_sha": "0123456789abcdef0123456789abcdef01234567", "image_digest": format!("sha256:{}", "d".repeat(64))}),
        ),
        ("promote", json!({"environment": "fat"})),
        ("deploy", json!({"environment": "fat"})),
        ("deploy_succeeded", json!({})),
    ] {
        api.call("POST", &format!("/releases/{rel}/actions/{action}"), body)
            .await;
    }

    let driver = Driver::start();
    let admin = driver.browser(&server.url, "admin", true).await;
    admin.login("admin", prism_test_support::process::ADMIN_PASSWORD).await;
    admin.goto("/admin/notifications").await;
    admin.fill("#channel-form input[name=name]", "ops-hook").await;
    admin.fill("#channel-form input[name=url]", &hook).await;
    admin.fill("#channel-form input[name=secret]", SECRET).await;
    admin.click("#channel-save").await;
    let row = admin.text("#channels tr[data-channel=ops-hook]").await;
    assert!(row.contains("webhook") && row.contains("http://127.0.0.1:"), "{row}");
    // A refused form names the field and keeps what was stored.
    admin.fill("#channel-form input[name=name]", "broken").await;
    admin
        .fill("#channel-form input[name=url]", "ftp://nowhere.example")
        .await;
    admin.click("#channel-save").await;
    assert!(
        admin.text("#notice").await.contains("http"),
        "{}",
        admin.text("#notice").await
    );
    assert!(!admin.exists("#channels tr[data-channel=broken]").await);
    admin.goto("/admin/notifications?edit=ops-hook").await;
    let page = admin.find("html").await.html(false).await.unwrap();
    assert!(
        !page.contains(SECRET) && !page.contains(TOKEN),
        "the URL and the secret are never shown"
    );
    admin.screenshot("notify-01-channels").await;

    // The operator subscribes the project from its page, reached from the application.
    let otto = driver.browser(&server.url, "otto", true).await;
    otto.login("otto", PW).await;
    otto.goto("/apps/web").await;
    otto.click("#project-notifications").await;
    assert_eq!(otto.path().await, "/projects/shop/notifications");
    otto.tick("#subscribe input[value=hold_placed]").await;
    otto.tick("#subscribe input[value=deploy_failed]").await;
    otto.click("#subscribe-save").await;
    let sub = otto.text("#subscriptions tr[data-channel=ops-hook]").await;
    assert!(sub.contains("hold placed") && sub.contains("deploy failed"), "{sub}");
    otto.screenshot("notify-02-subscriptions").await;

    // A hold reaches the receiver; the admin sees it delivered in the log.
    api.call(
        "POST",
        "/applications/web/environments/fat/hold",
        json!({"note": "checking the checkout"}),
    )
    .await;
    let until = Instant::now() + Duration::from_secs(30);
    while !seen.lock().unwrap().contains(&"hold_placed".to_string()) {
        assert!(Instant::now() < until, "the receiver never got the hold");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        admin.goto("/admin/notifications/ops-hook").await;
        if admin.exists("#deliveries tr[data-status=delivered]").await {
            break;
        }
        assert!(Instant::now() < until, "{}", admin.text("#deliveries").await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log = admin.text("#deliveries").await;
    assert!(
        log.contains("hold placed") && log.contains("shop") && log.contains("204"),
        "{log}"
    );
    admin.click("#test-message button").await;
    let log = admin.text("#deliveries").await;
    assert!(log.contains("test message"), "{log}");
    assert_eq!(seen.lock().unwrap().last().map(String::as_str), Some("test"));
    admin.screenshot("notify-03-delivery-log").await;

    // In Chinese.
    admin.goto("/lang/zh-CN").await;
    admin.goto("/admin/notifications/ops-hook").await;
    let page = admin.text("main").await;
    assert!(
        page.contains("投递记录") && page.contains("已送达") && page.contains("环境被锁定"),
        "{page}"
    );
    admin.screenshot("notify-04-log-zh-cn").await;
    otto.close().await;
    admin.close().await;
}
