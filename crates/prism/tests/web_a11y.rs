//! WCAG 2.1 A and AA in the web console, checked by axe-core (pinned from
//! npm by scripts/ensure-axe.sh) inside a real headless Chromium against
//! `prism serve`:
//! - every page of the console's route table (`prism_server::web::page_paths`,
//!   so a page added later is checked without anyone listing it), rendered
//!   with data, as the admin (who sees most) and signed out, in the light and
//!   the dark theme, in English and Chinese;
//! - the keyboard: the first Tab reaches the skip link and Enter puts focus
//!   on <main>; the review page's approve button is reached and pressed with
//!   the keyboard alone;
//! - live pages announce politely, and a finished deploy announces its result;
//! - at 390 px (a phone) the on-call pages scroll no wider than the screen
//!   and their buttons are at least 44 px tall (screenshots saved under
//!   `target/web-screenshots/a11y-phone-*.png`).

use prism_test_support::browser as web;

use std::process::Command;
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use serde_json::{json, Value};

use prism_test_support::process::ADMIN_PASSWORD;
use prism_test_support::ServerProcess as Server;
use web::{Api, Browser, Driver};

/// The WCAG 2.1 A and AA rule sets of axe-core.
const TAGS: [&str; 4] = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];

const PW: &str = "a11y-password";

/// Ids of the things the test made, to fill in the routes' parameters.
struct Data {
    /// A release built, deployed to fat and uat (uat held by the tester).
    release: String,
    /// A build that failed (its git server does not answer), with a log.
    build: i64,
    /// A deploy Prism ran, which failed at a cluster nobody listens at.
    deploy: i64,
    /// A deploy awaiting review under a 2-approval policy (the review page).
    review: i64,
}

/// The route with its parameters filled from `data`: one path per page to
/// check (a route may be checked with several records). A parameter the test
/// does not know fails the test: give the new page its data here.
fn fill(route: &str, data: &Data) -> Vec<String> {
    match route {
        "/apps/{name}" | "/apps/{name}/templates" | "/apps/{name}/secrets" => vec![route.replace("{name}", "web")],
        "/releases/{id}" => vec![route.replace("{id}", &data.release)],
        "/builds/{id}" => vec![route.replace("{id}", &data.build.to_string())],
        "/deploys/{id}" => vec![
            route.replace("{id}", &data.deploy.to_string()),
            route.replace("{id}", &data.review.to_string()),
        ],
        "/admin/projects/{name}" => vec![route.replace("{name}", "shop")],
        "/admin/base-images/{name}" => vec![route.replace("{name}", "busybox")],
        "/admin/notifications/{name}" => vec![route.replace("{name}", "ops-chat")],
        "/projects/{name}/notifications" | "/projects/{name}/webhook" => vec![route.replace("{name}", "shop")],
        r if r.contains('{') => panic!("web_a11y.rs does not know how to fill {r}: add data for it in fill()"),
        r => vec![r.to_owned()],
    }
}

#[test]
fn the_route_table_lists_every_page_and_only_pages() {
    let pages = prism_server::web::page_paths();
    for p in [
        "/",
        "/login",
        "/apps/{name}/templates",
        "/admin/build-setup",
        "/stats",
        "/deploys/{id}",
    ] {
        assert!(pages.contains(&p), "{p} in {pages:?}");
    }
    for p in [
        "/logout",
        "/apps/{name}/preview",
        "/releases/{id}/act",
        "/static/prism.css",
        "/favicon.ico",
        "/lang/{code}",
    ] {
        assert!(!pages.contains(&p), "{p} is no page: {pages:?}");
    }
}

