//! The web console in a real headless Chromium (Debian's chromium and
//! chromium-driver over WebDriver) against a real `prism serve`: each role's
//! work through the pages, the server refusing what the pages do not offer,
//! inline validation errors, and forms that work without JavaScript. Every
//! step saves a screenshot under `web-screenshots/` in the build directory.

use prism_test_support::browser as web;

use std::time::Duration;

use reqwest::redirect::Policy;
use reqwest::Client as Http;
use serde_json::{json, Value};

use prism_test_support::console_login::{self, cookie, csrf_in};
use prism_test_support::process::ADMIN_PASSWORD;
use prism_test_support::ServerProcess as Server;
use web::{Api, Driver};

const DEV_PW: &str = "developer-password";
const TESTER_PW: &str = "tester-password";
const OPS_PW: &str = "operator-password";

/// What these tests add to the shared REST helper.
trait ConsoleApi {
    async fn deployed(&self, release: &str, env: &str);
    async fn state(&self, release: &str) -> (String, Option<String>);
}

impl ConsoleApi for Api {
    /// What Prism's engine reports when a deploy into `env` succeeds.
    async fn deployed(&self, release: &str, env: &str) {
        self.call(
            "POST",
            &format!("/releases/{release}/actions/deploy"),
            json!({"environment": env}),
        )
        .await;
        self.call(
            "POST",
            &format!("/releases/{release}/actions/deploy_succeeded"),
            json!({}),
        )
        .await;
    }

    async fn state(&self, release: &str) -> (String, Option<String>) {
        let r = self.call("GET", &format!("/releases/{release}"), Value::Null).await;
        (
            r["state"].as_str().unwrap().to_owned(),
            r["environment"].as_str().map(str::to_owned),
        )
    }
}

/// The release's state through the API is `state` in `env`; else the
/// browser's page is shown, to say why.
async fn expect_state(api: &Api, rel: &str, b: &web::Browser, state: &str, env: &str) {
    let got = api.state(rel).await;
    if got != (state.to_owned(), Some(env.to_owned())) {
        panic!(
            "{rel} is {got:?}, not {state} in {env}; {} sees {}:\n{}",
            b.who,
            b.path().await,
            b.text("main").await
        );
    }
}

