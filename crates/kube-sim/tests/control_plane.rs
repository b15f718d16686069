//! A real Kubernetes v1.20.2 control plane (`scripts/k8s/cluster.sh`) with the simulated
//! node (`prism-kube-sim`): rollouts complete, failures look like failures to the real
//! Deployment controller, RBAC is real, and two clusters run side by side.
//!
//! Runs by default (the tests call `scripts/k8s/ensure-binaries.sh` first, which is quick
//! once its cache is warm); `PRISM_K8S=0` skips them.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Namespace, Node, Pod};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use serde_json::{json, Value};

const SIM: &str = env!("CARGO_BIN_EXE_prism-kube-sim");

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

fn skipped() -> bool {
    if std::env::var("PRISM_K8S").as_deref() == Ok("0") {
        eprintln!("PRISM_K8S=0: skipping the control-plane test");
        return true;
    }
    false
}

/// The tests start whole clusters: one at a time keeps a 2-core machine responsive.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn runtime() -> tokio::runtime::Runtime {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn ensure_binaries() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let out = Command::new("bash")
            .arg(repo_root().join("scripts/k8s/ensure-binaries.sh"))
            .stderr(Stdio::inherit())
            .output()
            .expect("run ensure-binaries.sh");
        assert!(out.status.success(), "scripts/k8s/ensure-binaries.sh failed");
    });
}

/// A cluster started by `cluster.sh up`, stopped by `cluster.sh down` when dropped (also when
/// the test fails; and by the script's watchdog if this process is killed).
struct Cluster {
    name: String,
    kubeconfig: PathBuf,
    started_in: Duration,
}

impl Cluster {
    fn up(label: &str) -> Cluster {
        let name = format!("test-{}-{label}", std::process::id());
        let t0 = Instant::now();
        let out = Command::new("bash")
            .arg(repo_root().join("scripts/k8s/cluster.sh"))
            .args(["up", &name])
            .env("PRISM_K8S_OWNER_PID", std::process::id().to_string())
            .stderr(Stdio::inherit())
            .output()
            .expect("run cluster.sh");
        let started_in = t0.elapsed();
        assert!(out.status.success(), "cluster.sh up {name} failed");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let kubeconfig = PathBuf::from(stdout.lines().last().expect("kubeconfig path").trim());
        assert!(kubeconfig.is_file(), "no kubeconfig at {}", kubeconfig.display());
        eprintln!("cluster {name} up in {:.1} s", started_in.as_secs_f64());
        Cluster {
            name,
            kubeconfig,
            started_in,
        }
    }

    fn state_dir(&self) -> PathBuf {
        self.kubeconfig.parent().unwrap().to_path_buf()
    }

    async fn client(&self) -> Client {
        client_from(&self.kubeconfig).await
    }

    fn server(&self) -> String {
        let kc = Kubeconfig::read_from(&self.kubeconfig).unwrap();
        kc.clusters[0].cluster.as_ref().unwrap().server.clone().unwrap()
    }

    /// Runs the simulated node against this cluster until dropped.
    fn simulator(&self, node: &str, extra: &[&str]) -> Simulator {
        let log_path = self.state_dir().join(format!("logs/sim-{node}.log"));
        let log = std::fs::File::create(&log_path).unwrap();
        let child = Command::new(SIM)
            .args(["--kubeconfig", self.kubeconfig.to_str().unwrap(), "--node-name", node])
            .args(["--owner-pid", &std::process::id().to_string()])
            .args(extra)
            .env("PRISM_KUBE_SIM_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prism-kube-sim");
        Simulator { child, log_path }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "(cluster {} logs were in {})",
                self.name,
                self.state_dir().join("logs").display()
            );
        }
        let _ = Command::new("bash")
            .arg(repo_root().join("scripts/k8s/cluster.sh"))
            .args(["down", &self.name])
            .stdout(Stdio::null())
            .status();
    }
}

struct Simulator {
    child: Child,
    log_path: PathBuf,
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            if let Ok(log) = std::fs::read_to_string(&self.log_path) {
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                eprintln!("--- simulator log (last lines) ---");
                for line in tail.iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
    }
}

