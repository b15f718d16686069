//! Deploys end to end against a real Kubernetes v1.20.2 control plane
//! (etcd, kube-apiserver, kube-controller-manager from scripts/k8s) with the
//! simulated node (prism-kube-sim) playing the kubelet, a real registry
//! (Debian's docker-registry) for image-pull failures, and a real
//! `prism serve`. Requires `scripts/k8s/ensure-binaries.sh` to have run
//! (scripts/test.sh does) and the workspace's binaries to be built.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use prism_test_support::process::ADMIN_PASSWORD as ADMIN_PW;
use prism_test_support::{free_port, ServerProcess, TempDir};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// `prism_test_support::wait_for`, polling every 200 ms rather than 100 ms.
fn wait_for(what: &str, timeout: Duration, f: impl FnMut() -> bool) {
    prism_test_support::wait_for_every(what, timeout, Duration::from_millis(200), f)
}

/// A control plane started by scripts/k8s/cluster.sh, torn down on drop.
struct KubeCluster {
    name: String,
    kubeconfig: PathBuf,
    limited_kubeconfig: PathBuf,
    sim: Option<Child>,
    registry: String,
}

impl KubeCluster {
    fn up(registry: &str) -> Self {
        let name = format!("e2e{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let out = Command::new("bash")
            .arg(repo().join("scripts/k8s/cluster.sh"))
            .args(["up", &name])
            .env("PRISM_K8S_OWNER_PID", std::process::id().to_string())
            .stderr(Stdio::inherit())
            .output()
            .expect("cluster.sh");
        assert!(out.status.success(), "cluster.sh up failed");
        let kubeconfig = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim().lines().last().unwrap());
        let limited_kubeconfig = kubeconfig.with_file_name("ns-limited.kubeconfig");
        let mut c = KubeCluster {
            name,
            kubeconfig,
            limited_kubeconfig,
            sim: None,
            registry: registry.to_owned(),
        };
        c.start_sim();
        c
    }

