//! Prism as the one login in front of a cluster's ops tools (issue 13 item
//! 3), with real parts: Debian's nginx running the configuration Prism
//! generates, in front of a real `prism serve`, Debian's Prometheus (under
//! its sub-path) and an upstream that echoes the identity headers it got
//! (standing in for Grafana's `auth.proxy`). Checked: logged out, a tool's
//! page sends the browser to Prism's login and, after logging in, back to
//! the page; an allowed role gets through with the identity headers; a
//! role the tool does not allow gets 403; headers a client sends under the
//! identity names are replaced; the auth endpoint never redirects.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use prism_test_support::process::ADMIN_PASSWORD;
use prism_test_support::{free_port, ServerProcess};
use serde_json::{json, Value};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

fn api(url: &str, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, String) {
    let mut req = client()
        .request(method.parse().unwrap(), format!("{url}{path}"))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

fn ok(url: &str, token: &str, method: &str, path: &str, body: Value) {
    let (s, v) = api(url, token, method, path, Some(body));
    assert!((200..300).contains(&s), "{method} {path}: {s} {v}");
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "{what} not ready in 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An upstream that answers every request with the path and headers it received.
fn echo() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut first = String::new();
            let _ = r.read_line(&mut first);
            let mut headers = serde_json::Map::new();
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = line.trim_end().split_once(':') {
                    headers.insert(k.trim().to_ascii_lowercase(), json!(v.trim()));
                }
            }
            let path = first.split_whitespace().nth(1).unwrap_or("").to_owned();
            let body = json!({"path": path, "headers": headers}).to_string();
            let mut s = s;
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

/// Logs in through the front's login form (as a browser would), following
/// `next`; returns the client with the session cookie and where it was sent.
fn log_in(front: &str, next: &str, user: &str, password: &str) -> (reqwest::blocking::Client, String) {
    let b = client();
    let page = b
        .get(format!("{front}/login?next={next}"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let field = |name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        let at = page.find(&marker).unwrap_or_else(|| panic!("no {name} in {page}")) + marker.len();
        // As a browser reads the attribute (minijinja escapes `/` too).
        page[at..]
            .split('"')
            .next()
            .unwrap()
            .replace("&#x2f;", "/")
            .replace("&#x27;", "'")
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    };
    let (csrf, kept) = (field("csrf"), field("next"));
    assert_eq!(kept, next, "the login form keeps where to go");
    let r = b
        .post(format!("{front}/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", user),
            ("password", password),
            ("next", kept.as_str()),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 303, "{user}: {:?}", r.text());
    let to = r.headers()["location"].to_str().unwrap().to_owned();
    (b, to)
}

/// A browser session of `user` (logged in through the front), its cookie's value.
fn session_of(front: &str, user: &str) -> String {
    let r = client()
        .post(format!("{front}/api/v1/auth/login"))
        .json(&json!({"username": user, "password": "front-pw-1234"}))
        .send()
        .unwrap();
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("prism_session="))
        .map(|c| c.split(';').next().unwrap().to_owned())
        .expect("a session cookie")
}

#[test]
fn ops_tools_open_through_nginx_for_the_roles_prism_allows() {
    for tool in ["nginx", "prometheus"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .unwrap();
        assert!(found.status.success(), "{tool} is needed (scripts/test.sh installs it)");
    }
    let server = ServerProcess::start_with("ops-front", &[]);
    let url = server.url.clone();
    let token = {
        let r = client()
            .post(format!("{url}/api/v1/auth/token"))
            .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
            .send()
            .unwrap();
        r.json::<Value>().unwrap()["secret"].as_str().unwrap().to_owned()
    };
    let admin = token.as_str();
    ok(&url, admin, "POST", "/api/v1/projects", json!({"name": "shop"}));
    for (user, role) in [("otto", "operator"), ("dana", "developer")] {
        ok(
            &url,
            admin,
            "POST",
            "/api/v1/users",
            json!({"username": user, "password": "front-pw-1234"}),
        );
        ok(
            &url,
            admin,
            "POST",
            "/api/v1/projects/shop/members",
            json!({"username": user, "role": role}),
        );
    }
    ok(
        &url,
        admin,
        "POST",
        "/api/v1/clusters",
        json!({"name": "edge", "api_url": "https://10.0.0.9:6443"}),
    );

    let dir = tempfile::tempdir().unwrap();
    let (front_port, prom_port, echo_port) = (free_port(), free_port(), echo());
    let front = format!("http://127.0.0.1:{front_port}");
    // Prometheus under its sub-path (it is told where it is reached).
    std::fs::write(dir.path().join("prometheus.yml"), "global: {scrape_interval: 15s}\n").unwrap();
    let _prometheus = Killed(
        Command::new("prometheus")
            .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .arg(format!("--web.external-url={front}/tools/edge/prometheus/"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("prometheus", || {
        client()
            .get(format!("http://127.0.0.1:{prom_port}/tools/edge/prometheus/-/ready"))
            .send()
            .is_ok_and(|r| r.status().is_success())
    });

    // The tools, then nginx with the configuration Prism writes for them.
    ok(
        &url,
        admin,
        "PUT",
        "/api/v1/ops-tools/edge/prometheus",
        json!({"kind": "prometheus", "upstream": format!("http://127.0.0.1:{prom_port}"), "roles": ["operator"]}),
    );
    ok(
        &url,
        admin,
        "PUT",
        "/api/v1/ops-tools/edge/grafana",
        json!({"kind": "grafana", "upstream": format!("http://127.0.0.1:{echo_port}"), "strip_prefix": true,
               "roles": ["operator", "developer"]}),
    );
    let (s, listed) = api(&url, admin, "GET", "/api/v1/ops-tools", None);
    assert_eq!(s, 200, "{listed}");
    let (s, conf) = api(
        &url,
        admin,
        "GET",
        &format!(
            "/api/v1/ops-tools/nginx-config?prism=127.0.0.1:{}&listen=127.0.0.1:{front_port}",
            server.port
        ),
        None,
    );
    assert_eq!(s, 200, "{conf}");
    let d = dir.path().display();
    std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
    std::fs::write(dir.path().join("prism.conf"), &conf).unwrap();
    std::fs::write(
        dir.path().join("nginx.conf"),
        format!(
            "user root;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\n\
             http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/tmp/body;\n  proxy_temp_path {d}/tmp/proxy;\n\
             fastcgi_temp_path {d}/tmp/fcgi;\n  uwsgi_temp_path {d}/tmp/uwsgi;\n  scgi_temp_path {d}/tmp/scgi;\n  include {d}/prism.conf;\n}}\n"
        ),
    )
    .unwrap();
    let conf_path = dir.path().join("nginx.conf");
    let check = Command::new("nginx")
        .args(["-t", "-p"])
        .arg(dir.path())
        .arg("-c")
        .arg(&conf_path)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "nginx -t: {}\n{conf}",
        String::from_utf8_lossy(&check.stderr)
    );
    let _nginx = Killed(
        Command::new("nginx")
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf_path)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("nginx", || {
        client()
            .get(format!("{front}/healthz"))
            .send()
            .is_ok_and(|r| r.status().is_success())
    });

    // The endpoint nginx asks never redirects.
    let r = client()
        .get(format!("{url}/auth/ops/check"))
        .header("x-original-uri", "/tools/edge/grafana/")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // Logged out: to Prism's login, which then leads back to the tool.
    let query = "/tools/edge/prometheus/api/v1/query?query=vector(42)";
    let r = client().get(format!("{front}{query}")).send().unwrap();
    assert_eq!(r.status().as_u16(), 302);
    // (nginx makes the redirect absolute, on its own address.)
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        format!("{front}/login?next={query}")
    );
    let (otto, to) = log_in(&front, query, "otto", "front-pw-1234");
    assert_eq!(to, query);
    let answer: Value = otto.get(format!("{front}{to}")).send().unwrap().json().unwrap();
    assert_eq!(
        answer["data"]["result"][0]["value"][1], "42",
        "Prometheus answered through the front: {answer}"
    );

    // The echo tool gets otto's identity, whatever the client claimed.
    let got: Value = otto
        .get(format!("{front}/tools/edge/grafana/api/user"))
        .header("X-Auth-User", "admin")
        .header("X-WEBAUTH-USER", "admin")
        .header("X-Auth-Roles", "admin")
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(got["path"], "/api/user", "the prefix is stripped for this tool: {got}");
    assert_eq!(got["headers"]["x-auth-user"], "otto", "{got}");
    assert_eq!(got["headers"]["x-webauth-user"], "otto", "{got}");
    assert_eq!(got["headers"]["x-auth-roles"], "shop:operator", "{got}");

    // Prism's session cookie stays with Prism; the tool's own cookies pass.
    let session = session_of(&front, "otto");
    let got: Value = reqwest::blocking::Client::new()
        .get(format!("{front}/tools/edge/grafana/"))
        .header(
            "Cookie",
            format!("grafana_session=g1; prism_session={session}; theme=dark"),
        )
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(got["headers"]["x-auth-user"], "otto", "{got}");
    let cookie = got["headers"]["cookie"].as_str().unwrap_or_default();
    assert!(!cookie.contains(&session) && !cookie.contains("prism_session"), "{got}");
    assert!(
        cookie.contains("grafana_session=g1") && cookie.contains("theme=dark"),
        "{got}"
    );

    // dana (developer) may open the echo tool, not Prometheus.
    let (dana, _) = log_in(&front, "/tools/edge/grafana/", "dana", "front-pw-1234");
    assert_eq!(
        dana.get(format!("{front}{query}")).send().unwrap().status().as_u16(),
        403
    );
    let got: Value = dana
        .get(format!("{front}/tools/edge/grafana/"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(got["headers"]["x-auth-user"], "dana");
    // The console's list, through the front: only what dana may open.
    let page = dana.get(format!("{front}/ops-tools")).send().unwrap().text().unwrap();
    assert!(
        page.contains("data-tool=\"edge/grafana\"") && !page.contains("edge/prometheus"),
        "{page}"
    );
    // A path that climbs out of the tool dana may open into one she may not:
    // nginx serves Prometheus's location, and Prism is asked about that, not
    // about the path as sent (the raw request, as `curl --path-as-is` sends it).
    let dana_session = session_of(&front, "dana");
    let raw = |path: &str, cookie: &str| -> String {
        use std::io::Read;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", front_port)).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{front_port}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out.lines().next().unwrap_or_default().to_owned()
    };
    let cookie = format!("prism_session={dana_session}");
    assert!(
        raw("/tools/edge/grafana/", &cookie).contains(" 200 "),
        "dana opens grafana"
    );
    for climb in [
        "/tools/edge/grafana/../prometheus/api/v1/query?query=vector(42)",
        "/tools/edge/grafana/%2e%2e/prometheus/api/v1/query?query=vector(42)",
    ] {
        let status = raw(climb, &cookie);
        assert!(
            status.contains(" 403 ") || status.contains(" 400 "),
            "{climb}: {status}"
        );
    }
    // Two Prism session cookies (one planted under a tool's path): refused.
    let status = raw("/tools/edge/grafana/", &format!("prism_session=planted; {cookie}"));
    assert!(status.contains(" 400 "), "{status}");

    // What each may open, as the API lists it.
    let dana_token = {
        let r = client()
            .post(format!("{url}/api/v1/auth/token"))
            .json(&json!({"username": "dana", "password": "front-pw-1234"}))
            .send()
            .unwrap();
        r.json::<Value>().unwrap()["secret"].as_str().unwrap().to_owned()
    };
    let (_, mine) = api(&url, &dana_token, "GET", "/api/v1/ops-tools", None);
    let mine: Value = serde_json::from_str(&mine).unwrap();
    let names: Vec<&str> = mine
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["grafana"]);
    // A developer cannot register tools or read nginx's configuration.
    let (s, _) = api(&url, &dana_token, "GET", "/api/v1/ops-tools/nginx-config", None);
    assert_eq!(s, 403);
    drop(server);
}
