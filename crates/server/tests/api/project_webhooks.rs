//! A project's git webhook on both stores: one URL and secret for every
//! repository of the project. A push releases exactly the applications of
//! that project whose git URL is the pushed repository (any of the URL
//! forms the forge sends), under the project webhook's rules; another
//! project's application of the same repository is not touched; a push an
//! application's own webhook released already makes no second release;
//! signatures, replays, disabling, rotation, deletion and roles as for an
//! application's webhook.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::both_backends;
use crate::harness::TestApp;
use crate::webhooks::{deliver, Forge};

const SHA1: &str = "1111111111111111111111111111111111111111";
const SHA2: &str = "2222222222222222222222222222222222222222";
const SHA3: &str = "3333333333333333333333333333333333333333";

/// A GitHub push of `git_ref` at `after` to the repository `owner/name` on github.com.
fn github_push(repo: &str, git_ref: &str, after: &str) -> Vec<u8> {
    let commit = json!({"id": after, "message": format!("change to {repo}"), "timestamp": "2026-12-06T10:00:00Z",
        "author": {"name": "Dana", "email": "dana@example.com"}, "added": [], "removed": [], "modified": ["a"]});
    json!({
        "ref": git_ref, "before": SHA3, "after": after, "created": false, "deleted": false, "forced": false,
        "commits": [commit], "head_commit": commit,
        "repository": {"name": repo.rsplit('/').next().unwrap(), "full_name": repo,
            "clone_url": format!("https://github.com/{repo}.git"), "ssh_url": format!("git@github.com:{repo}.git"),
            "html_url": format!("https://github.com/{repo}")},
        "pusher": {"name": "dana", "email": "dana@example.com"},
        "sender": {"login": "dana"},
    })
    .to_string()
    .into_bytes()
}

async fn application(app: &TestApp, project: &str, name: &str, git_url: &str) {
    app.ok(
        Method::POST,
        "/api/v1/applications",
        &app.admin,
        Some(json!({"project": project, "name": name, "git_url": git_url})),
    )
    .await;
}

async fn project(app: &TestApp, name: &str) {
    app.ok(
        Method::POST,
        "/api/v1/projects",
        &app.admin,
        Some(json!({"name": name})),
    )
    .await;
}

async fn release_count(app: &TestApp, application: &str) -> usize {
    app.get(&format!("/api/v1/releases?application={application}"), &app.admin)
        .await
        .1["items"]
        .as_array()
        .unwrap()
        .len()
}