/// Debian's `docker-registry` on a free loopback port, stopped when dropped.
struct Registry {
    child: Child,
    host: String,
    _dir: TempDir,
}

impl Registry {
    fn start() -> Option<Registry> {
        if Command::new("sh")
            .args(["-c", "command -v docker-registry"])
            .stdout(Stdio::null())
            .status()
            .map(|s| !s.success())
            .unwrap_or(true)
        {
            return None;
        }
        let dir = TempDir::new("prism-registry");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let host = format!("127.0.0.1:{port}");
        let config = dir.0.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog: {{level: warn}}\nstorage: {{filesystem: {{rootdirectory: {}}}, delete: {{enabled: true}}}}\nhttp: {{addr: {host}}}\n",
                dir.0.join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.0.join("registry.log")).unwrap())
            .spawn()
            .ok()?;
        let registry = Registry { child, host, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if curl(&[
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                &format!("http://{}/v2/", registry.host),
            ])
            .0 == "200"
            {
                return Some(registry);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("docker-registry did not answer on {}", registry.host);
    }

    /// Pushes a minimal Docker v2 image (one config blob, one layer); returns its digest.
    fn push(&self, repo: &str, tag: &str) -> String {
        let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec();
        let layer = format!("layer of {repo}:{tag}").into_bytes();
        let config_digest = self.push_blob(repo, &config);
        let layer_digest = self.push_blob(repo, &layer);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": config.len(), "digest": config_digest},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": layer.len(), "digest": layer_digest}],
        })
        .to_string();
        let (code, _) = curl_with_body(
            &[
                "-X",
                "PUT",
                "-H",
                "Content-Type: application/vnd.docker.distribution.manifest.v2+json",
                &format!("http://{}/v2/{repo}/manifests/{tag}", self.host),
            ],
            manifest.as_bytes(),
        );
        assert_eq!(code, "201", "manifest upload");
        sha256_digest(manifest.as_bytes())
    }

    fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let digest = sha256_digest(data);
        let (_, headers) = curl(&[
            "-s",
            "-D",
            "-",
            "-o",
            "/dev/null",
            "-X",
            "POST",
            &format!("http://{}/v2/{repo}/blobs/uploads/", self.host),
        ]);
        let location = headers
            .lines()
            .find_map(|l| l.strip_prefix("Location: ").or_else(|| l.strip_prefix("location: ")))
            .expect("upload location")
            .trim()
            .to_string();
        let location = if location.starts_with('/') {
            format!("http://{}{location}", self.host)
        } else {
            location
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        // An explicit content type: with curl's default (a form) the registry reads the body as one.
        let (code, _) = curl_with_body(
            &[
                "-X",
                "PUT",
                "-H",
                "Content-Type: application/octet-stream",
                &format!("{location}{sep}digest={digest}"),
            ],
            data,
        );
        assert_eq!(code, "201", "blob upload");
        digest
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("{prefix}-{}-{}", std::process::id(), rand_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        % 1_000_000_007
}

fn sha256_digest(data: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let hex: String = d.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Runs curl; returns (stdout's last line as the -w output or the whole stdout, stdout).
fn curl(args: &[&str]) -> (String, String) {
    let out = Command::new("curl").args(args).output().expect("run curl");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    (stdout.trim().to_string(), stdout)
}

fn curl_with_body(args: &[&str], body: &[u8]) -> (String, String) {
    let mut child = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--data-binary", "@-"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run curl");
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    (stdout.trim().to_string(), stdout)
}

async fn client_from(path: &Path) -> Client {
    let kc = Kubeconfig::read_from(path).unwrap();
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

/// Polls `check` until it returns Some, or fails the test after `timeout`.
async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let why = match check().await {
            Ok(v) => return v,
            Err(why) => why,
        };
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}: {why}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[derive(Debug, PartialEq)]
enum Rollout {
    Done,
    Waiting(String),
    Failed(String),
}

/// The logic of `kubectl rollout status` for a Deployment.
fn rollout_status(d: &Deployment) -> Rollout {
    let generation = d.metadata.generation.unwrap_or(0);
    let status = d.status.clone().unwrap_or_default();
    if status.observed_generation.unwrap_or(0) < generation {
        return Rollout::Waiting("waiting for the deployment spec update to be observed".into());
    }
    if let Some(c) = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded"))
    {
        return Rollout::Failed(c.message.clone().unwrap_or_default());
    }
    let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    if updated < replicas {
        return Rollout::Waiting(format!("{updated} of {replicas} updated replicas are available"));
    }
    if total > updated {
        return Rollout::Waiting(format!("{} old replicas are pending termination", total - updated));
    }
    if available < updated {
        return Rollout::Waiting(format!("{available} of {updated} updated replicas are available"));
    }
    Rollout::Done
}

fn deployment(name: &str, replicas: i32, image: &str, fail: Option<&str>, deadline: Option<i32>) -> Value {
    let mut d = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{
                    "name": "app",
                    "image": image,
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
                }]},
            },
        },
    });
    if let Some(f) = fail {
        d["spec"]["template"]["metadata"]["annotations"] = json!({"prism.test/fail": f});
    }
    if let Some(s) = deadline {
        d["spec"]["progressDeadlineSeconds"] = json!(s);
    }
    d
}

