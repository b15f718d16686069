//! The console's progressive delivery in a real headless Chromium against a
//! real `prism serve` and a real v1.20.2 control plane (with the simulated
//! node): an operator chooses a canary for FAT on the application's page
//! (a refused field is named next to the box), watches the live deploy
//! page's rollout panel follow the canary without reloading, pauses,
//! promotes and aborts with its buttons; a tester sees the panel without
//! them. Screenshots go under `web-screenshots/`.

use prism_test_support::browser as web;

use std::time::Duration;

use serde_json::json;

use prism_test_support::kube::KubeCluster;
use prism_test_support::ServerProcess as Server;
use web::{Api, Driver};

const OPS_PW: &str = "operator-password";
const TESTER_PW: &str = "tester-password";

async fn wait_css(b: &web::Browser, css: &str, secs: u64) {
    if let Err(e) = b
        .client
        .wait()
        .at_most(Duration::from_secs(secs))
        .for_element(fantoccini::Locator::Css(css))
        .await
    {
        let panel = if b.exists("#rollout").await {
            b.text("#rollout").await
        } else {
            String::new()
        };
        panic!(
            "{}: {css} never showed ({e}); rollout panel:\n{panel}\nevents:\n{}",
            b.who,
            b.text("#events").await
        );
    }
}

