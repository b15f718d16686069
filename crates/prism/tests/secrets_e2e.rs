//! Application secrets (issue 19) end to end, against a real Kubernetes
//! v1.20.2 control plane (test-support `KubeCluster`, with the simulated
//! node) and a real `prism serve`, on SQLite and on PostgreSQL:
//! - values set through the API (application and project scope, one per
//!   environment or for all) reach the cluster only as a Secret's data; the
//!   Deployment references them (`secretKeyRef`, a projected volume for a
//!   file), and a unique marker value is found nowhere else: not in any API
//!   answer a developer or an admin gets (lists, deploy, events, review diff,
//!   preview, drift, board, audit), not in the console's pages, not in the
//!   server's debug log, not in the deploy's stored manifests, not in
//!   `kubectl get deployment -o json`, not in the database;
//! - a reference to an existing Secret is refused at planning while it is
//!   missing, lacks the key, or is not granted to the application, naming it;
//! - a developer who may deploy to UAT but not PRD changes the UAT value and
//!   is refused for PRD and for "every environment";
//! - a changed value shows in the review as `version 1 -> version 2`, rolls
//!   the pods (a new Secret name in the pod template), and the old Secret is
//!   pruned once the rollout is complete; a rollback restores the old value.

use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

use prism_test_support::kube::KubeCluster;
use prism_test_support::process::ADMIN_PASSWORD;
use prism_test_support::{wait_for_every, Backend, ServerProcess, TestDb};

struct Prism {
    server: ServerProcess,
    token: String,
}

impl Prism {
    fn new(backend: Backend) -> Self {
        let server = ServerProcess::start_on(
            TestDb::start_blocking(backend),
            "secrets",
            &[("PRISM_JOB_POLL_MS", "100"), ("PRISM_LOG", "debug")],
        );
        let mut p = Prism {
            server,
            token: String::new(),
        };
        p.token = p.login("admin", ADMIN_PASSWORD);
        p
    }

    fn login(&self, user: &str, password: &str) -> String {
        let (s, v) = self.call_as(
            "",
            "POST",
            "/api/v1/auth/token",
            Some(json!({"username": user, "password": password})),
        );
        assert_eq!(s, 201, "{v}");
        v["secret"].as_str().unwrap().to_owned()
    }

    fn call_as(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let mut req = client.request(method.parse().unwrap(), format!("{}{path}", self.server.url));
        if !token.is_empty() {
            req = req.bearer_auth(token);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().unwrap();
        let s = r.status().as_u16();
        let text = r.text().unwrap_or_default();
        (s, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call_as(&self.token, method, path, body)
    }

    fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (s, v) = self.call(method, path, body);
        assert!((200..300).contains(&s), "{method} {path} -> {s}: {v}");
        v
    }

    /// A built release of `web` promoted into `env`; returns its id.
    fn release(&self, env: &str) -> String {
        let r = self.ok(
            "POST",
            "/api/v1/releases",
            Some(json!({"application": "web", "git_ref": "main", "change_note": "secrets"})),
        );
        let id = r["id"].as_str().unwrap().to_owned();
        self.ok(
            "POST",
            &format!("/api/v1/releases/{id}/actions/start_build"),
            Some(json!({})),
        );
        self.ok(
            "POST",
            &format!("/api/v1/releases/{id}/actions/build_succeeded"),
            Some(json!({"image_ref": "registry.example/web:r1", "commit_sha": "abcdef1"})),
        );
        self.ok(
            "POST",
            &format!("/api/v1/releases/{id}/actions/promote"),
            Some(json!({"environment": env})),
        );
        id
    }

    fn deploy(&self, env: &str) -> Value {
        let id = self.release(env);
        let d = self.ok(
            "POST",
            &format!("/api/v1/releases/{id}/deploys"),
            Some(json!({"environment": env})),
        );
        self.wait(d["id"].as_i64().unwrap())
    }

    fn wait(&self, did: i64) -> Value {
        let mut last = Value::Null;
        wait_for_every(
            &format!("deploy {did} to settle"),
            Duration::from_secs(90),
            Duration::from_millis(200),
            || {
                last = self.ok("GET", &format!("/api/v1/deploys/{did}"), None);
                ["succeeded", "failed", "rejected"].iter().any(|s| last["state"] == *s)
            },
        );
        last
    }

    fn events(&self, d: &Value) -> Value {
        self.ok("GET", &format!("/api/v1/deploys/{}/events", d["id"]), None)
    }

    fn set(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        self.call_as(token, "PUT", path, Some(body))
    }

    /// A console page, read with a session of `user`.
    fn page(&self, session: &str, path: &str) -> String {
        let r = reqwest::blocking::Client::new()
            .get(format!("{}{path}", self.server.url))
            .header("cookie", session)
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "GET {path}");
        r.text().unwrap()
    }