    fn start_sim(&mut self) {
        let exe = Path::new(env!("CARGO_BIN_EXE_prism")).with_file_name("prism-kube-sim");
        assert!(
            exe.exists(),
            "{} missing: build the workspace (cargo build --workspace)",
            exe.display()
        );
        let child = Command::new(exe)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args([
                "--registry",
                &self.registry,
                "--owner-pid",
                &std::process::id().to_string(),
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        self.sim = Some(child);
    }

    fn stop_sim(&mut self) {
        if let Some(mut s) = self.sim.take() {
            let _ = s.kill();
            let _ = s.wait();
        }
    }

    fn kubectl(&self, args: &[&str]) -> String {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .expect("kubectl");
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn kubeconfig_text(&self, limited: bool) -> String {
        std::fs::read_to_string(if limited {
            &self.limited_kubeconfig
        } else {
            &self.kubeconfig
        })
        .unwrap()
    }
}

impl Drop for KubeCluster {
    fn drop(&mut self) {
        self.stop_sim();
        let _ = Command::new("bash")
            .arg(repo().join("scripts/k8s/cluster.sh"))
            .args(["down", &self.name])
            .status();
    }
}

struct Registry {
    child: Child,
    addr: String,
    _dir: TempDir,
}

impl Registry {
    fn start() -> Self {
        let dir = TempDir::new("registry");
        let port = free_port();
        let cfg = dir.join("config.yml");
        std::fs::write(
            &cfg,
            format!("version: 0.1\nstorage: {{filesystem: {{rootdirectory: {}}}, delete: {{enabled: true}}}}\nhttp: {{addr: 127.0.0.1:{port}}}\n", dir.join("data").display()),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry");
        let addr = format!("127.0.0.1:{port}");
        wait_for("the registry", Duration::from_secs(20), || {
            reqwest::blocking::get(format!("http://{addr}/v2/")).is_ok_and(|r| r.status().is_success())
        });
        Registry { child, addr, _dir: dir }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `prism serve` (the shared `ServerProcess`: its own database, stopped
/// on drop) with a short job lease, and the admin's token.
struct Prism {
    server: ServerProcess,
    base: String,
    token: String,
}

impl Prism {
    fn new() -> Self {
        let server = ServerProcess::start_with(
            "e2e-prism",
            &[
                ("PRISM_JOB_LEASE_SECONDS", "2"),
                ("PRISM_JOB_POLL_MS", "100"),
                ("PRISM_LOG", "warn"),
            ],
        );
        let mut p = Prism {
            base: server.url.clone(),
            server,
            token: String::new(),
        };
        let (s, v) = p.call(
            "POST",
            "/api/v1/auth/token",
            Some(json!({"username": "admin", "password": ADMIN_PW})),
        );
        assert_eq!(s, 201, "{v}");
        p.token = v["secret"].as_str().unwrap().to_owned();
        p
    }

    fn kill9_and_restart(&mut self) {
        self.server.crash_and_restart();
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let mut req = client.request(method.parse().unwrap(), format!("{}{path}", self.base));
        if !self.token.is_empty() {
            req = req.bearer_auth(&self.token);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().unwrap();
        let s = r.status().as_u16();
        (s, r.json().unwrap_or(Value::Null))
    }

    fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (s, v) = self.call(method, path, body);
        assert!((200..300).contains(&s), "{method} {path} -> {s}: {v}");
        v
    }

    fn built_release(&self, app: &str, image: &str) -> String {
        let r = self.ok(
            "POST",
            "/api/v1/releases",
            Some(json!({"application": app, "git_ref": "main", "change_note": "e2e"})),
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
            Some(json!({"image_ref": image, "commit_sha": "abcdef1"})),
        );
        id
    }

    /// Starts a deploy and waits for it (and any rollback it starts) to settle.
    fn deploy(&self, release: &str, env: &str) -> Value {
        let d = self.ok(
            "POST",
            &format!("/api/v1/releases/{release}/deploys"),
            Some(json!({"environment": env})),
        );
        self.wait_deploy(d["id"].as_i64().unwrap())
    }

    fn wait_deploy(&self, id: i64) -> Value {
        let mut last = Value::Null;
        wait_for(&format!("deploy {id} to settle"), Duration::from_secs(120), || {
            last = self.ok("GET", &format!("/api/v1/deploys/{id}"), None);
            matches!(
                last["state"].as_str(),
                Some("succeeded" | "failed" | "rejected" | "awaiting_review")
            )
        });
        last
    }

    fn events(&self, id: i64) -> Vec<String> {
        self.ok("GET", &format!("/api/v1/deploys/{id}/events"), None)
            .as_array()
            .unwrap()
            .iter()
            .map(|e| format!("{}: {}", e["step"].as_str().unwrap(), e["message"].as_str().unwrap()))
            .collect()
    }
}

fn ensure_binaries() {
    let st = Command::new("bash")
        .arg(repo().join("scripts/k8s/ensure-binaries.sh"))
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "scripts/k8s/ensure-binaries.sh failed");
}

#[test]
fn deploys_promote_across_two_clusters_fail_roll_back_review_drift_and_resume() {
    ensure_binaries();
    let registry = Registry::start();
    let k1 = KubeCluster::up(&registry.addr);
    let mut k2 = KubeCluster::up(&registry.addr);
    for ns in ["shop-fat", "shop-uat", "other"] {
        k1.kubectl(&["create", "namespace", ns]);
    }
    k2.kubectl(&["create", "namespace", "shop-prd"]);
    // The limited token may only work in shop-uat.
    k1.kubectl(&[
        "create",
        "rolebinding",
        "prism-deployer",
        "--clusterrole=admin",
        "--user=ns-limited",
        "-n",
        "shop-uat",
    ]);

    let mut p = Prism::new();
    p.ok(
        "POST",
        "/api/v1/clusters",
        Some(json!({"name": "one", "kubeconfig": k1.kubeconfig_text(false)})),
    );
    p.ok(
        "POST",
        "/api/v1/clusters",
        Some(json!({"name": "one-limited", "kubeconfig": k1.kubeconfig_text(true)})),
    );
    p.ok(
        "POST",
        "/api/v1/clusters",
        Some(json!({"name": "two", "kubeconfig": k2.kubeconfig_text(false)})),
    );
    let h = p.ok("GET", "/api/v1/clusters/one/health", None);
    assert_eq!(
        (h["ok"].as_bool(), h["version"].as_str()),
        (Some(true), Some("v1.20.2")),
        "{h}"
    );
    p.ok(
        "PATCH",
        "/api/v1/environments/fat",
        Some(json!({"cluster": "one", "namespace": "shop-fat"})),
    );
    p.ok(
        "PATCH",
        "/api/v1/environments/uat",
        Some(json!({"cluster": "one-limited", "namespace": "shop-uat"})),
    );
    p.ok(
        "PATCH",
        "/api/v1/environments/prd",
        Some(json!({"cluster": "two", "namespace": "shop-prd"})),
    );
    p.ok("POST", "/api/v1/projects", Some(json!({"name": "shop"})));
    p.ok("POST", "/api/v1/applications", Some(json!({"project": "shop", "name": "web", "git_url": "https://git.example/web.git", "template_settings": {"progress_deadline_seconds": 15, "port": 8080}})));
    p.ok("PUT", "/api/v1/applications/web/settings/fat", Some(json!({"replicas": 2, "cpu_request": "100m", "cpu_limit": "500m", "memory_request": "64Mi", "memory_limit": "128Mi", "env_vars": {"MODE": "fat"}})));

    // 1. A release deploys to FAT: the real Deployment controller reports the rollout done.
    let r1 = p.built_release("web", "registry.example/web:r1");
    p.ok(
        "POST",
        &format!("/api/v1/releases/{r1}/actions/promote"),
        Some(json!({"environment": "fat"})),
    );
    let d1 = p.deploy(&r1, "fat");
    assert_eq!(
        d1["state"],
        "succeeded",
        "{d1}\n{:?}",
        p.events(d1["id"].as_i64().unwrap())
    );
    let dep: Value =
        serde_json::from_str(&k1.kubectl(&["get", "deployment", "web", "-n", "shop-fat", "-o", "json"])).unwrap();
    assert_eq!(dep["status"]["availableReplicas"], 2);
    assert_eq!(
        dep["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example/web:r1"
    );
    assert_eq!(dep["metadata"]["labels"]["app.kubernetes.io/managed-by"], "prism");
    // Raw GET: every kubectl version shows managedFields this way.
    let raw: Value =
        serde_json::from_str(&k1.kubectl(&["get", "--raw", "/apis/apps/v1/namespaces/shop-fat/deployments/web"]))
            .unwrap();
    assert!(
        raw["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["manager"] == "prism" && m["operation"] == "Apply"),
        "{raw}"
    );
    let events = p.events(d1["id"].as_i64().unwrap());
    assert!(events.iter().any(|e| e.contains("rollout complete")), "{events:?}");
    assert_eq!(
        p.ok("GET", &format!("/api/v1/releases/{r1}"), None)["state"],
        "deployed"
    );
    // The stream replays a finished deploy and ends with its result.
    let sse = reqwest::blocking::Client::new()
        .get(format!("{}/api/v1/deploys/{}/stream", p.base, d1["id"]))
        .bearer_auth(&p.token)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        sse.contains("event: step") && sse.contains("event: end") && sse.contains("succeeded"),
        "{sse}"
    );

    // 2. A hand edit shows up as drift.
    let drift = p.ok("GET", "/api/v1/applications/web/environments/fat/drift", None);
    assert_eq!(drift["drifted"], false, "{drift}");
    k1.kubectl(&["scale", "deployment", "web", "-n", "shop-fat", "--replicas=5"]);
    let drift = p.ok("GET", "/api/v1/applications/web/environments/fat/drift", None);
    assert_eq!(drift["drifted"], true, "{drift}");
    assert!(drift.to_string().contains("spec.replicas"), "{drift}");

    // 3. An image missing from the registry fails the rollout with the pull
    //    error, and Prism rolls back to r1 by itself.
    let r2 = p.built_release("web", &format!("{}/web:missing", registry.addr));
    p.ok("POST", &format!("/api/v1/releases/{r1}/actions/pass"), Some(json!({})));
    p.ok(
        "POST",
        &format!("/api/v1/releases/{r2}/actions/promote"),
        Some(json!({"environment": "fat"})),
    );
    let d2 = p.deploy(&r2, "fat");
    assert_eq!(d2["state"], "failed", "{d2}");
    assert!(
        d2["error"].as_str().unwrap().contains("ErrImagePull"),
        "the reason names the pull error: {d2}"
    );
    assert_eq!(
        p.ok("GET", &format!("/api/v1/releases/{r2}"), None)["state"],
        "deploy_failed"
    );
    let rollbacks = p.ok("GET", "/api/v1/deploys?application=web&environment=fat", None);
    let rb = rollbacks
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == "rollback" && d["rollback_of"] == d2["id"])
        .expect("an automatic rollback deploy")
        .clone();
    let rb = p.wait_deploy(rb["id"].as_i64().unwrap());
    assert_eq!(
        (rb["state"].as_str(), rb["release"].as_str()),
        (Some("succeeded"), Some(r1.as_str())),
        "{rb}"
    );
    let dep: Value =
        serde_json::from_str(&k1.kubectl(&["get", "deployment", "web", "-n", "shop-fat", "-o", "json"])).unwrap();
    assert_eq!(
        dep["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example/web:r1"
    );
    let board = p.ok("GET", "/api/v1/board?application=web", None);
    assert_eq!(board[0]["current_release"], r1.as_str(), "{board}");

    // 4. A template naming another namespace is refused before anything is applied.
    let tpl = p.ok("GET", "/api/v1/projects/shop/templates", None);
    let base = tpl["current"]["version"].as_i64().unwrap();
    p.ok("PUT", "/api/v1/projects/shop/templates", Some(json!({"base_version": base, "files": {"extra.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: sneaky\n  namespace: other\ndata: {a: b}\n"}})));
    let r3 = p.built_release("web", "registry.example/web:r3");
    p.ok(
        "POST",
        &format!("/api/v1/releases/{r3}/actions/promote"),
        Some(json!({"environment": "fat"})),
    );
    let d3 = p.deploy(&r3, "fat");
    assert_eq!(d3["state"], "failed");
    assert!(d3["error"].as_str().unwrap().contains("namespace"), "{d3}");
    let cms = k1.kubectl(&["get", "configmaps", "-n", "other", "-o", "name"]);
    assert!(!cms.contains("sneaky"), "nothing was applied: {cms}");
    p.ok(
        "PUT",
        "/api/v1/projects/shop/templates",
        Some(json!({"base_version": base + 1, "files": {}})),
    );

    // 4a. A cluster-scoped custom resource is refused too (the cluster's
    //     discovery says so, not only Prism's list of built-in kinds).
    let crd = std::env::temp_dir().join(format!("prism-crd-{}.yaml", uuid::Uuid::new_v4().simple()));
    std::fs::write(&crd, "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.example.com\nspec:\n  group: example.com\n  scope: Cluster\n  names: {plural: widgets, singular: widget, kind: Widget}\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}\n").unwrap();
    k1.kubectl(&["apply", "-f", crd.to_str().unwrap()]);
    k1.kubectl(&[
        "wait",
        "--for",
        "condition=established",
        "crd/widgets.example.com",
        "--timeout=30s",
    ]);
    wait_for(
        "the API server to list the new group (its aggregator lags behind the CRD)",
        Duration::from_secs(30),
        || {
            Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(&k1.kubeconfig)
                .args(["get", "--raw", "/apis"])
                .output()
                .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("example.com"))
        },
    );
    let v = p.ok("GET", "/api/v1/projects/shop/templates", None)["current"]["version"]
        .as_i64()
        .unwrap();
    p.ok("PUT", "/api/v1/projects/shop/templates", Some(json!({"base_version": v, "files": {"widget.yaml": "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w1\n"}})));
    let rw = p.built_release("web", "registry.example/web:rw");
    p.ok(
        "POST",
        &format!("/api/v1/releases/{rw}/actions/promote"),
        Some(json!({"environment": "fat"})),
    );
    let dw = p.deploy(&rw, "fat");
    assert_eq!(dw["state"], "failed", "{dw}");
    assert!(dw["error"].as_str().unwrap().contains("cluster-scoped"), "{dw}");
    assert!(
        k1.kubectl(&["get", "widgets", "-o", "name"]).trim().is_empty(),
        "nothing was applied"
    );
    p.ok(
        "PUT",
        "/api/v1/projects/shop/templates",
        Some(json!({"base_version": v + 1, "files": {}})),
    );

    // 4a'. An object that exists but is not this application's is never taken over.
    k1.kubectl(&[
        "create",
        "configmap",
        "web-taken",
        "-n",
        "shop-fat",
        "--from-literal=owner=someone-else",
    ]);
    let v = p.ok("GET", "/api/v1/projects/shop/templates", None)["current"]["version"]
        .as_i64()
        .unwrap();
    p.ok("PUT", "/api/v1/projects/shop/templates", Some(json!({"base_version": v, "files": {"taken.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-taken\ndata: {owner: prism}\n"}})));
    let rt = p.built_release("web", "registry.example/web:rt");
    p.ok(
        "POST",
        &format!("/api/v1/releases/{rt}/actions/promote"),
        Some(json!({"environment": "fat"})),
    );
    let dt = p.deploy(&rt, "fat");
    assert_eq!(dt["state"], "failed", "{dt}");
    assert!(dt["error"].as_str().unwrap().contains("will not take it over"), "{dt}");
    let cm: Value =
        serde_json::from_str(&k1.kubectl(&["get", "configmap", "web-taken", "-n", "shop-fat", "-o", "json"])).unwrap();
    assert_eq!(cm["data"]["owner"], "someone-else", "the hand-made object is untouched");
    p.ok(
        "PUT",
        "/api/v1/projects/shop/templates",
        Some(json!({"base_version": v + 1, "files": {}})),
    );

    // 4b. Pruning removes only what Prism applied before and no longer renders;
    //     a manual rollback returns to an earlier deploy exactly.
    k1.kubectl(&[
        "create",
        "configmap",
        "handmade",
        "-n",
        "shop-fat",
        "--from-literal=a=b",
    ]);
    p.ok("PUT", "/api/v1/projects/shop/templates", Some(json!({"base_version": base + 6, "files": {"extra.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-extra\ndata: {a: b}\n"}})));
    let r6 = p.built_release("web", "registry.example/web:r6");
    p.ok(
        "POST",
        &format!("/api/v1/releases/{r6}/actions/promote"),
        Some(json!({"environment": "fat"})),
    );
    let d6a = p.deploy(&r6, "fat");
    assert_eq!(d6a["state"], "succeeded", "{d6a}");
    assert!(k1
        .kubectl(&["get", "configmaps", "-n", "shop-fat", "-o", "name"])
        .contains("web-extra"));
    p.ok(
        "PUT",
        "/api/v1/projects/shop/templates",
        Some(json!({"base_version": base + 7, "files": {}})),
    );
    let r7 = p.built_release("web", "registry.example/web:r7");
    p.ok("POST", &format!("/api/v1/releases/{r6}/actions/pass"), Some(json!({})));
    p.ok(
        "POST",
        &format!("/api/v1/releases/{r7}/actions/promote"),
        Some(json!({"environment": "fat"})),
    );
    let d7 = p.deploy(&r7, "fat");
    assert_eq!(d7["state"], "succeeded", "{d7}");
    assert!(
        d7["diff"].to_string().contains("\"prune\""),
        "the plan lists the prune: {}",
        d7["diff"]
    );
    let events = p.events(d7["id"].as_i64().unwrap());
    assert!(
        events.iter().any(|e| e.contains("pruned ConfigMap/web-extra")),
        "{events:?}"
    );
    let cms = k1.kubectl(&["get", "configmaps", "-n", "shop-fat", "-o", "name"]);
    assert!(
        !cms.contains("web-extra") && cms.contains("handmade"),
        "pruned Prism's object only: {cms}"
    );
    // A hold stops a rollback too.
    p.ok(
        "POST",
        "/api/v1/applications/web/environments/fat/hold",
        Some(json!({"note": "testing r7"})),
    );
    let (status, held) = p.call(
        "POST",
        "/api/v1/applications/web/environments/fat/rollback",
        Some(json!({})),
    );
    assert_eq!((status, held["code"].as_str()), (409, Some("held")), "{held}");
    p.ok("DELETE", "/api/v1/applications/web/environments/fat/hold", None);
    let rb = p.ok(
        "POST",
        "/api/v1/applications/web/environments/fat/rollback",
        Some(json!({"note": "back to r6"})),
    );
    assert_eq!(
        (rb["kind"].as_str(), rb["release"].as_str()),
        (Some("rollback"), Some(r6.as_str())),
        "{rb}"
    );
    let rb = p.wait_deploy(rb["id"].as_i64().unwrap());
    assert_eq!(rb["state"], "succeeded", "{rb}");
    let dep: Value =
        serde_json::from_str(&k1.kubectl(&["get", "deployment", "web", "-n", "shop-fat", "-o", "json"])).unwrap();
    assert_eq!(
        dep["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example/web:r6"
    );
    assert!(
        k1.kubectl(&["get", "configmaps", "-n", "shop-fat", "-o", "name"])
            .contains("web-extra"),
        "the rollback restored r6's objects"
    );
    assert_eq!(
        p.ok("GET", "/api/v1/board?application=web", None)[0]["current_release"],
        r6.as_str()
    );

    // 5. UAT: reviewed by an operator; the namespace-limited token deploys there.
    p.ok(
        "POST",
        "/api/v1/users",
        Some(json!({"username": "otto", "password": "operator-password"})),
    );
    p.ok(
        "POST",
        "/api/v1/projects/shop/members",
        Some(json!({"username": "otto", "role": "operator"})),
    );
    p.ok(
        "POST",
        &format!("/api/v1/releases/{r1}/actions/promote"),
        Some(json!({"environment": "uat"})),
    );
    let d4 = p.deploy(&r1, "uat");
    assert_eq!(d4["state"], "awaiting_review", "{d4}");
    // The review shows the release: commit, change note, who built and who passed it.
    assert_eq!(d4["release_info"]["commit_sha"], "abcdef1", "{d4}");
    assert_eq!(d4["release_info"]["change_note"], "e2e");
    assert_eq!(d4["release_info"]["built_by"], "admin");
    assert_eq!(d4["release_info"]["passed_by"][0]["environment"], "fat", "{d4}");
    assert!(
        d4["diff"].to_string().contains("\"create\""),
        "the review shows what will be created: {}",
        d4["diff"]
    );
    let ops = {
        let (s, v) = p.call(
            "POST",
            "/api/v1/auth/token",
            Some(json!({"username": "otto", "password": "operator-password"})),
        );
        assert_eq!(s, 201);
        v["secret"].as_str().unwrap().to_owned()
    };
    let review = reqwest::blocking::Client::new()
        .post(format!("{}/api/v1/deploys/{}/review", p.base, d4["id"]))
        .bearer_auth(&ops)
        .json(&json!({"decision": "approve", "comment": "diff looks right"}))
        .send()
        .unwrap();
    assert_eq!(review.status().as_u16(), 200);
    let d4 = p.wait_deploy(d4["id"].as_i64().unwrap());
    assert_eq!(d4["state"], "succeeded", "{d4}");
    assert_eq!(d4["reviewer"], "otto");
    // The same limited token cannot reach another namespace: a clear 403 on the deploy.
    p.ok(
        "PATCH",
        "/api/v1/environments/uat",
        Some(json!({"namespace": "shop-fat"})),
    );
    p.ok("POST", &format!("/api/v1/releases/{r1}/actions/pass"), Some(json!({})));
    let r5 = p.built_release("web", "registry.example/web:r5");
    p.ok(
        "POST",
        &format!("/api/v1/releases/{r5}/actions/promote"),
        Some(json!({"environment": "fat"})),
    );
    assert_eq!(p.deploy(&r5, "fat")["state"], "succeeded");
    p.ok("POST", &format!("/api/v1/releases/{r5}/actions/pass"), Some(json!({})));
    p.ok(
        "POST",
        &format!("/api/v1/releases/{r5}/actions/promote"),
        Some(json!({"environment": "uat"})),
    );
    let d5 = p.deploy(&r5, "uat");
    assert_eq!(d5["state"], "failed", "{d5}");
    assert!(d5["error"].as_str().unwrap().contains("403"), "{d5}");
    p.ok(
        "PATCH",
        "/api/v1/environments/uat",
        Some(json!({"namespace": "shop-uat"})),
    );

    // 6. PRD lives on the second cluster. Kill -9 the server during the
    //    rollout watch: the restarted server resumes and finishes the deploy.
    p.ok(
        "POST",
        &format!("/api/v1/releases/{r1}/actions/promote"),
        Some(json!({"environment": "prd"})),
    );
    let d6 = p.ok(
        "POST",
        &format!("/api/v1/releases/{r1}/deploys"),
        Some(json!({"environment": "prd"})),
    );
    let id6 = d6["id"].as_i64().unwrap();
    let d6 = p.wait_deploy(id6);
    assert_eq!(d6["state"], "awaiting_review");
    // Stop cluster two's simulated node, so the rollout waits on Pending pods.
    k2.stop_sim();
    let _ = reqwest::blocking::Client::new()
        .post(format!("{}/api/v1/deploys/{id6}/review", p.base))
        .bearer_auth(&ops)
        .json(&json!({"decision": "approve", "comment": "go"}))
        .send()
        .unwrap();
    wait_for("the rollout watch to start", Duration::from_secs(60), || {
        p.ok("GET", &format!("/api/v1/deploys/{id6}"), None)["state"] == "watching"
    });
    p.kill9_and_restart();
    k2.start_sim();
    let d6 = p.wait_deploy(id6);
    assert_eq!(d6["state"], "succeeded", "{d6}\n{:?}", p.events(id6));
    let dep: Value =
        serde_json::from_str(&k2.kubectl(&["get", "deployment", "web", "-n", "shop-prd", "-o", "json"])).unwrap();
    assert_eq!(dep["status"]["availableReplicas"], 1);
}
