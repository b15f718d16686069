//! The HA overlay (`deploy/kubernetes/overlays/ha`, issue 18 item 2) on a
//! REAL node (`scripts/k8s/cluster.sh up NAME --node`: kubelet v1.20.2 +
//! containerd + runc), installed the way the README's Operations section
//! says (namespace, the two Secrets, `kubectl apply` of the overlay with
//! the image set to Prism's own image, built by `prism admin image`):
//! - both replicas become Ready (their probes answer) and each serves a login;
//! - a deploy (to a second control plane, with the simulated node held back
//!   so the rollout stays in progress) is being watched by one replica when
//!   that pod is deleted; another replica resumes the deploy and finishes it.
//!
//! The pods run on the node's pod network (not the host's): the node's bridge
//! has an address (`PRISM_K8S_POD_GATEWAY=1`), and the test's PostgreSQL and
//! the target control plane's API server listen on it. Nothing listens
//! beyond this host, and the pods reach nothing but that address and each
//! other.
//!
//! Runs by default as root (a kubelet needs root); `PRISM_K8S=0` or
//! `PRISM_K8S_NODE=0` skips it.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use prism_test_support::kube::KubeCluster;
use prism_test_support::node_cluster::{NodeCluster, NodeOptions};
use prism_test_support::process::clean_command;
use prism_test_support::registry::TestRegistry;
use prism_test_support::{free_port, wait_for_every, TempDir};
use serde_json::{json, Value};

const ADMIN_PASSWORD: &str = "ha-overlay-admin-password";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A throw-away PostgreSQL cluster listening on one address of this host,
/// trusting the pod network; stopped and removed on drop.
struct PodPostgres {
    bin: PathBuf,
    dir: TempDir,
    url: String,
}

impl PodPostgres {
    fn start(address: IpAddr) -> PodPostgres {
        let initdb = std::fs::read_dir("/usr/lib/postgresql")
            .expect("Debian's postgresql (scripts/test.sh installs it)")
            .flatten()
            .map(|v| v.path().join("bin/initdb"))
            .filter(|p| p.is_file())
            .max()
            .expect("an initdb");
        let bin = initdb.parent().unwrap().to_path_buf();
        let dir = TempDir::new("ha-postgres");
        let data = dir.path().join("data");
        let as_postgres = |program: &Path| {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        };
        let chown = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(chown.success());
        let st = as_postgres(&initdb)
            .args(["-A", "trust", "-U", "postgres", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "initdb failed");
        let mut hba = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("pg_hba.conf"))
            .unwrap();
        std::io::Write::write_all(&mut hba, b"host all all 10.244.0.0/16 trust\n").unwrap();
        let port = free_port();
        let st = as_postgres(&bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .arg("-o")
            .arg(format!(
                "-p {port} -k {} -c listen_addresses={address}",
                dir.path().display()
            ))
            .arg("-l")
            .arg(dir.path().join("log"))
            .args(["-w", "start"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "pg_ctl start failed");
        let pg = PodPostgres {
            bin,
            dir,
            url: format!("postgres://postgres@{address}:{port}"),
        };
        let st = Command::new("psql")
            .arg(format!("{}/postgres", pg.url))
            .args(["-qc", "create database prism"])
            .status()
            .unwrap();
        assert!(st.success(), "create database");
        pg
    }
}

impl Drop for PodPostgres {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .status();
    }
}

/// The overlay as `kubectl kustomize` renders it, as JSON objects.
fn rendered_overlay(node: &NodeCluster) -> Vec<Value> {
    let yaml = node.kubectl(&[
        "kustomize",
        &repo().join("deploy/kubernetes/overlays/ha").to_string_lossy(),
    ]);
    let dir = TempDir::new("ha-overlay");
    let file = dir.path().join("ha.yaml");
    std::fs::write(&file, yaml).unwrap();
    let json = node.kubectl(&[
        "create",
        "--dry-run=client",
        "-o",
        "json",
        "-f",
        &file.to_string_lossy(),
    ]);
    // One JSON document per object, one after another.
    serde_json::Deserializer::from_str(&json)
        .into_iter::<Value>()
        .map(|v| v.expect("kubectl's JSON"))
        .collect()
}

struct Api {
    base: String,
    token: String,
    http: reqwest::blocking::Client,
}

impl Api {
    fn login(ip: &str) -> Api {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .no_proxy()
            .build()
            .unwrap();
        let base = format!("http://{ip}:8080");
        let r = http
            .post(format!("{base}/api/v1/auth/token"))
            .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 201, "login through {ip}");
        let token = r.json::<Value>().unwrap()["secret"].as_str().unwrap().to_owned();
        Api { base, token, http }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().unwrap();
        let status = r.status();
        let v: Value = r.json().unwrap_or(Value::Null);
        assert!(status.is_success(), "{method} {path} -> {status}: {v}");
        v
    }
}

