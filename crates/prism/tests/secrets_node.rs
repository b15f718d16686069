//! Application secrets (issue 19) reach the container on a REAL node
//! (`scripts/k8s/cluster.sh up NAME --node`: kubelet v1.20.2 + containerd +
//! runc beside a real v1.20.2 control plane, busybox in the node's own
//! registry on loopback): a project template that runs busybox and names the
//! secrets the way templates see them (`secret_env`, `secret_files`), a
//! value delivered as a variable and one as a file, read back with
//! `kubectl exec`; a changed value rolls the pods and the new pod reads it.
//!
//! Runs by default as root; `PRISM_K8S=0` or `PRISM_K8S_NODE=0` skips it.

use std::time::Duration;

use serde_json::{json, Value};

use prism_test_support::node_cluster::{NodeCluster, NodeOptions};
use prism_test_support::process::ADMIN_PASSWORD;
use prism_test_support::{wait_for_every, Backend, ServerProcess, TestDb};

fn skipped() -> bool {
    match NodeCluster::unavailable() {
        Some(why) => {
            eprintln!("{why}: skipping the real-node secrets test");
            true
        }
        None => false,
    }
}

/// A project's Deployment that keeps busybox running and takes the secrets
/// as templates see them: references only.
const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ app.name | tojson }}
  namespace: {{ env.namespace | tojson }}
spec:
  replicas: 1
  progressDeadlineSeconds: 90
  selector:
    matchLabels: {{ selector_labels | tojson }}
  template:
    metadata:
      labels: {{ labels | tojson }}
    spec:
      automountServiceAccountToken: false
      terminationGracePeriodSeconds: 1
      containers:
        - name: main
          image: {{ image.ref | tojson }}
          command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
          env:
{%- for s in secret_env %}
            - name: {{ s.name | tojson }}
              valueFrom: {secretKeyRef: {name: {{ s.secret | tojson }}, key: {{ s.key | tojson }}}}
{%- endfor %}
          volumeMounts: [{name: secrets, mountPath: {{ secret_files_path | tojson }}, readOnly: true}]
      volumes:
        - name: secrets
          projected:
            sources:
{%- for s in secret_files %}
              - secret: {name: {{ s.secret | tojson }}, items: [{key: {{ s.key | tojson }}, path: {{ s.name | tojson }}}]}
{%- endfor %}
"#;

struct Prism {
    server: ServerProcess,
    token: String,
}

impl Prism {
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

