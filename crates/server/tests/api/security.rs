//! Security hardening (issue 11): each test is an attack by a user with an
//! ordinary project role, and what the server must do instead of giving way.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::both_backends;
use crate::harness::TestApp;
use crate::preview_world::{preview, shop_with_release, still_serving};

// Item 1. Before the fix the first payload aborted the whole test process
// ("memory allocation of 100000000000000 bytes failed", SIGABRT).
both_backends!(
    templates_that_ask_for_huge_results_get_a_422_naming_the_template_and_limit,
    |app| {
        let (dev, rel) = shop_with_release(app).await;
        let cases = [
            ("{{ 1|tojson(indent=100000000000000) }}", "past the limit of 16"),
            (
                r#"{% set s = "x" * 100000000 %}{% for i in range(300) %}{{ s }}{% endfor %}"#,
                "more than 2097152 bytes (the output limit",
            ),
            // No filter sees this one: the string doubles until the renderer's memory limit.
            (
                r#"{% set ns = namespace(s="x" * 1000000) %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}"#,
                "memory limit of 512 MiB",
            ),
            ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "recursion"),
        ];
        for (body, limit) in cases {
            let (s, v) = preview(app, &dev, &rel, json!({"evil.yaml": body})).await;
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
            let msg = v["error"].as_str().unwrap();
            assert!(msg.contains("evil.yaml"), "names the template: {msg}");
            assert!(msg.contains(limit), "names the limit {limit:?}: {msg}");
            still_serving(app, &dev, &rel).await;
        }

        // Saved, the same template fails every render of the set (what each deploy
        // job attempt does) with the same 422, and the server stays up.
        let op = app.user("op", Some("shop"), &["operator"]).await;
        let (_, current) = app.get("/api/v1/projects/shop/templates", &op).await;
        let base = current["version"].as_i64().unwrap_or(0);
        let (s, v) = app
            .call(
                Method::PUT,
                "/api/v1/projects/shop/templates",
                Some(&op),
                Some(json!({"base_version": base, "files": {"evil.yaml": "{{ 1|tojson(indent=100000000000000) }}"}})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "it compiles, so it saves: {v}");
        for _ in 0..2 {
            let (s, v) = preview(app, &dev, &rel, Value::Null).await;
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
            let msg = v["error"].as_str().unwrap();
            assert!(
                msg.contains("evil.yaml") && msg.contains("past the limit of 16"),
                "{msg}"
            );
        }
    }
);

// Item 10. A non-member starting a build of another project's release got
// the settings' error (422 naming the field at fault: what the other team
// configured) before the membership check; now the same 404 as for a
// release that does not exist, whatever the settings.
both_backends!(a_non_member_starting_a_build_learns_nothing_of_the_settings, |app| {
    let (_, rel) = shop_with_release(app).await;
    // A release of shop that could be built again, with settings that do not resolve.
    let r = app
        .ok(
            Method::POST,
            "/api/v1/releases",
            &app.admin,
            Some(json!({"application": "web", "git_ref": "main", "change_note": "again"})),
        )
        .await;
    let fresh = r["id"].as_str().unwrap().to_owned();
    app.ok(
        Method::POST,
        "/api/v1/projects",
        &app.admin,
        Some(json!({"name": "blog"})),
    )
    .await;
    let eve = app.user("eve", Some("blog"), &["operator", "developer"]).await;
    let (s_none, none) = app.post("/api/v1/releases/r999999/builds", &eve, json!({})).await;
    assert_eq!(s_none, StatusCode::NOT_FOUND, "{none}");
    for id in [&rel, &fresh] {
        let (s, v) = app
            .post(&format!("/api/v1/releases/{id}/builds"), &eve, json!({}))
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{id}: {v}");
        assert_eq!(v["code"], none["code"]);
        assert_eq!(v["field"], none["field"]);
        assert_eq!(
            v["error"].as_str().unwrap().replace(id.as_str(), "ID"),
            none["error"].as_str().unwrap().replace("r999999", "ID"),
            "the same answer as for no release"
        );
    }
    assert_eq!(app.count("builds").await, 0);
});

