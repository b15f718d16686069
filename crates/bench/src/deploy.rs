//! `prism-bench deploy`: Prism deploying N applications (render, dry-run
//! diff, server-side apply, rollout watch, all through its API and job
//! runner) beside `kubectl apply --server-side -f` of the same rendered
//! objects plus `kubectl rollout status` for each, on one simulated cluster,
//! in the same run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::server::ADMIN_PASSWORD;

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
            .stdout(Stdio::null())
            .status()?;
        anyhow::ensure!(st.success(), "ensure-binaries.sh failed");
        let name = format!("bench{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
        let out = Command::new("bash")
            .arg(repo().join("scripts/k8s/cluster.sh"))
            .args(["up", &name])
            .env("PRISM_K8S_OWNER_PID", std::process::id().to_string())
            .stderr(Stdio::null())
            .output()?;
        anyhow::ensure!(out.status.success(), "cluster.sh up failed");
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

struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        anyhow::ensure!(status.is_success(), "{method} {path}: {status} {v}");
        Ok(v)
    }
}

pub async fn run(counts: &[usize]) -> anyhow::Result<()> {
    let cluster = Cluster::up()?;
    let dir = std::env::temp_dir().join(format!("prism-bench-deploy-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let server = crate::server::Server::start(&dir, &format!("sqlite://{}", dir.join("prism.db").display())).await?;
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{}/api/v1/auth/token", server.base))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    let api = Api {
        base: server.base.clone(),
        token: token["secret"].as_str().unwrap_or_default().to_owned(),
        http,
    };
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
    println!("{:>6} {:>12} {:>14} {:>9}", "apps", "prism s", "kubectl s", "ratio");
    for &n in counts {
        let ns_prism = format!("prism-{n}");
        let ns_kubectl = format!("kubectl-{n}");
        cluster.kubectl(&["create", "namespace", &ns_prism])?;
        cluster.kubectl(&["create", "namespace", &ns_kubectl])?;
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
        println!("{n:>6} {prism_s:>12.2} {kubectl_s:>14.2} {:>8.2}x", prism_s / kubectl_s);
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