/// axe-core's script, installed by scripts/ensure-axe.sh when missing.
fn axe_source() -> String {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/ensure-axe.sh");
    let out = Command::new("bash").arg(script).output().expect("run ensure-axe.sh");
    assert!(
        out.status.success(),
        "scripts/ensure-axe.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let js = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert!(js.contains("axe"), "{path} is axe-core");
    js
}

/// Runs axe on the open page; each violation as "page: rule (impact) help: element — why".
async fn axe(b: &Browser, axe_js: &str, page: &str) -> Vec<String> {
    let loaded = b
        .client
        .execute(
            &format!("if (!window.axe) {{ {axe_js}\n }}; return typeof window.axe;"),
            vec![],
        )
        .await
        .expect("inject axe-core");
    assert_eq!(loaded, json!("object"), "axe-core loaded into {page}");
    let result = b
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}, resultTypes: ['violations']})
               .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                   nodes: v.nodes.map(n => ({target: n.target.join(' '), html: n.html, summary: n.failureSummary}))}))))
               .catch(e => done({error: String(e)}));",
            vec![json!(TAGS)],
        )
        .await
        .expect("axe.run");
    if let Some(e) = result.get("error") {
        panic!("axe.run on {page}: {e}");
    }
    let mut out = vec![];
    for v in result.as_array().expect("violations") {
        for n in v["nodes"].as_array().unwrap() {
            out.push(format!(
                "{page}: {} ({}) {}: {} {} — {}",
                v["id"].as_str().unwrap_or(""),
                v["impact"].as_str().unwrap_or(""),
                v["help"].as_str().unwrap_or(""),
                n["target"].as_str().unwrap_or(""),
                n["html"].as_str().unwrap_or("").chars().take(160).collect::<String>(),
                n["summary"].as_str().unwrap_or("").replace('\n', " "),
            ));
        }
    }
    out
}

/// A token of `user` for the REST API.
async fn token(base: &str, user: &str, password: &str) -> String {
    let v: Value = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/token"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["secret"]
        .as_str()
        .unwrap_or_else(|| panic!("a token for {user}: {v}"))
        .to_owned()
}

/// A deploy of `release` into `env` awaiting review, recorded in the store
/// as the deploy job records one (planning needs a cluster; the review does not).
async fn deploy_awaiting_review(url: &str, release: &str, env: &str, requester: &str) -> i64 {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let seq: i64 = release.trim_start_matches('r').parse().unwrap();
    let mut c = sqlx::AnyConnection::connect(url).await.unwrap();
    let app: i64 = sqlx::query_scalar("SELECT id FROM applications WHERE name = 'web'")
        .fetch_one(&mut c)
        .await
        .unwrap();
    let env: i64 = sqlx::query_scalar("SELECT id FROM environments WHERE name = $1")
        .bind(env)
        .fetch_one(&mut c)
        .await
        .unwrap();
    sqlx::query_scalar(
        "INSERT INTO deploys (release_id, app_id, env_id, kind, state, requested_by, manifests, diff, rollout, created_at, updated_at) \
         VALUES ($1, $2, $3, 'deploy', 'awaiting_review', $4, '[]', '[]', $5, 1, 1) RETURNING id",
    )
    .bind(seq)
    .bind(app)
    .bind(env)
    .bind(requester)
    // Planned as a canary with a metric gate: the page shows the rollout panel.
    .bind(json!({"strategy": {"type": "canary", "steps": [{"weight": 10, "manual": true},
        {"weight": 100, "gates": [{"name": "errors", "query": "sum(errors)", "condition": "result < 0.01"}]}]},
        "replicas": 4, "phase": "starting"}).to_string())
    .fetch_one(&mut c)
    .await
    .unwrap()
}