async fn apply(api: &Api<Deployment>, name: &str, body: &Value) {
    api.patch(name, &PatchParams::apply("prism-test").force(), &Patch::Apply(body))
        .await
        .unwrap_or_else(|e| panic!("server-side apply of deployment {name}: {e}"));
}

async fn wait_rollout(api: &Api<Deployment>, name: &str, timeout: Duration) -> Duration {
    let t0 = Instant::now();
    wait_for(&format!("rollout of {name}"), timeout, || async {
        let d = api.get(name).await.map_err(|e| e.to_string())?;
        match rollout_status(&d) {
            Rollout::Done => Ok(()),
            Rollout::Waiting(w) => Err(w),
            Rollout::Failed(f) => panic!("rollout of {name} failed: {f}"),
        }
    })
    .await;
    t0.elapsed()
}

async fn create_namespace(client: &Client, name: &str) {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap_or_else(|e| panic!("create namespace {name}: {e}"));
}

async fn wait_node_ready(client: &Client, node: &str) {
    let nodes: Api<Node> = Api::all(client.clone());
    wait_for(&format!("node {node} Ready"), Duration::from_secs(30), || async {
        let n = nodes
            .get_opt(node)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("no node yet")?;
        let ready = n
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        if ready {
            Ok(())
        } else {
            Err("not Ready".to_string())
        }
    })
    .await;
}

fn container_state(pod: &Pod) -> Value {
    let s = pod.status.as_ref().unwrap();
    serde_json::to_value(&s.container_statuses.as_ref().unwrap()[0]).unwrap()
}

#[test]
fn rollouts_failures_and_rbac_on_a_real_control_plane() {
    if skipped() {
        return;
    }
    let _serial = serial();
    ensure_binaries();
    runtime().block_on(rollouts_failures_and_rbac());
}

