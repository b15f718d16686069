//! End-to-end tests of the `prism` command line: each test starts a real
//! `prism serve` on a free port with its own data directory, and runs the
//! real binary against it, with its own config directory for credentials.

use std::path::Path;

use serde_json::Value;

use prism_test_support::process::{clean_command, prism, ADMIN_PASSWORD};
use prism_test_support::{free_port, ServerProcess as Server, TempDir};

trait CliServer {
    fn built_release(&self) -> String;
}

impl CliServer for Server {
    /// Creates a release of `web` and builds it: state `built`.
    fn built_release(&self) -> String {
        self.built_release_with(&[])
    }
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

#[test]
fn login_stores_private_credentials_and_rejects_a_wrong_password() {
    let server = Server::start("login");
    let creds = server.config_dir().join("credentials.json");

    let wrong = server.run_with_stdin(
        &["login", &server.url, "--username", "admin", "--password-stdin"],
        "not-the-password\n",
    );
    wrong.fails_with(1, "wrong username or password");
    assert!(!creds.exists(), "a failed login stores nothing");

    let run = server
        .run_with_stdin(
            &[
                "login",
                &format!("{}/", server.url),
                "--username",
                "admin",
                "--password-stdin",
            ],
            &format!("{ADMIN_PASSWORD}\n"),
        )
        .ok();
    assert!(run.stdout.contains("Logged in"), "{run:#?}");
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&creds).expect("credentials written"))
        .expect("credentials are JSON");
    assert_eq!(stored["url"], server.url.as_str(), "stored without the trailing slash");
    assert!(
        stored["token"].as_str().is_some_and(|t| t.starts_with("prism_")),
        "{stored}"
    );
    #[cfg(unix)]
    {
        assert_eq!(mode(&creds), 0o600, "credentials file mode");
        assert_eq!(mode(&server.config_dir()), 0o700, "config dir mode");
    }

    let me = server.json(&["whoami"]);
    assert_eq!(me["user"]["username"], "admin");
    assert_eq!(me["user"]["is_admin"], true);

    // Logging out revokes the token on the server and forgets it here.
    let token = stored["token"].as_str().unwrap().to_owned();
    server.run(&["logout"]).ok();
    assert!(!creds.exists());
    server.run(&["whoami"]).fails_with(2, "not logged in");
    server
        .run(&["whoami", "--server", &server.url, "--token", &token])
        .fails_with(1, "unknown, expired or revoked");
}

#[test]
fn projects_apps_and_releases_round_trip_as_json() {
    let server = Server::with_app("roundtrip");

    let projects = server.json(&["project", "list"]);
    let names: Vec<&str> = projects
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["shop"]);
    assert_eq!(server.json(&["project", "show", "shop"])["description"], "The shop");

    let apps = server.json(&["app", "list", "--project", "shop"]);
    assert_eq!(apps.as_array().map(Vec::len), Some(1));
    assert_eq!(apps[0]["name"], "web");
    assert_eq!(apps[0]["project"], "shop");
    assert_eq!(apps[0]["git_url"], "https://git.example.com/web.git");

    let first = server.json(&[
        "release",
        "create",
        "--app",
        "web",
        "--ref",
        "main",
        "--note",
        "first cut",
    ]);
    assert_eq!(first["id"], "r1");
    assert_eq!(first["state"], "created");
    assert_eq!(first["application"], "web");
    assert_eq!(first["git_ref"], "main");
    assert_eq!(first["change_note"], "first cut");
    assert_eq!(first["creator"], "admin");
    let second = server.json(&[
        "release", "create", "--app", "web", "--ref", "v1.2.0", "--note", "second",
    ]);
    assert_eq!(second["id"], "r2");

    let page = server.json(&["release", "list", "--app", "web"]);
    let ids: Vec<&str> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(ids, ["r2", "r1"], "newest first");
    assert_eq!(page["next"], Value::Null);

    let paged = server.json(&["release", "list", "--project", "shop", "--limit", "1"]);
    assert_eq!(paged["items"][0]["id"], "r2");
    assert_eq!(paged["next"], "r2");
    let rest = server.json(&["release", "list", "--limit", "1", "--before", "r2"]);
    assert_eq!(rest["items"][0]["id"], "r1");

    // A bare number is taken as a release id.
    assert_eq!(server.json(&["release", "show", "1"])["git_ref"], "main");

    // The table output names the releases too.
    let table = server.run(&["release", "list"]).ok();
    assert!(
        table.stdout.contains("r1") && table.stdout.contains("first cut"),
        "{table:#?}"
    );

    server
        .run(&["release", "list", "--state", "bogus"])
        .fails_with(1, "(field: state)");
}

