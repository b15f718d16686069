//! Namespace isolation between projects (issue 11 item 5) against a real
//! Kubernetes v1.20.2 control plane (test-support `KubeCluster`, with the
//! simulated node) and a real `prism serve`, through Prism's API, on SQLite
//! and on PostgreSQL. Two projects, `shop` (application `shop-web`) and
//! `blog` (application `blog-web`), deploy to one cluster:
//! - a fixed, shared namespace still works (shop's Secret and Ingress);
//! - blog's template mounting shop's Secret is refused with the field path;
//! - blog's template re-rendering shop's Deployment with shop's labels
//!   cannot take it over (this held before the change too);
//! - blog claiming shop's Ingress host (from another namespace) is refused;
//! - with the pattern `{project}-{environment}`, blog cannot pre-create
//!   `Deployment shop-web` in shop's namespace, and each project deploys into
//!   its own namespace, created by Prism and labelled with the project;
//! - with a token that may not create namespaces the error names the
//!   namespace; an admin's per-project binding then works;
//! - a host taken while a deploy awaited review is refused when it is applied.
//!
//! Every refusal but the last happens while planning: the deploy fails
//! before any dry run and nothing of it reaches the cluster.
//!
//! Requires `scripts/k8s/ensure-binaries.sh` and the workspace's binaries.