    fn session(&self, user: &str, password: &str) -> String {
        let r = reqwest::blocking::Client::new()
            .post(format!("{}/api/v1/auth/login", self.server.url))
            .json(&json!({"username": user, "password": password}))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        r.headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
            .find(|c| c.starts_with("prism_session="))
            .expect("session cookie")
    }
}

fn get_json(k: &KubeCluster, args: &[&str]) -> Value {
    let mut a = vec!["get", "-o", "json"];
    a.extend_from_slice(args);
    serde_json::from_str(&k.kubectl(&a)).unwrap()
}

fn decode(v: &Value) -> String {
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("base64 data"))
            .unwrap(),
    )
    .unwrap()
}

/// The name of the Secret the Deployment's first container reads `var` from.
fn secret_of(deployment: &Value, var: &str) -> String {
    deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == var)
        .unwrap_or_else(|| panic!("{var} not in the container's env: {deployment}"))["valueFrom"]["secretKeyRef"]
        ["name"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn assert_nowhere(what: &str, text: &str, markers: &[&str]) {
    for m in markers {
        assert!(!text.contains(m), "the secret value {m} shows in {what}");
    }
}

const DEVELOPMENT: &str =
    r#"{"deploy_roles": ["developer", "operator"], "requires_review": false, "requires_previous": false}"#;
const PRODUCTION: &str = r#"{"deploy_roles": ["operator"], "requires_review": false, "requires_previous": false}"#;

fn secrets(backend: Backend) {
    let k = KubeCluster::up();
    k.kubectl(&["create", "namespace", "shop-uat"]);
    k.kubectl(&["create", "namespace", "shop-prd"]);
    let p = Prism::new(backend);
    p.ok(
        "POST",
        "/api/v1/clusters",
        Some(json!({"name": "one", "kubeconfig": k.kubeconfig_text()})),
    );
    for (env, ns, policy) in [("uat", "shop-uat", DEVELOPMENT), ("prd", "shop-prd", PRODUCTION)] {
        let policy: Value = serde_json::from_str(policy).unwrap();
        p.ok(
            "PATCH",
            &format!("/api/v1/environments/{env}"),
            Some(json!({"cluster": "one", "namespace": ns, "policy": policy})),
        );
    }
    p.ok("POST", "/api/v1/projects", Some(json!({"name": "shop"})));
    p.ok("POST", "/api/v1/applications", Some(json!({"project": "shop", "name": "web", "git_url": "https://git.example/web.git", "template_settings": {"progress_deadline_seconds": 60, "port": 8080}})));
    p.ok(
        "POST",
        "/api/v1/users",
        Some(json!({"username": "dana", "password": "dana-long-password"})),
    );
    p.ok(
        "POST",
        "/api/v1/projects/shop/members",
        Some(json!({"username": "dana", "role": "developer"})),
    );
    let dana = p.login("dana", "dana-long-password");

    let unique = uuid::Uuid::new_v4().simple().to_string();
    let db_uat_1 = format!("db-uat-one-{unique}");
    let db_uat_2 = format!("db-uat-two-{unique}");
    let db_all = format!("db-all-{unique}");
    let api_token = format!("api-token-{unique}");
    let markers = [
        db_uat_1.as_str(),
        db_uat_2.as_str(),
        db_all.as_str(),
        api_token.as_str(),
    ];

    // Bad input is refused naming the field, and nothing is written.
    let (s, v) = p.set(&p.token, "/api/v1/applications/web/secrets/1BAD", json!({"value": "x"}));
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["field"], "name", "{v}");
    let (s, v) = p.set(
        &p.token,
        "/api/v1/applications/web/secrets/OK",
        json!({"value": "x", "existing": {"secret": "a", "key": "b"}}),
    );
    assert_eq!(s, 422, "{v}");
    let (s, v) = p.set(
        &p.token,
        "/api/v1/applications/web/secrets/OK",
        json!({"existing": {"secret": "../etc", "key": "b"}}),
    );
    assert_eq!((s, v["field"].as_str()), (422, Some("existing.secret")), "{v}");
    let (s, v) = p.set(
        &p.token,
        "/api/v1/applications/web/secrets/OK",
        json!({"value": "x", "environment": "nope"}),
    );
    assert_eq!((s, v["field"].as_str()), (422, Some("environment")), "{v}");
    assert_eq!(p.ok("GET", "/api/v1/applications/web/secrets", None), json!([]));

    // The admin sets: DB_PASSWORD for every environment and another for UAT,
    // the project's API_TOKEN in UAT as a file, and a reference to Vault's Secret.
    p.set(
        &p.token,
        "/api/v1/applications/web/secrets/DB_PASSWORD",
        json!({"value": db_all}),
    );
    let (s, v) = p.set(
        &p.token,
        "/api/v1/applications/web/secrets/DB_PASSWORD",
        json!({"value": db_uat_1, "environment": "uat"}),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["version"], 1);
    let (s, v) = p.set(
        &p.token,
        "/api/v1/projects/shop/secrets/API_TOKEN",
        json!({"value": api_token, "environment": "uat", "delivery": "file"}),
    );
    assert_eq!(s, 200, "{v}");
    let (s, v) = p.set(
        &p.token,
        "/api/v1/applications/web/secrets/VAULT_DB",
        json!({"existing": {"secret": "vault-db", "key": "password"}, "environment": "uat"}),
    );
    assert_eq!(s, 200, "{v}");

    // The existing Secret is checked at planning: missing, then without the key,
    // then not granted to the application; each refusal names what is wrong.
    let d = p.deploy("uat");
    assert_eq!(d["state"], "failed", "{d}");
    assert!(
        d["error"]
            .as_str()
            .unwrap()
            .contains("secret VAULT_DB: Secret \"vault-db\" does not exist in namespace shop-uat"),
        "{d}"
    );
    k.kubectl(&[
        "-n",
        "shop-uat",
        "create",
        "secret",
        "generic",
        "vault-db",
        "--from-literal=pw=from-vault",
    ]);
    k.kubectl(&[
        "-n",
        "shop-uat",
        "annotate",
        "secret",
        "vault-db",
        "prism.io/applications=web",
    ]);
    let d = p.deploy("uat");
    assert_eq!(d["state"], "failed", "{d}");
    assert!(d["error"].as_str().unwrap().contains("has no key \"password\""), "{d}");
    k.kubectl(&["-n", "shop-uat", "delete", "secret", "vault-db"]);
    k.kubectl(&[
        "-n",
        "shop-uat",
        "create",
        "secret",
        "generic",
        "vault-db",
        "--from-literal=password=from-vault",
    ]);
    let d = p.deploy("uat");
    assert_eq!(d["state"], "failed", "{d}");
    assert!(
        d["error"]
            .as_str()
            .unwrap()
            .contains("is not granted to application web"),
        "{d}"
    );
    k.kubectl(&[
        "-n",
        "shop-uat",
        "annotate",
        "secret",
        "vault-db",
        "prism.io/applications=web",
    ]);

    // Now it deploys: the Deployment references, the Secret holds the values.
    let first = p.deploy("uat");
    assert_eq!(first["state"], "succeeded", "{first}\n{}", p.events(&first));
    let dep = get_json(&k, &["-n", "shop-uat", "deployment", "web"]);
    assert_nowhere("kubectl get deployment", &dep.to_string(), &markers);
    let first_secret = secret_of(&dep, "DB_PASSWORD");
    assert!(first_secret.starts_with("web-secrets-"), "{first_secret}");
    assert_eq!(secret_of(&dep, "VAULT_DB"), "vault-db");
    let volumes = &dep["spec"]["template"]["spec"]["volumes"];
    assert_eq!(
        volumes[0]["projected"]["sources"][0]["secret"]["name"],
        first_secret.as_str(),
        "{volumes}"
    );
    assert_eq!(
        volumes[0]["projected"]["sources"][0]["secret"]["items"][0]["path"],
        "API_TOKEN"
    );
    let secret = get_json(&k, &["-n", "shop-uat", "secret", &first_secret]);
    assert_eq!(decode(&secret["data"]["DB_PASSWORD"]), db_uat_1);
    assert_eq!(decode(&secret["data"]["API_TOKEN"]), api_token);
    assert!(secret["data"].get("VAULT_DB").is_none(), "{secret}");

    // The developer may change UAT, not PRD, and not every environment.
    let (s, v) = p.set(
        &dana,
        "/api/v1/applications/web/secrets/DB_PASSWORD",
        json!({"value": "nope", "environment": "prd"}),
    );
    assert_eq!(s, 403, "{v}");
    let (s, v) = p.set(
        &dana,
        "/api/v1/applications/web/secrets/DB_PASSWORD",
        json!({"value": "nope"}),
    );
    assert_eq!(s, 403, "{v}");
    assert!(v["error"].as_str().unwrap().contains("prd"), "{v}");
    let (s, v) = p.call_as(&dana, "DELETE", "/api/v1/applications/web/secrets/DB_PASSWORD", None);
    assert_eq!(s, 403, "{v}");
    let (s, v) = p.set(
        &dana,
        "/api/v1/applications/web/secrets/DB_PASSWORD",
        json!({"value": db_uat_2, "environment": "uat"}),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["version"], 2);
    assert_eq!(v["updated_by"], "dana");

    // The next deploy: the review diff says version 1 -> 2, the pods roll onto
    // a new Secret, and the old one goes once the rollout is complete.
    let second = p.deploy("uat");
    assert_eq!(second["state"], "succeeded", "{second}\n{}", p.events(&second));
    let diff = second["diff"].to_string();
    assert!(
        diff.contains(r#""path":"secrets.DB_PASSWORD""#)
            && diff.contains(r#""before":"version 1""#)
            && diff.contains(r#""after":"version 2""#),
        "{diff}"
    );
    let dep = get_json(&k, &["-n", "shop-uat", "deployment", "web"]);
    let second_secret = secret_of(&dep, "DB_PASSWORD");
    assert_ne!(
        second_secret, first_secret,
        "a changed value is a new Secret, so the pods roll"
    );
    let secret = get_json(&k, &["-n", "shop-uat", "secret", &second_secret]);
    assert_eq!(decode(&secret["data"]["DB_PASSWORD"]), db_uat_2);
    let gone = k.kubectl(&[
        "-n",
        "shop-uat",
        "get",
        "secret",
        "--ignore-not-found",
        "-o",
        "name",
        &first_secret,
    ]);
    assert_eq!(gone.trim(), "", "the previous Secret is pruned after the rollout");
    let events = p.events(&second).to_string();
    assert!(events.contains(&format!("pruned Secret/{first_secret}")), "{events}");

    // A rollback restores the previous value (the Secret is made again from the sealed version).
    let back = p.ok(
        "POST",
        "/api/v1/applications/web/environments/uat/rollback",
        Some(json!({"to_deploy": first["id"]})),
    );
    let back = p.wait(back["id"].as_i64().unwrap());
    assert_eq!(back["state"], "succeeded", "{back}\n{}", p.events(&back));
    let dep = get_json(&k, &["-n", "shop-uat", "deployment", "web"]);
    assert_eq!(secret_of(&dep, "DB_PASSWORD"), first_secret);
    let secret = get_json(&k, &["-n", "shop-uat", "secret", &first_secret]);
    assert_eq!(decode(&secret["data"]["DB_PASSWORD"]), db_uat_1);

    // The marker is found only in the Secret's data: every answer a developer and
    // an admin get, the console, the log, the stored manifests, the database.
    let release = second["release"].as_str().unwrap().to_owned();
    for token in [&p.token, &dana] {
        for (method, path, body) in [
            ("GET", "/api/v1/applications/web/secrets".to_owned(), None),
            ("GET", "/api/v1/projects/shop/secrets".to_owned(), None),
            ("GET", format!("/api/v1/deploys/{}", first["id"]), None),
            ("GET", format!("/api/v1/deploys/{}", second["id"]), None),
            ("GET", format!("/api/v1/deploys/{}/events", second["id"]), None),
            ("GET", format!("/api/v1/deploys/{}/events", back["id"]), None),
            ("GET", "/api/v1/deploys?application=web".to_owned(), None),
            ("GET", "/api/v1/board?application=web".to_owned(), None),
            ("GET", "/api/v1/applications/web/settings".to_owned(), None),
            (
                "GET",
                "/api/v1/applications/web/environments/uat/drift".to_owned(),
                None,
            ),
            (
                "POST",
                "/api/v1/applications/web/preview".to_owned(),
                Some(json!({"environment": "uat", "release": release})),
            ),
            ("GET", "/api/v1/audit".to_owned(), None),
        ] {
            let (s, v) = p.call_as(token, method, &path, body);
            assert!(s < 500, "{path}: {s} {v}");
            assert_nowhere(&format!("{method} {path}"), &v.to_string(), &markers);
        }
    }
    let drift = p.ok("GET", "/api/v1/applications/web/environments/uat/drift", None);
    assert_eq!(
        drift["drifted"], false,
        "the stored Secret without data is no drift: {drift}"
    );
    let listed = p.ok("GET", "/api/v1/applications/web/secrets", None);
    assert_eq!(listed.as_array().unwrap().len(), 4, "{listed}");
    let audit = p.ok("GET", "/api/v1/audit", None).to_string();
    assert!(audit.contains("secret.put") && audit.contains("DB_PASSWORD"), "{audit}");
    for user in [("admin", ADMIN_PASSWORD), ("dana", "dana-long-password")] {
        let session = p.session(user.0, user.1);
        for path in [
            "/apps/web".to_owned(),
            "/apps/web/secrets".to_owned(),
            format!("/deploys/{}", second["id"]),
            format!("/deploys/{}", back["id"]),
        ]
        .into_iter()
        // The audit page is the admins'.
        .chain((user.0 == "admin").then(|| "/audit".to_owned()))
        {
            let html = p.page(&session, &path);
            assert_nowhere(&format!("the console's {path}"), &html, &markers);
        }
        let html = p.page(&session, "/apps/web/secrets");
        assert!(
            html.contains("DB_PASSWORD") && html.contains("vault-db:password"),
            "{html}"
        );
    }
    assert_nowhere("the server's debug log", &p.server.log(), &markers);
    match backend {
        Backend::Sqlite => {
            for entry in std::fs::read_dir(p.server.db().dir()).unwrap() {
                let path = entry.unwrap().path();
                if path.is_file() {
                    let bytes = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
                    assert_nowhere(&path.display().to_string(), &bytes, &markers);
                }
            }
        }
        Backend::Postgres => {
            let out = std::process::Command::new("pg_dump")
                .arg(p.server.db().url())
                .output()
                .expect("pg_dump");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let dump = String::from_utf8_lossy(&out.stdout);
            assert!(dump.contains("app_secret_values"), "the dump holds the secrets' table");
            assert_nowhere("pg_dump of the database", &dump, &markers);
        }
    }
    p.server.stop();
}

#[test]
fn secrets_reach_only_the_secret_on_sqlite() {
    secrets(Backend::Sqlite);
}

#[test]
fn secrets_reach_only_the_secret_on_postgres() {
    secrets(Backend::Postgres);
}