#[test]
fn promoting_past_an_environment_that_must_come_first_fails() {
    let server = Server::with_app("order");
    let id = server.built_release();
    server
        .run(&["release", "promote", &id, "--env", "uat"])
        .fails_with(1, "uat requires the release to pass fat first (field: environment)");
    assert_eq!(
        server.json(&["release", "show", &id])["state"],
        "built",
        "nothing changed"
    );
    server
        .run(&["release", "promote", &id, "--env", "nowhere"])
        .fails_with(1, "no environment named \"nowhere\"");
}

#[test]
fn not_logged_in_is_a_usage_error() {
    let scratch = TempDir::new("nologin");
    prism(&scratch.join("config"), &["project", "list"], None).fails_with(2, "not logged in: run `prism login URL`");
    prism(
        &scratch.join("config"),
        &["release", "list", "--token", "prism_x"],
        None,
    )
    .fails_with(2, "--server");
    prism(&scratch.join("config"), &["login", "ftp://example.com"], None)
        .fails_with(2, "not an http:// or https:// URL");
}

#[test]
fn an_unreachable_server_exits_3_naming_it() {
    let scratch = TempDir::new("unreachable");
    let url = format!("http://127.0.0.1:{}", free_port());
    let login = prism(
        &scratch.join("config"),
        &["login", &url, "--username", "admin", "--password-stdin"],
        Some("whatever\n"),
    );
    login.fails_with(3, &url);
    assert!(!scratch.join("config").join("credentials.json").exists());
    prism(
        &scratch.join("config"),
        &["project", "list", "--server", &url, "--token", "prism_x"],
        None,
    )
    .fails_with(3, &format!("cannot connect to {url}"));
}

#[test]
fn app_settings_are_validated_by_the_server() {
    let server = Server::with_app("settings");
    server
        .run(&["app", "set", "web", "--env", "fat", "--cpu-request", "lots"])
        .fails_with(1, "cpu_request");
    server
        .run(&["app", "set", "web", "--env", "fat", "--env-var", "novalue"])
        .fails_with(2, "KEY=VALUE");

    let all = server.json(&[
        "app",
        "set",
        "web",
        "--env",
        "fat",
        "--replicas",
        "3",
        "--cpu-limit",
        "1",
        "--env-var",
        "MODE=test",
    ]);
    let fat = all
        .as_array()
        .expect("array")
        .iter()
        .find(|s| s["environment"] == "fat")
        .expect("fat settings")
        .clone();
    assert_eq!(fat["replicas"], 3);
    assert_eq!(fat["cpu_limit"], "1");
    assert_eq!(fat["env_vars"]["MODE"], "test");
    assert_eq!(fat["customised"], true);

    // What is left out stays as it was.
    let again = server.json(&["app", "set", "web", "--env", "fat", "--memory-limit", "1Gi"]);
    let fat = again
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["environment"] == "fat")
        .unwrap()
        .clone();
    assert_eq!(fat["replicas"], 3);
    assert_eq!(fat["env_vars"]["MODE"], "test");
    assert_eq!(fat["memory_limit"], "1Gi");
}

#[test]
fn the_board_shows_a_deployed_release_and_its_hold() {
    let server = Server::with_app("board");
    let id = server.built_release();
    server
        .run(&["release", "promote", &id, "--env", "fat", "--note", "try it"])
        .ok();
    server.run(&["release", "deploy", &id, "--env", "fat"]).ok();
    let deployed = server.json(&["release", "deploy-result", &id, "--succeeded"]);
    assert_eq!(deployed["state"], "deployed");
    assert_eq!(deployed["environment"], "fat");

    let board = server.json(&["board", "--app", "web"]);
    let cell = |env: &str| {
        board
            .as_array()
            .expect("cells")
            .iter()
            .find(|c| c["application"] == "web" && c["environment"] == env)
            .cloned()
            .expect("cell")
    };
    assert_eq!(cell("fat")["current_release"], id.as_str());
    assert_eq!(cell("uat")["current_release"], Value::Null);

    let table = server.run(&["board"]).ok();
    let row = table
        .stdout
        .lines()
        .find(|l| l.contains("web"))
        .unwrap_or_else(|| panic!("no row for web: {table:#?}"));
    assert!(row.contains(&id), "{table:#?}");
    assert!(
        table.stdout.contains("FAT") && table.stdout.contains("PRD"),
        "{table:#?}"
    );

    server
        .run(&["app", "hold", "web", "--env", "fat", "--note", "exploratory testing"])
        .ok();
    let held = server.run(&["board"]).ok();
    assert!(held.stdout.contains("held by admin"), "{held:#?}");
    server
        .run(&["app", "hold", "web", "--env", "fat"])
        .fails_with(1, "already held");

    let history = server.json(&["release", "history", &id]);
    let actions: Vec<&str> = history
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|t| t["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "start_build",
            "build_succeeded",
            "promote",
            "deploy",
            "deploy_succeeded"
        ]
    );
}