#[derive(Debug)]
struct PrismPod {
    name: String,
    ip: String,
    ready: bool,
}

fn prism_pods(node: &NodeCluster) -> Vec<PrismPod> {
    let pods: Value = serde_json::from_str(&node.kubectl(&["-n", "prism", "get", "pods", "-o", "json"])).unwrap();
    pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| PrismPod {
            name: p["metadata"]["name"].as_str().unwrap().to_owned(),
            ip: p["status"]["podIP"].as_str().unwrap_or_default().to_owned(),
            ready: p["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True"),
        })
        .collect()
}

#[test]
fn two_ready_replicas_serve_logins_and_one_finishes_the_deploy_of_a_deleted_other() {
    if let Some(why) = NodeCluster::unavailable() {
        eprintln!("{why}: skipping the HA overlay test");
        return;
    }
    let t0 = Instant::now();
    let registry = TestRegistry::start(None);
    let node = NodeCluster::up(
        "ha",
        &NodeOptions {
            registry: Some(registry.host()),
            pod_gateway: true,
            ..Default::default()
        },
    );
    let gateway = node.gateway();
    let image = format!("{}/prism/server:ha", registry.host());
    let out = clean_command()
        .args(["admin", "image", "--to", &image])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let postgres = PodPostgres::start(gateway);
    let mut target = KubeCluster::up_without_node_on(gateway);
    target.kubectl(&["create", "namespace", "shop-fat"]);
    eprintln!(
        "node, image, PostgreSQL and target up after {:.1} s",
        t0.elapsed().as_secs_f64()
    );

    // As the README's Operations section says.
    node.kubectl(&["create", "namespace", "prism"]);
    let key = "q83vEjT3yJ6cZ1x0yFvJ3xY7m2R1o0b4c5d6e7f8a9s=";
    node.kubectl(&[
        "-n",
        "prism",
        "create",
        "secret",
        "generic",
        "prism-secret-key",
        &format!("--from-literal=key={key}"),
    ]);
    node.kubectl(&[
        "-n",
        "prism",
        "create",
        "secret",
        "generic",
        "prism-database",
        &format!("--from-literal=url={}/prism", postgres.url),
    ]);
    let mut objects = rendered_overlay(&node);
    let deployment = objects
        .iter_mut()
        .find(|o| o["kind"] == "Deployment")
        .expect("the overlay has a Deployment");
    assert_eq!(deployment["spec"]["replicas"], 2);
    let container = &mut deployment["spec"]["template"]["spec"]["containers"][0];
    container["image"] = json!(image);
    // The first admin (an installation would set it once, or use `prism admin`).
    container["env"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "PRISM_ADMIN_PASSWORD", "value": ADMIN_PASSWORD}));
    let kinds: Vec<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
    for kind in ["PodDisruptionBudget", "ServiceAccount", "Service", "Deployment"] {
        assert!(kinds.contains(&kind), "{kind} missing from the overlay: {kinds:?}");
    }
    let dir = TempDir::new("ha-apply");
    let file = dir.path().join("ha.json");
    std::fs::write(
        &file,
        json!({"apiVersion": "v1", "kind": "List", "items": objects}).to_string(),
    )
    .unwrap();
    node.kubectl(&["apply", "-f", &file.to_string_lossy()]);

    // Both replicas Ready: their readiness probes (/healthz, which reads the store) answer.
    let deadline = Instant::now() + Duration::from_secs(90);
    let pods = loop {
        let pods = prism_pods(&node);
        if pods.len() == 2 && pods.iter().all(|p| p.ready) {
            break pods;
        }
        if Instant::now() > deadline {
            let describe = node
                .try_kubectl(&["-n", "prism", "describe", "pods"])
                .unwrap_or_default();
            let logs = node
                .try_kubectl(&[
                    "-n",
                    "prism",
                    "logs",
                    "-l",
                    "app.kubernetes.io/name=prism",
                    "--tail",
                    "30",
                ])
                .unwrap_or_default();
            panic!("not two Ready Prism pods: {pods:?}\n{describe}\n{logs}");
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    eprintln!(
        "both replicas Ready after {:.1} s: {pods:?}",
        t0.elapsed().as_secs_f64()
    );
    let apis: Vec<Api> = pods.iter().map(|p| Api::login(&p.ip)).collect();
    for (pod, api) in pods.iter().zip(&apis) {
        let health = api.call("GET", "/healthz", None);
        assert_eq!(health["instance"], pod.name.as_str(), "{health}");
    }

    // A deploy through the first replica, watched while the target's node is held back.
    let a = &apis[0];
    let mut kubeconfig = target.kubeconfig_text();
    assert!(kubeconfig.contains(&gateway.to_string()), "{kubeconfig}");
    kubeconfig = kubeconfig.trim().to_string();
    a.call(
        "POST",
        "/api/v1/clusters",
        Some(json!({"name": "target", "kubeconfig": kubeconfig})),
    );
    a.call(
        "PATCH",
        "/api/v1/environments/fat",
        Some(json!({"cluster": "target", "namespace": "shop-fat"})),
    );
    a.call("POST", "/api/v1/projects", Some(json!({"name": "shop"})));
    a.call("POST", "/api/v1/applications", Some(json!({"project": "shop", "name": "web",
        "git_url": "https://git.example/web.git", "template_settings": {"progress_deadline_seconds": 600, "port": 8080}})));
    let release = a.call(
        "POST",
        "/api/v1/releases",
        Some(json!({"application": "web", "git_ref": "main", "change_note": "ha"})),
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    a.call(
        "POST",
        &format!("/api/v1/releases/{release}/actions/start_build"),
        Some(json!({})),
    );
    a.call(
        "POST",
        &format!("/api/v1/releases/{release}/actions/build_succeeded"),
        Some(json!({"image_ref": "registry.example/web:r1", "commit_sha": "abcdef1"})),
    );
    a.call(
        "POST",
        &format!("/api/v1/releases/{release}/actions/promote"),
        Some(json!({"environment": "fat"})),
    );
    let deploy = a.call(
        "POST",
        &format!("/api/v1/releases/{release}/deploys"),
        Some(json!({"environment": "fat"})),
    )["id"]
        .as_i64()
        .unwrap();
    wait_for_every(
        "the deploy watching",
        Duration::from_secs(60),
        Duration::from_millis(200),
        || a.call("GET", &format!("/api/v1/deploys/{deploy}"), None)["state"] == "watching",
    );
    let job_of = |api: &Api| -> Value {
        let jobs = api.call("GET", "/api/v1/jobs?kind=deploy", None);
        let job = jobs
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["payload"]["deploy_id"] == deploy)
            .cloned()
            .unwrap_or_else(|| panic!("no job for deploy {deploy}: {jobs}"));
        api.call("GET", &format!("/api/v1/jobs/{}", job["id"]), None)
    };
    let watching = job_of(a);
    let holder = watching["job"]["lease_owner"]
        .as_str()
        .expect("a leased job")
        .to_owned();
    let (held_by, other) = if holder == pods[0].name { (0, 1) } else { (1, 0) };
    assert_eq!(holder, pods[held_by].name, "the job is leased by one of the two pods");

    // The pod watching the deploy goes (as in a node drain). The rollout may
    // finish only once that pod has let go of the job: a pod that is told to
    // stop keeps running until the kubelet's SIGTERM reaches it, and a rollout
    // completed before then is rightly finished by the holder itself.
    node.kubectl(&["-n", "prism", "delete", "pod", &holder, "--wait=false"]);
    let b = &apis[other];
    wait_for_every(
        "the deleted pod handing the deploy back",
        Duration::from_secs(90),
        Duration::from_millis(200),
        || job_of(b)["job"]["lease_owner"].as_str() != Some(holder.as_str()),
    );
    target.start_sim(&[]);
    let mut last = Value::Null;
    wait_for_every(
        "the deploy finished by the other replica",
        Duration::from_secs(120),
        Duration::from_millis(500),
        || {
            last = b.call("GET", &format!("/api/v1/deploys/{deploy}"), None);
            ["succeeded", "failed", "rejected", "cancelled"].contains(&last["state"].as_str().unwrap_or(""))
        },
    );
    assert_eq!(last["state"], "succeeded", "{last}");
    let detail = job_of(b);
    let instances: Vec<&str> = detail["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["instance"].as_str())
        .collect();
    assert_eq!(instances.first(), Some(&holder.as_str()), "{detail}");
    let finisher = *instances.last().unwrap();
    assert_ne!(finisher, holder, "another replica finished it: {detail}");
    eprintln!(
        "deploy {deploy} started on {holder}, finished on {finisher}, after {:.1} s in all",
        t0.elapsed().as_secs_f64()
    );
}