fn outcomes(r: &Value) -> Vec<(String, String)> {
    r["applications"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .map(|a| {
            (
                a["application"].as_str().unwrap().to_owned(),
                a["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

both_backends!(
    a_project_webhook_releases_the_applications_of_the_pushed_repository,
    |app| {
        project(app, "shop").await;
        project(app, "blog").await;
        // Two applications built from one repository, one from another (its URL
        // in the scp form), and another project's application of the same repository.
        application(app, "shop", "web", "https://github.com/shop/web.git").await;
        application(app, "shop", "web-worker", "https://ci@github.com/Shop/web").await;
        application(app, "shop", "api", "git@github.com:shop/api.git").await;
        application(app, "blog", "blog-web", "https://github.com/shop/web.git").await;
        let otto = app.user("otto", Some("shop"), &["operator"]).await;
        let dev = app.user("dev", Some("shop"), &["developer"]).await;
        let bea = app.user("bea", Some("blog"), &["operator"]).await;
        let hook = "/api/v1/projects/shop/webhook";
        let rules = json!({"forge": "github", "release_rules": {"branches": ["main"], "tags": ["v*"], "build": false}});

        // Who may configure it: the project's operators (and admins).
        let (s, v) = app.post(hook, &dev, rules.clone()).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
        let (s, v) = app.post(hook, &bea, rules.clone()).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "another project's operator: {v}");
        let (s, v) = app
            .post(
                hook,
                &otto,
                json!({"forge": "github", "release_rules": {"branches": ["has space"]}}),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert!(
            v["field"].as_str().unwrap_or_default().starts_with("release_rules"),
            "{v}"
        );
        assert_eq!(app.count("project_webhooks").await, 0, "nothing half-written");
        let (s, created) = app.post(hook, &otto, rules.clone()).await;
        assert_eq!(s, StatusCode::CREATED, "{created}");
        let path = created["path"].as_str().unwrap().to_owned();
        let secret = created["secret"].as_str().unwrap().to_owned();
        assert!(path.starts_with("/hooks/git-project/shop/"), "{path}");
        assert_eq!(secret.len(), 64);
        let (s, v) = app.post(hook, &otto, rules.clone()).await;
        assert_eq!(s, StatusCode::CONFLICT, "{v}");

        // Shown without its secret, with the applications a push can release.
        let (s, shown) = app.get(hook, &otto).await;
        assert_eq!(s, StatusCode::OK, "{shown}");
        assert!(
            shown.get("secret").is_none() && !shown.to_string().contains(&secret),
            "{shown}"
        );
        let names: Vec<&str> = shown["applications"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["api", "web", "web-worker"]);
        let (s, _) = app.get(hook, &dev).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (_, doc) = app.call(Method::GET, "/api/openapi.json", None, None).await;
        assert_eq!(
            doc["paths"]["/hooks/git-project/{project}/{id}"]["post"]["security"],
            json!([{}])
        );

        // A wrong signature writes nothing.
        let push_web = github_push("shop/web", "refs/heads/main", SHA1);
        let before = (
            app.count("releases").await,
            app.count("project_webhook_deliveries").await,
        );
        let (s, v) = deliver(
            app,
            &path,
            Forge::Github,
            "another-secret-entirely",
            "push",
            "p-1",
            &push_web,
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
        assert_eq!(
            (
                app.count("releases").await,
                app.count("project_webhook_deliveries").await
            ),
            before
        );

        // A push to shop/web releases web and web-worker, not api, not blog-web.
        let (s, r) = deliver(app, &path, Forge::Github, &secret, "push", "p-1", &push_web).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{r}");
        assert_eq!(r["outcome"], "created");
        assert_eq!(outcomes(&r), pairs(&[("web", "created"), ("web-worker", "created")]));
        assert_eq!(release_count(app, "web").await, 1);
        assert_eq!(release_count(app, "web-worker").await, 1);
        assert_eq!(release_count(app, "api").await, 0);
        assert_eq!(release_count(app, "blog-web").await, 0, "another project's application");
        let rid = r["applications"][0]["release"].as_str().unwrap().to_owned();
        let (_, rel) = app.get(&format!("/api/v1/releases/{rid}"), &app.admin).await;
        assert_eq!(rel["application"], "web");
        assert_eq!(rel["git_ref"], SHA1);
        assert_eq!(rel["creator"], "webhook:project:shop");
        let (_, audit) = app
            .get(
                &format!("/api/v1/audit?record_type=release&record_id={rid}"),
                &app.admin,
            )
            .await;
        assert!(
            audit.as_array().unwrap().iter().any(|e| e["action"] == "release.create"
                && e["actor"] == "webhook:project:shop"
                && e["detail"]["delivery"] == "p-1"),
            "{audit}"
        );

        // The same delivery again: ignored. Another delivery of the same push: released already.
        let (s, r) = deliver(app, &path, Forge::Github, &secret, "push", "p-1", &push_web).await;
        assert_eq!((s, r["outcome"].as_str()), (StatusCode::OK, Some("duplicate")), "{r}");
        let (s, r) = deliver(app, &path, Forge::Github, &secret, "push", "p-2", &push_web).await;
        assert_eq!(
            (s, r["outcome"].as_str()),
            (StatusCode::OK, Some("already_released")),
            "{r}"
        );
        assert_eq!(release_count(app, "web").await, 1);

        // A branch no rule releases; a repository of no application of the project.
        let (_, r) = deliver(
            app,
            &path,
            Forge::Github,
            &secret,
            "push",
            "p-3",
            &github_push("shop/web", "refs/heads/feature/x", SHA2),
        )
        .await;
        assert_eq!(r["outcome"], "no_rule", "{r}");
        assert_eq!(outcomes(&r), pairs(&[("web", "no_rule"), ("web-worker", "no_rule")]));
        let (s, r) = deliver(
            app,
            &path,
            Forge::Github,
            &secret,
            "push",
            "p-4",
            &github_push("shop/unknown", "refs/heads/main", SHA2),
        )
        .await;
        assert_eq!(
            (s, r["outcome"].as_str()),
            (StatusCode::OK, Some("no_application")),
            "{r}"
        );
        assert!(
            r["message"].as_str().unwrap().contains("github.com/shop/unknown"),
            "{r}"
        );

        // api also has its own webhook: whichever receives the push first makes
        // the one release; the other reads it as released.
        let (s, own) = app
            .post(
                "/api/v1/applications/api/webhook",
                &otto,
                json!({"forge": "github", "release_rules": {"branches": ["main"], "build": false}}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{own}");
        let push_api = github_push("shop/api", "refs/heads/main", SHA2);
        let (s, r) = deliver(
            app,
            own["path"].as_str().unwrap(),
            Forge::Github,
            own["secret"].as_str().unwrap(),
            "push",
            "a-1",
            &push_api,
        )
        .await;
        assert_eq!(
            (s, r["outcome"].as_str()),
            (StatusCode::ACCEPTED, Some("created")),
            "{r}"
        );
        let (_, r) = deliver(app, &path, Forge::Github, &secret, "push", "p-5", &push_api).await;
        assert_eq!(outcomes(&r), pairs(&[("api", "already_released")]), "{r}");
        assert_eq!(r["outcome"], "already_released");
        assert_eq!(release_count(app, "api").await, 1);

        // The delivery log, newest first, in the webhook's view.
        let (_, shown) = app.get(hook, &otto).await;
        let log: Vec<&str> = shown["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["outcome"].as_str().unwrap())
            .collect();
        // (A repository of no application is answered, not logged: an
        // organisation's webhook hears every repository.)
        assert_eq!(log, ["already_released", "no_rule", "already_released", "created"]);

        // Disabled: acknowledged, nothing released.
        let (s, v) = app
            .call(Method::PATCH, hook, Some(&otto), Some(json!({"enabled": false})))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (_, r) = deliver(
            app,
            &path,
            Forge::Github,
            &secret,
            "push",
            "p-6",
            &github_push("shop/web", "refs/tags/v1.0", SHA3),
        )
        .await;
        assert_eq!(r["outcome"], "disabled", "{r}");
        app.call(Method::PATCH, hook, Some(&otto), Some(json!({"enabled": true})))
            .await;

        // Rotated: the old secret is refused, the new one works (a tag rule).
        let (s, rotated) = app.post(&format!("{hook}/rotate"), &otto, json!({})).await;
        assert_eq!(s, StatusCode::OK, "{rotated}");
        let new_secret = rotated["secret"].as_str().unwrap();
        assert_ne!(new_secret, secret);
        let tag = github_push("shop/web", "refs/tags/v1.0", SHA3);
        let (s, _) = deliver(app, &path, Forge::Github, &secret, "push", "p-7", &tag).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, r) = deliver(app, &path, Forge::Github, new_secret, "push", "p-7", &tag).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{r}");
        assert_eq!(release_count(app, "web").await, 2);

        // Audited under the project, secrets never in the log.
        let (_, audit) = app
            .get("/api/v1/audit?record_type=project&record_id=shop", &app.admin)
            .await;
        let actions: Vec<&str> = audit
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["action"].as_str().filter(|a| a.starts_with("webhook.")))
            .collect();
        assert_eq!(
            actions,
            ["webhook.rotate", "webhook.update", "webhook.update", "webhook.create"]
        );
        assert!(!audit.to_string().contains(&secret) && !audit.to_string().contains(new_secret));

        // Deleted: the address is gone and its delivery log with it.
        let (s, _) = app.call(Method::DELETE, hook, Some(&dev), None).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _) = app.call(Method::DELETE, hook, Some(&otto), None).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        assert_eq!(app.count("project_webhook_deliveries").await, 0);
        let (s, _) = deliver(app, &path, Forge::Github, new_secret, "push", "p-8", &tag).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }
);

// Eight deliveries of one push (a forge's retries, or an application's and
// the project's webhook at once) race: each application gets one release;
// a delivery that lost the race is decided again and reads as released.
both_backends!(
    a_push_racing_through_project_and_application_webhooks_makes_one_release_each,
    |app| {
        project(app, "shop").await;
        application(app, "shop", "web", "https://github.com/shop/web.git").await;
        application(app, "shop", "web-worker", "git@github.com:shop/web.git").await;
        let (_, hook) = app
            .post(
                "/api/v1/projects/shop/webhook",
                &app.admin,
                json!({"forge": "github", "release_rules": {"branches": ["main"], "build": false}}),
            )
            .await;
        let (_, own) = app
            .post(
                "/api/v1/applications/web/webhook",
                &app.admin,
                json!({"forge": "github", "release_rules": {"branches": ["main"], "build": false}}),
            )
            .await;
        let body = github_push("shop/web", "refs/heads/main", SHA1);
        let mut tasks = Vec::new();
        for i in 0..8 {
            let target = if i % 3 == 0 { &own } else { &hook };
            let (path, secret) = (
                target["path"].as_str().unwrap().to_owned(),
                target["secret"].as_str().unwrap().to_owned(),
            );
            let (http, base, body) = (app.http.clone(), app.base.clone(), body.clone());
            tasks.push(tokio::spawn(async move {
                let sig = hex::encode(crate::webhooks::hmac(secret.as_bytes(), &[&body]));
                let resp = http
                    .post(format!("{base}{path}"))
                    .header("x-github-event", "push")
                    .header("x-github-delivery", format!("race-{i}"))
                    .header("x-hub-signature-256", format!("sha256={sig}"))
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                let status = resp.status();
                (status, resp.json::<Value>().await.unwrap())
            }));
        }
        for t in tasks {
            let (s, r) = t.await.unwrap();
            assert!(s.is_success(), "{s} {r}");
            assert!(
                ["created", "already_released"].contains(&r["outcome"].as_str().unwrap()),
                "{r}"
            );
        }
        assert_eq!(release_count(app, "web").await, 1);
        assert_eq!(release_count(app, "web-worker").await, 1);
        assert_eq!(app.count("webhook_releases").await, 2);
    }
);
