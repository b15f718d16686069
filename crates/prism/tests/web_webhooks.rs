//! The webhook panel of an application's page, in real Chromium against
//! `prism serve`: an operator creates the webhook (a bad pattern is marked on
//! its field), sees the URL and the secret once, a Gitea push signed with
//! that secret (by `openssl`, as Gitea signs) shows up among the last
//! deliveries with the release it made, rotating shows a new secret, and a
//! developer of the project sees no panel. The project's webhook page does
//! the same for every repository of the project.

use std::io::Write;
use std::process::{Command, Stdio};

use prism_test_support::browser as web;
use prism_test_support::ServerProcess as Server;
use serde_json::json;
use web::{Api, Driver};

const PW: &str = "webhook-console-pw";

/// HMAC-SHA256 of `body` with `secret`, in hex, computed by openssl.
fn openssl_hmac(secret: &str, body: &[u8]) -> String {
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", secret, "-r"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl");
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_set_up_the_webhook_on_the_application_page() {
    let server = tokio::task::spawn_blocking(|| Server::with_app("web-webhooks"))
        .await
        .unwrap();
    let api = Api::new(&server.url).await;
    for (user, role) in [("ola", "operator"), ("dev", "developer")] {
        api.call("POST", "/users", json!({"username": user, "password": PW}))
            .await;
        api.call(
            "POST",
            "/projects/shop/members",
            json!({"username": user, "role": role}),
        )
        .await;
    }

    let driver = Driver::start();
    let ola = driver.browser(&server.url, "ola", true).await;
    ola.login("ola", PW).await;
    ola.goto("/apps/web").await;
    ola.find("#webhook-create").await;

    // A pattern too long: refused, the field marked, what was typed kept.
    let long = "x".repeat(201);
    ola.fill("#webhook-create input[name=branches]", &format!("main, {long}"))
        .await;
    ola.click("#webhook-create button[type=submit]").await;
    let err = ola.text("[data-error-for=branches]").await;
    assert!(err.contains("release_rules.branches[1]"), "{err}");
    let kept = ola
        .find("#webhook-create input[name=branches]")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default();
    assert_eq!(kept, format!("main, {long}"));
    ola.find("#webhook-create").await; // still none: the create form again

    ola.fill("#webhook-create input[name=branches]", "main, release/*")
        .await;
    ola.fill("#webhook-create input[name=tags]", "v*").await;
    ola.tick("#webhook-create select[name=forge] option[value=gitea]").await;
    ola.tick("#webhook-create input[name=build]").await; // releases only, no builds
    ola.click("#webhook-create button[type=submit]").await;
    let secret = ola.text("#webhook-secret").await;
    assert_eq!(secret.len(), 64, "{secret}");
    let url = ola.text("#webhook-url").await;
    assert!(url.starts_with(&server.url) && url.contains("/hooks/git/web/"), "{url}");
    assert_eq!(ola.text("#webhook-forge").await, "gitea");
    ola.screenshot_of("#webhook", "webhook-01-created").await;

    // Gitea posts a push, signed with the secret.
    let sha = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
    let body = json!({
        "ref": "refs/heads/main", "before": "0000000000000000000000000000000000000001", "after": sha,
        "commits": [{"id": sha, "message": "From the console test\n"}],
        "head_commit": {"id": sha, "message": "From the console test\n"},
        "repository": {"clone_url": "https://gitea.example/shop/web.git"},
        "pusher": {"login": "dev"},
    })
    .to_string();
    let sig = openssl_hmac(&secret, body.as_bytes());
    let resp = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .header("x-gitea-event", "push")
        .header("x-gitea-delivery", "console-1")
        .header("x-gitea-signature", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202, "{}", resp.text().await.unwrap());

    // The page again: no secret any more, the delivery and its release listed.
    ola.goto("/apps/web").await;
    assert!(!ola.exists("#webhook-secret").await);
    let deliveries = ola.text("#webhook-deliveries").await;
    assert!(
        deliveries.contains("created") && deliveries.contains("refs/heads/main") && deliveries.contains("r1"),
        "{deliveries}"
    );
    ola.screenshot_of("#webhook", "webhook-02-delivery").await;

    // Rotating shows a new secret, once.
    ola.click("#webhook-rotate button").await;
    let rotated = ola.text("#webhook-secret").await;
    assert_eq!(rotated.len(), 64);
    assert_ne!(rotated, secret);

    // A developer of the project sees no webhook panel.
    let dev = driver.browser(&server.url, "dev", true).await;
    dev.login("dev", PW).await;
    dev.goto("/apps/web").await;
    dev.find("#releases").await;
    assert!(!dev.exists("#webhook").await);

    // Deleted: the create form is back.
    ola.goto("/apps/web").await;
    ola.click("#webhook-delete button").await;
    ola.find("#webhook-create").await;

    // The project's webhook, from the application page's link: one URL for
    // every repository of shop; a push of web's repository releases web.
    ola.goto("/apps/web").await;
    ola.click("#project-webhook").await;
    ola.find("#webhook-create").await;
    let apps = ola.text("#webhook-applications").await;
    assert!(apps.contains("web"), "{apps}");
    ola.tick("#webhook-create select[name=forge] option[value=gitea]").await;
    ola.tick("#webhook-create input[name=build]").await;
    ola.click("#webhook-create button[type=submit]").await;
    let secret = ola.text("#webhook-secret").await;
    let url = ola.text("#webhook-url").await;
    assert!(url.contains("/hooks/git-project/shop/"), "{url}");
    let git_url = api.call("GET", "/applications/web", json!(null)).await["git_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let sha = "5b825dc642cb6eb9a060e54bf8d69288fbee4905";
    let body = json!({
        "ref": "refs/heads/main", "before": "0000000000000000000000000000000000000001", "after": sha,
        "commits": [{"id": sha, "message": "Through the project's webhook\n"}],
        "head_commit": {"id": sha, "message": "Through the project's webhook\n"},
        "repository": {"clone_url": git_url},
        "pusher": {"login": "dev"},
    })
    .to_string();
    let resp = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .header("x-gitea-event", "push")
        .header("x-gitea-delivery", "console-project-1")
        .header("x-gitea-signature", openssl_hmac(&secret, body.as_bytes()))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202, "{}", resp.text().await.unwrap());
    ola.goto("/projects/shop/webhook").await;
    assert!(!ola.exists("#webhook-secret").await);
    let deliveries = ola.text("#webhook-deliveries").await;
    assert!(
        deliveries.contains("created") && deliveries.contains("r2"),
        "{deliveries}"
    );
    ola.screenshot_of("main", "webhook-03-project").await;
    // A developer has no link to it and is refused the page.
    dev.goto("/apps/web").await;
    dev.find("#releases").await;
    assert!(!dev.exists("#project-webhook").await);
    dev.goto("/projects/shop/webhook").await;
    assert!(!dev.exists("#webhook").await);
    let refused = dev.text("h1").await;
    assert!(refused.contains("403"), "{refused}");

    for b in [ola, dev] {
        b.close().await;
    }
    tokio::task::spawn_blocking(move || server.stop()).await.unwrap();
}
