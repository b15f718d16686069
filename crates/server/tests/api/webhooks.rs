//! Git webhooks through the API on both stores: deliveries in each forge's
//! documented format (headers and body), signed as each forge signs them
//! (GitHub's `X-Hub-Signature-256`, Gitea's `X-Gitea-Signature` beside the
//! GitHub- and Gogs-compatible headers it also sends, GitLab's
//! `X-Gitlab-Token` and its Standard Webhooks signing token). Checked: a bad
//! or missing signature is 401 and writes nothing; a replayed delivery is
//! ignored; a ping is acknowledged; branch and tag rules; one release per
//! ref and commit (also when two deliveries race); the release records the
//! commit and the message; the audit log names the webhook; who may
//! configure it; the secret shown once.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::both_backends;
use crate::harness::TestApp;

const SHA1: &str = "1111111111111111111111111111111111111111";
const SHA2: &str = "2222222222222222222222222222222222222222";
const SHA3: &str = "3333333333333333333333333333333333333333";
const ZERO: &str = "0000000000000000000000000000000000000000";

pub(crate) fn hmac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().to_vec()
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Forge {
    Github,
    Gitea,
    Gitlab,
}

/// A push event's body as the forge documents it (the fields Prism reads
/// and a realistic share of the rest).
fn push_body(forge: Forge, git_ref: &str, after: &str, message: &str) -> Value {
    let commit = json!({
        "id": after, "message": message, "timestamp": "2026-12-06T10:00:00Z",
        "url": format!("https://git.example/shop/web/commit/{after}"),
        "author": {"name": "Dana", "email": "dana@example.com", "username": "dana"},
        "added": [], "removed": [], "modified": ["index.html"],
    });
    match forge {
        Forge::Github => json!({
            "ref": git_ref, "before": SHA3, "after": after, "created": false, "deleted": after == ZERO,
            "forced": false, "base_ref": null, "compare": "https://github.com/shop/web/compare/a...b",
            "commits": if after == ZERO { json!([]) } else { json!([commit]) },
            "head_commit": if after == ZERO { Value::Null } else { commit },
            "repository": {"id": 1, "name": "web", "full_name": "shop/web",
                "clone_url": "https://github.com/shop/web.git", "ssh_url": "git@github.com:shop/web.git",
                "html_url": "https://github.com/shop/web"},
            "pusher": {"name": "dana", "email": "dana@example.com"},
            "sender": {"login": "dana", "id": 7},
        }),
        Forge::Gitea => json!({
            "ref": git_ref, "before": SHA3, "after": after,
            "compare_url": "https://gitea.example/shop/web/compare/a...b",
            "commits": [commit], "total_commits": 1, "head_commit": commit,
            "repository": {"id": 1, "name": "web", "full_name": "shop/web",
                "clone_url": "https://gitea.example/shop/web.git", "ssh_url": "git@gitea.example:shop/web.git",
                "html_url": "https://gitea.example/shop/web"},
            "pusher": {"id": 2, "login": "dana", "username": "dana"},
            "sender": {"id": 2, "login": "dana", "username": "dana"},
        }),
        Forge::Gitlab => {
            let tag = git_ref.starts_with("refs/tags/");
            json!({
                "object_kind": if tag { "tag_push" } else { "push" },
                "event_name": if tag { "tag_push" } else { "push" },
                "before": SHA3,
                // For an annotated tag `after` is the tag object; the commit is checkout_sha.
                "after": if tag { "9999999999999999999999999999999999999999" } else { after },
                "ref": git_ref, "checkout_sha": after,
                "message": if tag { Value::String(String::new()) } else { Value::Null },
                "user_id": 4, "user_name": "Dana", "user_username": "dana",
                "project_id": 15,
                "project": {"id": 15, "name": "web", "path_with_namespace": "shop/web",
                    "web_url": "https://gitlab.example/shop/web",
                    "git_ssh_url": "git@gitlab.example:shop/web.git",
                    "git_http_url": "https://gitlab.example/shop/web.git"},
                "commits": [commit], "total_commits_count": 1,
                "repository": {"name": "web", "url": "git@gitlab.example:shop/web.git"},
            })
        }
    }
}

