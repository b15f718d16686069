//! `prism ops-front ...` and `prism user end-sessions` against a real
//! `prism serve`: an admin registers two ops tools of a cluster, lists them
//! (table and JSON, in the API's field names), prints nginx's configuration
//! for the front (raw text, with the tools' locations behind
//! `auth_request`), is refused a bad upstream and a bad role (the field at
//! fault named), deletes a tool; ends a user's browser session (the
//! session's cookie stops working, the user's API token does not); someone
//! who is not an admin sees only the tools their roles open and is refused
//! the rest.

use std::time::Duration;

use prism_test_support::process::prism;
use prism_test_support::{ServerProcess as Server, TempDir};
use serde_json::{json, Value};

const PASSWORD: &str = "ops-front-cli-password-1";

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// Logs in as a browser does (`POST /api/v1/auth/login`): the session
/// cookie, as `name=value` for a `Cookie` header.
fn browser_login(url: &str, username: &str, password: &str) -> String {
    let resp = http()
        .post(format!("{url}/api/v1/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "browser login of {username}");
    let cookie = resp
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_owned())
        .find(|c| c.contains('=') && !c.ends_with('='))
        .expect("a session cookie");
    cookie
}

/// `GET /api/v1/me` with only the session cookie: its status.
fn me_with_cookie(url: &str, cookie: &str) -> u16 {
    http()
        .get(format!("{url}/api/v1/me"))
        .header(reqwest::header::COOKIE, cookie)
        .send()
        .unwrap()
        .status()
        .as_u16()
}

fn tools(server: &Server) -> Value {
    server.json(&["ops-front", "tools"])
}

#[test]
fn ops_tools_and_nginx_config_from_the_cli_and_ending_browser_sessions() {
    let server = Server::start("cli-ops-front");
    server.login_admin();
    let dirs = TempDir::new("cli-ops-front-people");
    server
        .run(&["cluster", "create", "edge", "--api-url", "https://10.0.0.9:6443"])
        .ok();
    server.run(&["project", "create", "shop"]).ok();

    // None yet.
    let empty = server.run(&["ops-front", "tools"]).ok();
    assert!(empty.stdout.contains("No ops tools"), "{empty:#?}");
    assert_eq!(tools(&server), json!([]));

    // Two tools: Prometheus for operators and testers, Grafana for admins only.
    let set = server
        .run(&[
            "ops-front",
            "set",
            "edge",
            "prometheus",
            "--kind",
            "prometheus",
            "--upstream",
            "http://prometheus.monitoring:9090",
            "--role",
            "operator",
            "--role",
            "tester",
            "--description",
            "Metrics of edge",
        ])
        .ok();
    assert!(
        set.stdout.contains("/tools/edge/prometheus/")
            && set.stdout.contains("admins and operator, tester")
            && set.stdout.contains("Metrics of edge"),
        "{set:#?}"
    );
    let grafana = server.json(&[
        "ops-front",
        "set",
        "edge",
        "grafana",
        "--kind",
        "grafana",
        "--upstream",
        "http://grafana.monitoring:3000",
        "--strip-prefix",
    ]);
    assert_eq!(grafana["path"], "/tools/edge/grafana/", "{grafana}");
    assert_eq!(grafana["strip_prefix"], true, "{grafana}");
    assert_eq!(grafana["roles"], json!([]), "{grafana}");

    let list = server.run(&["ops-front", "tools"]).ok();
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{list:#?}");
    for h in ["CLUSTER", "NAME", "KIND", "PATH", "ROLES", "UPSTREAM"] {
        assert!(lines[0].contains(h), "{h}: {list:#?}");
    }
    let cells: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        cells,
        [
            "edge",
            "grafana",
            "grafana",
            "/tools/edge/grafana/",
            "-",
            "http://grafana.monitoring:3000/"
        ],
        "{list:#?}"
    );
    let cells: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(
        cells,
        [
            "edge",
            "prometheus",
            "prometheus",
            "/tools/edge/prometheus/",
            "operator,tester",
            "http://prometheus.monitoring:9090/"
        ],
        "{list:#?}"
    );
    let listed = tools(&server);
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
    let prom = &listed[1];
    assert_eq!(prom["cluster"], "edge", "{listed}");
    assert_eq!(prom["name"], "prometheus", "{listed}");
    assert_eq!(prom["kind"], "prometheus", "{listed}");
    assert_eq!(prom["path"], "/tools/edge/prometheus/", "{listed}");
    assert_eq!(prom["roles"], json!(["operator", "tester"]), "{listed}");
    assert_eq!(prom["strip_prefix"], false, "{listed}");
    assert_eq!(prom["description"], "Metrics of edge", "{listed}");

    // nginx's configuration, as text.
    let conf = server
        .run(&[
            "ops-front",
            "nginx-config",
            "--prism",
            "127.0.0.1:9999",
            "--listen",
            "8081",
        ])
        .ok();
    for needle in [
        "location /tools/edge/prometheus/",
        "location /tools/edge/grafana/",
        "auth_request /_prism_auth;",
        "listen 8081;",
        "server 127.0.0.1:9999;",
    ] {
        assert!(conf.stdout.contains(needle), "{needle}: {conf:#?}");
    }
    assert!(
        conf.stdout.ends_with("}\n") && !conf.stdout.ends_with("}\n\n"),
        "{conf:#?}"
    );
    assert!(
        !conf.stdout.trim_start().starts_with('"'),
        "raw text, not JSON: {conf:#?}"
    );
    // A value nginx could trip on: refused, the parameter named.
    server
        .run(&["ops-front", "nginx-config", "--listen", "80; evil"])
        .fails_with(1, "(field: listen)");

    // Refused, naming the field; nothing changes.
    server
        .run(&[
            "ops-front",
            "set",
            "edge",
            "bad",
            "--kind",
            "other",
            "--upstream",
            "http://x/$host",
        ])
        .fails_with(1, "(field: upstream)");
    server
        .run(&[
            "ops-front",
            "set",
            "edge",
            "bad",
            "--kind",
            "other",
            "--upstream",
            "http://x/",
            "--role",
            "boss",
        ])
        .fails_with(1, "(field: roles[0])");
    // A kind the server does not know: a usage error, before asking it.
    server
        .run(&[
            "ops-front",
            "set",
            "edge",
            "bad",
            "--kind",
            "kibana",
            "--upstream",
            "http://x/",
        ])
        .fails_with(2, "kibana");
    server
        .run(&[
            "ops-front",
            "set",
            "nowhere",
            "bad",
            "--kind",
            "other",
            "--upstream",
            "http://x/",
        ])
        .fails_with(1, "nowhere");
    assert_eq!(tools(&server), listed);

    // Someone who is not an admin: an operator of shop.
    server
        .run_with_stdin(
            &["user", "create", "olga", "--password-stdin"],
            &format!("{PASSWORD}\n"),
        )
        .ok();
    server.run(&["project", "grant", "shop", "olga", "operator"]).ok();
    let olga = dirs.join("olga");
    prism(
        &olga,
        &["login", &server.url, "--username", "olga", "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    )
    .ok();
    // Sees the tool her role opens, not the admins' one.
    let hers = prism(&olga, &["ops-front", "tools", "--output", "json"], None).json();
    assert_eq!(hers.as_array().map(Vec::len), Some(1), "{hers}");
    assert_eq!(hers[0]["name"], "prometheus", "{hers}");
    prism(
        &olga,
        &[
            "ops-front",
            "set",
            "edge",
            "mine",
            "--kind",
            "other",
            "--upstream",
            "http://x/",
        ],
        None,
    )
    .fails_with(1, "admin");
    prism(&olga, &["ops-front", "delete", "edge", "prometheus"], None).fails_with(1, "admin");
    prism(&olga, &["ops-front", "nginx-config"], None).fails_with(1, "admin");
    prism(&olga, &["user", "end-sessions", "admin"], None).fails_with(1, "admin");

    // Ending her browser session: the cookie stops working, her API token does not.
    let cookie = browser_login(&server.url, "olga", PASSWORD);
    assert_eq!(me_with_cookie(&server.url, &cookie), 200);
    let ended = server.run(&["user", "end-sessions", "olga"]).ok();
    assert_eq!(ended.stdout.trim(), "Ended 1 browser session(s) of olga.", "{ended:#?}");
    assert_eq!(me_with_cookie(&server.url, &cookie), 401);
    let whoami = prism(&olga, &["whoami"], None).ok();
    assert!(whoami.stdout.contains("olga"), "{whoami:#?}");
    // None left; in JSON, the server's answer.
    let again = server.json(&["user", "end-sessions", "olga"]);
    assert_eq!(again, json!({"ended": 0}));
    server.run(&["user", "end-sessions", "nobody"]).fails_with(1, "nobody");

    // Deleting.
    let deleted = server.run(&["ops-front", "delete", "edge", "grafana"]).ok();
    assert!(
        deleted.stdout.contains("Deleted the ops tool grafana of cluster edge"),
        "{deleted:#?}"
    );
    let left = tools(&server);
    assert_eq!(left.as_array().map(Vec::len), Some(1), "{left}");
    assert_eq!(left[0]["name"], "prometheus", "{left}");
    server
        .run(&["ops-front", "delete", "edge", "grafana"])
        .fails_with(1, "grafana");
    let conf = server.run(&["ops-front", "nginx-config"]).ok();
    assert!(
        conf.stdout.contains("location /tools/edge/prometheus/")
            && !conf.stdout.contains("/tools/edge/grafana/")
            && conf.stdout.contains("listen 80;")
            && conf.stdout.contains("server 127.0.0.1:8080;"),
        "{conf:#?}"
    );
    server.stop();
}
