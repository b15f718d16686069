//! Test harness shared by the integration tests of `prism`: a real
//! `prism serve` on a free port with its own data directory, the real CLI run
//! against it with its own config directory, and small helpers (free ports,
//! temp dirs, polling). Each test binary includes it with `mod common;` and
//! uses only part of it, hence the `#[allow(dead_code)]`s.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

#[allow(dead_code)]
pub const BIN: &str = env!("CARGO_BIN_EXE_prism");
#[allow(dead_code)]
pub const ADMIN_PASSWORD: &str = "some-long-password";

pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// A fresh directory `prism-{tag}-{uuid}` under the system temp dir (kept).
#[allow(dead_code)]
pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("prism-{tag}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Polls `f` every 100 ms until it holds; panics after `timeout`.
#[allow(dead_code)]
pub fn wait_for(what: &str, timeout: Duration, f: impl FnMut() -> bool) {
    wait_for_every(what, timeout, Duration::from_millis(100), f)
}

/// Polls `f` every `poll` until it holds; panics after `timeout`.
#[allow(dead_code)]
pub fn wait_for_every(what: &str, timeout: Duration, poll: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(poll);
    }
}

/// A directory under the system temp dir, removed on drop.
#[allow(dead_code)]
pub struct Scratch(pub PathBuf);

#[allow(dead_code)]
impl Scratch {
    /// `prism-{test binary}-test-{name}-…`, e.g. `prism-cli-deploy-test-…` in cli_deploy.
    pub fn new(name: &str) -> Scratch {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let binary = env!("CARGO_CRATE_NAME").replace('_', "-");
        let dir = std::env::temp_dir().join(format!("prism-{binary}-test-{name}-{}-{n}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }

    /// Where the CLI keeps credentials (PRISM_CONFIG_DIR); not created beforehand.
    pub fn config_dir(&self) -> PathBuf {
        self.0.join("config")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What one run of the CLI did.
#[allow(dead_code)]
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

#[allow(dead_code)]
impl Run {
    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "expected success, got {self:#?}");
        self
    }

    pub fn json(self) -> Value {
        let run = self.ok();
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", run.stdout))
    }

    /// Like `fails_with`, for commands that print progress on stderr before
    /// the error: only the last line starts with `error: `.
    pub fn ends_with_error(self, code: i32, needle: &str) -> Run {
        assert_eq!(self.code, code, "expected exit code {code}, got {self:#?}");
        let last = self.stderr.lines().last().unwrap_or("");
        assert!(
            last.starts_with("error: ") && last.contains(needle),
            "the last line of stderr should be an error mentioning {needle:?}: {self:#?}"
        );
        self
    }

    pub fn fails_with(self, code: i32, needle: &str) -> Run {
        assert_eq!(self.code, code, "expected exit code {code}, got {self:#?}");
        assert!(
            self.stderr.starts_with("error: "),
            "stderr should start with `error: `: {self:#?}"
        );
        assert!(
            self.stderr.contains(needle),
            "stderr should mention {needle:?}: {self:#?}"
        );
        self
    }
}

/// The prism binary with no PRISM_* variables inherited from the environment.
#[allow(dead_code)]
pub fn clean_command() -> Command {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PRISM_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Runs the CLI with a clean environment: no PRISM_* variables but the config dir.
#[allow(dead_code)]
pub fn prism(config_dir: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    let mut cmd = clean_command();
    cmd.env("PRISM_CONFIG_DIR", config_dir).env("NO_COLOR", "1").args(args);
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start prism");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait for prism");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `GET /healthz` over plain HTTP/1.0: whether the answer is 200.
#[allow(dead_code)]
pub fn healthy(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
        .lines()
        .next()
        .is_some_and(|status| status.split_whitespace().nth(1) == Some("200"))
}

/// A running `prism serve`, killed on drop.
#[allow(dead_code)]
pub struct Server {
    pub child: Child,
    pub url: String,
    pub port: u16,
    env: Vec<(String, String)>,
    // Dropped after the child is killed (fields drop in order, after `Drop::drop`).
    pub scratch: Scratch,
}

#[allow(dead_code)]
impl Server {
    pub fn start(name: &str) -> Server {
        Server::start_with(name, &[])
    }

    /// Like `start`, with extra environment variables for `prism serve`
    /// (e.g. `PRISM_LOG` to read what it did from its log).
    pub fn start_with_env(name: &str, env: &[(&str, &str)]) -> Server {
        Server::start_with(name, env)
    }

    /// A server with extra environment variables (PRISM_BASE_SOURCES, ...).
    pub fn start_with(name: &str, env: &[(&str, &str)]) -> Server {
        let scratch = Scratch::new(name);
        let port = free_port();
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let child = Self::spawn(&scratch, port, &env);
        let mut server = Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
            port,
            env,
            scratch,
        };
        server.wait_healthy();
        server
    }

    fn spawn(scratch: &Scratch, port: u16, env: &[(String, String)]) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(scratch.0.join("server.log"))
            .expect("server log");
        clean_command()
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(scratch.0.join("data"))
            .env("PRISM_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start prism serve")
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !healthy(self.port) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("prism serve exited with {status}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "prism serve not healthy within 30 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILLs the server (no graceful shutdown: a crash) and starts it again
    /// on the same data directory and port.
    pub fn crash_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Self::spawn(&self.scratch, self.port, &self.env);
        self.wait_healthy();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.scratch.0.join("server.log")).unwrap_or_default()
    }

    pub fn config_dir(&self) -> PathBuf {
        self.scratch.config_dir()
    }

    pub fn run(&self, args: &[&str]) -> Run {
        prism(&self.config_dir(), args, None)
    }

    pub fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Run {
        prism(&self.config_dir(), args, Some(stdin))
    }

    /// Runs a command with `--output json` and parses what it printed.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["--output", "json"]);
        self.run(&args).json()
    }

    pub fn login_admin(&self) {
        self.run_with_stdin(
            &["login", &self.url, "--username", "admin", "--password-stdin"],
            &format!("{ADMIN_PASSWORD}\n"),
        )
        .ok();
    }

    /// A logged-in admin with project `shop` and application `web`.
    pub fn with_app(name: &str) -> Server {
        let server = Server::start(name);
        server.login_admin();
        server
            .run(&["project", "create", "shop", "--description", "The shop"])
            .ok();
        server
            .run(&[
                "app",
                "create",
                "web",
                "--project",
                "shop",
                "--git-url",
                "https://git.example.com/web.git",
            ])
            .ok();
        server
    }

    /// Creates a release of `web` and builds it, passing `build_args` on to
    /// `release build-result` after `--succeeded --commit-sha abcdef1`: state `built`.
    pub fn built_release_with(&self, build_args: &[&str]) -> String {
        let rel = self.json(&[
            "release",
            "create",
            "--app",
            "web",
            "--ref",
            "main",
            "--note",
            "first cut",
        ]);
        let id = rel["id"].as_str().expect("release id").to_owned();
        self.run(&["release", "start-build", &id]).ok();
        let mut args = vec!["release", "build-result", &id, "--succeeded", "--commit-sha", "abcdef1"];
        args.extend_from_slice(build_args);
        let built = self.json(&args);
        assert_eq!(built["state"], "built");
        id
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