/// Project `shop` with `web`: a release built, running in fat and uat (uat
/// held by the tester), a deploy of it to prd that Prism ran and that failed at a
/// cluster nobody listens at, a deploy to prd awaiting review under a
/// 2-approval policy; `cart` with a build that failed; a registry, a base
/// image, a developer, a tester and an operator.
async fn world(name: &'static str) -> (Server, Api, Data) {
    let server = tokio::task::spawn_blocking(move || Server::with_app(name))
        .await
        .unwrap();
    let api = Api::new(&server.url).await;
    api.call(
        "POST",
        "/clusters",
        json!({"name": "nowhere", "api_url": "https://127.0.0.1:1", "insecure_skip_tls_verify": true}),
    )
    .await;
    for env in ["fat", "uat", "prd"] {
        api.call("PATCH", &format!("/environments/{env}"), json!({"cluster": "nowhere"}))
            .await;
    }
    api.call(
        "PUT",
        "/registries/main",
        json!({"host": "127.0.0.1:1", "insecure_http": true, "all_projects": true}),
    )
    .await;
    api.call(
        "POST",
        "/base-images",
        json!({"name": "busybox", "tier": 1, "registry": "main", "repository": "library/busybox", "tag": "1"}),
    )
    .await;
    // A notification channel shop subscribes to (its delivery log and the
    // project's notifications page are pages too).
    api.call(
        "PUT",
        "/notification-channels/ops-chat",
        json!({"kind": "webhook", "url": "http://127.0.0.1:9/hook", "secret": "a11y-channel-secret"}),
    )
    .await;
    api.call(
        "PUT",
        "/projects/shop/subscriptions/ops-chat",
        json!({"events": ["build_failed", "deploy_failed"], "language": "en"}),
    )
    .await;
    // Secrets of every kind the secrets page lists: a value, a reference, a project's.
    api.call(
        "PUT",
        "/applications/web/secrets/DB_PASSWORD",
        json!({"value": "a11y-value"}),
    )
    .await;
    api.call(
        "PUT",
        "/applications/web/secrets/VAULT_DB",
        json!({"existing": {"secret": "vault-db", "key": "password"}, "environment": "uat"}),
    )
    .await;
    api.call(
        "PUT",
        "/projects/shop/secrets/API_TOKEN",
        json!({"value": "a11y-token", "delivery": "file"}),
    )
    .await;
    for (user, role) in [
        ("dev", "developer"),
        ("tess", "tester"),
        ("otto", "operator"),
        ("olga", "operator"),
    ] {
        api.call("POST", "/users", json!({"username": user, "password": PW}))
            .await;
        api.call(
            "POST",
            "/projects/shop/members",
            json!({"username": user, "role": role}),
        )
        .await;
    }
    let rel = api
        .call(
            "POST",
            "/releases",
            json!({"application": "web", "git_ref": "main", "change_note": "Checkout shows the order total"}),
        )
        .await;
    let rel = rel["id"].as_str().unwrap().to_owned();
    api.call("POST", &format!("/releases/{rel}/actions/start_build"), json!({}))
        .await;
    api.call(
        "POST",
        &format!("/releases/{rel}/actions/build_succeeded"),
        json!({"commit_sha": "0123456789abcdef0123456789abcdef01234567", "image_ref": "registry.example/web:1",
               "image_digest": format!("sha256:{}", "1".repeat(64))}),
    )
    .await;
    for (env, next) in [("fat", "uat"), ("uat", "prd")] {
        if env == "fat" {
            api.call(
                "POST",
                &format!("/releases/{rel}/actions/promote"),
                json!({"environment": env}),
            )
            .await;
        }
        api.call(
            "POST",
            &format!("/releases/{rel}/actions/deploy"),
            json!({"environment": env}),
        )
        .await;
        api.call("POST", &format!("/releases/{rel}/actions/deploy_succeeded"), json!({}))
            .await;
        api.call("POST", &format!("/releases/{rel}/actions/pass"), json!({}))
            .await;
        api.call(
            "POST",
            &format!("/releases/{rel}/actions/promote"),
            json!({"environment": next}),
        )
        .await;
    }
    // Prism runs a deploy of a second release to fat, which fails: the
    // cluster does not answer.
    let second = api
        .call(
            "POST",
            "/releases",
            json!({"application": "web", "git_ref": "main", "change_note": "Totals in two currencies"}),
        )
        .await;
    let second = second["id"].as_str().unwrap().to_owned();
    api.call("POST", &format!("/releases/{second}/actions/start_build"), json!({}))
        .await;
    api.call(
        "POST",
        &format!("/releases/{second}/actions/build_succeeded"),
        json!({"commit_sha": "89abcdef0123456789abcdef0123456789abcdef", "image_ref": "registry.example/web:2",
               "image_digest": format!("sha256:{}", "2".repeat(64))}),
    )
    .await;
    api.call(
        "POST",
        &format!("/releases/{second}/actions/promote"),
        json!({"environment": "fat"}),
    )
    .await;
    let deploy = api
        .call(
            "POST",
            &format!("/releases/{second}/deploys"),
            json!({"environment": "fat"}),
        )
        .await;
    let deploy = deploy["id"]
        .as_i64()
        .or_else(|| deploy["deploy"]["id"].as_i64())
        .unwrap_or_else(|| panic!("a deploy id in {deploy}"));
    // The tester holds uat.
    let tess = token(&server.url, "tess", PW).await;
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/applications/web/environments/uat/hold", server.url))
        .bearer_auth(&tess)
        .json(&json!({"note": "regression run"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "hold uat: {}", r.text().await.unwrap());
    // prd needs two operators' approval; the developer's deploy awaits it.
    api.call(
        "PUT",
        "/environments/prd/approval-policy",
        json!({"policy": {"required": 2, "roles": ["operator"]}}),
    )
    .await;
    api.call(
        "POST",
        &format!("/releases/{rel}/actions/deploy"),
        json!({"environment": "prd"}),
    )
    .await;
    let review = deploy_awaiting_review(&server.db().url(), &rel, "prd", "dev").await;
    // A build that fails at once: its git server is a loopback port nobody listens at.
    api.call(
        "POST",
        "/applications",
        json!({"project": "shop", "name": "cart", "git_url": "http://127.0.0.1:1/cart.git",
               "build_settings": {"stack": "static", "base_image": "busybox", "registry": "main",
                                  "artifact_paths": ["index.html"], "build_command": "true"}}),
    )
    .await;
    let other = api
        .call(
            "POST",
            "/releases",
            json!({"application": "cart", "git_ref": "main", "change_note": "A second cut"}),
        )
        .await;
    let other = other["id"].as_str().unwrap().to_owned();
    let build = api.call("POST", &format!("/releases/{other}/builds"), json!({})).await;
    let build = build["id"].as_i64().unwrap_or_else(|| panic!("a build id in {build}"));
    // Wait until both ran, so the pages show their end and their logs.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let b = api.call("GET", &format!("/builds/{build}"), Value::Null).await;
        let d = api.call("GET", &format!("/deploys/{deploy}"), Value::Null).await;
        let b_done = !matches!(
            b["state"].as_str(),
            Some("queued" | "checkout" | "building" | "pushing")
        );
        let d_done = matches!(
            d["state"].as_str(),
            Some("failed" | "succeeded" | "rolled_back" | "cancelled")
        );
        if b_done && d_done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the build and the deploy did not end: {} {}",
            b["state"],
            d["state"]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    (
        server,
        api,
        Data {
            release: rel,
            build,
            deploy,
            review,
        },
    )
}

/// A browser in the light or dark colour scheme; checks the page sees it.
async fn themed(driver: &Driver, base: &str, theme: &str) -> Browser {
    let flags: &[&str] = if theme == "dark" {
        &["--force-dark-mode", "--blink-settings=preferredColorScheme=0"]
    } else {
        &["--blink-settings=preferredColorScheme=1"]
    };
    driver.browser_with(base, theme, true, flags).await
}

async fn is_dark(b: &Browser) -> bool {
    b.client
        .execute("return matchMedia('(prefers-color-scheme: dark)').matches", vec![])
        .await
        .unwrap()
        .as_bool()
        .unwrap()
}

/// Every page of the console, as the admin and signed out, light and dark,
/// English and Chinese: no WCAG 2.1 A/AA violation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_console_page_passes_axe_core_wcag_2_1_aa() {
    let started = Instant::now();
    let axe_js = axe_source();
    let (server, _api, data) = world("web-a11y-axe").await;
    let routes = prism_server::web::page_paths();
    let pages: Vec<String> = routes.iter().flat_map(|r| fill(r, &data)).collect();
    let driver = Driver::start();
    let mut violations = vec![];
    let mut checked = vec![];
    for theme in ["light", "dark"] {
        let b = themed(&driver, &server.url, theme).await;
        for lang in ["en", "zh-CN"] {
            b.goto(&format!("/lang/{lang}")).await;
            // Signed out: every page leads to the login page (checked once
            // per place it leads to).
            let mut seen = std::collections::HashSet::new();
            for page in &pages {
                b.goto(page).await;
                let here = b.path().await;
                let here = here.split('?').next().unwrap().to_owned();
                if seen.insert(here.clone()) {
                    let name = format!("{theme} {lang} signed out {page} (at {here})");
                    violations.extend(axe(&b, &axe_js, &name).await);
                    checked.push(name);
                }
            }
            assert_eq!(is_dark(&b).await, theme == "dark", "the {theme} theme");
            let html_lang = b.find("html").await.attr("lang").await.unwrap().unwrap_or_default();
            assert_eq!(html_lang, lang, "the page's language");
            b.login("admin", ADMIN_PASSWORD).await;
            for page in pages.iter().map(String::as_str).chain(["/no-such-page"]) {
                b.goto(page).await;
                let here = b.path().await;
                assert!(
                    !here.starts_with("/login"),
                    "the admin was sent to the login page from {page}"
                );
                // Checking an error page instead of the page itself would pass unseen.
                if page != "/no-such-page" {
                    assert!(
                        !b.exists("#error-message").await,
                        "{page} answered the admin with an error page: {}",
                        b.text("#error-message").await
                    );
                }
                let name = format!("{theme} {lang} admin {page}");
                violations.extend(axe(&b, &axe_js, &name).await);
                checked.push(name);
            }
            b.goto("/").await;
            b.click("#logout").await;
        }
        b.close().await;
    }
    eprintln!(
        "axe-core checked {} page loads over {} routes in {:?}",
        checked.len(),
        routes.len(),
        started.elapsed()
    );
    assert!(
        checked.len() >= 4 * (pages.len() + 1),
        "too few pages checked: {checked:?}"
    );
    assert!(
        violations.is_empty(),
        "{} WCAG 2.1 A/AA violations:\n{}",
        violations.len(),
        violations.join("\n")
    );
    tokio::task::spawn_blocking(move || server.stop()).await.unwrap();
}

/// Presses one key (WebDriver actions: what a keyboard does, no element needed).
async fn press(b: &Browser, key: Key) {
    let k: char = key.into();
    let keys = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value: k })
        .then(KeyAction::Up { value: k });
    b.client.perform_actions(keys).await.expect("key press");
}