use std::time::Duration;

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
            "isolation",
            &[("PRISM_JOB_POLL_MS", "100"), ("PRISM_LOG", "warn")],
        );
        let mut p = Prism {
            server,
            token: String::new(),
        };
        let v = p.ok(
            "POST",
            "/api/v1/auth/token",
            Some(json!({"username": "admin", "password": ADMIN_PASSWORD})),
        );
        p.token = v["secret"].as_str().unwrap().to_owned();
        p
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let mut req = client.request(method.parse().unwrap(), format!("{}{path}", self.server.url));
        if !self.token.is_empty() {
            req = req.bearer_auth(&self.token);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().unwrap();
        let s = r.status().as_u16();
        let text = r.text().unwrap_or_default();
        (s, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (s, v) = self.call(method, path, body);
        assert!((200..300).contains(&s), "{method} {path} -> {s}: {v}");
        v
    }

    /// Replaces the project's own templates (the built-ins stay for the rest).
    fn templates(&self, project: &str, files: Value) {
        let cur = self.ok("GET", &format!("/api/v1/projects/{project}/templates"), None);
        self.ok(
            "PUT",
            &format!("/api/v1/projects/{project}/templates"),
            Some(json!({"base_version": cur["current"]["version"], "files": files})),
        );
    }

    fn settings(&self, app: &str, template_settings: Value) {
        self.ok(
            "PATCH",
            &format!("/api/v1/applications/{app}"),
            Some(json!({"template_settings": template_settings})),
        );
    }

    /// A built release of `app` promoted into `env`, deployed; waits until it settles.
    fn deploy(&self, app: &str, env: &str) -> Value {
        let did = self.start_deploy(app, env);
        self.wait(did, &["succeeded", "failed", "rejected"])
    }

    /// A built release of `app` promoted into `env` and its deploy started.
    fn start_deploy(&self, app: &str, env: &str) -> i64 {
        let r = self.ok(
            "POST",
            "/api/v1/releases",
            Some(json!({"application": app, "git_ref": "main", "change_note": "isolation"})),
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
        let d = self.ok(
            "POST",
            &format!("/api/v1/releases/{id}/deploys"),
            Some(json!({"environment": env})),
        );
        d["id"].as_i64().unwrap()
    }

    fn wait(&self, did: i64, states: &[&str]) -> Value {
        let mut last = Value::Null;
        wait_for_every(
            &format!("deploy {did} to settle"),
            Duration::from_secs(90),
            Duration::from_millis(200),
            || {
                last = self.ok("GET", &format!("/api/v1/deploys/{did}"), None);
                states.iter().any(|s| last["state"] == *s)
            },
        );
        last
    }

    fn events(&self, d: &Value) -> Vec<String> {
        self.ok("GET", &format!("/api/v1/deploys/{}/events", d["id"]), None)
            .as_array()
            .unwrap()
            .iter()
            .map(|e| format!("{}: {}", e["step"].as_str().unwrap(), e["message"].as_str().unwrap()))
            .collect()
    }

    /// The deploy failed while planning: nothing planned, nothing applied.
    fn refused(&self, d: &Value, needle: &str) {
        let events = self.events(d);
        assert_eq!(d["state"], "failed", "{d}\n{events:?}");
        let error = d["error"].as_str().unwrap_or_default();
        assert!(error.contains(needle), "wanted {needle:?} in: {error}");
        assert!(
            !events.iter().any(|e| e.starts_with("apply:") || e.contains("planned ")),
            "nothing may be planned or applied: {events:?}"
        );
    }
}

fn exists(k: &KubeCluster, args: &[&str]) -> bool {
    let out = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&k.kubeconfig)
        .args(["get", "--ignore-not-found", "-o", "name"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    !out.stdout.is_empty()
}

fn get_json(k: &KubeCluster, args: &[&str]) -> Value {
    let mut a = vec!["get", "-o", "json"];
    a.extend_from_slice(args);
    serde_json::from_str(&k.kubectl(&a)).unwrap()
}

const DEVELOPMENT: &str =
    r#"{"deploy_roles": ["developer", "operator"], "requires_review": false, "requires_previous": false}"#;

const SHOP_SECRET: &str = r#"apiVersion: v1
kind: Secret
metadata:
  name: shop-db
  namespace: {{ env.namespace | tojson }}
  labels: {{ labels | tojson }}
stringData:
  password: hunter2
"#;

const BLOG_THIEF: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: blog-thief
  namespace: {{ env.namespace | tojson }}
  labels: {{ labels | tojson }}
spec:
  selector: {matchLabels: {thief: "yes"}}
  template:
    metadata: {labels: {thief: "yes"}}
    spec:
      volumes:
        - name: db
          secret: {secretName: shop-db}
      containers:
        - name: c
          image: {{ image.ref | tojson }}
"#;

/// Shop's Deployment re-rendered by blog with shop's ownership labels.
const BLOG_IMPOSTOR: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop-web
  namespace: {{ env.namespace | tojson }}
  labels: {"app.kubernetes.io/managed-by": "prism", "prism.io/application": "shop-web", "prism.io/environment": {{ env.name | tojson }}}
spec:
  replicas: 0
  selector: {matchLabels: {"prism.io/application": "shop-web", "prism.io/environment": {{ env.name | tojson }}}}
  template:
    metadata: {labels: {"prism.io/application": "shop-web", "prism.io/environment": {{ env.name | tojson }}}}
    spec:
      containers:
        - name: c
          image: registry.example/evil:1
"#;

/// Blog's Deployment named like shop's, in shop's namespace.
const BLOG_SQUAT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop-web
  namespace: shop-iso
  labels: {{ labels | tojson }}
spec:
  replicas: 0
  selector: {matchLabels: {squat: "yes"}}
  template:
    metadata: {labels: {squat: "yes"}}
    spec:
      containers:
        - name: c
          image: {{ image.ref | tojson }}
"#;

fn isolation(backend: Backend) {
    let k = KubeCluster::up();
    k.kubectl(&["create", "namespace", "shared"]);
    let p = Prism::new(backend);
    p.ok(
        "POST",
        "/api/v1/clusters",
        Some(json!({"name": "one", "kubeconfig": k.kubeconfig_text()})),
    );
    let limited = std::fs::read_to_string(k.kubeconfig.with_file_name("ns-limited.kubeconfig")).unwrap();
    p.ok(
        "POST",
        "/api/v1/clusters",
        Some(json!({"name": "one-limited", "kubeconfig": limited})),
    );
    let policy: Value = serde_json::from_str(DEVELOPMENT).unwrap();
    // A fixed namespace every project shares (what environments were before).
    p.ok(
        "POST",
        "/api/v1/environments",
        Some(json!({"name": "shared", "cluster": "one", "namespace": "shared", "policy": policy})),
    );
    // A namespace per project; other namespaces allowed, yet never another project's.
    p.ok("POST", "/api/v1/environments", Some(json!({"name": "iso", "cluster": "one", "namespace": "{project}-{environment}", "policy": policy, "rules": {"allow_other_namespaces": true}})));
    // A token that may not create namespaces.
    p.ok(
        "POST",
        "/api/v1/environments",
        Some(
            json!({"name": "lim", "cluster": "one-limited", "namespace": "{project}-{environment}", "policy": policy}),
        ),
    );
    // A pattern that cannot give a namespace is refused naming the field.
    let (s, v) = p.call(
        "POST",
        "/api/v1/environments",
        Some(json!({"name": "bad", "namespace": "{project}_{environment}", "policy": policy})),
    );
    assert_eq!(s, 422, "{v}");
    assert!(v.to_string().contains("namespace"), "{v}");

    for (project, app) in [("shop", "shop-web"), ("blog", "blog-web")] {
        p.ok("POST", "/api/v1/projects", Some(json!({"name": project})));
        p.ok("POST", "/api/v1/applications", Some(json!({"project": project, "name": app, "git_url": "https://git.example/web.git", "template_settings": {"progress_deadline_seconds": 60, "port": 8080}})));
    }

    // 1. A fixed namespace still works: shop deploys its Secret and Ingress there.
    p.templates("shop", json!({"secret.yaml": SHOP_SECRET}));
    p.settings("shop-web", json!({"port": 8080, "ingress_host": "shop.example.com"}));
    let d = p.deploy("shop-web", "shared");
    assert_eq!(d["state"], "succeeded", "{d}\n{:?}", p.events(&d));
    assert!(exists(&k, &["secret", "shop-db", "-n", "shared"]));
    assert!(exists(&k, &["ingress", "shop-web", "-n", "shared"]));

    // 2. Blog mounting shop's Secret is refused with the field path.
    p.templates("blog", json!({"thief.yaml": BLOG_THIEF}));
    let d = p.deploy("blog-web", "shared");
    p.refused(
        &d,
        "spec.template.spec.volumes[0].secret.secretName: Secret \"shop-db\" is not owned by application blog-web",
    );
    assert!(!exists(&k, &["deployment", "blog-thief", "-n", "shared"]));
    assert!(!exists(&k, &["deployment", "blog-web", "-n", "shared"]));

    // 3. Blog re-rendering shop's Deployment with shop's labels cannot take
    //    it over (rendering stamps blog's own labels; this held before too).
    p.templates("blog", json!({"impostor.yaml": BLOG_IMPOSTOR}));
    let d = p.deploy("blog-web", "shared");
    p.refused(
        &d,
        "Deployment/shop-web -n shared already exists and belongs to application shop-web",
    );
    let dep = get_json(&k, &["deployment", "shop-web", "-n", "shared"]);
    assert_ne!(dep["spec"]["replicas"], 0, "shop's Deployment was not touched");

    // 4. Blog claiming shop's Ingress host, from its own namespace, is refused
    //    naming the host and the application serving it.
    p.templates("blog", json!({}));
    p.settings("blog-web", json!({"port": 8080, "ingress_host": "shop.example.com"}));
    let d = p.deploy("blog-web", "iso");
    p.refused(
        &d,
        "Ingress host \"shop.example.com\" is already served by application shop-web",
    );
    assert!(
        !exists(&k, &["namespace", "blog-iso"]),
        "nothing made for a refused deploy"
    );

    // 5. Blog cannot pre-create shop's Deployment in shop's namespace (even
    //    with other namespaces allowed, and before shop ever deployed there).
    p.settings("blog-web", json!({"port": 8080, "ingress_host": "blog.example.com"}));
    p.templates("blog", json!({"squat.yaml": BLOG_SQUAT}));
    let d = p.deploy("blog-web", "iso");
    p.refused(&d, "metadata.namespace \"shop-iso\" belongs to project shop");
    assert!(!exists(&k, &["namespace", "shop-iso"]));

    // 6. Each project deploys into its own namespace, made by Prism for it.
    p.templates("blog", json!({}));
    for (project, app) in [("blog", "blog-web"), ("shop", "shop-web")] {
        let d = p.deploy(app, "iso");
        assert_eq!(d["state"], "succeeded", "{d}\n{:?}", p.events(&d));
        let ns = format!("{project}-iso");
        let n = get_json(&k, &["namespace", &ns]);
        assert_eq!(n["metadata"]["labels"]["prism.io/project"], project, "{n}");
        assert_eq!(n["metadata"]["labels"]["app.kubernetes.io/managed-by"], "prism", "{n}");
        let dep = get_json(&k, &["deployment", app, "-n", &ns]);
        assert_eq!(dep["metadata"]["labels"]["prism.io/application"], app, "{dep}");
    }
    assert!(!exists(&k, &["deployment", "shop-web", "-n", "blog-iso"]));
    assert!(!exists(&k, &["deployment", "blog-web", "-n", "shop-iso"]));

    // 7. A token that may not create namespaces: the error names the namespace;
    //    an admin binds an existing one for the project, and blog deploys there.
    p.settings("blog-web", json!({"port": 8080}));
    let d = p.deploy("blog-web", "lim");
    p.refused(&d, "namespace blog-lim");
    let error = d["error"].as_str().unwrap_or_default().to_owned();
    assert!(error.contains("may not"), "{error}");
    k.kubectl(&["create", "namespace", "blog-own"]);
    k.kubectl(&[
        "create",
        "rolebinding",
        "prism-deployer",
        "--clusterrole=admin",
        "--user=ns-limited",
        "-n",
        "blog-own",
    ]);
    let bound = p.ok(
        "PUT",
        "/api/v1/environments/lim/namespaces/blog",
        Some(json!({"namespace": "blog-own"})),
    );
    assert_eq!(bound[0]["namespace"], "blog-own", "{bound}");
    // The same namespace cannot go to another project of the environment.
    let (s, v) = p.call(
        "PUT",
        "/api/v1/environments/lim/namespaces/shop",
        Some(json!({"namespace": "blog-own"})),
    );
    assert_eq!(s, 422, "{v}");
    let d = p.deploy("blog-web", "lim");
    assert_eq!(d["state"], "succeeded", "{d}\n{:?}", p.events(&d));
    assert!(exists(&k, &["deployment", "blog-web", "-n", "blog-own"]));

    // 8. Checked again when a reviewed deploy is applied: shop took the host
    //    while blog's deploy awaited review, so blog's is refused then.
    let reviewed = json!({"deploy_roles": ["operator"], "requires_review": true, "requires_previous": false});
    p.ok(
        "POST",
        "/api/v1/environments",
        Some(json!({"name": "rev", "cluster": "one", "namespace": "{project}-{environment}", "policy": reviewed})),
    );
    p.ok(
        "POST",
        "/api/v1/users",
        Some(json!({"username": "otto", "password": "otto-long-password"})),
    );
    p.ok(
        "POST",
        "/api/v1/projects/blog/members",
        Some(json!({"username": "otto", "role": "operator"})),
    );
    let otto = p.ok(
        "POST",
        "/api/v1/auth/token",
        Some(json!({"username": "otto", "password": "otto-long-password"})),
    )["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    p.settings("blog-web", json!({"port": 8080, "ingress_host": "race.example.com"}));
    let blog_rev = p.start_deploy("blog-web", "rev");
    p.wait(blog_rev, &["awaiting_review", "failed"]);
    p.settings("shop-web", json!({"port": 8080, "ingress_host": "race.example.com"}));
    let d = p.deploy("shop-web", "iso");
    assert_eq!(d["state"], "succeeded", "{d}\n{:?}", p.events(&d));
    let review = reqwest::blocking::Client::new()
        .post(format!("{}/api/v1/deploys/{blog_rev}/review", p.server.url))
        .bearer_auth(&otto)
        .json(&json!({"decision": "approve"}))
        .send()
        .unwrap();
    assert_eq!(review.status().as_u16(), 200, "{}", review.text().unwrap_or_default());
    let d = p.wait(blog_rev, &["succeeded", "failed"]);
    assert_eq!(d["state"], "failed", "{d}");
    let error = d["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("Ingress host \"race.example.com\" is already served by application shop-web"),
        "{error}"
    );
    assert!(!exists(&k, &["ingress", "blog-web", "-n", "blog-rev"]));
    p.server.stop();
}

#[test]
fn sqlite_projects_are_isolated_in_a_shared_cluster() {
    isolation(Backend::Sqlite);
}

#[test]
fn postgres_projects_are_isolated_in_a_shared_cluster() {
    isolation(Backend::Postgres);
}
