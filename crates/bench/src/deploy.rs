//! `prism-bench deploy`: Prism deploying N applications (render, dry-run
//! diff, server-side apply, rollout watch, all through its API and job
//! runner) beside `kubectl apply --server-side -f` of the same rendered
//! objects plus `kubectl rollout status` for each, on one simulated cluster,
//! in the same run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::report::Figure;
use crate::server::AdminApi;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

struct Cluster {
    name: String,
    kubeconfig: PathBuf,
    sim: Child,
}

impl Cluster {
    fn up() -> anyhow::Result<Self> {
        let st = Command::new("bash")
            .arg(repo().join("scripts/k8s/ensure-binaries.sh"))
            .env("PRISM_K8S_NO_NODE", "1")
            .stdout(Stdio::null())
            .status()?;
        anyhow::ensure!(st.success(), "ensure-binaries.sh failed");
        let name = format!("bench{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
        let out = Command::new("bash")
            .arg(repo().join("scripts/k8s/cluster.sh"))
            .args(["up", &name])
            .env("PRISM_K8S_OWNER_PID", std::process::id().to_string())
            // A simulated node: nothing of a real node's (kubelet, containerd, images) is needed.
            .env("PRISM_K8S_NO_NODE", "1")
            .output()?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let lines: Vec<&str> = stderr.lines().collect();
            anyhow::bail!(
                "scripts/k8s/cluster.sh up failed: {}",
                lines[lines.len().saturating_sub(5)..].join(" / ")
            );
        }
        let kubeconfig = PathBuf::from(String::from_utf8(out.stdout)?.trim().lines().last().unwrap_or_default());
        let exe = std::env::current_exe()?.with_file_name("prism-kube-sim");
        anyhow::ensure!(
            exe.exists(),
            "{} not found: build it with --release -p prism-kube-sim",
            exe.display()
        );
        let sim = Command::new(exe)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["--owner-pid", &std::process::id().to_string()])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()?;
        Ok(Cluster { name, kubeconfig, sim })
    }

    fn kubectl(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8(out.stdout)?)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.sim.kill();
        let _ = self.sim.wait();
        let _ = Command::new("bash")
            .arg(repo().join("scripts/k8s/cluster.sh"))
            .args(["down", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

pub async fn run(counts: &[usize]) -> anyhow::Result<()> {
    let cluster = Cluster::up()?;
    let dir = std::env::temp_dir().join(format!("prism-bench-deploy-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let server = crate::server::Server::start(&dir, &format!("sqlite://{}", dir.join("prism.db").display())).await?;
    let api = AdminApi::sign_in(&server).await?;
    let kc = std::fs::read_to_string(&cluster.kubeconfig)?;
    api.call(
        reqwest::Method::POST,
        "/api/v1/clusters",
        Some(json!({"name": "bench", "kubeconfig": kc})),
    )
    .await?;
    api.call(
        reqwest::Method::POST,
        "/api/v1/projects",
        Some(json!({"name": "bench"})),
    )
    .await?;
    println!("prism-bench deploy: one v1.20.2 control plane with a simulated node; each round deploys fresh objects");
    println!("(kubectl: one apply of everything, then `rollout status` one after another; kubectl -P8: each");
    println!(" application's apply + rollout status, 8 at a time, as `xargs -P 8` would; floor: one apply, then");
    println!(" watching until every Deployment is available: the control plane's own time)");
    println!(
        "{:>6} {:>10} {:>10} {:>12} {:>9} {:>11} {:>13}",
        "apps", "prism s", "kubectl s", "kubectl -P8", "floor s", "vs kubectl", "vs -P8"
    );
    for &n in counts {
        let ns_prism = format!("prism-{n}");
        let ns_kubectl = format!("kubectl-{n}");
        let ns_parallel = format!("kpar-{n}");
        let ns_floor = format!("floor-{n}");
        for ns in [&ns_prism, &ns_kubectl, &ns_parallel, &ns_floor] {
            cluster.kubectl(&["create", "namespace", ns])?;
        }
        api.call(
            reqwest::Method::PATCH,
            "/api/v1/environments/fat",
            Some(json!({"cluster": "bench", "namespace": ns_prism})),
        )
        .await?;
        let mut releases = vec![];
        for i in 0..n {
            let app = format!("a{n}-{i}");
            api.call(
                reqwest::Method::POST,
                "/api/v1/applications",
                Some(json!({"project": "bench", "name": app, "git_url": "https://git.example/a.git"})),
            )
            .await?;
            let r = api
                .call(
                    reqwest::Method::POST,
                    "/api/v1/releases",
                    Some(json!({"application": app, "git_ref": "main", "change_note": "bench"})),
                )
                .await?;
            let id = r["id"].as_str().unwrap_or_default().to_owned();
            api.call(
                reqwest::Method::POST,
                &format!("/api/v1/releases/{id}/actions/start_build"),
                Some(json!({})),
            )
            .await?;
            api.call(
                reqwest::Method::POST,
                &format!("/api/v1/releases/{id}/actions/build_succeeded"),
                Some(json!({"image_ref": format!("registry.example/{app}:r1")})),
            )
            .await?;
            api.call(
                reqwest::Method::POST,
                &format!("/api/v1/releases/{id}/actions/promote"),
                Some(json!({"environment": "fat"})),
            )
            .await?;
            releases.push(id);
        }
        // Prism: start every deploy at once, wait for all to succeed.
        let started = Instant::now();
        let mut ids = vec![];
        for id in &releases {
            let d = api
                .call(
                    reqwest::Method::POST,
                    &format!("/api/v1/releases/{id}/deploys"),
                    Some(json!({"environment": "fat"})),
                )
                .await?;
            ids.push(d["id"].as_i64().unwrap_or_default());
        }
        let mut manifests = vec![];
        for id in &ids {
            loop {
                let d = api
                    .call(reqwest::Method::GET, &format!("/api/v1/deploys/{id}"), None)
                    .await?;
                match d["state"].as_str() {
                    Some("succeeded") => {
                        manifests.push(d["manifests"].clone());
                        break;
                    }
                    Some("failed") => anyhow::bail!("deploy {id} failed: {}", d["error"]),
                    _ => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        }
        let prism_s = started.elapsed().as_secs_f64();

        // kubectl: the same objects into another namespace.
        let file = dir.join(format!("kubectl-{n}.yaml"));
        let mut yaml = String::new();
        let mut names = vec![];
        for m in &manifests {
            for o in m.as_array().into_iter().flatten() {
                let mut obj = o["object"].clone();
                obj["metadata"]["namespace"] = json!(ns_kubectl);
                if obj["kind"] == "Deployment" {
                    names.push(obj["metadata"]["name"].as_str().unwrap_or_default().to_owned());
                }
                yaml.push_str("---\n");
                yaml.push_str(&serde_json::to_string(&obj)?);
                yaml.push('\n');
            }
        }
        std::fs::write(&file, yaml)?;
        let started = Instant::now();
        cluster.kubectl(&["apply", "--server-side", "-f", file.to_str().unwrap_or_default()])?;
        for name in &names {
            cluster.kubectl(&[
                "rollout",
                "status",
                &format!("deployment/{name}"),
                "-n",
                &ns_kubectl,
                "--timeout=300s",
            ])?;
        }
        let kubectl_s = started.elapsed().as_secs_f64();
        let parallel_s = kubectl_parallel(&cluster, &dir, &manifests, &ns_parallel, 8)?;
        let floor_s = floor(&cluster, &dir, &manifests, &ns_floor, names.len())?;
        println!(
            "{n:>6} {prism_s:>10.2} {kubectl_s:>10.2} {parallel_s:>12.2} {floor_s:>9.2} {:>10.2}x {:>12.2}x",
            prism_s / kubectl_s,
            prism_s / parallel_s
        );
        let case = format!("{n} applications");
        for (peer, s) in [
            ("kubectl apply + rollout status, one after another", kubectl_s),
            ("kubectl, 8 applications at a time", parallel_s),
            ("floor: the control plane's own time", floor_s),
        ] {
            Figure::new("deploy", &case, "deploy time", prism_s, "s")
                .beside(peer, s, prism_s / s)
                .record();
        }
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Each application's objects into `namespace`, as a YAML stream; and the
/// name of its Deployment.
fn per_app(manifests: &[Value], namespace: &str) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = vec![];
    for m in manifests {
        let (mut yaml, mut name) = (String::new(), String::new());
        for o in m.as_array().into_iter().flatten() {
            let mut obj = o["object"].clone();
            obj["metadata"]["namespace"] = json!(namespace);
            if obj["kind"] == "Deployment" {
                name = obj["metadata"]["name"].as_str().unwrap_or_default().to_owned();
            }
            yaml.push_str("---\n");
            yaml.push_str(&serde_json::to_string(&obj)?);
            yaml.push('\n');
        }
        out.push((yaml, name));
    }
    Ok(out)
}

/// What a script that wanted speed would run: for each application,
/// `kubectl apply --server-side` of its objects then `kubectl rollout
/// status` of its Deployment, `width` applications at a time.
fn kubectl_parallel(
    cluster: &Cluster,
    dir: &std::path::Path,
    manifests: &[Value],
    namespace: &str,
    width: usize,
) -> anyhow::Result<f64> {
    let mut files = vec![];
    for (i, (yaml, name)) in per_app(manifests, namespace)?.into_iter().enumerate() {
        let file = dir.join(format!("{namespace}-{i}.yaml"));
        std::fs::write(&file, yaml)?;
        files.push((file, name));
    }
    let queue = std::sync::Mutex::new(files.into_iter());
    let started = Instant::now();
    let failures = std::sync::Mutex::new(Vec::<String>::new());
    std::thread::scope(|s| {
        for _ in 0..width {
            s.spawn(|| loop {
                let Some((file, name)) = queue.lock().expect("queue").next() else {
                    return;
                };
                let done = cluster
                    .kubectl(&["apply", "--server-side", "-f", file.to_str().unwrap_or_default()])
                    .and_then(|_| {
                        cluster.kubectl(&[
                            "rollout",
                            "status",
                            &format!("deployment/{name}"),
                            "-n",
                            namespace,
                            "--timeout=300s",
                        ])
                    });
                if let Err(e) = done {
                    failures.lock().expect("failures").push(e.to_string());
                }
            });
        }
    });
    let failures = failures.into_inner().expect("failures");
    anyhow::ensure!(failures.is_empty(), "kubectl -P{width}: {}", failures.join("; "));
    Ok(started.elapsed().as_secs_f64())
}

/// The control plane's own time: one apply of everything, then watching
/// (one list every 50 ms) until every Deployment reports all its replicas
/// updated and available for its current generation.
fn floor(
    cluster: &Cluster,
    dir: &std::path::Path,
    manifests: &[Value],
    namespace: &str,
    deployments: usize,
) -> anyhow::Result<f64> {
    let file = dir.join(format!("{namespace}.yaml"));
    let yaml: String = per_app(manifests, namespace)?.into_iter().map(|(y, _)| y).collect();
    std::fs::write(&file, yaml)?;
    let started = Instant::now();
    cluster.kubectl(&["apply", "--server-side", "-f", file.to_str().unwrap_or_default()])?;
    loop {
        let list: Value =
            serde_json::from_str(&cluster.kubectl(&["get", "deployments", "-n", namespace, "-o", "json"])?)?;
        let items = list["items"].as_array().cloned().unwrap_or_default();
        let ready = items
            .iter()
            .filter(|d| {
                let want = d["spec"]["replicas"].as_i64().unwrap_or(1);
                d["status"]["observedGeneration"] == d["metadata"]["generation"]
                    && d["status"]["updatedReplicas"].as_i64() == Some(want)
                    && d["status"]["availableReplicas"].as_i64() == Some(want)
            })
            .count();
        if ready == deployments {
            return Ok(started.elapsed().as_secs_f64());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "the control plane did not roll out in 10 minutes"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