    fn deploy(&self, image: &str) -> Value {
        let r = self.ok(
            "POST",
            "/api/v1/releases",
            Some(json!({"application": "web", "git_ref": "main", "change_note": "secrets on a node"})),
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
        self.ok(
            "POST",
            &format!("/api/v1/releases/{id}/actions/promote"),
            Some(json!({"environment": "uat"})),
        );
        let d = self.ok(
            "POST",
            &format!("/api/v1/releases/{id}/deploys"),
            Some(json!({"environment": "uat"})),
        );
        let did = d["id"].as_i64().unwrap();
        let mut last = Value::Null;
        wait_for_every(
            &format!("deploy {did} to settle"),
            Duration::from_secs(150),
            Duration::from_millis(250),
            || {
                last = self.ok("GET", &format!("/api/v1/deploys/{did}"), None);
                ["succeeded", "failed"].iter().any(|s| last["state"] == *s)
            },
        );
        let events = self.ok("GET", &format!("/api/v1/deploys/{did}/events"), None);
        assert_eq!(last["state"], "succeeded", "{last}\n{events}");
        last
    }
}

/// What the running pod of `web` reads: its variable and its file.
fn read_in_pod(k: &NodeCluster, secret_name: &str) -> (String, String) {
    // The pod that references the current Secret, once it is the only one running.
    let mut pod = String::new();
    wait_for_every(
        "the rolled pod to run alone",
        Duration::from_secs(60),
        Duration::from_millis(250),
        || {
            let list: Value = serde_json::from_str(&k.kubectl(&[
                "-n",
                "shop-uat",
                "get",
                "pods",
                "-l",
                "prism.io/application=web",
                "-o",
                "json",
            ]))
            .unwrap();
            let items = list["items"].as_array().cloned().unwrap_or_default();
            let live: Vec<&Value> = items
                .iter()
                .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
                .collect();
            let ok =
                live.len() == 1 && live[0]["status"]["phase"] == "Running" && live[0].to_string().contains(secret_name);
            if ok {
                pod = live[0]["metadata"]["name"].as_str().unwrap().to_owned();
            }
            ok
        },
    );
    let env = k.kubectl(&[
        "-n",
        "shop-uat",
        "exec",
        &pod,
        "--",
        "sh",
        "-c",
        "printf %s \"$DB_PASSWORD\"",
    ]);
    let file = k.kubectl(&[
        "-n",
        "shop-uat",
        "exec",
        &pod,
        "--",
        "cat",
        "/etc/prism/secrets/API_TOKEN",
    ]);
    (env, file)
}

#[test]
fn secret_values_reach_the_container_on_a_real_node() {
    if skipped() {
        return;
    }
    let k = NodeCluster::up("sec", &NodeOptions::default());
    let image = format!("{}/busybox:1", k.registry());
    k.kubectl(&["create", "namespace", "shop-uat"]);
    let server = ServerProcess::start_on(
        TestDb::start_blocking(Backend::Sqlite),
        "secrets-node",
        &[("PRISM_JOB_POLL_MS", "100")],
    );
    let mut p = Prism {
        server,
        token: String::new(),
    };
    p.token = p.ok(
        "POST",
        "/api/v1/auth/token",
        Some(json!({"username": "admin", "password": ADMIN_PASSWORD})),
    )["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let kubeconfig = std::fs::read_to_string(&k.kubeconfig).unwrap();
    p.ok(
        "POST",
        "/api/v1/clusters",
        Some(json!({"name": "node", "kubeconfig": kubeconfig})),
    );
    p.ok(
        "PATCH",
        "/api/v1/environments/uat",
        Some(json!({"cluster": "node", "namespace": "shop-uat",
        "policy": {"deploy_roles": ["developer", "operator"], "requires_review": false, "requires_previous": false}})),
    );
    p.ok("POST", "/api/v1/projects", Some(json!({"name": "shop"})));
    p.ok(
        "POST",
        "/api/v1/applications",
        Some(json!({"project": "shop", "name": "web", "git_url": "https://git.example/web.git"})),
    );
    let cur = p.ok("GET", "/api/v1/projects/shop/templates", None);
    p.ok(
        "PUT",
        "/api/v1/projects/shop/templates",
        Some(json!({"base_version": cur["current"]["version"], "files": {"deployment.yaml": DEPLOYMENT}})),
    );

    let unique = uuid::Uuid::new_v4().simple().to_string();
    let first = format!("first-{unique}");
    let token = format!("token-{unique}");
    p.ok(
        "PUT",
        "/api/v1/applications/web/secrets/DB_PASSWORD",
        Some(json!({"value": first, "environment": "uat"})),
    );
    p.ok(
        "PUT",
        "/api/v1/projects/shop/secrets/API_TOKEN",
        Some(json!({"value": token, "delivery": "file"})),
    );

    p.deploy(&image);
    let dep: Value =
        serde_json::from_str(&k.kubectl(&["-n", "shop-uat", "get", "deployment", "web", "-o", "json"])).unwrap();
    assert!(
        !dep.to_string().contains(&unique),
        "the Deployment holds a value: {dep}"
    );
    let secret = dep["spec"]["template"]["spec"]["containers"][0]["env"][0]["valueFrom"]["secretKeyRef"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(read_in_pod(&k, &secret), (first.clone(), token.clone()));

    // A new value rolls the pods; the new pod reads it.
    let second = format!("second-{unique}");
    p.ok(
        "PUT",
        "/api/v1/applications/web/secrets/DB_PASSWORD",
        Some(json!({"value": second, "environment": "uat"})),
    );
    p.deploy(&image);
    let dep: Value =
        serde_json::from_str(&k.kubectl(&["-n", "shop-uat", "get", "deployment", "web", "-o", "json"])).unwrap();
    let rolled = dep["spec"]["template"]["spec"]["containers"][0]["env"][0]["valueFrom"]["secretKeyRef"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(rolled, secret);
    assert_eq!(read_in_pod(&k, &rolled), (second, token));
    p.server.stop();
}
