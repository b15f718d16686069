//! End-to-end tests of `prism deploy`, `prism template`, `prism cluster
//! health` and `prism user passwd`: each test starts a real `prism serve` on
//! a free port with its own data directory and runs the real binary against
//! it (the same harness as cli.rs). No Kubernetes cluster is needed: the
//! clusters here are unreachable, so deploys fail while planning.

use serde_json::Value;

use prism_test_support::process::prism;
use prism_test_support::{ServerProcess as Server, TempDir};

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// What these tests add to the shared server.
trait DeployServer {
    fn built_release(&self) -> String;
    fn unreachable_cluster_for(&self, env: &str);
    fn file(&self, name: &str, text: &str) -> String;
}

impl DeployServer for Server {
    /// Creates a release of `web` and builds it with an image: state `built`.
    fn built_release(&self) -> String {
        self.built_release_with(&[
            "--image-ref",
            "registry.example.com/shop/web:1.0",
            "--image-digest",
            DIGEST,
        ])
    }

    /// A cluster nobody listens at, bound to `env`.
    fn unreachable_cluster_for(&self, env: &str) {
        self.run(&[
            "cluster",
            "create",
            "nowhere",
            "--api-url",
            "https://127.0.0.1:1",
            "--insecure-skip-tls-verify",
        ])
        .ok();
        self.run(&["env", "update", env, "--cluster", "nowhere"]).ok();
    }

    /// Writes a file in the scratch directory and returns its path.
    fn file(&self, name: &str, text: &str) -> String {
        let path = self.scratch.join(name);
        std::fs::write(&path, text).expect("write file");
        path.to_string_lossy().into_owned()
    }
}

/// A ConfigMap template of the project's own.
const EXTRA: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ (app.name ~ "-extra") | tojson }}
  namespace: {{ env.namespace | tojson }}
data:
  release: {{ release.id | tojson }}
"#;

#[test]
fn template_set_shows_up_in_show_and_versions() {
    let server = Server::with_app("tplset");

    let before = server.run(&["template", "show", "shop"]).ok();
    assert!(before.stdout.contains("version 0"), "{before:#?}");
    let row = before
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("deployment.yaml"))
        .unwrap_or_else(|| panic!("no deployment.yaml: {before:#?}"));
    assert!(row.contains("(built-in)"), "{before:#?}");
    assert_eq!(server.json(&["template", "versions", "shop"]), serde_json::json!([]));
    let builtin = server.run(&["template", "get", "shop", "deployment.yaml"]).ok();
    assert!(builtin.stdout.contains("kind: Deployment"), "{builtin:#?}");

    let path = server.file("extra.yaml", EXTRA);
    let saved = server
        .run(&[
            "template",
            "set",
            "shop",
            "extra.yaml",
            "--file",
            &path,
            "--note",
            "an extra map",
        ])
        .ok();
    assert!(saved.stdout.contains("version 1"), "{saved:#?}");

    let shown = server.json(&["template", "show", "shop"]);
    assert_eq!(shown["current"]["version"], 1);
    assert_eq!(shown["current"]["author"], "admin");
    assert_eq!(shown["current"]["files"]["extra.yaml"], EXTRA);
    let table = server.run(&["template", "show", "shop"]).ok();
    assert!(table.stdout.contains("version 1"), "{table:#?}");
    let row = table
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("extra.yaml"))
        .unwrap_or_else(|| panic!("no extra.yaml: {table:#?}"));
    assert!(row.contains("(project)"), "{table:#?}");
    let got = server.run(&["template", "get", "shop", "extra.yaml"]).ok();
    assert_eq!(got.stdout, EXTRA);

    let versions = server.json(&["template", "versions", "shop"]);
    assert_eq!(versions[0]["version"], 1);
    assert_eq!(versions[0]["note"], "an extra map");
    let listed = server.run(&["template", "versions", "shop"]).ok();
    assert!(listed.stdout.contains("an extra map"), "{listed:#?}");

    // An empty file removes a built-in; --remove drops the project's own.
    let empty = server.file("empty.yaml", "");
    server
        .run(&["template", "set", "shop", "service.yaml", "--file", &empty])
        .ok();
    let table = server.run(&["template", "show", "shop"]).ok();
    let row = table
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("service.yaml"))
        .unwrap_or_else(|| panic!("no service.yaml: {table:#?}"));
    assert!(row.contains("removed"), "{table:#?}");
    server
        .run(&["template", "get", "shop", "service.yaml"])
        .fails_with(1, "removed the built-in template service.yaml");
    server.run(&["template", "set", "shop", "extra.yaml", "--remove"]).ok();
    let shown = server.json(&["template", "show", "shop"]);
    assert_eq!(shown["current"]["version"], 3);
    assert_eq!(shown["current"]["files"], serde_json::json!({"service.yaml": ""}));
    assert_eq!(
        server.json(&["template", "versions", "shop"]).as_array().map(Vec::len),
        Some(3)
    );
    server
        .run(&["template", "set", "shop", "extra.yaml", "--remove"])
        .fails_with(2, "no template extra.yaml of its own");
}