/// Project `shop` with application `web`, users for each role, and `prd`
/// bound to a cluster nobody listens at (enough for the role checks).
async fn shop() -> (Server, Api) {
    let server = tokio::task::spawn_blocking(|| Server::with_app("web-console"))
        .await
        .unwrap();
    let api = Api::new(&server.url).await;
    for (user, pw, role) in [
        ("dev", DEV_PW, "developer"),
        ("tess", TESTER_PW, "tester"),
        ("otto", OPS_PW, "operator"),
    ] {
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
        json!({"name": "nowhere", "api_url": "https://127.0.0.1:1", "insecure_skip_tls_verify": true}),
    )
    .await;
    api.call(
        "PATCH",
        "/environments/prd",
        json!({"cluster": "nowhere", "namespace": "shop-prd"}),
    )
    .await;
    (server, api)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_works_through_the_console() {
    let (server, api) = shop().await;
    let driver = Driver::start();

    // Not signed in: every page sends the browser to the login page.
    let admin = driver.browser(&server.url, "admin", true).await;
    admin.goto("/apps/web").await;
    assert_eq!(admin.path().await, "/login?next=%2Fapps%2Fweb");
    admin.fill("input[name=username]", "admin").await;
    admin.fill("input[name=password]", "not-the-password").await;
    admin.click("#login-submit").await;
    assert!(admin.text("#login-error").await.contains("wrong username or password"));
    admin.screenshot("01-login-refused").await;
    // The right password on the same form: back to the page asked for.
    admin.fill("input[name=username]", "admin").await;
    admin.fill("input[name=password]", ADMIN_PASSWORD).await;
    admin.click("#login-submit").await;
    admin.find("#whoami").await;
    assert_eq!(admin.path().await, "/apps/web");
    admin.goto("/").await;
    assert!(admin.exists("#who [data-role=admin]").await, "the admin badge is shown");
    admin.screenshot("02-admin-dashboard").await;

    // A developer sees their role and creates a release.
    let dev = driver.browser(&server.url, "dev", true).await;
    dev.login("dev", DEV_PW).await;
    assert_eq!(dev.text("#who [data-role=developer]").await, "shop: developer");
    assert!(!dev.exists("#who [data-role=admin]").await);
    assert!(!dev.exists("a[href='/audit']").await, "no audit link for a developer");
    dev.goto("/releases").await;
    dev.fill("#create-release input[name=git_ref]", "release/1.0").await;
    dev.fill(
        "#create-release textarea[name=change_note]",
        "Checkout shows the order total",
    )
    .await;
    dev.screenshot("03-developer-creates-release").await;
    dev.click("#create-release-submit").await;
    dev.find("#release-state").await;
    let rel = dev.path().await.trim_start_matches("/releases/").to_owned();
    assert!(rel.starts_with('r'), "on the new release's page, got {rel}");
    assert_eq!(dev.text("#release-state").await, "created");
    assert_eq!(dev.text("#change-note").await, "Checkout shows the order total");
    assert!(dev.exists("#build-log #no-builds").await, "not built yet");
    dev.screenshot("04-release-created").await;
    // Creating a release is audited under the developer's name, as through the API.
    let audit = api.call("GET", "/audit?action=release.create", Value::Null).await;
    assert_eq!(audit[0]["actor"], "dev", "{audit}");

    // Prism's engine builds it (no page offers that).
    api.call("POST", &format!("/releases/{rel}/actions/start_build"), json!({}))
        .await;
    api.call(
        "POST",
        &format!("/releases/{rel}/actions/build_succeeded"),
        json!({"commit_sha": "abcdef1", "image_ref": "registry.example/web:1", "image_digest": format!("sha256:{}", "a".repeat(64))}),
    )
    .await;

    // The tester finds it in their queue and promotes it to FAT.
    let tess = driver.browser(&server.url, "tess", true).await;
    tess.login("tess", TESTER_PW).await;
    assert!(tess.text("#queue-tester").await.contains(&rel));
    tess.screenshot("05-tester-queue").await;
    tess.goto(&format!("/releases/{rel}")).await;
    assert!(!tess.exists("[id^=do-deploy]").await, "a tester deploys nowhere");
    tess.click("#do-promote-fat").await;
    assert_eq!(tess.text("#release-state").await, "promoted");
    assert_eq!(tess.text("#release-env").await, "fat");
    expect_state(&api, &rel, &tess, "promoted", "fat").await;
    tess.screenshot("06-tester-promoted-to-fat").await;

    // Deployed in FAT (by the engine); the tester passes it and promotes it to UAT.
    api.deployed(&rel, "fat").await;
    tess.goto(&format!("/releases/{rel}")).await;
    assert!(!tess.exists("#do-promote-uat").await, "UAT needs FAT passed first");
    tess.click("#do-pass").await;
    assert_eq!(tess.text("#release-state").await, "passed");
    tess.click("#do-promote-uat").await;
    expect_state(&api, &rel, &tess, "promoted", "uat").await;
    assert!(tess.text("#history").await.contains("promote"));
    tess.screenshot("07-tester-promoted-to-uat").await;
    api.deployed(&rel, "uat").await;
    tess.goto(&format!("/releases/{rel}")).await;
    tess.click("#do-pass").await;
    tess.click("#do-promote-prd").await;
    expect_state(&api, &rel, &tess, "promoted", "prd").await;

    // The developer is offered no deploy to PRD, and the server refuses one
    // sent anyway (a form forged in the page, with the right CSRF token).
    dev.goto(&format!("/releases/{rel}")).await;
    assert!(!dev.exists("#do-deploy-prd").await, "no deploy button for a developer");
    dev.client
        .execute(
            "const f = document.createElement('form'); f.method = 'post'; f.action = location.pathname + '/act';\
             for (const [k, v] of [['csrf', document.querySelector('input[name=csrf]').value], ['action', 'deploy'], ['environment', 'prd']]) {\
               const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i); }\
             document.body.appendChild(f); f.submit();",
            vec![],
        )
        .await
        .unwrap();
    let refusal = dev.text("#error-message").await;
    assert!(refusal.contains("needs the role operator"), "{refusal}");
    dev.screenshot("08-developer-refused-deploy-to-prd").await;
    assert_eq!(
        api.state(&rel).await,
        ("promoted".into(), Some("prd".into())),
        "nothing moved"
    );

    // The operator sees the deploy button, and the review queue.
    let otto = driver.browser(&server.url, "otto", true).await;
    otto.login("otto", OPS_PW).await;
    assert!(
        otto.text("#queue-operator").await.contains(&rel),
        "promoted to prd, ready to deploy"
    );
    otto.goto(&format!("/releases/{rel}")).await;
    assert!(otto.exists("#do-deploy-prd").await);
    otto.screenshot("09-operator-release-page").await;
    otto.click("#do-deploy-prd").await;
    otto.find("#deploy-state").await;
    assert!(otto.path().await.starts_with("/deploys/"));
    assert_eq!(otto.text("#change-note").await, "Checkout shows the order total");
    assert_eq!(otto.text("#digest").await, format!("sha256:{}", "a".repeat(64)));
    assert!(otto.text("#tested-by").await.contains("tess (fat)"));
    // Nobody listens at the cluster: the live page ends with the reason.
    otto.client
        .wait()
        .at_most(Duration::from_secs(60))
        .for_element(fantoccini::Locator::Css("#deploy-state[data-state=failed]"))
        .await
        .expect("the deploy fails (the cluster is unreachable) and the page shows it");
    assert!(!otto.text("#deploy-error").await.is_empty());
    otto.screenshot("10-operator-deploy-failed-live").await;

    // A bad CPU quantity: the settings form comes back with the error at the field.
    otto.goto("/apps/web").await;
    otto.fill("#settings-fat input[name=cpu_request]", "lots").await;
    otto.fill("#settings-fat input[name=replicas]", "3").await;
    otto.click("#settings-fat button[type=submit]").await;
    let err = otto.text("#settings-fat [data-error-for=cpu_request]").await;
    assert!(err.contains("cpu_request"), "the error names the field: {err}");
    let kept = otto
        .find("#settings-fat input[name=cpu_request]")
        .await
        .prop("value")
        .await
        .unwrap();
    assert_eq!(kept.as_deref(), Some("lots"), "what was typed is kept");
    assert!(
        !otto.exists("#settings-uat [data-error-for]").await,
        "only the FAT form shows it"
    );
    otto.screenshot("11-bad-cpu-quantity").await;
    let fat = &api.call("GET", "/applications/web/settings", Value::Null).await[0];
    assert_eq!(
        (fat["environment"].as_str(), fat["replicas"].as_i64()),
        (Some("fat"), Some(1)),
        "nothing saved: {fat}"
    );
    otto.fill("#settings-fat input[name=cpu_request]", "250m").await;
    otto.click("#settings-fat button[type=submit]").await;
    otto.find("#settings-fat").await;
    let fat = &api.call("GET", "/applications/web/settings", Value::Null).await[0];
    assert_eq!(
        (fat["cpu_request"].as_str(), fat["replicas"].as_i64()),
        (Some("250m"), Some(3)),
        "{fat}"
    );
    // A tester sees the settings but no form to change them.
    tess.goto("/apps/web").await;
    assert!(tess.exists("#settings-fat dl.facts").await);
    assert!(!tess.exists("#settings-fat form").await);

    // The template editor previews the manifests for an environment and release...
    otto.goto("/apps/web/templates").await;
    otto.find("select[name=environment]")
        .await
        .select_by_value("uat")
        .await
        .unwrap();
    otto.click("#preview").await;
    let yaml = otto.text("#preview-output").await;
    assert!(
        yaml.contains("# Source: deployment.yaml") && yaml.contains("\"Deployment\""),
        "{yaml}"
    );
    assert!(
        yaml.contains("100m") && !yaml.contains("250m"),
        "rendered with UAT's settings, not FAT's: {yaml}"
    );
    otto.screenshot("14-template-preview").await;
    // ...and shows a template's error with its line, keeping the edit.
    otto.fill(
        "textarea[name='file:deployment.yaml']",
        "apiVersion: apps/v1\nkind: {{ no_such_variable.field }}\n",
    )
    .await;
    otto.click("#preview").await;
    let err = otto.text("#template-error").await;
    assert!(
        err.contains("deployment.yaml:2"),
        "the error names the template and line: {err}"
    );
    assert!(
        otto.exists("section.field-error textarea[name='file:deployment.yaml']")
            .await
    );
    otto.screenshot("15-template-error-line").await;
    let saved = api.call("GET", "/projects/shop/templates", Value::Null).await;
    assert_eq!(saved["current"]["version"], 0, "a preview saves nothing");

    // A tester holds UAT while testing there; the dashboard shows who holds it.
    tess.goto("/apps/web").await;
    tess.fill("tr[data-env=uat] input[name=note]", "regression run").await;
    tess.click("tr[data-env=uat] button").await;
    tess.goto("/").await;
    let holds = tess.text("#holds").await;
    assert!(holds.contains("tess") && holds.contains("regression run"), "{holds}");
    tess.screenshot("16-dashboard-hold").await;
    tess.goto("/apps/web").await;
    tess.click("tr[data-env=uat] button").await;
    assert!(!tess.exists(".held").await, "hold released");

    // Held again, UAT stops the next release: the tester is offered no way in,
    // the operator may override the hold with a reason, which ends it.
    tess.fill("tr[data-env=uat] input[name=note]", "long soak test").await;
    tess.click("tr[data-env=uat] button").await;
    let r2 = api
        .call(
            "POST",
            "/releases",
            json!({"application": "web", "git_ref": "main", "change_note": "second"}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.call("POST", &format!("/releases/{r2}/actions/start_build"), json!({}))
        .await;
    api.call("POST", &format!("/releases/{r2}/actions/build_succeeded"), json!({}))
        .await;
    api.call(
        "POST",
        &format!("/releases/{r2}/actions/promote"),
        json!({"environment": "fat"}),
    )
    .await;
    api.deployed(&r2, "fat").await;
    api.call("POST", &format!("/releases/{r2}/actions/pass"), json!({}))
        .await;
    tess.goto(&format!("/releases/{r2}")).await;
    assert!(
        !tess.exists("#do-promote-uat").await,
        "held: no promotion for the tester"
    );
    otto.goto(&format!("/releases/{r2}")).await;
    otto.fill(
        "form:has(#do-promote-uat) input[name=override_reason]",
        "hotfix cannot wait",
    )
    .await;
    otto.screenshot("18-operator-overrides-hold").await;
    otto.click("#do-promote-uat").await;
    expect_state(&api, &r2, &otto, "promoted", "uat").await;
    let overrides = api.call("GET", "/audit?action=release.promote", Value::Null).await;
    assert_eq!(
        overrides[0]["detail"]["override_reason"], "hotfix cannot wait",
        "{overrides}"
    );
    tess.goto("/apps/web").await;
    assert!(!tess.exists(".held").await, "the override ended the hold");

    // The admin reads it all in the audit log, filtered.
    admin.goto("/audit?action=release.promote&actor=tess").await;
    let rows = admin
        .client
        .find_all(fantoccini::Locator::Css("#audit tbody tr[data-action]"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 3, "three promotions by tess");
    assert!(admin.exists("#audit tr[data-action]").await);
    assert!(admin.text("#audit").await.contains("tess"));
    admin.screenshot("12-audit-log").await;
    admin.goto("/").await;
    admin.screenshot("13-dashboard-board").await;
    // The interface in Chinese, by the switch at the foot of every page.
    admin.click("a[hreflang=zh-CN]").await;
    assert_eq!(admin.text("header nav a.here").await, "看板");
    assert_eq!(
        admin.find("html").await.attr("lang").await.unwrap().as_deref(),
        Some("zh-CN")
    );
    admin.goto("/apps/web").await;
    assert!(admin.text("#settings-fat").await.contains("副本数"));
    admin.screenshot("17-zh-cn-application").await;
    admin.click("a[hreflang=en]").await;
    assert_eq!(admin.text("header nav a.here").await, "Dashboard");
    // A developer has no audit page: the server says so.
    dev.goto("/audit").await;
    assert!(dev.text("#error-message").await.contains("admin"));

    // Logging out ends the session.
    dev.goto("/").await;
    dev.click("#logout").await;
    assert_eq!(dev.path().await, "/login");
    dev.goto("/").await;
    assert_eq!(dev.path().await, "/login");

    for b in [admin, dev, tess, otto] {
        b.close().await;
    }
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_work_without_javascript() {
    let (server, _api) = shop().await;
    let driver = Driver::start();
    let b = driver.browser(&server.url, "dev (no JavaScript)", false).await;
    // Script really is off in this browser.
    b.client
        .goto("data:text/html,<p id=probe>off</p><script>document.getElementById('probe').textContent='on'</script>")
        .await
        .unwrap();
    assert_eq!(b.text("#probe").await, "off");

    b.login("dev", DEV_PW).await;
    b.goto("/releases").await;
    b.fill("#create-release textarea[name=change_note]", "Made without script")
        .await;
    b.click("#create-release-submit").await;
    assert_eq!(b.text("#release-state").await, "created");
    b.screenshot("20-no-js-release-created").await;
    // A bad ref comes back as an inline error naming the field.
    b.goto("/releases").await;
    b.fill("#create-release input[name=git_ref]", "bad ref with spaces")
        .await;
    b.fill("#create-release textarea[name=change_note]", "x").await;
    b.click("#create-release-submit").await;
    let err = b.text("[data-error-for=git_ref]").await;
    assert!(!err.is_empty());
    b.screenshot("21-no-js-inline-error").await;
    b.close().await;
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_http_client_posts_forms_with_the_csrf_field_and_is_redirected() {
    let (server, api) = shop().await;
    let http = Http::builder().redirect(Policy::none()).build().unwrap();
    let base = &server.url;

    let r = http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login");

    // Login: the form's token must match its cookie.
    let page = http.get(format!("{base}/login")).send().await.unwrap();
    let login_cookie = cookie(&page, "prism_login_csrf");
    let token = csrf_in(&page.text().await.unwrap());
    let form = [("csrf", token.as_str()), ("username", "dev"), ("password", DEV_PW)];
    let r = http.post(format!("{base}/login")).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 401, "no login cookie: refused");
    let r = http
        .post(format!("{base}/login"))
        .header("cookie", &login_cookie)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/");
    let session = cookie(&r, "prism_session");

    let page = http
        .get(format!("{base}/releases"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let csrf = csrf_in(&page.text().await.unwrap());
    let fields = [("application", "web"), ("git_ref", "main"), ("change_note", "by curl")];
    for (what, extra) in [("without", None), ("with a wrong", Some("not-the-token"))] {
        let mut form = fields.to_vec();
        if let Some(t) = extra {
            form.push(("csrf", t));
        }
        let r = http
            .post(format!("{base}/releases"))
            .header("cookie", &session)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{what} CSRF token");
        assert!(r.text().await.unwrap().contains("CSRF"));
    }
    assert_eq!(
        api.call("GET", "/releases", Value::Null).await["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let mut form = fields.to_vec();
    form.push(("csrf", &csrf));
    let r = http
        .post(format!("{base}/releases"))
        .header("cookie", &session)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(to.starts_with("/releases/r"), "{to}");
    let page = http
        .get(format!("{base}{to}"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("by curl"));
    // A query a page cannot read is a page saying so.
    let r = http
        .get(format!("{base}/audit?before=first"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("query"));
    // Unknown pages are an HTML 404; unknown API paths keep their JSON.
    let r = http
        .get(format!("{base}/no/such/page"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("<html"));
    let r = http
        .get(format!("{base}/api/v1/no-such-thing"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.headers()["content-type"].to_str().unwrap().contains("json"));
    // The API's own CSRF rule is unchanged: a session without the header is refused.
    let r = http
        .post(format!("{base}/api/v1/releases"))
        .header("cookie", &session)
        .json(&json!({"application": "web", "git_ref": "main", "change_note": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

/// Waits (up to `secs`) until the deploy page shows `state`, without
/// reloading it: the page's own script follows the SSE stream and reloads.
async fn wait_for_state(b: &web::Browser, state: &str, secs: u64) {
    let css = format!("#deploy-state[data-state={state}]");
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let Err(e) = b
            .client
            .wait()
            .at_most(left.max(Duration::from_millis(100)))
            .for_element(fantoccini::Locator::Css(&css))
            .await
        else {
            return;
        };
        // The page reloads itself when the deploy ends; a lookup the reload
        // cut short ("aborted by navigation") is looked up again.
        if e.to_string().contains("aborted by navigation") && !left.is_zero() {
            continue;
        }
        let now = b.text("#deploy-state").await;
        let events = b.text("#events").await;
        panic!("deploy page never showed {state} ({e}); it shows {now}; events:\n{events}");
    }
}

/// With a real control plane: the operator deploys to FAT and watches the
/// rollout finish live; a second release's page shows the image change in
/// the diff; UAT waits for review, where the operator sees the release and
/// the diff and approves; the operator rolls FAT back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_reviews_the_diff_and_watches_the_rollout_live() {
    let mut kube = tokio::task::spawn_blocking(prism_test_support::kube::KubeCluster::up)
        .await
        .unwrap();
    for ns in ["shop-fat", "shop-uat", "shop-prd"] {
        kube.kubectl(&["create", "namespace", ns]);
    }
    let (server, api) = shop().await;
    api.call(
        "POST",
        "/clusters",
        json!({"name": "one", "kubeconfig": kube.kubeconfig_text()}),
    )
    .await;
    for env in ["fat", "uat", "prd"] {
        api.call(
            "PATCH",
            &format!("/environments/{env}"),
            json!({"cluster": "one", "namespace": format!("shop-{env}")}),
        )
        .await;
    }
    let built = |n: u32| {
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
                json!({"commit_sha": "abcdef1", "image_ref": format!("registry.example/web:{n}"), "image_digest": format!("sha256:{}", n.to_string().repeat(64))}),
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
    let driver = Driver::start();
    let otto = driver.browser(&server.url, "otto", true).await;
    otto.login("otto", OPS_PW).await;
    let admin = driver.browser(&server.url, "admin", true).await;
    admin.login("admin", ADMIN_PASSWORD).await;
    admin.goto("/admin/clusters").await;
    admin.click("#clusters tr[data-cluster=one] button").await;
    assert!(
        admin.text("#health").await.contains("v1.20.2"),
        "the health check reaches the cluster"
    );
    admin.screenshot("30-cluster-health").await;

    // FAT: no review; the live page follows the rollout to the end.
    let r1 = built(1).await;
    otto.goto(&format!("/releases/{r1}")).await;
    // No node until the page is open: the rollout cannot finish before it.
    kube.stop_sim();
    otto.click("#do-deploy-fat").await;
    // The page may reload itself as the deploy moves on (live.js): read it
    // again if the element went stale under the lookup.
    let first = otto.attr("#deploy-state", "data-state").await.unwrap();
    assert!(
        !["succeeded", "failed"].contains(&first.as_str()),
        "the page opens while the deploy runs ({first}), so what follows comes live"
    );
    kube.start_sim(&[]);
    // The test never reloads: the page's script follows the stream to the end.
    wait_for_state(&otto, "succeeded", 120).await;
    let events = otto.text("#events").await;
    assert!(events.contains("deploy succeeded"), "{events}");
    assert!(
        otto.exists("#diff [data-action=create]").await,
        "the first deploy creates its objects"
    );
    otto.screenshot("31-live-rollout-succeeded").await;
    let image = kube.kubectl(&[
        "get",
        "deployment",
        "web",
        "-n",
        "shop-fat",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    let pinned = |n: u32| format!("registry.example/web@sha256:{}", n.to_string().repeat(64));
    assert_eq!(image, pinned(1), "the image is pinned by digest");

    // A second release: its deploy's diff shows the image change, highlighted.
    let r2 = built(2).await;
    otto.goto(&format!("/releases/{r2}")).await;
    otto.click("#do-deploy-fat").await;
    otto.find("#deploy-state").await;
    wait_for_state(&otto, "succeeded", 120).await;
    assert!(
        otto.exists("#diff .change-update [data-category=image]").await,
        "the image change is called out"
    );
    let diff = otto.text("#diff").await;
    assert!(diff.contains(&pinned(1)) && diff.contains(&pinned(2)), "{diff}");
    otto.screenshot_of("#diff", "32-diff-image-change").await;

    // UAT is reviewed: the page waits for the operator, then shows the review.
    api.call("POST", &format!("/releases/{r2}/actions/pass"), json!({}))
        .await;
    api.call(
        "POST",
        &format!("/releases/{r2}/actions/promote"),
        json!({"environment": "uat"}),
    )
    .await;
    otto.goto(&format!("/releases/{r2}")).await;
    otto.click("#do-deploy-uat").await;
    otto.find("#deploy-state").await;
    wait_for_state(&otto, "awaiting_review", 60).await;
    otto.find("#review").await;
    assert_eq!(otto.text("#commit").await, "abcdef1");
    assert_eq!(otto.text("#built-by").await, "admin");
    assert!(otto.text("#tested-by").await.contains("admin (fat)"));
    assert!(otto.exists("#diff [data-action=create]").await);
    assert!(otto.text("#manifests").await.contains("Deployment"));
    otto.screenshot("33-operator-review").await;
    let review_page = otto.path().await;
    // The developer sees the review page but not the approve button.
    let dev = driver.browser(&server.url, "dev", true).await;
    dev.login("dev", DEV_PW).await;
    dev.goto(&review_page).await;
    assert!(!dev.exists("#approve").await);
    assert!(dev.exists("#review-not-yours").await);
    dev.close().await;
    // Rejecting needs a reason; a rejected deploy can be asked for again.
    otto.click("#reject").await;
    assert!(otto.text("#review [data-error-for=comment]").await.contains("say why"));
    assert_eq!(otto.text("#deploy-state").await, "awaiting_review", "nothing happened");
    otto.fill("#review textarea[name=comment]", "wrong week for this").await;
    otto.click("#reject").await;
    wait_for_state(&otto, "rejected", 30).await;
    otto.goto(&format!("/releases/{r2}")).await;
    otto.click("#do-deploy-uat").await;
    otto.find("#deploy-state").await;
    wait_for_state(&otto, "awaiting_review", 60).await;
    otto.fill("#review textarea[name=comment]", "diff looks right").await;
    otto.click("#approve").await;
    wait_for_state(&otto, "succeeded", 120).await;
    assert!(otto.text("#reviewer").await.contains("otto: diff looks right"));
    otto.screenshot("34-reviewed-deploy-succeeded").await;

    // Roll FAT back to the first release from its last deploy's page (#2:
    // #1 deployed r1 to FAT, #2 r2, #3 r2 to UAT).
    otto.goto("/deploys/2").await;
    assert!(
        otto.exists("#rollback").await,
        "two successes in FAT: a rollback is offered"
    );
    otto.click("#rollback").await;
    wait_for_state(&otto, "succeeded", 120).await;
    let image = kube.kubectl(&[
        "get",
        "deployment",
        "web",
        "-n",
        "shop-fat",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(image, pinned(1), "rolled back");
    otto.screenshot("35-rollback-succeeded").await;

    // Statistics for the project, drawn by the server: 2 releases, 4 good deploys.
    otto.goto("/stats?project=shop").await;
    assert_eq!(otto.text("#chart-releases h2 .muted").await, "2");
    assert!(otto.text("#chart-deploys h2").await.contains('4'));
    let bars = otto
        .client
        .find_all(fantoccini::Locator::Css("#chart-deploys svg rect"))
        .await
        .unwrap();
    assert_eq!(bars.len(), 24, "two series over twelve weeks");
    otto.screenshot("36-statistics").await;

    // PRD, where the lifecycle ends: the operator reviews the diff, approves,
    // and the page follows the rollout to the end.
    api.call("POST", &format!("/releases/{r2}/actions/pass"), json!({}))
        .await;
    api.call(
        "POST",
        &format!("/releases/{r2}/actions/promote"),
        json!({"environment": "prd"}),
    )
    .await;
    otto.goto(&format!("/releases/{r2}")).await;
    otto.click("#do-deploy-prd").await;
    otto.find("#deploy-state").await;
    wait_for_state(&otto, "awaiting_review", 60).await;
    assert!(otto.exists("#diff [data-action=create]").await);
    otto.screenshot("37-prd-review").await;
    otto.fill("#review textarea[name=comment]", "ship it").await;
    otto.click("#approve").await;
    wait_for_state(&otto, "succeeded", 120).await;
    let image = kube.kubectl(&[
        "get",
        "deployment",
        "web",
        "-n",
        "shop-prd",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(image, pinned(2), "r2 runs in PRD");
    otto.screenshot("38-prd-rollout-succeeded").await;

    otto.close().await;
    admin.close().await;
    drop(server);
    drop(kube);
}

/// The admin pages: users, roles per project, applications, environment
/// policies and API tokens, each change through a form, refused input shown
/// on the page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_manages_users_roles_environments_and_tokens() {
    let (server, api) = shop().await;
    let driver = Driver::start();
    let admin = driver.browser(&server.url, "admin", true).await;
    admin.login("admin", ADMIN_PASSWORD).await;

    // A user: a short password is refused on the page, then a good one works.
    admin.goto("/admin/users").await;
    admin
        .fill("form[action='/admin/users'] input[name=username]", "quinn")
        .await;
    admin
        .fill("form[action='/admin/users'] input[name=password]", "short")
        .await;
    // Without the browser's own minlength check, the server's is what is tested.
    admin
        .client
        .execute(
            "document.querySelector('input[minlength]').removeAttribute('minlength')",
            vec![],
        )
        .await
        .unwrap();
    admin.click("form[action='/admin/users'] button").await;
    assert!(admin.text("#notice").await.contains("at least 10 characters"));
    admin.screenshot("40-admin-user-refused").await;
    admin
        .fill("form[action='/admin/users'] input[name=username]", "quinn")
        .await;
    admin
        .fill("form[action='/admin/users'] input[name=password]", "quinns-password")
        .await;
    admin.click("form[action='/admin/users'] button").await;
    assert!(admin.exists("#users tr[data-user=quinn]").await);
    admin.screenshot("41-admin-users").await;

    // Roles are granted per project; a new application goes with it.
    admin.goto("/admin/projects/shop").await;
    admin
        .find("#grant select[name=username]")
        .await
        .select_by_value("quinn")
        .await
        .unwrap();
    admin
        .find("#grant select[name=role]")
        .await
        .select_by_value("tester")
        .await
        .unwrap();
    admin.click("#grant button").await;
    assert!(admin.text("#members").await.contains("quinn"));
    admin.fill("#new-app input[name=name]", "api").await;
    admin.fill("#new-app input[name=git_url]", "not a url").await;
    admin.click("#new-app button").await;
    assert!(admin.text("#notice").await.contains("git URL"));
    admin.fill("#new-app input[name=name]", "api").await;
    admin
        .fill("#new-app input[name=git_url]", "https://git.example.com/api.git")
        .await;
    admin.click("#new-app button").await;
    assert_eq!(admin.path().await, "/apps/api");
    let members = api.call("GET", "/projects/shop/members", Value::Null).await;
    assert!(members.to_string().contains("\"quinn\""), "{members}");

    // An environment's policy: developers may deploy to UAT, without review.
    admin.goto("/admin/environments").await;
    admin.tick("#env-uat input[name=deploy_developer]").await;
    admin.tick("#env-uat input[name=requires_review]").await;
    admin.screenshot("42-admin-environments").await;
    admin.click("#env-uat button").await;
    let uat = api.call("GET", "/environments/uat", Value::Null).await;
    assert_eq!(uat["policy"]["requires_review"], false, "{uat}");
    assert!(uat["policy"]["deploy_roles"].to_string().contains("developer"), "{uat}");
    // The audit log has it under the admin's name.
    let audit = api.call("GET", "/audit?record_type=environment", Value::Null).await;
    assert_eq!(audit[0]["actor"], "admin", "{audit}");
    // A project's own namespace, bound on the same page, and unbound (issue 11 item 5).
    let bind_form = "#env-uat form[action='/admin/environments/uat/namespaces']";
    admin
        .fill(&format!("{bind_form} input[name=namespace]"), "own-uat")
        .await;
    admin.click(&format!("{bind_form} button")).await;
    let bound = api.call("GET", "/environments/uat/namespaces", Value::Null).await;
    assert_eq!(bound[0]["namespace"], "own-uat", "{bound}");
    admin.click("#env-uat ul.bindings button").await;
    let bound = api.call("GET", "/environments/uat/namespaces", Value::Null).await;
    assert_eq!(bound, json!([]), "{bound}");

    // An API token: shown once, works, and stops working when revoked.
    admin.goto("/tokens").await;
    admin.fill("form[action='/tokens'] input[name=name]", "ci").await;
    admin.click("form[action='/tokens'] button").await;
    let secret = admin.text("#token-secret pre").await;
    assert!(secret.starts_with("prism_"), "{secret}");
    admin.screenshot("43-token-created").await;
    let me = |secret: String| {
        let base = server.url.clone();
        async move {
            Http::new()
                .get(format!("{base}/api/v1/me"))
                .bearer_auth(secret)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(me(secret.clone()).await, 200);
    admin.goto("/tokens").await;
    assert!(!admin.exists("#token-secret").await, "the secret is not shown again");
    admin.click("#tokens tr[data-token-name=ci] button").await;
    assert!(admin.exists("#tokens tr[data-token-name=ci] .badge").await);
    assert_eq!(me(secret).await, 401, "a revoked token is refused");
    admin.close().await;
    drop(server);
}

async fn body_background(b: &web::Browser) -> String {
    b.find("body").await.css_value("background-color").await.unwrap()
}

/// Pages follow the OS theme: dark when the browser prefers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_follow_a_dark_os_theme() {
    let (server, _api) = shop().await;
    let driver = Driver::start();
    let light = driver.browser(&server.url, "light", true).await;
    let dark = driver
        .browser_with(
            &server.url,
            "dark",
            true,
            &["--force-dark-mode", "--blink-settings=preferredColorScheme=0"],
        )
        .await;
    for b in [&light, &dark] {
        b.login("tess", TESTER_PW).await;
        b.goto("/apps/web").await;
    }
    assert_eq!(body_background(&light).await, "rgba(246, 247, 249, 1)");
    assert_eq!(body_background(&dark).await, "rgba(20, 23, 28, 1)");
    dark.screenshot("50-dark-theme").await;
    light.close().await;
    dark.close().await;
    drop(server);
}

/// The dashboard and list pages read a fixed number of rows' worth of
/// queries however many applications and releases there are (no N+1):
/// counted from the statements the server logs (`sqlx::query` at debug),
/// leaving out the job runner's own polling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_run_the_same_number_of_queries_for_2_or_12_applications() {
    let server = tokio::task::spawn_blocking(|| {
        let s = Server::start_with_env("web-queries", &[("PRISM_LOG", "warn,sqlx::query=debug")]);
        s.login_admin();
        s
    })
    .await
    .unwrap();
    let api = Api::new(&server.url).await;
    api.call("POST", "/projects", json!({"name": "shop"})).await;
    let add_apps = |range: std::ops::RangeInclusive<u32>| {
        let api = &api;
        async move {
            for n in range {
                let app = format!("app{n}");
                api.call(
                    "POST",
                    "/applications",
                    json!({"project": "shop", "name": app, "git_url": "https://git.example.com/a.git"}),
                )
                .await;
                let r = api
                    .call(
                        "POST",
                        "/releases",
                        json!({"application": app, "git_ref": "main", "change_note": "x"}),
                    )
                    .await;
                let id = r["id"].as_str().unwrap().to_owned();
                api.call("POST", &format!("/releases/{id}/actions/start_build"), json!({}))
                    .await;
                api.call("POST", &format!("/releases/{id}/actions/build_succeeded"), json!({}))
                    .await;
                api.call(
                    "POST",
                    &format!("/releases/{id}/actions/promote"),
                    json!({"environment": "fat"}),
                )
                .await;
                api.deployed(&id, "fat").await;
                // The build set-up lists grow too.
                api.call(
                    "PUT",
                    &format!("/registries/reg{n}"),
                    json!({"host": format!("reg{n}.example.com"), "username": "u", "password": "p"}),
                )
                .await;
                api.call(
                    "PUT",
                    &format!("/git-credentials/cred{n}"),
                    json!({"username": "u", "password": "p", "host": "git.example"}),
                )
                .await;
            }
        }
    };
    let http = Http::builder().redirect(Policy::none()).build().unwrap();
    let session = console_login::session(&http, &server.url, "admin", ADMIN_PASSWORD).await;
    let log = server.scratch.join("server.log");
    let count = |path: &'static str| {
        let (http, session, log, base) = (&http, &session, &log, &server.url);
        async move {
            let mut fewest = usize::MAX;
            // The fewest of three: a background sweep may run beside one of them.
            for _ in 0..3 {
                let before = std::fs::read_to_string(log).unwrap().len();
                let r = http
                    .get(format!("{base}{path}"))
                    .header("cookie", session)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200, "{path}");
                r.text().await.unwrap();
                tokio::time::sleep(Duration::from_millis(100)).await;
                let text = std::fs::read_to_string(log).unwrap();
                let n = text[before..]
                    .lines()
                    .filter(|l| l.contains("sqlx::query") && !l.contains("jobs"))
                    .count();
                fewest = fewest.min(n);
            }
            fewest
        }
    };
    let pages = [
        "/",
        "/releases",
        "/apps",
        "/apps/app1",
        "/stats",
        "/admin/registries",
        "/admin/base-images",
        "/admin/build-setup",
    ];
    add_apps(1..=2).await;
    let mut small = vec![];
    for p in pages {
        small.push(count(p).await);
    }
    add_apps(3..=12).await;
    let mut large = vec![];
    for p in pages {
        large.push(count(p).await);
    }
    eprintln!("queries per page {pages:?}: {small:?} with 2 applications, {large:?} with 12");
    assert!(small.iter().all(|n| *n > 0), "the server logs its queries: {small:?}");
    assert_eq!(small, large, "queries per page {pages:?} grow with the data");
}