/// A queued build of `rel` recorded straight in the store (no job runs it),
/// with `lines` log lines: something to read and stream without a builder.
async fn queued_build(app: &TestApp, rel: &str, lines: usize) -> i64 {
    let mut c = app.store.conn().await.unwrap();
    let release = prism_domain::ReleaseId::parse("release", rel).unwrap();
    let r = prism_store::releases::get(&mut c, release).await.unwrap();
    let b = prism_store::builds::create(
        &mut c,
        prism_store::builds::NewBuild {
            release,
            app_id: r.app_id,
            executor: "local",
            settings: &json!({}),
            base_image_id: None,
            requested_by: "admin",
        },
    )
    .await
    .unwrap();
    append(app, b.id, 0, lines).await;
    b.id
}

async fn append(app: &TestApp, build: i64, from: usize, n: usize) {
    let mut c = app.store.conn().await.unwrap();
    let lines: Vec<prism_store::builds::LogLine> = (from..from + n)
        .map(|i| prism_store::builds::LogLine {
            seq: i as i64,
            stream: "stdout".into(),
            line: format!("line {i} {}", "z".repeat(1000)),
            at: 0,
        })
        .collect();
    prism_store::builds::append_logs(&mut c, build, &lines).await.unwrap();
}

/// Reads a streaming response until `needle` shows up (or panics after `secs`).
async fn read_until(resp: &mut reqwest::Response, seen: &mut String, needle: &str, secs: u64) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !seen.contains(needle) {
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .unwrap_or_else(|_| panic!("no {needle:?} within {secs} s; got {} bytes", seen.len()))
            .unwrap();
        match chunk {
            Some(c) => seen.push_str(&String::from_utf8_lossy(&c)),
            None => panic!("stream ended before {needle:?}"),
        }
    }
}

// Item 8. Before: any number of streams (each polling the database every
// 200 ms), a disabled user kept streaming, `limit=10000` lines of any size.
both_backends!(live_streams_are_capped_shared_and_end_for_a_disabled_user, |app| {
    let (dev, rel) = shop_with_release(app).await;
    let build = queued_build(app, &rel, 3).await;
    let open = |token: String| {
        let url = format!("{}/api/v1/builds/{build}/stream", app.base);
        let http = app.http.clone();
        async move { http.get(url).bearer_auth(token).send().await.unwrap() }
    };
    let max = prism_server::live_events::max_per_user();
    let mut streams = Vec::new();
    for _ in 0..max {
        let mut r = open(dev.clone()).await;
        assert_eq!(r.status(), StatusCode::OK);
        let mut seen = String::new();
        read_until(&mut r, &mut seen, "line 2 ", 10).await;
        streams.push((r, seen));
    }
    let r = open(dev.clone()).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "too_many_streams");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains(&format!("limit per user is {max}")),
        "{body}"
    );
    // Another user is not held back by dev's streams.
    let tess = app.user("tess", Some("shop"), &["tester"]).await;
    let mut other = open(tess.clone()).await;
    assert_eq!(other.status(), StatusCode::OK);

    // New lines reach every open stream (from the one shared poller).
    append(app, build, 3, 2).await;
    for (r, seen) in streams.iter_mut() {
        read_until(r, seen, "line 4 ", 10).await;
    }
    let mut seen_other = String::new();
    read_until(&mut other, &mut seen_other, "line 4 ", 10).await;

    // Disabled mid-stream: dev's streams end, saying why; tess's goes on.
    app.ok(
        Method::PATCH,
        "/api/v1/users/dev",
        &app.admin,
        Some(json!({"disabled": true})),
    )
    .await;
    let recheck = prism_server::live_events::RECHECK.as_secs() * 2 + 5;
    for (r, seen) in streams.iter_mut() {
        read_until(r, seen, "access to this build has ended", recheck).await;
    }
    append(app, build, 5, 1).await;
    read_until(&mut other, &mut seen_other, "line 5 ", 10).await;
});