#[test]
fn a_template_with_a_jinja_syntax_error_is_refused_naming_it() {
    let server = Server::with_app("tplbad");
    let path = server.file("bad.yaml", "kind: Deployment\n{% if %}\n");
    server
        .run(&["template", "set", "shop", "deployment.yaml", "--file", &path])
        .fails_with(1, "deployment.yaml");
    assert_eq!(
        server.json(&["template", "show", "shop"])["current"]["version"],
        0,
        "nothing was saved"
    );
    // The same from standard input.
    server
        .run_with_stdin(&["template", "set", "shop", "hpa.yaml", "--file", "-"], "{{ unclosed\n")
        .fails_with(1, "hpa.yaml");
}

#[test]
fn template_preview_renders_the_release_with_unsaved_templates_overlaid() {
    let server = Server::with_app("preview");
    let id = server.built_release();

    let run = server
        .run(&["template", "preview", "--app", "web", "--env", "fat", "--release", &id])
        .ok();
    assert!(run.stdout.contains(r#""kind": "Deployment""#), "{run:#?}");
    let image = format!("registry.example.com/shop/web@{DIGEST}");
    assert!(run.stdout.contains(&image), "{run:#?}");
    assert!(!run.stdout.contains("web-extra"), "{run:#?}");

    let extra = server.file("extra.yaml", EXTRA);
    let run = server
        .run(&[
            "template",
            "preview",
            "--app",
            "web",
            "--env",
            "fat",
            "--release",
            &id,
            "--file",
            &format!("extra.yaml={extra}"),
        ])
        .ok();
    assert!(run.stdout.contains(r#""kind": "ConfigMap""#), "{run:#?}");
    assert!(run.stdout.contains("web-extra"), "{run:#?}");
    assert!(
        run.stdout.contains(r#""kind": "Deployment""#),
        "the built-ins are still there: {run:#?}"
    );
    assert_eq!(
        server.json(&["template", "show", "shop"])["current"]["version"],
        0,
        "a preview saves nothing"
    );

    let json = server.json(&["template", "preview", "--app", "web", "--env", "fat", "--release", &id]);
    assert!(json["yaml"].as_str().is_some_and(|y| y.contains(&image)), "{json}");

    server
        .run(&[
            "template",
            "preview",
            "--app",
            "web",
            "--env",
            "fat",
            "--release",
            "r99",
        ])
        .fails_with(1, "no release r99");
}

#[test]
fn deploying_to_an_environment_without_a_cluster_fails() {
    let server = Server::with_app("nocluster");
    let id = server.built_release();
    server.run(&["release", "promote", &id, "--env", "fat"]).ok();
    server
        .run(&["deploy", &id, "--env", "fat"])
        .fails_with(1, "not bound to a cluster");
    server
        .run(&["deploy", "start", &id, "--env", "fat", "--no-follow"])
        .fails_with(1, "not bound to a cluster");
    assert_eq!(server.json(&["deploy", "list"]), serde_json::json!([]));
    server.run(&["deploy", &id]).fails_with(2, "--env");
    server
        .run(&["deploy", "--env", "fat", "show", "1"])
        .fails_with(2, "not with a subcommand");
}

#[test]
fn a_deploy_to_an_unreachable_cluster_is_followed_to_its_failure() {
    let server = Server::with_app("deployfail");
    server.unreachable_cluster_for("fat");
    let id = server.built_release();
    server.run(&["release", "promote", &id, "--env", "fat"]).ok();

    let run = server.run(&["deploy", &id, "--env", "fat", "--note", "go"]);
    let run = run.ends_with_error(1, "deploy 1 failed: the cluster cannot be reached");
    assert!(run.stderr.contains("queued"), "{run:#?}");
    assert!(run.stderr.contains("plan"), "{run:#?}");

    let deploy = server.json(&["deploy", "show", "1"]);
    assert_eq!(deploy["state"], "failed");
    assert_eq!(deploy["release"], id.as_str());
    assert_eq!(deploy["environment"], "fat");
    let table = server.run(&["deploy", "show", "1"]).ok();
    assert!(table.stdout.contains("failed"), "{table:#?}");

    let listed = server.json(&["deploy", "list", "--app", "web", "--env", "fat", "--release", &id]);
    assert_eq!(listed.as_array().map(Vec::len), Some(1));

    let events = server.json(&["deploy", "events", "1"]);
    let steps: Vec<&str> = events
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["step"].as_str())
        .collect();
    assert_eq!(steps.first(), Some(&"queued"), "{events}");
    assert_eq!(steps.last(), Some(&"failed"), "{events}");

    // Watching a finished deploy replays it: one JSON line per event.
    let watched = server.run(&["deploy", "watch", "1", "--output", "json"]);
    let watched = watched.ends_with_error(1, "deploy 1 failed");
    let lines: Vec<serde_json::Value> = watched
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(lines.len(), steps.len() + 1, "{watched:#?}");
    assert_eq!(lines[0]["event"], "step");
    assert_eq!(lines[0]["data"]["step"], "queued");
    let end = lines.last().unwrap();
    assert_eq!(end["event"], "end");
    assert_eq!(end["data"]["state"], "failed");

    server
        .run(&["deploy", "review", "1", "--approve"])
        .fails_with(1, "not awaiting review");
    server
        .run(&["deploy", "rollback", "--app", "web", "--env", "fat"])
        .fails_with(1, "no earlier successful deploy");
    let drift = server.run(&["deploy", "drift", "--app", "web", "--env", "fat"]).ok();
    assert!(drift.stdout.contains("Drifted: no"), "{drift:#?}");
}

#[test]
fn the_health_of_an_unreachable_cluster_exits_1() {
    let server = Server::start("health");
    server.login_admin();
    server.unreachable_cluster_for("fat");
    let run = server.run(&["cluster", "health", "nowhere"]);
    let run = run.fails_with(1, "cluster nowhere is not healthy");
    assert!(run.stdout.contains("Healthy:"), "{run:#?}");
    let json = server.run(&["cluster", "health", "nowhere", "--output", "json"]);
    assert_eq!(json.code, 1, "{json:#?}");
    let answer: Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(answer["ok"], false);
    server.run(&["cluster", "health", "missing"]).fails_with(1, "missing");
}

#[test]
fn user_passwd_changes_a_password() {
    let server = Server::start("passwd");
    server.login_admin();
    server
        .run_with_stdin(&["user", "create", "bob", "--password-stdin"], "bobs-first-password\n")
        .ok();

    // Bob changes his own: the new password, then the current one.
    let bob = TempDir::new("passwd-bob");
    let login = |password: &str| {
        prism(
            &bob.join("config"),
            &["login", &server.url, "--username", "bob", "--password-stdin"],
            Some(&format!("{password}\n")),
        )
    };
    login("bobs-first-password").ok();
    prism(
        &bob.join("config"),
        &["user", "passwd", "--password-stdin"],
        Some("bobs-second-password\n"),
    )
    .fails_with(2, "current password");
    prism(
        &bob.join("config"),
        &["user", "passwd", "--password-stdin"],
        Some("bobs-second-password\nnot-his-password\n"),
    )
    .fails_with(1, "current_password");
    let changed = prism(
        &bob.join("config"),
        &["user", "passwd", "--password-stdin"],
        Some("bobs-second-password\nbobs-first-password\n"),
    )
    .ok();
    assert!(changed.stdout.contains("Changed the password of bob"), "{changed:#?}");
    login("bobs-first-password").fails_with(1, "wrong username or password");
    login("bobs-second-password").ok();

    // Bob cannot set someone else's; an admin sets his without the current one.
    prism(
        &bob.join("config"),
        &["user", "passwd", "admin", "--password-stdin"],
        Some("whatever-password\n"),
    )
    .fails_with(1, "admin");
    server
        .run_with_stdin(&["user", "passwd", "bob", "--password-stdin"], "bobs-third-password\n")
        .ok();
    login("bobs-third-password").ok();
}