/// The focused element: [tag, id, href, text].
async fn active(b: &Browser) -> Vec<Value> {
    b.client
        .execute(
            "const e = document.activeElement; return [e.tagName, e.id, e.getAttribute('href') || '', e.textContent.trim()];",
            vec![],
        )
        .await
        .expect("active element")
        .as_array()
        .cloned()
        .expect("an array")
}

/// The keyboard path to the content: on every kind of page the first Tab
/// reaches the "skip to content" link, and Enter moves focus to <main>;
/// the review page's approve button is reached and pressed by keyboard alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keyboard_reaches_the_content_and_the_approve_button() {
    let (server, _api, data) = world("web-a11y-keys").await;
    // The icon every browser asks for is there (no 404 in every page's console).
    let icon = reqwest::get(format!("{}/favicon.ico", server.url)).await.unwrap();
    assert_eq!(icon.status(), 200);
    assert_eq!(icon.headers()["content-type"], "image/svg+xml");
    assert!(icon.text().await.unwrap().starts_with("<svg"));
    let driver = Driver::start();
    let b = driver.browser(&server.url, "keyboard", true).await;
    let check = |page: String| {
        let b = &b;
        async move {
            b.goto(&page).await;
            press(b, Key::Tab).await;
            let first = active(b).await;
            assert_eq!(
                (first[0].as_str(), first[2].as_str()),
                (Some("A"), Some("#main")),
                "{page}: the first Tab reaches the skip link, not {first:?}"
            );
            assert!(
                !first[3].as_str().unwrap_or("").is_empty(),
                "{page}: the skip link has text"
            );
            let shown: Value = b
                .client
                .execute(
                    "const r = document.activeElement.getBoundingClientRect(); return r.width > 1 && r.height > 1 && r.top >= 0;",
                    vec![],
                )
                .await
                .unwrap();
            assert_eq!(shown, json!(true), "{page}: the focused skip link is on screen");
            press(b, Key::Enter).await;
            let now = active(b).await;
            assert_eq!(
                (now[0].as_str(), now[1].as_str()),
                (Some("MAIN"), Some("main")),
                "{page}: Enter on the skip link moves focus to <main id=main>, not {now:?}"
            );
            // The next Tab goes on inside the content, not back to the header.
            press(b, Key::Tab).await;
            let inside: Value = b
                .client
                .execute(
                    "return document.getElementById('main').contains(document.activeElement);",
                    vec![],
                )
                .await
                .unwrap();
            assert_eq!(
                inside,
                json!(true),
                "{page}: after the skip link, Tab stays in the content"
            );
        }
    };
    check("/login".into()).await;
    b.login("otto", PW).await;
    for p in [
        "/".to_owned(),
        "/apps/web".to_owned(),
        format!("/releases/{}", data.release),
        format!("/deploys/{}", data.deploy),
    ] {
        check(p).await;
    }
    b.client.execute("document.activeElement.blur()", vec![]).await.unwrap();

    // The review page: Tab from the top until the approve button has focus,
    // type a comment on the way, press Enter: the vote is recorded.
    let page = format!("/deploys/{}", data.review);
    b.goto(&page).await;
    let mut stops = 0;
    loop {
        press(&b, Key::Tab).await;
        stops += 1;
        let now = active(&b).await;
        if now[0] == "TEXTAREA" {
            let keys = KeyActions::new("typing".into());
            let keys = "checked on a phone".chars().fold(keys, |k, c| {
                k.then(KeyAction::Down { value: c }).then(KeyAction::Up { value: c })
            });
            b.client.perform_actions(keys).await.unwrap();
        }
        if now[1] == "approve" {
            break;
        }
        assert!(
            stops < 80,
            "{page}: 80 Tabs and the approve button never had focus (at {now:?})"
        );
    }
    eprintln!("the approve button is Tab stop {stops}");
    press(&b, Key::Enter).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !b.exists("#votes li.vote-approve[data-user=otto]").await {
        assert!(Instant::now() < deadline, "Enter on approve recorded no vote");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(b.text("#votes").await.contains("checked on a phone"));
    b.close().await;
    tokio::task::spawn_blocking(move || server.stop()).await.unwrap();
}