fn deployment(k: &KubeCluster, name: &str) -> String {
    k.kubectl(&[
        "get",
        "deployment",
        name,
        "-n",
        "shop-fat",
        "--ignore-not-found",
        "-o",
        "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image}",
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_steers_a_canary_from_the_live_deploy_page() {
    let mut kube = tokio::task::spawn_blocking(KubeCluster::up).await.unwrap();
    kube.kubectl(&["create", "namespace", "shop-fat"]);
    let server = tokio::task::spawn_blocking(|| Server::with_app("web-rollout"))
        .await
        .unwrap();
    let api = Api::new(&server.url).await;
    for (user, pw, role) in [("otto", OPS_PW, "operator"), ("tess", TESTER_PW, "tester")] {
        api.call("POST", "/users", json!({"username": user, "password": pw}))
            .await;
        api.call(
            "POST",
            "/projects/shop/members",
            json!({"username": user, "role": role}),
        )
        .await;
    }
    api.call(
        "POST",
        "/clusters",
        json!({"name": "one", "kubeconfig": kube.kubeconfig_text()}),
    )
    .await;
    api.call(
        "PATCH",
        "/environments/fat",
        json!({"cluster": "one", "namespace": "shop-fat"}),
    )
    .await;
    api.call("PUT", "/applications/web/settings/fat", json!({"replicas": 2, "cpu_request": "100m", "cpu_limit": "500m", "memory_request": "64Mi", "memory_limit": "128Mi", "env_vars": {}})).await;
    let release = |n: u32| {
        let api = &api;
        async move {
            let r = api
                .call(
                    "POST",
                    "/releases",
                    json!({"application": "web", "git_ref": "main", "change_note": format!("cut {n}")}),
                )
                .await;
            let id = r["id"].as_str().unwrap().to_owned();
            api.call("POST", &format!("/releases/{id}/actions/start_build"), json!({}))
                .await;
            api.call(
                "POST",
                &format!("/releases/{id}/actions/build_succeeded"),
                json!({"commit_sha": "abcdef1", "image_ref": format!("registry.example/web:{n}")}),
            )
            .await;
            api.call(
                "POST",
                &format!("/releases/{id}/actions/promote"),
                json!({"environment": "fat"}),
            )
            .await;
            id
        }
    };
    let deploy = |rel: String| {
        let api = &api;
        async move {
            let d = api
                .call(
                    "POST",
                    &format!("/releases/{rel}/deploys"),
                    json!({"environment": "fat"}),
                )
                .await;
            d["id"].as_i64().unwrap()
        }
    };
    // What runs before: r1, rolled out as usual.
    let d1 = deploy(release(1).await).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while api.call("GET", &format!("/deploys/{d1}"), json!(null)).await["state"] != "succeeded" {
        assert!(std::time::Instant::now() < deadline, "the first deploy never succeeded");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let driver = Driver::start();
    let otto = driver.browser(&server.url, "otto", true).await;
    otto.login("otto", OPS_PW).await;
    let tess = driver.browser(&server.url, "tess", true).await;
    tess.login("tess", TESTER_PW).await;

    // The strategy for FAT, on the application's page: a weight going down is
    // refused and named; then a canary that waits for a person at 50%.
    otto.goto("/apps/web").await;
    let form = "#rollout-fat form";
    otto.fill(
        &format!("{form} textarea[name=strategy]"),
        r#"{"type":"canary","steps":[{"weight":50},{"weight":10}]}"#,
    )
    .await;
    otto.click(&format!("{form} button")).await;
    assert_eq!(
        otto.attr("#rollout-fat [data-error-for]", "data-error-for")
            .await
            .as_deref(),
        Some("steps[1].weight")
    );
    otto.screenshot("70-rollout-strategy-error").await;
    otto.fill(
        &format!("{form} textarea[name=strategy]"),
        r#"{"type":"canary","steps":[{"weight":50,"manual":true},{"weight":100}]}"#,
    )
    .await;
    otto.click(&format!("{form} button")).await;
    assert_eq!(
        otto.attr("#rollout-fat", "data-strategy").await.as_deref(),
        Some("canary")
    );

    // r2: the live page's rollout panel follows the canary without a reload.
    // No node until the page shows the rollout starting: what follows comes live.
    kube.stop_sim();
    let d2 = deploy(release(2).await).await;
    otto.goto(&format!("/deploys/{d2}")).await;
    wait_css(&otto, "#rollout[data-phase=starting]", 90).await;
    let html = otto.find("html").await;
    kube.start_sim(&[]);
    wait_css(&otto, "#rollout[data-phase=checking] #rollout-waits", 90).await;
    assert!(
        html.tag_name().await.is_ok(),
        "the panel was drawn again in place, not by reloading the page"
    );
    assert!(
        otto.text("#rollout-split").await.starts_with("1 "),
        "{}",
        otto.text("#rollout-split").await
    );
    assert!(otto.text("#rollout").await.contains("approximately"));
    assert_eq!(deployment(&kube, "web-canary"), "1 registry.example/web:2");
    assert_eq!(deployment(&kube, "web"), "1 registry.example/web:1");
    otto.screenshot("71-canary-waits").await;
    // A tester sees where it stands, without the buttons.
    tess.goto(&format!("/deploys/{d2}")).await;
    assert!(tess.exists("#rollout-split").await);
    assert!(!tess.exists("#rollout-actions").await);

    // Pause, then promote: the stable Deployment takes r2 and the canary goes.
    otto.click("#rollout-pause").await;
    wait_css(&otto, "#rollout-resume", 30).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !otto.text("#rollout-phase").await.contains("paused") {
        assert!(std::time::Instant::now() < deadline, "the pause never showed");
        tokio::time::sleep(Duration::from_millis(300)).await;
        otto.goto(&format!("/deploys/{d2}")).await;
    }
    assert!(!otto.exists("#rollout-pause").await);
    otto.screenshot("72-canary-paused").await;
    otto.click("#rollout-promote").await;
    wait_css(&otto, "#deploy-state[data-state=succeeded]", 90).await;
    assert_eq!(deployment(&kube, "web"), "2 registry.example/web:2");
    assert_eq!(deployment(&kube, "web-canary"), "");
    otto.screenshot("73-canary-promoted").await;

    // r3: aborted from the page; traffic back on r2.
    let d3 = deploy(release(3).await).await;
    otto.goto(&format!("/deploys/{d3}")).await;
    wait_css(&otto, "#rollout[data-phase=checking] #rollout-abort", 90).await;
    otto.click("#rollout-abort").await;
    wait_css(&otto, "#deploy-state[data-state=failed]", 60).await;
    assert!(otto.text("#deploy-error").await.contains("aborted by a person"));
    assert_eq!(deployment(&kube, "web"), "2 registry.example/web:2");
    assert_eq!(deployment(&kube, "web-canary"), "");
    otto.screenshot("74-canary-aborted").await;
    otto.close().await;
    tess.close().await;
}