/// Posts `body` to the webhook at `path` with `event`, signed with
/// `secret` as `forge` signs (GitLab: the plain token, or a signing token
/// `whsec_...` as Standard Webhooks).
pub(crate) async fn deliver(
    app: &TestApp,
    path: &str,
    forge: Forge,
    secret: &str,
    event: &str,
    delivery: &str,
    body: &[u8],
) -> (StatusCode, Value) {
    // An oversized body goes on a connection of its own: the server answers
    // 413 and closes it before the body is all sent, which must not break
    // the shared client's pooled connections for the requests after it.
    let client = if body.len() > 5 * 1024 * 1024 {
        reqwest::Client::new()
    } else {
        app.http.clone()
    };
    let mut req = client
        .post(format!("{}{path}", app.base))
        .header("content-type", "application/json");
    let hex_sig = hex::encode(hmac(secret.as_bytes(), &[body]));
    match forge {
        Forge::Github => {
            req = req
                .header("user-agent", "GitHub-Hookshot/044aadd")
                .header("x-github-event", event)
                .header("x-github-delivery", delivery)
                .header("x-github-hook-id", "292430182")
                .header("x-hub-signature-256", format!("sha256={hex_sig}"));
        }
        Forge::Gitea => {
            // What Gitea sends: its own headers, and Gogs' and GitHub's for compatibility.
            req = req
                .header("user-agent", "Go-http-client/1.1")
                .header("x-github-delivery", delivery)
                .header("x-github-event", event)
                .header("x-gogs-delivery", delivery)
                .header("x-gogs-event", event)
                .header("x-gogs-signature", &hex_sig)
                .header("x-gitea-delivery", delivery)
                .header("x-gitea-event", event)
                .header("x-gitea-event-type", event)
                .header("x-gitea-signature", &hex_sig)
                .header("x-hub-signature-256", format!("sha256={hex_sig}"));
        }
        Forge::Gitlab => {
            req = req
                .header("user-agent", "GitLab/17.6.0")
                .header("x-gitlab-event", event)
                .header("x-gitlab-event-uuid", delivery)
                .header("x-gitlab-webhook-uuid", "2a4c1f1e-0000-4000-8000-000000000001")
                .header("x-gitlab-instance", "https://gitlab.example");
            if let Some(key) = secret.strip_prefix("whsec_") {
                let key = B64.decode(key).unwrap();
                let ts = (chrono::Utc::now().timestamp()).to_string();
                let sig = B64.encode(hmac(&key, &[delivery.as_bytes(), b".", ts.as_bytes(), b".", body]));
                req = req
                    .header("webhook-id", delivery)
                    .header("webhook-timestamp", ts)
                    .header("webhook-signature", format!("v1,{sig}"));
            } else {
                req = req.header("x-gitlab-token", secret);
            }
        }
    }
    let resp = req.body(body.to_vec()).send().await.unwrap();
    let status = resp.status();
    // A server refusing an oversized body (413) may close the connection
    // before the client has sent it all; the status is the answer then.
    let text = match resp.text().await {
        Ok(t) => t,
        Err(e) if status == StatusCode::PAYLOAD_TOO_LARGE => format!("(body unread: {e})"),
        Err(e) => panic!("{path}: {status} with an unreadable body: {e}"),
    };
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Creates the webhook of `application` as `token`; returns (path, secret).
async fn create_hook(app: &TestApp, application: &str, token: &str, body: Value) -> (String, String) {
    let (s, v) = app
        .post(&format!("/api/v1/applications/{application}/webhook"), token, body)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    (
        v["path"].as_str().unwrap().to_owned(),
        v["secret"].as_str().unwrap().to_owned(),
    )
}

async fn releases_of(app: &TestApp, application: &str) -> Vec<Value> {
    app.get(&format!("/api/v1/releases?application={application}"), &app.admin)
        .await
        .1["items"]
        .as_array()
        .unwrap()
        .clone()
}

/// Every count a refused delivery must leave as it was.
async fn footprint(app: &TestApp) -> [i64; 5] {
    [
        app.count("releases").await,
        app.count("webhook_deliveries").await,
        app.count("webhook_releases").await,
        app.count("audit_events").await,
        app.count("builds").await,
    ]
}

both_backends!(github_pushes_and_tags_create_releases_once, |app| {
    app.project_with_app("shop", "web").await;
    let otto = app.user("otto", Some("shop"), &["operator"]).await;
    let (path, secret) = create_hook(
        app,
        "web",
        &otto,
        json!({"forge": "github", "release_rules": {"branches": ["main", "release/*"], "tags": ["v*"], "build": false}}),
    )
    .await;
    assert!(path.starts_with("/hooks/git/web/"), "{path}");
    // Documented as an address without a login (the forge signs instead).
    let (_, doc) = app.call(Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(
        doc["paths"]["/hooks/git/{app}/{id}"]["post"]["security"],
        json!([{}]),
        "{}",
        doc["paths"]["/hooks/git/{app}/{id}"]
    );
    assert_eq!(secret.len(), 64, "a generated secret of 32 random bytes");

    // The secret is never shown again.
    let (s, shown) = app.get("/api/v1/applications/web/webhook", &otto).await;
    assert_eq!(s, StatusCode::OK, "{shown}");
    assert!(
        shown.get("secret").is_none() && !shown.to_string().contains(&secret),
        "{shown}"
    );
    assert_eq!(shown["forge"], "github");
    assert_eq!(shown["release_rules"]["branches"], json!(["main", "release/*"]));

    // GitHub's ping when the hook is added: acknowledged, nothing made.
    let ping = json!({"zen": "Keep it logically awesome.", "hook_id": 292430182, "hook": {"type": "Repository", "events": ["push"]}});
    let (s, r) = deliver(
        app,
        &path,
        Forge::Github,
        &secret,
        "ping",
        "d-ping",
        ping.to_string().as_bytes(),
    )
    .await;
    assert_eq!(
        (s, r["outcome"].as_str()),
        (StatusCode::OK, Some("ignored_event")),
        "{r}"
    );
    assert!(releases_of(app, "web").await.is_empty());

    // A bad signature, a missing one, another secret: 401, nothing written.
    let body = push_body(
        Forge::Github,
        "refs/heads/main",
        SHA1,
        "Checkout page\n\nWith the new basket.",
    );
    let bytes = body.to_string().into_bytes();
    let before = footprint(app).await;
    let (s, r) = deliver(
        app,
        &path,
        Forge::Github,
        "not-the-secret-at-all",
        "push",
        "d-1",
        &bytes,
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{r}");
    assert_eq!(r["code"], "unauthorized");
    let unsigned = app
        .http
        .post(format!("{}{path}", app.base))
        .header("x-github-event", "push")
        .header("x-github-delivery", "d-1")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
    // The body changed after signing.
    let mut tampered = bytes.clone();
    let at = tampered.len() - 2;
    tampered[at] = b' ';
    let sig = hex::encode(hmac(secret.as_bytes(), &[&bytes]));
    let resp = app
        .http
        .post(format!("{}{path}", app.base))
        .header("x-github-event", "push")
        .header("x-hub-signature-256", format!("sha256={sig}"))
        .body(tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // Signed right but posted to another webhook id: not found.
    let (s, _) = deliver(
        app,
        "/hooks/git/web/0123456789abcdef0123456789abcdef",
        Forge::Github,
        &secret,
        "push",
        "d-1",
        &bytes,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(footprint(app).await, before, "refused deliveries wrote something");

    // The push to main: a release of that commit, its message the change note.
    let (s, r) = deliver(app, &path, Forge::Github, &secret, "push", "d-1", &bytes).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    assert_eq!(r["outcome"], "created");
    let rid = r["release"].as_str().unwrap().to_owned();
    let (_, rel) = app.get(&format!("/api/v1/releases/{rid}"), &app.admin).await;
    assert_eq!(rel["application"], "web");
    assert_eq!(rel["git_ref"], SHA1, "the release builds exactly the pushed commit");
    assert_eq!(rel["commit_sha"], SHA1);
    assert_eq!(rel["change_note"], "Checkout page\n\nWith the new basket.");
    assert_eq!(rel["creator"], "webhook:web");
    assert_eq!(rel["state"], "created", "build: false");
    // The audit log names the webhook.
    let (_, audit) = app
        .get(
            &format!("/api/v1/audit?record_type=release&record_id={rid}"),
            &app.admin,
        )
        .await;
    let created = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "release.create")
        .unwrap_or_else(|| panic!("no release.create in {audit}"))
        .clone();
    assert_eq!(created["actor"], "webhook:web", "{created}");
    assert_eq!(created["detail"]["ref"], "refs/heads/main");
    assert_eq!(created["detail"]["commit"], SHA1);
    assert_eq!(created["detail"]["delivery"], "d-1");

    // The same delivery again (a replay): ignored.
    let (s, r) = deliver(app, &path, Forge::Github, &secret, "push", "d-1", &bytes).await;
    assert_eq!((s, r["outcome"].as_str()), (StatusCode::OK, Some("duplicate")), "{r}");
    // The same push as a new delivery (a redelivery with a new id): no second release.
    let (s, r) = deliver(app, &path, Forge::Github, &secret, "push", "d-2", &bytes).await;
    assert_eq!(
        (s, r["outcome"].as_str()),
        (StatusCode::OK, Some("already_released")),
        "{r}"
    );
    assert_eq!(r["release"], rid.as_str());
    assert_eq!(releases_of(app, "web").await.len(), 1);

    // Branch rules: release/* yes, feature/* no.
    let b = push_body(Forge::Github, "refs/heads/release/2026.12", SHA2, "Release branch");
    let (s, r) = deliver(
        app,
        &path,
        Forge::Github,
        &secret,
        "push",
        "d-3",
        b.to_string().as_bytes(),
    )
    .await;
    assert_eq!(
        (s, r["outcome"].as_str()),
        (StatusCode::ACCEPTED, Some("created")),
        "{r}"
    );
    let b = push_body(Forge::Github, "refs/heads/feature/x", SHA3, "Work in progress");
    let (s, r) = deliver(
        app,
        &path,
        Forge::Github,
        &secret,
        "push",
        "d-4",
        b.to_string().as_bytes(),
    )
    .await;
    assert_eq!((s, r["outcome"].as_str()), (StatusCode::OK, Some("no_rule")), "{r}");
    // Tag rules: a tag named like a branch pattern is not a branch; v* is a tag pattern.
    let b = push_body(Forge::Github, "refs/tags/main", SHA3, "odd tag");
    let (_, r) = deliver(
        app,
        &path,
        Forge::Github,
        &secret,
        "push",
        "d-5",
        b.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r["outcome"], "no_rule", "{r}");
    // A tag on the commit main already released: a new ref, so a release of its own.
    let b = push_body(Forge::Github, "refs/tags/v1.0.0", SHA1, "Checkout page");
    let (s, r) = deliver(
        app,
        &path,
        Forge::Github,
        &secret,
        "push",
        "d-6",
        b.to_string().as_bytes(),
    )
    .await;
    assert_eq!(
        (s, r["outcome"].as_str()),
        (StatusCode::ACCEPTED, Some("created")),
        "{r}"
    );
    // A deleted branch: nothing to release.
    let b = push_body(Forge::Github, "refs/heads/release/old", ZERO, "");
    let (s, r) = deliver(
        app,
        &path,
        Forge::Github,
        &secret,
        "push",
        "d-7",
        b.to_string().as_bytes(),
    )
    .await;
    assert_eq!((s, r["outcome"].as_str()), (StatusCode::OK, Some("deleted_ref")), "{r}");
    assert_eq!(releases_of(app, "web").await.len(), 3);

    // The delivery log, newest first, with what came of each.
    let (_, shown) = app.get("/api/v1/applications/web/webhook", &otto).await;
    let outcomes: Vec<&str> = shown["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        [
            "deleted_ref",
            "created",
            "no_rule",
            "no_rule",
            "created",
            "already_released",
            "created",
            "ignored_event"
        ]
    );
    assert_eq!(shown["deliveries"][6]["release_id"], rid.as_str());

    // Disabled: deliveries are acknowledged, nothing released.
    app.ok(
        Method::PATCH,
        "/api/v1/applications/web/webhook",
        &otto,
        Some(json!({"enabled": false})),
    )
    .await;
    let b = push_body(Forge::Github, "refs/heads/main", SHA3, "later");
    let (s, r) = deliver(
        app,
        &path,
        Forge::Github,
        &secret,
        "push",
        "d-8",
        b.to_string().as_bytes(),
    )
    .await;
    assert_eq!((s, r["outcome"].as_str()), (StatusCode::OK, Some("disabled")), "{r}");
    assert_eq!(releases_of(app, "web").await.len(), 3);
});

both_backends!(gitea_and_gitlab_deliveries_in_their_own_formats, |app| {
    app.project_with_app("shop", "web").await;
    app.ok(
        Method::POST,
        "/api/v1/applications",
        &app.admin,
        Some(json!({"project": "shop", "name": "api", "git_url": "https://gitlab.example/shop/api.git"})),
    )
    .await;
    app.ok(
        Method::POST,
        "/api/v1/applications",
        &app.admin,
        Some(json!({"project": "shop", "name": "docs", "git_url": "https://gitlab.example/shop/docs.git"})),
    )
    .await;

    // Gitea: its own signature header, beside GitHub's and Gogs' that it sends too.
    let rules = json!({"branches": ["main"], "tags": ["v*"], "build": false});
    let (gpath, gsecret) = create_hook(
        app,
        "web",
        &app.admin,
        json!({"forge": "gitea", "release_rules": rules}),
    )
    .await;
    let b = push_body(Forge::Gitea, "refs/heads/main", SHA1, "From Gitea");
    let (s, r) = deliver(
        app,
        &gpath,
        Forge::Gitea,
        &gsecret,
        "push",
        "g-1",
        b.to_string().as_bytes(),
    )
    .await;
    assert_eq!(
        (s, r["outcome"].as_str()),
        (StatusCode::ACCEPTED, Some("created")),
        "{r}"
    );
    let (s, _) = deliver(
        app,
        &gpath,
        Forge::Gitea,
        "wrong-secret-wrong-secret",
        "push",
        "g-2",
        b.to_string().as_bytes(),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (_, r) = deliver(
        app,
        &gpath,
        Forge::Gitea,
        &gsecret,
        "push",
        "g-1",
        b.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r["outcome"], "duplicate", "{r}");
    // An issue event: acknowledged and ignored.
    let issue = json!({"action": "opened", "number": 1, "issue": {"id": 1, "title": "bug"}});
    let (s, r) = deliver(
        app,
        &gpath,
        Forge::Gitea,
        &gsecret,
        "issues",
        "g-3",
        issue.to_string().as_bytes(),
    )
    .await;
    assert_eq!(
        (s, r["outcome"].as_str()),
        (StatusCode::OK, Some("ignored_event")),
        "{r}"
    );

    // GitLab with a secret token.
    let (lpath, lsecret) = create_hook(
        app,
        "api",
        &app.admin,
        json!({"forge": "gitlab", "release_rules": rules}),
    )
    .await;
    let b = push_body(Forge::Gitlab, "refs/heads/main", SHA2, "From GitLab");
    let (s, _) = deliver(
        app,
        &lpath,
        Forge::Gitlab,
        "not-the-token-1234",
        "Push Hook",
        "l-1",
        b.to_string().as_bytes(),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Signed as GitHub would be, at a GitLab webhook: refused (the token is what counts).
    let (s, _) = deliver(
        app,
        &lpath,
        Forge::Github,
        &lsecret,
        "push",
        "l-1",
        b.to_string().as_bytes(),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, r) = deliver(
        app,
        &lpath,
        Forge::Gitlab,
        &lsecret,
        "Push Hook",
        "l-1",
        b.to_string().as_bytes(),
    )
    .await;
    assert_eq!(
        (s, r["outcome"].as_str()),
        (StatusCode::ACCEPTED, Some("created")),
        "{r}"
    );
    let (_, rel) = app
        .get(
            &format!("/api/v1/releases/{}", r["release"].as_str().unwrap()),
            &app.admin,
        )
        .await;
    assert_eq!(
        (rel["commit_sha"].as_str(), rel["change_note"].as_str()),
        (Some(SHA2), Some("From GitLab"))
    );
    // A GitLab tag push: the commit is checkout_sha (after is the tag object).
    let b = push_body(Forge::Gitlab, "refs/tags/v2.0", SHA3, "Release 2.0");
    let (s, r) = deliver(
        app,
        &lpath,
        Forge::Gitlab,
        &lsecret,
        "Tag Push Hook",
        "l-2",
        b.to_string().as_bytes(),
    )
    .await;
    assert_eq!(
        (s, r["outcome"].as_str()),
        (StatusCode::ACCEPTED, Some("created")),
        "{r}"
    );
    let (_, rel) = app
        .get(
            &format!("/api/v1/releases/{}", r["release"].as_str().unwrap()),
            &app.admin,
        )
        .await;
    assert_eq!(rel["commit_sha"], SHA3);
    assert_eq!(rel["git_ref"], SHA3);
    assert_eq!(rel["change_note"], "Release 2.0");

    // GitLab with a signing token (whsec_...), given as the secret.
    let key = B64.encode(b"0123456789abcdef0123456789abcdef");
    let token = format!("whsec_{key}");
    let (dpath, dsecret) = create_hook(
        app,
        "docs",
        &app.admin,
        json!({"forge": "gitlab", "release_rules": rules, "secret": token}),
    )
    .await;
    assert_eq!(dsecret, token);
    let b = push_body(Forge::Gitlab, "refs/heads/main", SHA1, "Docs");
    let (s, r) = deliver(
        app,
        &dpath,
        Forge::Gitlab,
        &dsecret,
        "Push Hook",
        "msg_1",
        b.to_string().as_bytes(),
    )
    .await;
    assert_eq!(
        (s, r["outcome"].as_str()),
        (StatusCode::ACCEPTED, Some("created")),
        "{r}"
    );
    // The same signature an hour old: refused.
    let bytes = b.to_string().into_bytes();
    let old = (chrono::Utc::now().timestamp() - 3600).to_string();
    let sig = B64.encode(hmac(
        &B64.decode(&key).unwrap(),
        &[b"msg_2", b".", old.as_bytes(), b".", &bytes],
    ));
    let resp = app
        .http
        .post(format!("{}{dpath}", app.base))
        .header("x-gitlab-event", "Push Hook")
        .header("webhook-id", "msg_2")
        .header("webhook-timestamp", &old)
        .header("webhook-signature", format!("v1,{sig}"))
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // Each application got its own releases, all by their webhooks.
    for (a, n) in [("web", 1), ("api", 2), ("docs", 1)] {
        let rels = releases_of(app, a).await;
        assert_eq!(rels.len(), n, "{a}: {rels:?}");
        assert!(rels.iter().all(|r| r["creator"] == format!("webhook:{a}")), "{rels:?}");
    }
    // The webhooks' rows are no people: not listed, not editable, no roles.
    let (_, users) = app.get("/api/v1/users", &app.admin).await;
    assert!(!users.to_string().contains("webhook:"), "{users}");
    let (s, _) = app
        .call(
            Method::PATCH,
            "/api/v1/users/webhook:web",
            Some(&app.admin),
            Some(json!({"disabled": false, "password": "a-long-enough-password-1"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, e) = app
        .post(
            "/api/v1/projects/shop/members",
            &app.admin,
            json!({"username": "webhook:web", "role": "operator"}),
        )
        .await;
    assert_eq!(
        (s, e["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("username")),
        "{e}"
    );
    let (s, _) = app
        .call(
            Method::POST,
            "/api/v1/auth/token",
            None,
            Some(json!({"username": "webhook:web", "password": "!"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
});

both_backends!(a_push_delivered_twice_at_once_makes_one_release, |app| {
    app.project_with_app("shop", "web").await;
    let (path, secret) = create_hook(
        app,
        "web",
        &app.admin,
        json!({"forge": "github", "release_rules": {"branches": ["main"], "build": false}}),
    )
    .await;
    let body = push_body(Forge::Github, "refs/heads/main", SHA1, "race").to_string();
    // Eight deliveries of the same push with different ids (a forge's retries), at once.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (path, secret, body) = (path.clone(), secret.clone(), body.clone());
        let http = app.http.clone();
        let base = app.base.clone();
        tasks.push(tokio::spawn(async move {
            let sig = hex::encode(hmac(secret.as_bytes(), &[body.as_bytes()]));
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
    let mut created = 0;
    for t in tasks {
        let (s, r) = t.await.unwrap();
        assert!(s.is_success(), "{s} {r}");
        if r["outcome"] == "created" {
            created += 1;
        } else {
            assert_eq!(r["outcome"], "already_released", "{r}");
        }
    }
    assert_eq!(created, 1);
    assert_eq!(releases_of(app, "web").await.len(), 1);
    assert_eq!(app.count("webhook_deliveries").await, 8);
    assert_eq!(app.count("webhook_releases").await, 1);
});

both_backends!(configuring_webhooks_roles_rotation_and_bad_input, |app| {
    app.project_with_app("shop", "web").await;
    app.project_with_app("other", "api").await;
    let dev = app.user("dana", Some("shop"), &["developer"]).await;
    let tess = app.user("tess", Some("shop"), &["tester"]).await;
    let otto = app.user("otto", Some("shop"), &["operator"]).await;
    let bea = app
        .user("bea", Some("other"), &["developer", "tester", "operator"])
        .await;
    let hook = "/api/v1/applications/web/webhook";
    let body = json!({"forge": "github", "release_rules": {"branches": ["main"], "build": false}});

    // Developers and testers may not; another project's members do not see it.
    for (who, token, want) in [
        ("developer", &dev, StatusCode::FORBIDDEN),
        ("tester", &tess, StatusCode::FORBIDDEN),
        ("other project", &bea, StatusCode::NOT_FOUND),
    ] {
        let (s, e) = app.post(hook, token, body.clone()).await;
        assert_eq!(s, want, "{who}: {e}");
    }
    assert_eq!(app.count("app_webhooks").await, 0);

    // Bad input names the field; nothing is written.
    let audit_before = app.count("audit_events").await;
    for (input, field) in [
        (json!({"forge": "bitbucket"}), "forge"),
        (
            json!({"forge": "github", "release_rules": {"branches": ["ma in"]}}),
            "release_rules.branches[0]",
        ),
        (
            json!({"forge": "github", "release_rules": {"tags": [""]}}),
            "release_rules.tags[0]",
        ),
        (json!({"forge": "github", "secret": "short"}), "secret"),
        (
            json!({"forge": "github", "secret": format!("whsec_{}", B64.encode([7u8; 32]))}),
            "secret",
        ),
        (
            json!({"forge": "gitlab", "secret": "whsec_not*base64*at*all"}),
            "secret",
        ),
        (json!({"forge": "github", "colour": "blue"}), "colour"),
    ] {
        let (s, e) = app.post(hook, &otto, input.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{input}: {e}");
        assert_eq!(e["field"], field, "{input}: {e}");
    }
    assert_eq!(app.count("app_webhooks").await, 0);
    assert_eq!(app.count("audit_events").await, audit_before);

    // The operator creates it; a second is refused.
    let (path, secret) = create_hook(app, "web", &otto, body.clone()).await;
    let (s, e) = app.post(hook, &otto, body.clone()).await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    let (s, _) = app.get(hook, &dev).await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "the path and deliveries are for those who configure it"
    );

    // Rotating: the new secret is shown once; the old one stops working.
    let (s, e) = app.post(&format!("{hook}/rotate"), &dev, json!({})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    let rotated = app.ok(Method::POST, &format!("{hook}/rotate"), &otto, None).await;
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    assert_eq!(rotated["path"], path.as_str(), "the URL stays");
    let b = push_body(Forge::Github, "refs/heads/main", SHA1, "after rotation").to_string();
    let (s, _) = deliver(app, &path, Forge::Github, &secret, "push", "r-1", b.as_bytes()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, r) = deliver(app, &path, Forge::Github, &new_secret, "push", "r-1", b.as_bytes()).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{r}");

    // Stored sealed: neither secret is in the store in the clear.
    let mut c = app.store.conn().await.unwrap();
    let sealed: Vec<u8> = sqlx::query_scalar("SELECT secret_enc FROM app_webhooks")
        .fetch_one(&mut *c)
        .await
        .unwrap();
    drop(c);
    assert!(!sealed.windows(new_secret.len()).any(|w| w == new_secret.as_bytes()));

    // Changing the forge to GitLab and back; a bad rule names its field.
    let (s, e) = app
        .call(
            Method::PATCH,
            hook,
            Some(&otto),
            Some(json!({"release_rules": {"branches": ["a b"]}})),
        )
        .await;
    assert_eq!(
        (s, e["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("release_rules.branches[0]")),
        "{e}"
    );
    let v = app
        .ok(
            Method::PATCH,
            hook,
            &otto,
            Some(json!({"forge": "gitlab", "release_rules": {"tags": ["v*"]}})),
        )
        .await;
    assert_eq!(
        (v["forge"].as_str(), v["release_rules"]["tags"].clone()),
        (Some("gitlab"), json!(["v*"]))
    );

    // A malformed push (a ref that is neither branch nor tag) is refused, nothing written.
    app.ok(Method::PATCH, hook, &otto, Some(json!({"forge": "github"})))
        .await;
    let before = footprint(app).await;
    let b = push_body(Forge::Github, "refs/notes/commits", SHA2, "note").to_string();
    let (s, e) = deliver(app, &path, Forge::Github, &new_secret, "push", "r-2", b.as_bytes()).await;
    assert_eq!(
        (s, e["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("body")),
        "{e}"
    );
    assert_eq!(footprint(app).await, before);
    // Large pushes pass (a forge lists each commit's files): 2 MiB is accepted...
    let mut big = push_body(Forge::Github, "refs/heads/feature/big", SHA2, "big");
    big["padding"] = json!("x".repeat(2 * 1024 * 1024));
    let (s, r) = deliver(
        app,
        &path,
        Forge::Github,
        &new_secret,
        "push",
        "r-big",
        big.to_string().as_bytes(),
    )
    .await;
    assert_eq!((s, r["outcome"].as_str()), (StatusCode::OK, Some("no_rule")), "{r}");
    let before = footprint(app).await;
    // ...but beyond 5 MiB: 413 before anything is checked.
    let huge = vec![b' '; 6 * 1024 * 1024];
    let (s, _) = deliver(app, &path, Forge::Github, &new_secret, "push", "r-3", &huge).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(footprint(app).await, before);

    // Without build settings a release is made but not built, and the reason is given.
    app.ok(
        Method::PATCH,
        hook,
        &otto,
        Some(json!({"release_rules": {"branches": ["main"], "build": true}})),
    )
    .await;
    let b = push_body(Forge::Github, "refs/heads/main", SHA3, "wants a build").to_string();
    let (s, r) = deliver(app, &path, Forge::Github, &new_secret, "push", "r-4", b.as_bytes()).await;
    assert_eq!(
        (s, r["outcome"].as_str()),
        (StatusCode::ACCEPTED, Some("created")),
        "{r}"
    );
    assert!(r["build"].is_null(), "{r}");
    assert!(r["build_error"].as_str().unwrap().contains("base_image"), "{r}");
    let (_, rel) = app
        .get(
            &format!("/api/v1/releases/{}", r["release"].as_str().unwrap()),
            &app.admin,
        )
        .await;
    assert_eq!(rel["state"], "created");

    // Every change is audited with who made it.
    let (_, audit) = app
        .get("/api/v1/audit?record_type=application&record_id=web", &app.admin)
        .await;
    let actions: Vec<(String, String)> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"].as_str().unwrap().starts_with("webhook."))
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["actor"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("webhook.update", "otto"),
            ("webhook.update", "otto"),
            ("webhook.update", "otto"),
            ("webhook.rotate", "otto"),
            ("webhook.create", "otto"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    assert!(!audit.to_string().contains(&new_secret) && !audit.to_string().contains(&secret));

    // Deleted: the address is gone (404), and a new webhook gets a new one.
    let (s, _) = app.call(Method::DELETE, hook, Some(&dev), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app.call(Method::DELETE, hook, Some(&otto), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = deliver(app, &path, Forge::Github, &new_secret, "push", "r-5", b.as_bytes()).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (again, _) = create_hook(app, "web", &otto, body).await;
    assert_ne!(again, path);
});
