//! Git webhooks end to end, with real parts only: `prism serve` and the
//! `prism` CLI, a real `git push` into a bare repository whose post-receive
//! hook plays the forge (a shell script that writes GitHub's push event,
//! signs it with `openssl dgst -sha256 -hmac` as GitHub documents, and posts
//! it with `curl`), a real git server (`git daemon`) the build checks out
//! from, a real registry and a base image Prism builds. The push creates a
//! release of the pushed commit that builds into an image labelled with it;
//! then the project's webhook releases the same repository's application.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use prism_test_support::git::{git, GitDaemon};
use prism_test_support::registry::{busybox_rootfs, TestRegistry};
use prism_test_support::ServerProcess as Server;
use serde_json::{json, Value};

/// The forge: one GitHub push event per updated ref, signed with the
/// webhook's secret (read from `webhook.env` beside the hook).
const POST_RECEIVE: &str = r#"#!/bin/sh
. "$(dirname "$0")/webhook.env"
esc() { sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' | awk 'BEGIN { ORS = "" } NR > 1 { print "\\n" } { print }'; }
out=$(mktemp)
while read old new ref; do
  commit=$(git rev-parse "$new^{commit}")
  msg=$(git log -1 --format=%B "$commit" | esc)
  body=$(printf '{"ref":"%s","before":"%s","after":"%s","created":false,"deleted":false,"forced":false,"head_commit":{"id":"%s","message":"%s"},"repository":{"name":"site","clone_url":"%s"},"pusher":{"name":"tester"}}' \
    "$ref" "$old" "$commit" "$commit" "$msg" "$REPO_URL")
  sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$WEBHOOK_SECRET" -r | cut -d' ' -f1)
  code=$(printf '%s' "$body" | curl -sS -o "$out" -w '%{http_code}' -X POST \
    -H 'Content-Type: application/json' -H 'User-Agent: GitHub-Hookshot/e2e' \
    -H 'X-GitHub-Event: push' -H "X-GitHub-Delivery: $(cat /proc/sys/kernel/random/uuid)" \
    -H "X-Hub-Signature-256: sha256=$sig" --data-binary @- "$WEBHOOK_URL")
  echo "webhook $ref: $code $(cat "$out")"
done
rm -f "$out"
"#;

fn write_json(dir: &Path, name: &str, v: &Value) -> String {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_vec_pretty(v).unwrap()).unwrap();
    p.display().to_string()
}

/// `git push` from `work`; returns what the remote (the hook) printed.
fn push(work: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("push")
        .args(args)
        .current_dir(work)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", work)
        .output()
        .expect("git push");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "git push {args:?}: {stderr}");
    stderr
}

fn commit(work: &Path, file: &str, content: &str, message: &str) -> String {
    std::fs::write(work.join(file), content).unwrap();
    git(work, &["add", "-A"]);
    git(work, &["commit", "-q", "-m", message]);
    git(work, &["rev-parse", "HEAD"])
}

fn releases(server: &Server) -> Vec<Value> {
    let v = server.json(&["release", "list", "--app", "site"]);
    let items = if v.is_array() { v } else { v["items"].clone() };
    items.as_array().unwrap().clone()
}

