//! Approvals on the review page, in real Chromium against `prism serve`: a
//! deploy under a 2-approval policy shows who approved (with comments) and
//! who still may; the requester sees why they may not vote; an operator
//! approves through the page; the board shows when a frozen environment
//! opens, and the second approval during the freeze makes the deploy wait
//! for it.
//!
//! The deploy awaiting review is recorded in the store as the deploy job
//! records one (planning needs a cluster; the review does not).

use prism_test_support::browser as web;

use serde_json::{json, Value};

use prism_test_support::ServerProcess as Server;
use web::{Api, Driver};

const PW: &str = "governance-console-pw";

async fn deploy_awaiting_review(url: &str, release: &str, requester: &str) -> i64 {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let seq: i64 = release.trim_start_matches('r').parse().unwrap();
    let mut c = sqlx::AnyConnection::connect(url).await.unwrap();
    let app: i64 = sqlx::query_scalar("SELECT id FROM applications WHERE name = 'web'")
        .fetch_one(&mut c)
        .await
        .unwrap();
    let env: i64 = sqlx::query_scalar("SELECT id FROM environments WHERE name = 'fat'")
        .fetch_one(&mut c)
        .await
        .unwrap();
    sqlx::query_scalar(
        "INSERT INTO deploys (release_id, app_id, env_id, kind, state, requested_by, manifests, diff, created_at, updated_at) \
         VALUES ($1, $2, $3, 'deploy', 'awaiting_review', $4, '[]', '[]', 1, 1) RETURNING id",
    )
    .bind(seq)
    .bind(app)
    .bind(env)
    .bind(requester)
    .fetch_one(&mut c)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_review_page_shows_approvals_and_who_still_may_approve() {
    let server = tokio::task::spawn_blocking(|| Server::with_app("web-governance"))
        .await
        .unwrap();
    let api = Api::new(&server.url).await;
    for user in ["rita", "ann", "bob"] {
        api.call("POST", "/users", json!({"username": user, "password": PW}))
            .await;
        api.call(
            "POST",
            "/projects/shop/members",
            json!({"username": user, "role": "operator"}),
        )
        .await;
    }
    api.call(
        "PUT",
        "/environments/fat/approval-policy",
        json!({"policy": {"required": 2, "roles": ["operator"]}}),
    )
    .await;
    let rel = api
        .call(
            "POST",
            "/releases",
            json!({"application": "web", "git_ref": "main", "change_note": "governed"}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.call("POST", &format!("/releases/{rel}/actions/start_build"), json!({}))
        .await;
    api.call(
        "POST",
        &format!("/releases/{rel}/actions/build_succeeded"),
        json!({"commit_sha": "0123456789abcdef0123456789abcdef01234567", "image_digest": format!("sha256:{}", "c".repeat(64))}),
    )
    .await;
    api.call(
        "POST",
        &format!("/releases/{rel}/actions/promote"),
        json!({"environment": "fat"}),
    )
    .await;
    api.call(
        "POST",
        &format!("/releases/{rel}/actions/deploy"),
        json!({"environment": "fat"}),
    )
    .await;
    let id = deploy_awaiting_review(&server.db().url(), &rel, "rita").await;
    let page = format!("/deploys/{id}");

    let driver = Driver::start();
    let ann = driver.browser(&server.url, "ann", true).await;
    ann.login("ann", PW).await;
    ann.goto(&page).await;
    assert!(
        ann.text("#approval-count").await.contains("0"),
        "{}",
        ann.text("#approvals").await
    );
    assert!(ann.text("#may-still-approve").await.contains("ann, bob"));
    ann.find("#review").await;
    ann.screenshot("gov-01-review-before").await;
    ann.fill("#review textarea[name=comment]", "diff checked, image digest matches")
        .await;
    ann.click("#approve").await;
    ann.find("#votes li.vote-approve").await;
    let votes = ann.text("#votes").await;
    assert!(
        votes.contains("ann") && votes.contains("diff checked, image digest matches"),
        "{votes}"
    );
    assert!(ann.text("#approval-count").await.starts_with('1'));
    let still = ann.text("#may-still-approve").await;
    assert!(still.contains("bob") && !still.contains("ann"), "{still}");
    assert!(!ann.exists("#review").await, "one vote per person");
    assert!(ann.text("#review-not-yours").await.contains("voted"));
    ann.screenshot("gov-02-one-approval").await;

    // The requester sees the approvals and why they may not approve.
    let rita = driver.browser(&server.url, "rita", true).await;
    rita.login("rita", PW).await;
    rita.goto(&page).await;
    assert!(rita
        .text("#review-not-yours")
        .await
        .contains("you requested this deploy"));
    assert!(rita.text("#votes").await.contains("ann"));

    // A freeze: the board says when fat opens; the second approval waits for it.
    let now = chrono_now_ms();
    api.call(
        "PUT",
        "/environments/fat/schedule",
        json!({"freezes": [{"from_ms": now - 60_000, "until_ms": now + 86_400_000, "reason": "release freeze"}]}),
    )
    .await;
    let bob = driver.browser(&server.url, "bob", true).await;
    bob.login("bob", PW).await;
    bob.goto("/").await;
    let closed = bob.text("#windows-closed").await;
    assert!(closed.contains("fat") && closed.contains("release freeze"), "{closed}");
    bob.goto(&page).await;
    bob.fill("#review textarea[name=comment]", "agreed").await;
    bob.click("#approve").await;
    let waiting = bob.text("#waiting-window").await;
    assert!(waiting.contains("UTC"), "{waiting}");
    bob.screenshot("gov-03-approved-waiting-for-window").await;
    let d: Value = api.call("GET", &format!("/deploys/{id}"), Value::Null).await;
    assert_eq!(d["state"], "waiting_window", "{d}");

    for b in [ann, rita, bob] {
        b.close().await;
    }
    tokio::task::spawn_blocking(move || server.stop()).await.unwrap();
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
