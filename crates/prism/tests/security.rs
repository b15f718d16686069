//! Issue 11 against the real `prism serve` process: what the production
//! binary does with a hostile template (its renderer child is
//! `prism __render-manifests`) and with `PRISM_METRICS_TOKEN`.

use reqwest::blocking::Client;
use serde_json::{json, Value};

use prism_test_support::process::ADMIN_PASSWORD;
use prism_test_support::ServerProcess as Server;

fn call(c: &Client, method: reqwest::Method, url: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let mut req = c.request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

// Item 1 on the production binary. Before the fix `prism serve` aborted on
// the first payload ("memory allocation of 100000000000000 bytes failed").
#[test]
fn hostile_templates_get_a_422_and_prism_serve_keeps_running() {
    let mut server = Server::start("sec-templates");
    let c = Client::new();
    let post = |path: &str, token: Option<&str>, body: Value| {
        call(
            &c,
            reqwest::Method::POST,
            &format!("{}{path}", server.url),
            token,
            Some(body),
        )
    };
    let (s, t) = post(
        "/api/v1/auth/token",
        None,
        json!({"username": "admin", "password": ADMIN_PASSWORD}),
    );
    assert_eq!(s, 201, "{t}");
    let admin = t["secret"].as_str().unwrap().to_owned();
    let admin = Some(admin.as_str());
    assert_eq!(post("/api/v1/projects", admin, json!({"name": "shop"})).0, 201);
    let (s, v) = post(
        "/api/v1/applications",
        admin,
        json!({"project": "shop", "name": "web", "git_url": "https://git.example/web.git"}),
    );
    assert_eq!(s, 201, "{v}");
    let (s, r) = post(
        "/api/v1/releases",
        admin,
        json!({"application": "web", "git_ref": "main", "change_note": "x"}),
    );
    assert_eq!(s, 201, "{r}");
    let rel = r["id"].as_str().unwrap().to_owned();
    post(&format!("/api/v1/releases/{rel}/actions/start_build"), admin, json!({}));
    let (s, v) = post(
        &format!("/api/v1/releases/{rel}/actions/build_succeeded"),
        admin,
        json!({"commit_sha": "abcdef1", "image_ref": format!("registry.local/web:{rel}"), "image_digest": format!("sha256:{}", "a".repeat(64))}),
    );
    assert!(s < 300, "{v}");

    let cases = [
        ("{{ 1|tojson(indent=100000000000000) }}", "past the limit of 16"),
        (
            r#"{% set s = "x" * 100000000 %}{% for i in range(300) %}{{ s }}{% endfor %}"#,
            "more than 2097152 bytes",
        ),
        (
            r#"{% set ns = namespace(s="x" * 1000000) %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}"#,
            "memory limit of 512 MiB",
        ),
    ];
    for (body, limit) in cases {
        let (s, v) = post(
            "/api/v1/applications/web/preview",
            admin,
            json!({"environment": "fat", "release": rel, "files": {"evil.yaml": body}}),
        );
        assert_eq!(s, 422, "{body}: {v}");
        let msg = v["error"].as_str().unwrap();
        assert!(msg.contains("evil.yaml") && msg.contains(limit), "{msg}");
        assert!(
            server.child.try_wait().unwrap().is_none(),
            "prism serve exited:\n{}",
            server.log()
        );
    }
    let (s, v) = post(
        "/api/v1/applications/web/preview",
        admin,
        json!({"environment": "fat", "release": rel}),
    );
    assert_eq!(s, 200, "{v}");
    assert!(server.child.try_wait().unwrap().is_none());
    let _ = &mut server;
}

// Item 10: with PRISM_METRICS_TOKEN set, /metrics needs it. Before the fix
// /metrics answered 200 to anyone.
#[test]
fn metrics_can_require_a_bearer_token() {
    let server = Server::start_with("sec-metrics", &[("PRISM_METRICS_TOKEN", "scrape-me-please")]);
    let c = Client::new();
    let url = format!("{}/metrics", server.url);
    let (s, v) = call(&c, reqwest::Method::GET, &url, None, None);
    assert_eq!(s, 401, "{v}");
    assert!(v["error"].as_str().unwrap().contains("metrics token"), "{v}");
    assert_eq!(call(&c, reqwest::Method::GET, &url, Some("wrong"), None).0, 401);
    let (s, v) = call(&c, reqwest::Method::GET, &url, Some("scrape-me-please"), None);
    assert_eq!(s, 200);
    assert!(v.as_str().unwrap().contains("prism_"), "{v}");
    // Everything else is unaffected.
    assert_eq!(
        call(&c, reqwest::Method::GET, &format!("{}/healthz", server.url), None, None).0,
        200
    );
}

// Items 6 and 7 behind a reverse proxy: with PRISM_TRUSTED_PROXY_HEADER the
// client's address comes from that header (throttling counts the real
// client, not the proxy), and `X-Forwarded-Proto: https` from the proxy
// makes the session cookie Secure. Before: cookies were Secure only with a
// setting, and one client's failures throttled everyone behind the proxy.
#[test]
fn behind_a_trusted_proxy_cookies_are_secure_and_clients_are_told_apart() {
    let server = Server::start_with("sec-proxy", &[("PRISM_TRUSTED_PROXY_HEADER", "X-Forwarded-For")]);
    let c = Client::new();
    let login = |from: &str, password: &str, proto: &str| {
        c.post(format!("{}/api/v1/auth/login", server.url))
            .header("x-forwarded-for", format!("203.0.113.9, {from}"))
            .header("x-forwarded-proto", proto)
            .json(&json!({"username": "admin", "password": password}))
            .send()
            .unwrap()
    };
    let r = login("198.51.100.1", ADMIN_PASSWORD, "https");
    assert_eq!(r.status().as_u16(), 200);
    let set = r.headers().get("set-cookie").unwrap().to_str().unwrap().to_owned();
    assert!(set.contains("Secure"), "{set}");
    let r = login("198.51.100.1", ADMIN_PASSWORD, "http");
    let set = r.headers().get("set-cookie").unwrap().to_str().unwrap().to_owned();
    assert!(!set.contains("Secure"), "{set}");
    // One client behind the proxy fails until throttled; another still logs in.
    let mut throttled = false;
    for _ in 0..10 {
        throttled |= login("198.51.100.66", "wrong-password-here", "https").status().as_u16() == 429;
    }
    assert!(throttled);
    assert_eq!(login("198.51.100.1", ADMIN_PASSWORD, "https").status().as_u16(), 200);
}