fn wait_for<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} did not happen in {secs} s");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_git_push_creates_a_release_of_the_pushed_commit_and_builds_it() {
    let tmp = tempfile::tempdir().unwrap();
    let sources = tmp.path().join("sources");
    std::fs::create_dir_all(&sources).unwrap();
    busybox_rootfs(&sources);
    let registry = TestRegistry::start(None);
    let git_root = tmp.path().join("git");
    std::fs::create_dir_all(&git_root).unwrap();
    let work = git_root.join("site-work");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    commit(&work, "index.html", "<h1>one</h1>\n", "first");
    git(&git_root, &["clone", "-q", "--bare", "site-work", "site.git"]);
    git(
        &work,
        &["remote", "add", "origin", git_root.join("site.git").to_str().unwrap()],
    );
    let daemon = GitDaemon::start(&git_root).await;

    let s = Server::start_with("webhook-e2e", &[("PRISM_BASE_SOURCES", sources.to_str().unwrap())]);
    s.login_admin();
    s.run(&[
        "registry",
        "put",
        "main",
        "--host",
        &format!("127.0.0.1:{}", registry.port),
        "--insecure-http",
        "--all-projects",
    ])
    .ok();
    let recipe = write_json(tmp.path(), "busybox.json", &json!({"rootfs": "rootfs.tar"}));
    s.run(&[
        "base",
        "create",
        "busybox",
        "--tier",
        "1",
        "--registry",
        "main",
        "--repository",
        "base/busybox",
        "--recipe",
        &recipe,
    ])
    .ok();
    wait_for("the base image build", 180, || {
        let b = s.json(&["base", "show", "busybox"]);
        match b["build_state"].as_str() {
            Some("succeeded") => Some(()),
            Some("failed") => panic!("base failed: {b}\n{}", s.log()),
            _ => None,
        }
    });
    s.run(&["project", "create", "shop"]).ok();
    let settings = write_json(
        tmp.path(),
        "site.json",
        &json!({"stack": "static", "base_image": "busybox", "registry": "main", "build_command": "ls"}),
    );
    s.run(&[
        "app",
        "create",
        "site",
        "--project",
        "shop",
        "--git-url",
        &daemon.url("site.git"),
        "--build-settings",
        &settings,
    ])
    .ok();

    // The webhook: its URL and secret, the secret shown this once.
    let hook = s.json(&[
        "app", "webhook", "create", "site", "--forge", "github", "--branch", "main", "--tag", "v*",
    ]);
    let secret = hook["secret"].as_str().expect("the secret, once").to_owned();
    let url = format!("{}{}", s.url, hook["path"].as_str().unwrap());
    let shown = s.run(&["app", "webhook", "show", "site"]).ok();
    assert!(shown.stdout.contains(&url), "{shown:#?}");
    assert!(!shown.stdout.contains(&secret), "{shown:#?}");

    // The bare repository's post-receive hook plays the forge.
    let hooks = git_root.join("site.git/hooks");
    std::fs::write(hooks.join("post-receive"), POST_RECEIVE).unwrap();
    let env = |secret: &str| {
        format!(
            "WEBHOOK_URL='{url}'\nWEBHOOK_SECRET='{secret}'\nREPO_URL='{}'\n",
            daemon.url("site.git")
        )
    };
    std::fs::write(hooks.join("webhook.env"), env(&secret)).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(hooks.join("post-receive"), std::fs::Permissions::from_mode(0o755)).unwrap();

    // A push to main: a release of exactly that commit, built.
    let sha = commit(
        &work,
        "index.html",
        "<h1>two</h1>\n",
        "Add \"checkout\" page\n\nWith a basket, and a \\ backslash.",
    );
    let said = push(&work, &["origin", "main"]);
    assert!(said.contains("webhook refs/heads/main: 202"), "{said}\n{}", s.log());
    assert!(said.contains("\"outcome\":\"created\""), "{said}");
    let all = releases(&s);
    assert_eq!(all.len(), 1, "{all:?}");
    let rid = all[0]["id"].as_str().unwrap().to_owned();
    let rel = s.json(&["release", "show", &rid]);
    assert_eq!(rel["commit_sha"], sha.as_str());
    assert_eq!(rel["git_ref"], sha.as_str());
    assert_eq!(
        rel["change_note"],
        "Add \"checkout\" page\n\nWith a basket, and a \\ backslash."
    );
    assert_eq!(rel["creator"], "webhook:site");
    let built = wait_for("the release's build", 300, || {
        let r = s.json(&["release", "show", &rid]);
        match r["state"].as_str() {
            Some("built") => Some(r),
            Some("build_failed") => panic!("build failed: {r}\n{}", s.log()),
            _ => None,
        }
    });
    assert_eq!(
        built["commit_sha"],
        sha.as_str(),
        "the build checked out the pushed commit"
    );
    let image = registry.skopeo_inspect(&format!("shop/site:{rid}"), None).unwrap();
    assert_eq!(image["Labels"]["io.prism.commit"], sha.as_str());
    let audit = s.json(&["audit", "--actor", "webhook:site"]);
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"release.create") && actions.contains(&"build.start"),
        "{audit}"
    );

    // Tags: one no rule matches, one v* (built no more: the rules say so now).
    s.run(&["app", "webhook", "update", "site", "--build", "false"]).ok();
    git(&work, &["tag", "nightly"]);
    let said = push(&work, &["origin", "nightly"]);
    assert!(
        said.contains("webhook refs/tags/nightly: 200") && said.contains("no_rule"),
        "{said}"
    );
    git(&work, &["tag", "v1.0.0"]);
    let said = push(&work, &["origin", "v1.0.0"]);
    assert!(said.contains("webhook refs/tags/v1.0.0: 202"), "{said}");
    let all = releases(&s);
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[0]["commit_sha"], sha.as_str());
    assert_eq!(all[0]["state"], "created");

    // A forge with the wrong secret: refused, nothing created.
    std::fs::write(hooks.join("webhook.env"), env("an-old-secret-from-before")).unwrap();
    commit(&work, "index.html", "<h1>three</h1>\n", "third");
    let said = push(&work, &["origin", "main"]);
    assert!(said.contains("webhook refs/heads/main: 401"), "{said}");
    assert_eq!(releases(&s).len(), 2);

    // The delivery log says what came of each push.
    let shown = s.json(&["app", "webhook", "show", "site"]);
    let outcomes: Vec<&str> = shown["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["created", "no_rule", "created"], "{shown}");

    // A new secret, then no webhook at all.
    let rotated = s.json(&["app", "webhook", "rotate", "site"]);
    let new_secret = rotated["secret"].as_str().unwrap();
    assert!(new_secret.len() == 64 && new_secret != secret, "{rotated}");
    let gone = s.run(&["app", "webhook", "delete", "site"]).ok();
    assert!(gone.stdout.contains("Deleted the webhook of site"), "{gone:#?}");
    s.run(&["app", "webhook", "show", "site"]).fails_with(1, "not found");

    // The project's webhook instead (one URL for every repository of shop):
    // the push releases site, the application whose repository it is.
    let hook = s.json(&[
        "project",
        "webhook",
        "create",
        "shop",
        "--forge",
        "github",
        "--branch",
        "main",
        "--no-build",
    ]);
    let secret = hook["secret"].as_str().expect("the secret, once").to_owned();
    let url = format!("{}{}", s.url, hook["path"].as_str().unwrap());
    assert!(url.contains("/hooks/git-project/shop/"), "{url}");
    let shown = s.run(&["project", "webhook", "show", "shop"]).ok();
    assert!(
        shown.stdout.contains(&url) && shown.stdout.contains("site"),
        "{shown:#?}"
    );
    assert!(!shown.stdout.contains(&secret), "{shown:#?}");
    std::fs::write(
        hooks.join("webhook.env"),
        format!(
            "WEBHOOK_URL='{url}'\nWEBHOOK_SECRET='{secret}'\nREPO_URL='{}'\n",
            daemon.url("site.git")
        ),
    )
    .unwrap();
    let sha = commit(&work, "index.html", "<h1>four</h1>\n", "fourth");
    let said = push(&work, &["origin", "main"]);
    assert!(said.contains("webhook refs/heads/main: 202"), "{said}\n{}", s.log());
    let all = releases(&s);
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(all[0]["commit_sha"], sha.as_str());
    assert_eq!(all[0]["creator"], "webhook:project:shop");
    s.run(&["project", "webhook", "delete", "shop"]).ok();
    s.stop();
}
