use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ADMIN_PASSWORD: &str = "bench-admin-password";

/// A real `prism serve` child process (the binary built next to this one).
pub struct Server {
    child: Child,
    pub base: String,
}

impl Server {
    pub async fn start(dir: &Path, url: &str) -> anyhow::Result<Self> {
        Self::start_with_env(dir, url, &[]).await
    }

    /// Like [`Server::start`], with these environment variables set too.
    pub async fn start_with_env(dir: &Path, url: &str, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?.with_file_name("prism");
        anyhow::ensure!(
            exe.exists(),
            "{} not found: build it with `cargo build --release -p prism -p prism-bench`",
            exe.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new(exe)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(dir)
            .args(["--database-url", url])
            .env("PRISM_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("PRISM_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .spawn()?;
        let server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while reqwest::get(format!("{}/healthz", server.base))
            .await
            .map(|r| !r.status().is_success())
            .unwrap_or(true)
        {
            anyhow::ensure!(Instant::now() < deadline, "server did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(server)
    }

    /// The server's process id (for /proc readings).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident set size of the server process so far, in KiB.
    pub fn peak_rss_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let line = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .ok_or_else(|| anyhow::anyhow!("no VmHWM"))?;
        Ok(line.split_whitespace().nth(1).unwrap_or("0").parse()?)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The admin's API client for a benchmark's server: calls that must succeed.
pub struct AdminApi {
    pub base: String,
    pub token: String,
    http: reqwest::Client,
}

impl AdminApi {
    pub async fn sign_in(server: &Server) -> anyhow::Result<AdminApi> {
        let http = reqwest::Client::new();
        let token: serde_json::Value = http
            .post(format!("{}/api/v1/auth/token", server.base))
            .json(&serde_json::json!({"username": "admin", "password": ADMIN_PASSWORD}))
            .send()
            .await?
            .json()
            .await?;
        Ok(AdminApi {
            base: server.base.clone(),
            token: token["secret"].as_str().unwrap_or_default().to_owned(),
            http,
        })
    }

    /// One call; its JSON answer, or an error naming the call and the answer.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<serde_json::Value> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let v: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
        anyhow::ensure!(status.is_success(), "{method} {path}: {status} {v}");
        Ok(v)
    }
}