async fn rollouts_failures_and_rbac() {
    let cluster = Cluster::up("main");
    let registry = Registry::start();
    if registry.is_none() {
        eprintln!("docker-registry is not installed: skipping the ErrImagePull case");
    }
    let mut sim_args = Vec::new();
    if let Some(r) = &registry {
        sim_args.extend(["--registry", r.host.as_str()]);
    }
    let _sim = cluster.simulator("sim-node", &sim_args);
    let client = cluster.client().await;
    wait_node_ready(&client, "sim-node").await;

    let ns = "rollout";
    create_namespace(&client, ns).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);

    // 1. A Deployment with 3 replicas rolls out; its pods look like a kubelet's.
    apply(
        &deployments,
        "web",
        &deployment("web", 3, "example.invalid/shop/web:1.0", None, None),
    )
    .await;
    let took = wait_rollout(&deployments, "web", Duration::from_secs(60)).await;
    eprintln!("web (3 replicas) rolled out in {:.2} s", took.as_secs_f64());
    let list = pods.list(&ListParams::default().labels("app=web")).await.unwrap();
    assert_eq!(list.items.len(), 3);
    let mut ips = HashSet::new();
    for p in &list.items {
        let spec = p.spec.as_ref().unwrap();
        assert_eq!(spec.node_name.as_deref(), Some("sim-node"));
        let st = p.status.as_ref().unwrap();
        assert_eq!(st.phase.as_deref(), Some("Running"));
        let ip = st.pod_ip.clone().unwrap();
        assert!(ip.starts_with("10.244."), "pod IP {ip}");
        assert!(ips.insert(ip), "pod IPs are unique");
        assert!(st.start_time.is_some());
        for ty in ["Ready", "ContainersReady", "PodScheduled", "Initialized"] {
            let c = st.conditions.iter().flatten().find(|c| c.type_ == ty).unwrap();
            assert_eq!(c.status, "True", "condition {ty}");
        }
        let cs = &st.container_statuses.as_ref().unwrap()[0];
        assert!(cs.ready);
        assert_eq!(cs.image, "example.invalid/shop/web:1.0");
        assert!(
            cs.image_id.starts_with("example.invalid/shop/web@sha256:"),
            "{}",
            cs.image_id
        );
        assert!(cs.state.as_ref().unwrap().running.is_some());
    }

    // 2. Scaling down: the ReplicaSet deletes pods gracefully, the node finishes the deletion.
    apply(
        &deployments,
        "web",
        &deployment("web", 1, "example.invalid/shop/web:1.0", None, None),
    )
    .await;
    wait_rollout(&deployments, "web", Duration::from_secs(60)).await;
    wait_for("web scaled down to 1 pod", Duration::from_secs(30), || async {
        let n = pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .map_err(|e| e.to_string())?
            .items
            .len();
        if n == 1 {
            Ok(())
        } else {
            Err(format!("{n} pods"))
        }
    })
    .await;

    // 3. A rolling update to a new image completes too.
    apply(
        &deployments,
        "web",
        &deployment("web", 1, "example.invalid/shop/web:1.1", None, None),
    )
    .await;
    wait_rollout(&deployments, "web", Duration::from_secs(60)).await;

    // 4. Many pods: all Ready quickly (the simulator watches, it does not poll).
    let many = 200;
    let t0 = Instant::now();
    apply(
        &deployments,
        "many",
        &deployment("many", many, "example.invalid/many:1", None, None),
    )
    .await;
    let took = wait_rollout(&deployments, "many", Duration::from_secs(120)).await;
    let created: Vec<Pod> = pods
        .list(&ListParams::default().labels("app=many"))
        .await
        .unwrap()
        .items;
    assert_eq!(created.len(), many as usize);
    eprintln!(
        "many ({many} replicas) rolled out in {:.2} s (apply to all available: {:.2} s)",
        took.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
    apply(
        &deployments,
        "many",
        &deployment("many", 0, "example.invalid/many:1", None, None),
    )
    .await;

    // 5. Pods that never become ready: the real Deployment controller gives up after
    //    progressDeadlineSeconds.
    apply(
        &deployments,
        "stuck",
        &deployment("stuck", 2, "example.invalid/stuck:1", Some("never-ready"), Some(5)),
    )
    .await;
    let t0 = Instant::now();
    let message = wait_for("ProgressDeadlineExceeded on stuck", Duration::from_secs(60), || async {
        let d = deployments.get("stuck").await.map_err(|e| e.to_string())?;
        match rollout_status(&d) {
            Rollout::Failed(m) => Ok(m),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    eprintln!(
        "stuck: ProgressDeadlineExceeded after {:.1} s: {message}",
        t0.elapsed().as_secs_f64()
    );
    let d = deployments.get("stuck").await.unwrap();
    let st = d.status.unwrap();
    assert_eq!(st.available_replicas.unwrap_or(0), 0);
    let progressing = st
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Progressing")
        .unwrap();
    assert_eq!(progressing.status, "False");
    assert_eq!(progressing.reason.as_deref(), Some("ProgressDeadlineExceeded"));
    for p in pods
        .list(&ListParams::default().labels("app=stuck"))
        .await
        .unwrap()
        .items
    {
        let st = p.status.as_ref().unwrap();
        assert_eq!(st.phase.as_deref(), Some("Running"));
        assert_eq!(container_state(&p)["ready"], json!(false));
        assert!(container_state(&p)["state"]["running"].is_object());
        let ready = st.conditions.iter().flatten().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.status, "False");
        assert_eq!(ready.reason.as_deref(), Some("ContainersNotReady"));
    }

    // 6. A crash-looping container: CrashLoopBackOff with a growing restart count.
    let crash: Pod = serde_json::from_value(json!({
        "metadata": {"name": "crash", "annotations": {"prism.test/fail": "crashloop"}},
        "spec": {"containers": [{"name": "app", "image": "example.invalid/crash:1"}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &crash).await.unwrap();
    wait_for("crash restarted twice", Duration::from_secs(30), || async {
        let p = pods.get("crash").await.map_err(|e| e.to_string())?;
        let Some(statuses) = p.status.as_ref().and_then(|s| s.container_statuses.as_ref()) else {
            return Err("no container status yet".into());
        };
        let c = serde_json::to_value(&statuses[0]).unwrap();
        assert_eq!(c["ready"], json!(false));
        let reason = c["state"]["waiting"]["reason"].as_str().unwrap_or_default().to_string();
        let restarts = c["restartCount"].as_i64().unwrap_or(0);
        if reason == "CrashLoopBackOff" && restarts >= 2 {
            Ok(())
        } else {
            Err(format!("reason {reason:?}, restarts {restarts}"))
        }
    })
    .await;

    // 7. An image missing from the registry: ErrImagePull; once pushed, the pod starts with
    //    the registry's digest as its imageID.
    if let Some(registry) = &registry {
        let image = format!("{}/prism/app:1.0", registry.host);
        let missing: Pod = serde_json::from_value(json!({
            "metadata": {"name": "pull"},
            "spec": {"containers": [{"name": "app", "image": image}]},
        }))
        .unwrap();
        pods.create(&PostParams::default(), &missing).await.unwrap();
        let message = wait_for("ErrImagePull", Duration::from_secs(30), || async {
            let p = pods.get("pull").await.map_err(|e| e.to_string())?;
            let st = p.status.as_ref().ok_or("no status")?;
            let Some(cs) = st.container_statuses.as_ref() else {
                return Err("no container status yet".into());
            };
            let c = serde_json::to_value(&cs[0]).unwrap();
            if c["state"]["waiting"]["reason"] == json!("ErrImagePull") {
                assert_eq!(st.phase.as_deref(), Some("Pending"));
                assert_eq!(c["ready"], json!(false));
                Ok(c["state"]["waiting"]["message"].as_str().unwrap().to_string())
            } else {
                Err(format!("state {}", c["state"]))
            }
        })
        .await;
        assert!(message.contains("not found"), "{message}");
        assert!(message.starts_with("rpc error:"), "{message}");
        eprintln!("ErrImagePull message: {message}");
        let events: Api<Event> = Api::namespaced(client.clone(), ns);
        wait_for("a Failed event for the pull", Duration::from_secs(10), || async {
            let list = events
                .list(&ListParams::default().fields("involvedObject.name=pull"))
                .await
                .map_err(|e| e.to_string())?;
            if list.items.iter().any(|e| e.reason.as_deref() == Some("Failed")) {
                Ok(())
            } else {
                Err("no event".into())
            }
        })
        .await;

        let digest = registry.push("prism/app", "1.0");
        wait_for("pull to start after the push", Duration::from_secs(30), || async {
            let p = pods.get("pull").await.map_err(|e| e.to_string())?;
            let c = container_state(&p);
            if c["ready"] == json!(true) {
                assert_eq!(c["imageID"], json!(format!("{}/prism/app@{digest}", registry.host)));
                Ok(())
            } else {
                Err(format!("state {}", c["state"]))
            }
        })
        .await;
        // An image that is there from the start runs at once.
        let present: Pod = serde_json::from_value(json!({
            "metadata": {"name": "present"},
            "spec": {"containers": [{"name": "app", "image": format!("{}/prism/app@{digest}", registry.host)}]},
        }))
        .unwrap();
        pods.create(&PostParams::default(), &present).await.unwrap();
        wait_for("present running", Duration::from_secs(20), || async {
            let p = pods.get("present").await.map_err(|e| e.to_string())?;
            let ready = p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .map(|c| c[0].ready);
            if ready == Some(true) {
                Ok(())
            } else {
                Err("not ready".into())
            }
        })
        .await;
    }

    // 8. RBAC is real: the ns-limited user reaches one namespace only, once bound there.
    let limited = client_from(&cluster.state_dir().join("ns-limited.kubeconfig")).await;
    let limited_pods: Api<Pod> = Api::namespaced(limited.clone(), ns);
    let err = limited_pods.list(&ListParams::default()).await.unwrap_err();
    assert!(matches!(&err, kube::Error::Api(s) if s.code == 403), "{err}");
    let binding: k8s_openapi::api::rbac::v1::RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "ns-limited-edit", "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "ns-limited"}],
    }))
    .unwrap();
    Api::<k8s_openapi::api::rbac::v1::RoleBinding>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    // The authorizer sees the new binding through its watch cache, a moment later.
    let visible = wait_for(
        "ns-limited to be allowed in its namespace",
        Duration::from_secs(10),
        || async {
            limited_pods
                .list(&ListParams::default())
                .await
                .map(|l| l.items.len())
                .map_err(|e| e.to_string())
        },
    )
    .await;
    assert!(visible >= 2, "{visible} pods visible");
    let elsewhere: Api<Pod> = Api::namespaced(limited.clone(), "default");
    let err = elsewhere.list(&ListParams::default()).await.unwrap_err();
    assert!(matches!(&err, kube::Error::Api(s) if s.code == 403), "{err}");
    let err = Api::<Node>::all(limited)
        .list(&ListParams::default())
        .await
        .unwrap_err();
    assert!(matches!(&err, kube::Error::Api(s) if s.code == 403), "{err}");
    eprintln!("cluster start took {:.1} s", cluster.started_in.as_secs_f64());
}

#[test]
fn two_clusters_run_at_once_and_are_independent() {
    if skipped() {
        return;
    }
    let _serial = serial();
    ensure_binaries();
    runtime().block_on(two_clusters());
}

async fn two_clusters() {
    // Both start at the same moment: the script must give them different ports.
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| Cluster::up("a"));
        let b = s.spawn(|| Cluster::up("b"));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_ne!(a.server(), b.server());
    let _sim_a = a.simulator("node-a", &[]);
    let _sim_b = b.simulator("node-b", &["--pod-cidr", "10.245.0.0/16"]);
    let (ca, cb) = (a.client().await, b.client().await);
    wait_node_ready(&ca, "node-a").await;
    wait_node_ready(&cb, "node-b").await;

    let names = |c: Client| async move {
        Api::<Node>::all(c)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|n| n.metadata.name.unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(ca.clone()).await, vec!["node-a"]);
    assert_eq!(names(cb.clone()).await, vec!["node-b"]);

    create_namespace(&ca, "only-in-a").await;
    let ns_b: Api<Namespace> = Api::all(cb.clone());
    assert!(ns_b.get_opt("only-in-a").await.unwrap().is_none());

    let da: Api<Deployment> = Api::namespaced(ca.clone(), "default");
    let db: Api<Deployment> = Api::namespaced(cb.clone(), "default");
    apply(&da, "app", &deployment("app", 2, "example.invalid/app:a", None, None)).await;
    apply(&db, "app", &deployment("app", 3, "example.invalid/app:b", None, None)).await;
    wait_rollout(&da, "app", Duration::from_secs(60)).await;
    wait_rollout(&db, "app", Duration::from_secs(60)).await;
    let count = |c: Client, prefix: &'static str| async move {
        let pods = Api::<Pod>::namespaced(c, "default")
            .list(&ListParams::default().labels("app=app"))
            .await
            .unwrap()
            .items;
        for p in &pods {
            let ip = p.status.as_ref().unwrap().pod_ip.clone().unwrap();
            assert!(ip.starts_with(prefix), "{ip}");
        }
        pods.len()
    };
    assert_eq!(count(ca.clone(), "10.244.").await, 2);
    assert_eq!(count(cb.clone(), "10.245.").await, 3);

    // Stopping one leaves the other running.
    let a_state = a.state_dir();
    drop(a);
    assert!(!a_state.exists(), "cluster.sh down removes the state");
    assert_eq!(db.get("app").await.unwrap().status.unwrap().available_replicas, Some(3));
}