// Item 8: the log endpoint is bounded (lines and bytes per page) and
// `log.txt` streams the whole log. Before: limit=10000 of any size in one
// answer and log.txt built as one String.
both_backends!(the_log_endpoint_is_bounded_and_log_txt_streams, |app| {
    let (dev, rel) = shop_with_release(app).await;
    let build = queued_build(app, &rel, 6000).await;
    let (s, v) = app.get(&format!("/api/v1/builds/{build}/log?limit=10001"), &dev).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = app.get(&format!("/api/v1/builds/{build}/log?limit=10000"), &dev).await;
    assert_eq!(s, StatusCode::OK);
    let page = v.as_array().unwrap();
    let bytes: usize = page.iter().map(|l| l["line"].as_str().unwrap().len()).sum();
    assert!(
        page.len() < 6000 && bytes <= 4 * 1024 * 1024,
        "{} lines, {bytes} bytes",
        page.len()
    );
    let last = page.last().unwrap()["seq"].as_i64().unwrap();
    let (_, v) = app
        .get(&format!("/api/v1/builds/{build}/log?after={last}&limit=10000"), &dev)
        .await;
    assert_eq!(v[0]["seq"], last + 1, "the next page continues");
    let text = app
        .http
        .get(format!("{}/api/v1/builds/{build}/log.txt", app.base))
        .bearer_auth(&dev)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text.lines().count(), 6000);
    assert!(text.lines().last().unwrap().starts_with("line 5999 "));
});

async fn login_from(app: &TestApp, from: &str, user: &str, password: &str) -> (StatusCode, Option<String>, Value) {
    let http = reqwest::Client::builder()
        .local_address(from.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let resp = http
        .post(format!("{}/api/v1/auth/login", app.base))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let cookie = resp
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("prism_session="))
        .map(|v| v.split(';').next().unwrap().to_owned());
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, cookie, body)
}

// Item 6. Before: the failure was recorded after the slow password check, so
// parallel guesses all got checked, and the account-wide block answered the
// right password with 429 from anywhere.
both_backends!(parallel_guesses_are_throttled_and_the_real_user_still_gets_in, |app| {
    app.user("alice", None, &[]).await;
    let attack = async {
        let guesses = (0..300).map(|i| async move {
            let guess = format!("guess-{i}-wrong-password");
            login_from(app, "127.0.0.1", "alice", &guess).await
        });
        futures::future::join_all(guesses).await
    };
    let real = async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        login_from(app, "127.0.0.2", "alice", crate::harness::PASSWORD).await
    };
    let (answers, (s, cookie, body)) = tokio::join!(attack, real);
    assert_eq!(
        s,
        StatusCode::OK,
        "the real user from another address gets in during the attack: {body}"
    );
    assert!(cookie.is_some());
    let checked = answers
        .iter()
        .filter(|(s, _, _)| *s == StatusCode::UNAUTHORIZED)
        .count();
    let throttled = answers
        .iter()
        .filter(|(s, _, _)| *s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(
        checked <= 10, // five free, then one each time the doubling delay runs out
        "{checked} of 300 parallel guesses had their password checked"
    );
    assert_eq!(checked + throttled, 300);
    let (_, _, b) = answers
        .iter()
        .find(|(s, _, _)| *s == StatusCode::TOO_MANY_REQUESTS)
        .unwrap();
    assert_eq!(b["code"], "throttled");
});

async fn with_cookie(app: &TestApp, cookie: &str, path: &str) -> StatusCode {
    app.http
        .get(format!("{}{path}", app.base))
        .header(reqwest::header::COOKIE, cookie)
        .send()
        .await
        .unwrap()
        .status()
}

