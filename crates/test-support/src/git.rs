//! Real git servers for the checkout tests: a bare repository built with the git CLI,
//! served by `git daemon` (git://) and by `git http-backend` behind a minimal CGI bridge
//! (HTTP, optional Basic auth).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A bare repository `app.git` under `root` with:
/// - main: c1 (VERSION=1), c2 (VERSION=2)
/// - feature: c3 on top of c1 (VERSION=feature)
/// - tags: v1 (annotated, at c1), light (lightweight, at c3)
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub c1: String,
    pub c2: String,
    pub c3: String,
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        std::fs::create_dir(&work).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        std::fs::write(work.join("VERSION"), "1\n").unwrap();
        git(&work, &["add", "VERSION"]);
        git(&work, &["commit", "-q", "-m", "one"]);
        let c1 = git(&work, &["rev-parse", "HEAD"]);
        git(&work, &["tag", "-a", "v1", "-m", "version 1"]);
        std::fs::write(work.join("VERSION"), "2\n").unwrap();
        git(&work, &["commit", "-q", "-am", "two"]);
        let c2 = git(&work, &["rev-parse", "HEAD"]);
        git(&work, &["checkout", "-q", "-b", "feature", &c1]);
        std::fs::write(work.join("VERSION"), "feature\n").unwrap();
        git(&work, &["commit", "-q", "-am", "three"]);
        let c3 = git(&work, &["rev-parse", "HEAD"]);
        git(&work, &["tag", "light"]);
        git(dir.path(), &["clone", "-q", "--bare", "work", "app.git"]);
        Self { dir, c1, c2, c3 }
    }

    pub fn base(&self) -> &Path {
        self.dir.path()
    }

    pub fn bare(&self) -> PathBuf {
        self.dir.path().join("app.git")
    }
}

pub use crate::dirs::free_port;

/// `git daemon` serving everything under `base` on 127.0.0.1; killed on drop.
pub struct GitDaemon {
    child: std::process::Child,
    pub port: u16,
}

impl GitDaemon {
    pub async fn start(base: &Path) -> Self {
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new("git")
                .args([
                    "daemon",
                    "--export-all",
                    "--informative-errors",
                    "--reuseaddr",
                    "--listen=127.0.0.1",
                    &format!("--port={port}"),
                    &format!("--base-path={}", base.display()),
                    &base.display().to_string(),
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // `git daemon` runs `git-daemon` as a child: give both their own group so
                // that drop can kill the pair.
                .process_group(0)
                .spawn()
                .expect("start git daemon");
            for _ in 0..100 {
                if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                    return Self { child, port };
                }
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            kill_group(&mut child);
        }
        panic!("git daemon did not start");
    }

    pub fn url(&self, repo: &str) -> String {
        format!("git://127.0.0.1:{}/{repo}", self.port)
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

fn kill_group(child: &mut std::process::Child) {
    // SAFETY: killpg has no memory-safety preconditions.
    unsafe {
        libc::killpg(child.id() as libc::pid_t, libc::SIGKILL);
    }
    let _ = child.wait();
}

/// Smart HTTP: a tiny HTTP/1.1 server that hands each request to `git http-backend` as
/// CGI. One request per connection (`Connection: close`).
pub struct HttpGit {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl HttpGit {
    pub async fn start(project_root: &Path, auth: Option<(&str, &str)>) -> Self {
        Self::start_on(std::net::Ipv4Addr::LOCALHOST.into(), project_root, auth).await
    }

    /// On `ip` (an address of this host, e.g. a test node's pod gateway).
    pub async fn start_on(ip: std::net::IpAddr, project_root: &Path, auth: Option<(&str, &str)>) -> Self {
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let root = Arc::new(project_root.to_owned());
        let auth = Arc::new(auth.map(|(u, p)| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        }));
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else { return };
                let root = root.clone();
                let auth = auth.clone();
                tokio::spawn(async move {
                    let _ = serve(sock, &root, auth.as_deref()).await;
                });
            }
        });
        Self { addr, task }
    }

    pub fn url(&self, repo: &str) -> String {
        format!("http://{}/{repo}", self.addr)
    }
}

impl Drop for HttpGit {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(sock: TcpStream, root: &Path, auth: Option<&str>) -> std::io::Result<()> {
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::new(r);
    let mut request_line = String::new();
    r.read_line(&mut request_line).await?;
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let target = parts.next().unwrap_or("/").to_owned();
    let mut headers: HashMap<String, String> = HashMap::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await? == 0 {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    if let Some(expected) = auth {
        if headers.get("authorization").map(String::as_str) != Some(expected) {
            let body = "authentication required\n";
            let resp = format!(
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"prism-test\"\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            w.write_all(resp.as_bytes()).await?;
            return w.shutdown().await;
        }
    }
    // Request body: Content-Length or chunked.
    let mut body = Vec::new();
    if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size_line = String::new();
            r.read_line(&mut size_line).await?;
            let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
            let mut chunk = vec![0; size + 2];
            if size == 0 {
                // Trailer section: read until the empty line.
                let mut l = String::new();
                r.read_line(&mut l).await?;
                break;
            }
            r.read_exact(&mut chunk).await?;
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(len) = headers.get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(len, 0);
        r.read_exact(&mut body).await?;
    }

    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", root)
        .env("REQUEST_METHOD", &method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(ct) = headers.get("content-type") {
        cmd.env("CONTENT_TYPE", ct);
    }
    if auth.is_some() {
        cmd.env("REMOTE_USER", "authorized");
    }
    for (k, v) in &headers {
        if k == "content-type" || k == "content-length" || k == "authorization" {
            continue;
        }
        cmd.env(format!("HTTP_{}", k.to_ascii_uppercase().replace('-', "_")), v);
    }
    let mut child = cmd.spawn()?;
    let mut stdin = child.stdin.take().unwrap();
    let writer = tokio::spawn(async move {
        let _ = stdin.write_all(&body).await;
        drop(stdin);
    });
    let out = child.wait_with_output().await?;
    let _ = writer.await;
    let raw = out.stdout;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
    let (head, content) = match split {
        Some((i, n)) => (String::from_utf8_lossy(&raw[..i]).into_owned(), &raw[i + n..]),
        None => (String::new(), &raw[..]),
    };
    let mut status = "200 OK".to_owned();
    let mut resp = String::new();
    for line in head.lines() {
        let line = line.trim_end();
        if let Some(s) = line.strip_prefix("Status:") {
            status = s.trim().to_owned();
        } else if !line.is_empty() {
            resp.push_str(line);
            resp.push_str("\r\n");
        }
    }
    let head = format!(
        "HTTP/1.1 {status}\r\n{resp}Content-Length: {}\r\nConnection: close\r\n\r\n",
        content.len()
    );
    w.write_all(head.as_bytes()).await?;
    w.write_all(content).await?;
    w.shutdown().await
}