#[test]
fn a_token_from_the_environment_works_without_stored_credentials() {
    let server = Server::start("envtoken");
    server.login_admin();
    let new = server.json(&["token", "create", "--name", "ci", "--expires-in-days", "2"]);
    let secret = new["secret"].as_str().expect("secret").to_owned();

    let elsewhere = TempDir::new("envtoken-client");
    let out = clean_command()
        .args(["whoami", "--output", "json"])
        .env("PRISM_CONFIG_DIR", elsewhere.join("config"))
        .env("PRISM_SERVER", &server.url)
        .env("PRISM_TOKEN", &secret)
        .output()
        .expect("run prism");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let me: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(me["user"]["username"], "admin");

    let tokens = server.json(&["token", "list"]);
    assert!(
        tokens
            .as_array()
            .expect("tokens")
            .iter()
            .any(|t| t["name"] == "ci" && t["last_used_at"].is_i64()),
        "{tokens}"
    );
    server.run(&["token", "revoke", &new["token"]["id"].to_string()]).ok();
}

#[test]
fn app_secrets_are_read_from_stdin_listed_without_values_and_deleted() {
    let server = Server::with_app("secrets");
    let value = "cli-secret-value-7c1d";
    let set = server
        .run_with_stdin(
            &["app", "secret", "set", "web", "DB_PASSWORD", "--env", "fat"],
            &format!("{value}\n"),
        )
        .ok();
    assert!(set.stdout.contains("Set DB_PASSWORD (version 1)"), "{set:#?}");
    server
        .run_with_stdin(
            &["app", "secret", "set", "web", "DB_PASSWORD", "--env", "fat"],
            "second\n",
        )
        .ok();
    server
        .run(&[
            "app",
            "secret",
            "set",
            "web",
            "VAULT",
            "--existing",
            "vault-db:password",
            "--as-file",
        ])
        .ok();
    server
        .run_with_stdin(&["app", "secret", "set", "shop", "API_TOKEN", "--project"], "token\n")
        .ok();
    // Nothing on stdin, a bad reference, a bad name: refused, naming what is wrong.
    server
        .run_with_stdin(&["app", "secret", "set", "web", "EMPTY"], "")
        .fails_with(2, "no value on standard input");
    server
        .run(&["app", "secret", "set", "web", "VAULT", "--existing", "vault-db"])
        .fails_with(2, "SECRET:KEY");
    server
        .run_with_stdin(&["app", "secret", "set", "web", "1BAD"], "x\n")
        .fails_with(1, "name");

    let table = server.run(&["app", "secret", "list", "web"]).ok().stdout;
    assert!(!table.contains(value) && !table.contains("second"), "{table}");
    for needle in [
        "DB_PASSWORD",
        "fat",
        "VAULT",
        "existing vault-db:password",
        "API_TOKEN",
        "project shop",
        "(all)",
    ] {
        assert!(table.contains(needle), "{needle} in {table}");
    }
    let list = server.json(&["app", "secret", "list", "web"]);
    let db = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "DB_PASSWORD")
        .unwrap();
    assert_eq!(db["version"], 2);
    assert_eq!(db["updated_by"], "admin");
    assert!(!list.to_string().contains(value));
    let project = server.json(&["app", "secret", "list", "shop", "--project"]);
    assert_eq!(project.as_array().unwrap().len(), 1, "{project}");

    server
        .run(&["app", "secret", "delete", "web", "DB_PASSWORD", "--env", "fat"])
        .ok();
    server
        .run(&["app", "secret", "delete", "web", "DB_PASSWORD", "--env", "fat"])
        .fails_with(1, "not found");
    let list = server.json(&["app", "secret", "list", "web"]);
    assert!(!list.to_string().contains("DB_PASSWORD"), "{list}");
}
