//! Single sign-on in real Chromium: `prism serve` with PRISM_OIDC_* against
//! a real OpenID provider (npm `oidc-provider`, test-support's
//! `OidcProvider`). The login page offers "Log in with Example ID"; a click
//! takes the browser to the provider's own login form (another site: Prism
//! is browsed as `localhost`, the provider is `127.0.0.1`, so the way back
//! is a cross-site navigation as with a real company provider); a wrong
//! password there shows the provider's error and opens no Prism session;
//! the right one ends on Prism's dashboard signed in, with the roles the
//! group rules grant for the provider's groups. The protocol's details
//! (state, nonce, PKCE, refusals) are in `sso_login.rs`.

use prism_test_support::browser as web;
use prism_test_support::oidc::OidcProvider;
use prism_test_support::{Backend, ServerProcess as Server, TestDb};
use serde_json::{json, Value};
use web::{Api, Browser, Driver};

const CLIENT: &str = "prism";
const CLIENT_SECRET: &str = "prism-web-sso-secret-9b2e";
const ALICE_PW: &str = "alice-idp-pw";

/// Where the browser is: `host:port` and the path.
async fn location(b: &Browser) -> (String, String) {
    let url = b.client.current_url().await.expect("current url");
    (
        format!(
            "{}:{}",
            url.host_str().unwrap_or(""),
            url.port_or_known_default().unwrap_or(0)
        ),
        url.path().to_owned(),
    )
}

fn usernames(users: &Value) -> Vec<String> {
    users
        .as_array()
        .expect("a list of users")
        .iter()
        .map(|u| u["username"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_log_in_through_the_company_provider_in_the_browser() {
    let (server, idp, public) = tokio::task::spawn_blocking(|| {
        let mut server = Server::start_on(TestDb::start_blocking(Backend::Sqlite), "web-sso", &[]);
        // Browsed as localhost: a site other than the provider's 127.0.0.1.
        let public = format!("http://localhost:{}", server.port);
        let idp = OidcProvider::start(
            CLIENT,
            CLIENT_SECRET,
            &format!("{public}/auth/oidc/callback"),
            json!({"alice": {"password": ALICE_PW, "email": "alice@example.com",
                             "name": "Alice Ops", "groups": ["shop-ops"]}}),
        );
        server.pause();
        server
            .resume(&[
                ("PRISM_PUBLIC_URL", public.as_str()),
                ("PRISM_OIDC_ISSUER", idp.issuer.as_str()),
                ("PRISM_OIDC_CLIENT_ID", CLIENT),
                ("PRISM_OIDC_CLIENT_SECRET", CLIENT_SECRET),
                ("PRISM_OIDC_SCOPES", "profile email groups"),
                ("PRISM_OIDC_LABEL", "Example ID"),
            ])
            .unwrap();
        (server, idp, public)
    })
    .await
    .unwrap();
    let api = Api::new(&server.url).await;
    api.call("POST", "/projects", json!({"name": "shop"})).await;
    api.call(
        "PUT",
        "/directory/group-rules",
        json!({"rules": [{"group": "shop-ops", "project": "shop", "role": "operator"}]}),
    )
    .await;

    let driver = Driver::start();
    let mallory = driver.browser(&public, "mallory", true).await;
    let alice = driver.browser(&public, "alice", true).await;
    // Closed below whatever the steps did: a panic inside the task is kept.
    let sessions = vec![mallory.client.clone(), alice.client.clone()];
    let provider = format!("127.0.0.1:{}", idp.port);
    let steps = tokio::spawn(async move {
        // The login page offers the provider.
        alice.goto("/login").await;
        let button = alice.text("#login-sso").await;
        assert!(button.contains("Example ID"), "{button}");
        assert_eq!(
            alice.attr("#login-sso", "href").await.as_deref(),
            Some("/auth/oidc/login")
        );
        alice.screenshot_of("section.login", "sso-01-login").await;

        // A wrong password at the provider: its error, no session at Prism.
        mallory.goto("/login").await;
        mallory.click("#login-sso").await;
        mallory.find("input[name=login]").await;
        let (at, path) = location(&mallory).await;
        assert_eq!(at, provider, "the provider's form, at {path}");
        mallory.fill("input[name=login]", "alice").await;
        mallory.fill("input[name=password]", "not-alices-password").await;
        mallory.click("#submit").await;
        let error = mallory.text("#error").await;
        assert!(error.contains("Invalid username or password"), "{error}");
        assert_eq!(location(&mallory).await.0, provider);
        mallory.screenshot("sso-02-provider-wrong-password").await;
        mallory.goto("/").await;
        mallory.find("#login-submit").await;
        assert_eq!(mallory.path().await, "/login");
        assert!(!mallory.exists("#whoami").await);
        let users = usernames(&api.call("GET", "/users", Value::Null).await);
        assert!(!users.contains(&"alice".to_owned()), "{users:?}");

        // alice with her password: back on Prism's dashboard, signed in.
        alice.click("#login-sso").await;
        alice.find("input[name=login]").await;
        assert_eq!(location(&alice).await.0, provider);
        alice.fill("input[name=login]", "alice").await;
        alice.fill("input[name=password]", ALICE_PW).await;
        alice.click("#submit").await;
        alice.find("#whoami").await;
        let (at, path) = location(&alice).await;
        assert_eq!(
            (at.as_str(), path.as_str()),
            (public.trim_start_matches("http://"), "/")
        );
        assert_eq!(alice.text("#whoami").await, "alice");
        let badge = alice.text("#who [data-role=operator]").await;
        assert_eq!(badge, "shop: operator");
        alice.screenshot_of("#who", "sso-03-signed-in").await;
        // The session holds: another page, still alice.
        alice.goto("/apps").await;
        assert_eq!(alice.text("#whoami").await, "alice");
        assert_eq!(alice.path().await, "/apps");

        // What the group rules granted, as the admin sees it.
        let members = api.call("GET", "/projects/shop/members", Value::Null).await;
        let roles: Vec<&str> = members
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["username"] == "alice")
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        assert_eq!(roles, ["operator"], "{members}");
        let user = api.call("GET", "/users/alice", Value::Null).await;
        assert_eq!(user["source"], "oidc", "{user}");
        let audit = api
            .call("GET", "/audit?actor=alice&action=auth.login_sso", Value::Null)
            .await;
        assert_eq!(audit.as_array().map(Vec::len), Some(1), "{audit}");
    });
    let outcome = steps.await;
    for client in sessions {
        let _ = client.close().await;
    }
    drop(driver);
    if outcome.is_err() {
        eprintln!("server log:\n{}\nprovider log:\n{}", server.log(), idp.log());
    }
    tokio::task::spawn_blocking(move || {
        drop(idp);
        server.stop();
    })
    .await
    .unwrap();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