/// Live pages speak politely: the deploy's steps are a polite live region,
/// the build log is none (its lines are not read one by one), and when a
/// deploy ends while its page is open the page announces the result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_pages_announce_politely_and_a_finished_deploy_says_its_result() {
    let (server, api, data) = world("web-a11y-live").await;
    let driver = Driver::start();
    let b = driver.browser(&server.url, "otto", true).await;
    b.login("otto", PW).await;

    b.goto(&format!("/builds/{}", data.build)).await;
    let log = b.find("#build-log-lines").await;
    assert_eq!(
        log.attr("aria-live").await.unwrap().as_deref(),
        Some("off"),
        "log lines are not read one by one"
    );
    assert_eq!(log.attr("role").await.unwrap(), None);
    let region = b.find("#announce").await;
    assert_eq!(region.attr("role").await.unwrap().as_deref(), Some("status"));
    assert_eq!(region.attr("aria-live").await.unwrap().as_deref(), Some("polite"));

    // The deploy awaiting review: otto approves, olga approves by the API
    // while otto's page is open; the page follows, and announces the end.
    let page = format!("/deploys/{}", data.review);
    b.goto(&page).await;
    let events = b.find("#events").await;
    assert_eq!(events.attr("aria-live").await.unwrap().as_deref(), Some("polite"));
    assert_eq!(b.text("#announce").await, "", "nothing announced on a plain page load");
    b.fill("#review textarea[name=comment]", "first look").await;
    b.click("#approve").await;
    b.find("#votes li.vote-approve[data-user=otto]").await;
    let olga = token(&server.url, "olga", PW).await;
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/deploys/{}/review", server.url, data.review))
        .bearer_auth(&olga)
        .json(&json!({"decision": "approve", "comment": "second look"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "olga approves: {}", r.text().await.unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    let said = loop {
        let d = api.call("GET", &format!("/deploys/{}", data.review), Value::Null).await;
        let state = d["state"].as_str().unwrap_or("").to_owned();
        let said = b
            .client
            .execute(
                "const a = document.getElementById('announce'); return a ? a.textContent : '';",
                vec![],
            )
            .await
            .map(|v| v.as_str().unwrap_or("").to_owned())
            .unwrap_or_default();
        if matches!(state.as_str(), "failed" | "succeeded") && said.contains(&state) {
            break said;
        }
        assert!(
            Instant::now() < deadline,
            "the page never announced the deploy's end (state {state}, announced {said:?})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        said.contains(&format!("#{}", data.review)),
        "the announcement names the deploy: {said}"
    );
    b.screenshot("a11y-live-deploy-announced").await;
    b.close().await;
    tokio::task::spawn_blocking(move || server.stop()).await.unwrap();
}

/// The statistics charts are named images, and their numbers are also a
/// table: each table's sum is the total the chart's heading shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charts_have_a_title_and_their_numbers_as_a_table() {
    let (server, _api, _data) = world("web-a11y-charts").await;
    let driver = Driver::start();
    let b = driver.browser(&server.url, "otto", true).await;
    b.login("otto", PW).await;
    b.goto("/stats").await;
    let charts = b
        .client
        .execute(
            "return [...document.querySelectorAll('svg.chart')].map(svg => {
               const section = svg.closest('section');
               const label = document.getElementById(svg.getAttribute('aria-labelledby') || '');
               const table = section.querySelector('details.chart-data table');
               const columns = table ? [...table.querySelectorAll('thead th')].slice(1).map(th => th.textContent) : [];
               const sums = columns.map((_, i) => [...table.querySelectorAll('tbody tr')]
                   .reduce((a, tr) => a + Number(tr.querySelectorAll('td')[i].textContent), 0));
               return {id: section.id, role: svg.getAttribute('role'), title: label ? label.textContent : null,
                       first: svg.firstElementChild.tagName, heading: section.querySelector('h2').textContent,
                       columns, sums, rows: table ? table.querySelectorAll('tbody tr').length : 0};
             });",
            vec![],
        )
        .await
        .unwrap();
    let charts = charts.as_array().unwrap();
    assert_eq!(charts.len(), 3, "{charts:?}");
    for c in charts {
        assert_eq!(c["role"], "img", "{c}");
        assert_eq!(c["first"], "title", "the title is the svg's first child: {c}");
        let title = c["title"].as_str().unwrap_or("");
        assert!(
            !title.is_empty() && c["heading"].as_str().unwrap().starts_with(title),
            "the chart is named like its heading: {c}"
        );
        assert!(c["rows"].as_u64().unwrap() >= 8, "a row per week: {c}");
    }
    // The releases chart: 2 releases of web and 1 of cart this week.
    let releases = &charts[0];
    assert_eq!(releases["id"], "chart-releases");
    assert_eq!(releases["sums"], json!([3]), "{releases}");
    assert!(releases["heading"].as_str().unwrap().ends_with(" 3"), "{releases}");
    // The deploys chart: what the heading says succeeded and failed.
    let deploys = &charts[1];
    let heading = deploys["heading"].as_str().unwrap().to_owned();
    let numbers: Vec<i64> = heading.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    assert_eq!(
        deploys["sums"],
        json!(numbers),
        "table sums vs heading {heading:?}: {deploys}"
    );
    assert_eq!(deploys["columns"], json!(["Succeeded", "Failed"]), "{deploys}");
    b.close().await;
    tokio::task::spawn_blocking(move || server.stop()).await.unwrap();
}