// Item 7. Before: an admin reset bob's password and bob's old browser
// sessions kept working.
both_backends!(a_password_change_ends_the_other_sessions, |app| {
    let token = app.user("bob", None, &[]).await;
    let pw = crate::harness::PASSWORD;
    let (_, a, body_a) = login_from(app, "127.0.0.1", "bob", pw).await;
    let (_, b, _) = login_from(app, "127.0.0.1", "bob", pw).await;
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(with_cookie(app, &a, "/api/v1/users/bob").await, StatusCode::OK);
    assert_eq!(with_cookie(app, &b, "/api/v1/users/bob").await, StatusCode::OK);

    // Bob changes his own password in session a: b ends, a stays.
    let resp = app
        .http
        .patch(format!("{}/api/v1/users/bob", app.base))
        .header(reqwest::header::COOKIE, &a)
        .header("x-csrf-token", body_a["csrf_token"].as_str().unwrap())
        .json(&json!({"password": "a-brand-new-password-1", "current_password": pw}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        with_cookie(app, &a, "/api/v1/users/bob").await,
        StatusCode::OK,
        "the session that changed it stays"
    );
    assert_eq!(
        with_cookie(app, &b, "/api/v1/users/bob").await,
        StatusCode::UNAUTHORIZED
    );

    // An admin resets it: every session of bob ends; his API token stays.
    app.ok(
        Method::PATCH,
        "/api/v1/users/bob",
        &app.admin,
        Some(json!({"password": "an-admin-chosen-password-2"})),
    )
    .await;
    assert_eq!(
        with_cookie(app, &a, "/api/v1/users/bob").await,
        StatusCode::UNAUTHORIZED
    );
    let (s, _) = app.get("/api/v1/users/bob", &token).await;
    assert_eq!(s, StatusCode::OK, "API tokens are not sessions");
    // Forwarding headers from an unconfigured proxy are not believed: no Secure on plain HTTP.
    let resp = app
        .http
        .post(format!("{}/api/v1/auth/login", app.base))
        .header("x-forwarded-proto", "https")
        .json(&json!({"username": "bob", "password": "an-admin-chosen-password-2"}))
        .send()
        .await
        .unwrap();
    let set = resp
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(!set.contains("Secure"), "{set}");
});

// ---------------------------------------------------------------------------
// Item 2: credentials belong to projects.

/// Projects shop (application web) and blog (blog-web), each with an
/// operator and a developer; registry, git credential and executor of shop's
/// only, and a registry and base image every project may use.
async fn two_projects_with_shop_credentials(app: &TestApp) -> [String; 4] {
    app.project_with_app("shop", "web").await;
    app.project_with_app("blog", "blog-web").await;
    let shop_ops = app.user("sam", Some("shop"), &["operator"]).await;
    let blog_ops = app.user("bob", Some("blog"), &["operator"]).await;
    let blog_dev = app.user("bev", Some("blog"), &["developer"]).await;
    let shop_dev = app.user("sid", Some("shop"), &["developer"]).await;
    let admin = &app.admin;
    app.ok(Method::PUT, "/api/v1/registries/shop-reg", admin,
        Some(json!({"host": "registry.shop.example", "username": "shop", "password": "shop-registry-secret", "projects": ["shop"]}))).await;
    app.ok(Method::PUT, "/api/v1/git-credentials/shop-gitea", admin,
        Some(json!({"username": "shop", "password": "shop-git-secret", "host": "gitea.example:3000", "projects": ["shop"]}))).await;
    app.ok(Method::POST, "/api/v1/executors", admin,
        Some(json!({"name": "shop-ci", "kind": "jenkins", "url": "https://ci.shop.example", "job": "b", "username": "u", "token": "t", "projects": ["shop"]}))).await;
    app.ok(
        Method::PUT,
        "/api/v1/registries/common",
        admin,
        Some(json!({"host": "127.0.0.1:9", "insecure_http": true, "all_projects": true})),
    )
    .await;
    app.ok(
        Method::POST,
        "/api/v1/base-images",
        admin,
        Some(json!({"name": "bb", "tier": 1, "registry": "common", "repository": "base/bb"})),
    )
    .await;
    [shop_ops, blog_ops, blog_dev, shop_dev]
}

/// The error for naming `name` in `field`, with the name itself blanked out,
/// so the answer for another project's record can be compared with the one
/// for a name nothing has.
fn blanked(body: &Value, name: &str) -> Value {
    let mut b = body.clone();
    if let Some(e) = b["error"].as_str() {
        b["error"] = json!(e.replace(name, "NAME"));
    }
    b
}

// Before the fix blog's operator saved shop's git credential, registry and
// executor into blog-web's build settings (200), so a build would hand
// shop's token to a URL of blog's choosing.
both_backends!(
    another_projects_credentials_read_as_unknown_at_save_and_at_build,
    |app| {
        let [shop_ops, blog_ops, blog_dev, _] = two_projects_with_shop_credentials(app).await;
        for (field, theirs) in [
            ("registry", "shop-reg"),
            ("git_credential", "shop-gitea"),
            ("executor", "shop-ci"),
        ] {
            let patch = |name: &str| json!({"build_settings": {field: name}});
            // Refused at save, on update and on create, exactly like an unknown name.
            let (s1, theirs_body) = app
                .call(
                    Method::PATCH,
                    "/api/v1/applications/blog-web",
                    Some(&blog_ops),
                    Some(patch(theirs)),
                )
                .await;
            let (s2, unknown_body) = app
                .call(
                    Method::PATCH,
                    "/api/v1/applications/blog-web",
                    Some(&blog_ops),
                    Some(patch("no-such")),
                )
                .await;
            assert_eq!(s1, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {theirs_body}");
            assert_eq!(s2, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {unknown_body}");
            assert_eq!(theirs_body["field"], format!("build_settings.{field}"));
            assert_eq!(
                blanked(&theirs_body, theirs),
                blanked(&unknown_body, "no-such"),
                "{field}: the answers differ"
            );
            let create = |name: &str| {
                json!({"project": "blog", "name": format!("blog-{field}-x").replace('_', "-"),
                                          "git_url": "https://git.example/x.git", "build_settings": {field: name}})
            };
            let (s1, c1) = app.post("/api/v1/applications", &blog_ops, create(theirs)).await;
            let (_, c2) = app.post("/api/v1/applications", &blog_ops, create("no-such")).await;
            assert_eq!(s1, StatusCode::UNPROCESSABLE_ENTITY, "{c1}");
            assert_eq!(blanked(&c1, theirs), blanked(&c2, "no-such"));
            // Even an admin cannot give blog-web shop's record.
            let (s, e) = app
                .call(
                    Method::PATCH,
                    "/api/v1/applications/blog-web",
                    Some(&app.admin),
                    Some(patch(theirs)),
                )
                .await;
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
            // shop's operator may use it for shop's application.
            let (s, e) = app
                .call(
                    Method::PATCH,
                    "/api/v1/applications/web",
                    Some(&shop_ops),
                    Some(patch(theirs)),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{field}: {e}");
        }

        // Lists show blog's members nothing of shop's.
        for (path, name) in [("/api/v1/registries", "shop-reg"), ("/api/v1/executors", "shop-ci")] {
            let (_, blog_list) = app.get(path, &blog_ops).await;
            assert!(!blog_list.to_string().contains(name), "{path}: {blog_list}");
            let (_, shop_list) = app.get(path, &shop_ops).await;
            assert!(shop_list.to_string().contains(name), "{path}: {shop_list}");
        }
        let (_, common) = app.get("/api/v1/registries", &blog_ops).await;
        assert!(common.to_string().contains("\"common\""), "{common}");

        // At build: settings saved while blog was allowed, then the admin takes
        // the records away from blog; each is refused when the build is asked
        // for, with the unknown-name message.
        let admin = &app.admin;
        let both = json!(["shop", "blog"]);
        app.ok(
            Method::PUT,
            "/api/v1/registries/shop-reg",
            admin,
            Some(json!({"host": "registry.shop.example", "projects": both})),
        )
        .await;
        app.ok(Method::PUT, "/api/v1/git-credentials/shop-gitea", admin,
        Some(json!({"username": "shop", "password": "shop-git-secret", "host": "gitea.example:3000", "projects": both}))).await;
        app.ok(Method::DELETE, "/api/v1/executors/shop-ci", admin, None).await;
        app.ok(Method::POST, "/api/v1/executors", admin,
        Some(json!({"name": "shop-ci", "kind": "jenkins", "url": "https://ci.shop.example", "job": "b", "username": "u", "token": "t", "projects": both}))).await;
        app.ok(Method::PATCH, "/api/v1/applications/blog-web", &blog_ops, Some(json!({"build_settings": {
        "base_image": "bb", "registry": "shop-reg", "git_credential": "shop-gitea", "executor": "shop-ci", "build_command": "ls"}}))).await;
        app.ok(
            Method::PUT,
            "/api/v1/registries/shop-reg",
            admin,
            Some(json!({"host": "registry.shop.example", "projects": ["shop"]})),
        )
        .await;
        app.ok(Method::PUT, "/api/v1/git-credentials/shop-gitea", admin,
        Some(json!({"username": "shop", "password": "shop-git-secret", "host": "gitea.example:3000", "projects": ["shop"]}))).await;
        app.ok(Method::DELETE, "/api/v1/executors/shop-ci", admin, None).await;
        app.ok(Method::POST, "/api/v1/executors", admin,
        Some(json!({"name": "shop-ci", "kind": "jenkins", "url": "https://ci.shop.example", "job": "b", "username": "u", "token": "t", "projects": ["shop"]}))).await;
        let build = || json!({"application": "blog-web", "git_ref": "main", "change_note": "x", "build": true});
        let expect = [
            ("registry", "no registry named \"shop-reg\""),
            ("git_credential", "no git credential named \"shop-gitea\""),
            ("executor", "no executor named \"shop-ci\""),
        ];
        for (i, (field, message)) in expect.iter().enumerate() {
            let before = app.count("builds").await;
            let (s, e) = app.post("/api/v1/releases", &blog_dev, build()).await;
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {e}");
            assert_eq!(e["field"], format!("build_settings.{field}"), "{e}");
            assert!(e["error"].as_str().unwrap().contains(message), "{e}");
            assert_eq!(app.count("builds").await, before, "no build recorded");
            // Give this one back so the next check is reached.
            let back = match i {
                0 => (
                    "PUT",
                    "/api/v1/registries/shop-reg",
                    json!({"host": "registry.shop.example", "projects": both}),
                ),
                1 => (
                    "PUT",
                    "/api/v1/git-credentials/shop-gitea",
                    json!({"username": "shop", "password": "shop-git-secret", "host": "gitea.example:3000", "projects": both}),
                ),
                _ => break,
            };
            app.ok(
                Method::from_bytes(back.0.as_bytes()).unwrap(),
                back.1,
                admin,
                Some(back.2),
            )
            .await;
        }
    }
);

// Records made before credentials had projects keep working for the
// projects of that time, and a new record starts with none.
both_backends!(a_new_credential_belongs_to_no_project_until_an_admin_says, |app| {
    app.project_with_app("shop", "web").await;
    let ops = app.user("sam", Some("shop"), &["operator"]).await;
    app.ok(
        Method::PUT,
        "/api/v1/git-credentials/g",
        &app.admin,
        Some(json!({"username": "u", "password": "p", "host": "git.example"})),
    )
    .await;
    let (s, e) = app
        .call(
            Method::PATCH,
            "/api/v1/applications/web",
            Some(&ops),
            Some(json!({"build_settings": {"git_credential": "g"}})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    // A password change alone keeps the projects; all_projects opens it.
    app.ok(
        Method::PUT,
        "/api/v1/git-credentials/g",
        &app.admin,
        Some(json!({"username": "u", "password": "p", "host": "git.example", "all_projects": true})),
    )
    .await;
    app.ok(
        Method::PUT,
        "/api/v1/git-credentials/g",
        &app.admin,
        Some(json!({"username": "u", "password": "p2", "host": "git.example"})),
    )
    .await;
    let (s, e) = app
        .call(
            Method::PATCH,
            "/api/v1/applications/web",
            Some(&ops),
            Some(json!({"build_settings": {"git_credential": "g"}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{e}");
    let (_, list) = app.get("/api/v1/git-credentials", &app.admin).await;
    assert_eq!(list[0]["host"], "git.example", "{list}");
    // A shared registry: each project pushes under its own name only.
    let (s, e) = app
        .call(
            Method::PATCH,
            "/api/v1/applications/web",
            Some(&ops),
            Some(json!({"build_settings": {"repository": "blog/web"}})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["field"], "build_settings.repository", "{e}");
    let (s, e) = app
        .call(
            Method::PATCH,
            "/api/v1/applications/web",
            Some(&ops),
            Some(json!({"build_settings": {"repository": "shop/web-edge"}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{e}");
    assert_eq!(list[0]["all_projects"], true, "{list}");
    // Bad input names the field and stores nothing.
    let (s, e) = app
        .call(
            Method::PUT,
            "/api/v1/git-credentials/h",
            Some(&app.admin),
            Some(json!({"username": "u", "password": "p", "host": "git.example", "projects": ["nope"]})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["field"], "projects", "{e}");
    let (s, e) = app
        .call(
            Method::PUT,
            "/api/v1/git-credentials/h",
            Some(&app.admin),
            Some(json!({"username": "u", "password": "p", "host": "http://x/"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["field"], "host", "{e}");
    assert_eq!(app.count("git_credentials").await, 1);
});

// ---------------------------------------------------------------------------
// Item 9: the address policy is an admin setting.

both_backends!(the_address_policy_is_an_admin_setting, |app| {
    let ops = app.user("sam", None, &[]).await;
    let (s, _) = app.get("/api/v1/address-policy", &ops).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app
        .call(
            Method::PUT,
            "/api/v1/address-policy",
            Some(&ops),
            Some(json!({"denied": ["10.0.0.0/8"]})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, got) = app.get("/api/v1/address-policy", &app.admin).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got, json!({"allowed": [], "denied": []}));
    let (s, e) = app
        .call(
            Method::PUT,
            "/api/v1/address-policy",
            Some(&app.admin),
            Some(json!({"denied": ["10.0.0.0/8", "10.0.0.0/40"]})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["field"], "denied[1]", "{e}");
    let saved = app
        .ok(
            Method::PUT,
            "/api/v1/address-policy",
            &app.admin,
            Some(json!({"allowed": ["169.254.10.0/24"], "denied": [" 127.0.0.2 "]})),
        )
        .await;
    assert_eq!(saved, json!({"allowed": ["169.254.10.0/24"], "denied": ["127.0.0.2"]}));
    assert_eq!(app.get("/api/v1/address-policy", &app.admin).await.1, saved);
});

// Command-line logins (`prism login --sso`): anyone may ask for one, so one
// client may not fill the queue for everyone; a poll needs the secret.
both_backends!(command_line_login_requests_are_bounded_per_address, |app| {
    let mut secrets = vec![];
    for i in 0..10 {
        let (s, v) = app
            .call(
                Method::POST,
                "/api/v1/auth/cli-login",
                None,
                Some(json!({"name": format!("m{i}")})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let code = v["user_code"].as_str().unwrap();
        assert!(code.len() == 9 && code.as_bytes()[4] == b'-', "{code}");
        secrets.push(v["poll_secret"].as_str().unwrap().to_owned());
    }
    let (s, v) = app.call(Method::POST, "/api/v1/auth/cli-login", None, None).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    let (s, v) = app
        .call(
            Method::POST,
            "/api/v1/auth/cli-login/poll",
            None,
            Some(json!({"poll_secret": "guess"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (s, v) = app
        .call(
            Method::POST,
            "/api/v1/auth/cli-login/poll",
            None,
            Some(json!({"poll_secret": secrets[0]})),
        )
        .await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("pending")), "{v}");
    // The name is checked like a token's.
    let (s, v) = app
        .call(Method::POST, "/api/v1/auth/cli-login", None, Some(json!({"name": ""})))
        .await;
    assert_eq!(
        (s, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("name")),
        "{v}"
    );
});