/// At 390 px the pages an on-call engineer needs scroll no wider than the
/// screen, and every button on them is at least 44 px tall.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_call_pages_fit_a_phone_at_390_px() {
    let (server, _api, data) = world("web-a11y-phone").await;
    let driver = Driver::start();
    let b = driver
        .browser_with(&server.url, "phone", true, &["--window-size=390,844"])
        .await;
    b.client.set_window_size(390, 844).await.expect("window size");
    b.login("otto", PW).await;
    let width = b.client.execute("return window.innerWidth", vec![]).await.unwrap();
    assert_eq!(width, json!(390), "the viewport is a phone's");
    let mut problems = vec![];
    for (name, page) in [
        ("board", "/".to_owned()),
        ("hold-release", "/apps/web".to_owned()),
        ("deploy-progress", format!("/deploys/{}", data.deploy)),
        ("review", format!("/deploys/{}", data.review)),
        ("release", format!("/releases/{}", data.release)),
    ] {
        b.goto(&page).await;
        let m = b
            .client
            .execute(
                "const small = [];
                 for (const e of document.querySelectorAll('button, a.button, input[type=submit]')) {
                   const r = e.getBoundingClientRect();
                   if (r.width === 0 && r.height === 0) continue;
                   if (r.height < 44) small.push((e.id || e.textContent.trim()) + ' ' + r.height.toFixed(1) + 'px');
                 }
                 return [document.documentElement.scrollWidth, small];",
                vec![],
            )
            .await
            .unwrap();
        let scroll = m[0].as_i64().unwrap();
        if scroll > 390 {
            problems.push(format!("{name} {page}: the page scrolls {scroll} px wide"));
        }
        for s in m[1].as_array().unwrap() {
            problems.push(format!(
                "{name} {page}: button {} is less than 44 px tall",
                s.as_str().unwrap()
            ));
        }
        b.client.execute("window.scrollTo(0, 0)", vec![]).await.unwrap();
        b.screenshot(&format!("a11y-phone-{name}")).await;
        full_page_screenshot(&b, &format!("a11y-phone-{name}-full")).await;
    }
    // The review page's buttons are there at phone width.
    b.goto(&format!("/deploys/{}", data.review)).await;
    for id in ["#approve", "#reject"] {
        assert!(b.find(id).await.is_displayed().await.unwrap(), "{id} shown at 390 px");
    }
    // The hold and release forms at phone width.
    b.goto("/apps/web").await;
    b.find("tr[data-env=fat] input[name=note]").await;
    b.find("tr[data-env=uat] input[name=reason]").await;
    assert!(problems.is_empty(), "at 390 px:\n{}", problems.join("\n"));
    b.close().await;
    tokio::task::spawn_blocking(move || server.stop()).await.unwrap();
}

/// A screenshot of the whole page: the window is made as tall as the page
/// for the shot (at the same width), then put back.
async fn full_page_screenshot(b: &Browser, name: &str) {
    let h = b
        .client
        .execute("return document.documentElement.scrollHeight", vec![])
        .await
        .unwrap()
        .as_u64()
        .unwrap_or(844)
        .clamp(844, 6000) as u32;
    b.client.set_window_size(390, h).await.unwrap();
    b.screenshot(name).await;
    b.client.set_window_size(390, 844).await.unwrap();
}
