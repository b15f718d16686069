//! The real `prism` binary: `prism serve` as a child process on a free port
//! and a [`TestDb`] ([`ServerProcess`]), and the CLI run against it with its
//! own config directory ([`prism`], [`Run`]).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::db::TestDb;
use crate::dirs::{free_port, TempDir};

pub const ADMIN_PASSWORD: &str = "some-long-password";

/// How long `prism serve` may take to stop after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The `prism` binary cargo built for the running test binary: beside the
/// test binary's `deps/` directory (`target/debug/prism`).
pub fn prism_bin() -> PathBuf {
    sibling_bin("prism")
}

/// Another binary of the workspace built beside `prism` (`prism-kube-sim`).
pub fn sibling_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe.parent().expect("deps dir");
    let dir = if dir.ends_with("deps") {
        dir.parent().expect("target profile dir")
    } else {
        dir
    };
    let bin = dir.join(name);
    assert!(bin.exists(), "{} missing: cargo build --bin {name}", bin.display());
    bin
}

/// What one run of the CLI did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

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
pub fn clean_command() -> Command {
    let mut cmd = Command::new(prism_bin());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PRISM_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Runs the CLI with a clean environment: no PRISM_* variables but the config dir.
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

/// Sends SIGTERM to `child` and waits up to `timeout` for it to exit;
/// whether it did.
pub fn terminate(child: &mut Child, timeout: Duration) -> bool {
    if let Ok(Some(_)) = child.try_wait() {
        return true;
    }
    // SAFETY: kill(2) with a pid we started and have not reaped yet.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A running `prism serve` on its own [`TestDb`] (SQLite, or PostgreSQL
/// when `PRISM_TEST_PG_URL` is set) with a scratch directory for the CLI's
/// config, its log and the test's files. [`ServerProcess::stop`] (or `Drop`,
/// the safety net) stops it with SIGTERM, checks that no job was left
/// running or leased, then drops the database and removes the directories.
pub struct ServerProcess {
    pub child: Child,
    pub url: String,
    pub port: u16,
    env: Vec<(String, String)>,
    /// The CLI's config dir, the server's log, the test's own files.
    pub scratch: TempDir,
    stopped: bool,
    // Dropped after the child is stopped (fields drop after `Drop::drop`).
    db: TestDb,
}

impl ServerProcess {
    pub fn start(name: &str) -> ServerProcess {
        ServerProcess::start_with(name, &[])
    }

    /// Like `start`, with extra environment variables for `prism serve`
    /// (e.g. `PRISM_LOG` to read what it did from its log).
    pub fn start_with_env(name: &str, env: &[(&str, &str)]) -> ServerProcess {
        ServerProcess::start_with(name, env)
    }

    /// A server with extra environment variables (PRISM_BASE_SOURCES, ...).
    pub fn start_with(name: &str, env: &[(&str, &str)]) -> ServerProcess {
        ServerProcess::start_on(TestDb::new_blocking(), name, env)
    }

    /// A server on the given database.
    pub fn start_on(db: TestDb, name: &str, env: &[(&str, &str)]) -> ServerProcess {
        let scratch = TempDir::new(name);
        let port = free_port();
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let child = Self::spawn(&db, &scratch, port, &env);
        let mut server = ServerProcess {
            child,
            url: format!("http://127.0.0.1:{port}"),
            port,
            env,
            scratch,
            stopped: false,
            db,
        };
        server.wait_healthy();
        server
    }

    fn spawn(db: &TestDb, scratch: &TempDir, port: u16, env: &[(String, String)]) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(scratch.join("server.log"))
            .expect("server log");
        let mut cmd = clean_command();
        cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(db.dir());
        if let Some(url) = db.server_url() {
            cmd.args(["--database-url", &url]);
        }
        cmd.env("PRISM_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start prism serve")
    }

    /// Stops the server gracefully and keeps its data dir and database, for
    /// commands that need it stopped (`prism admin ...`); [`Self::resume`]
    /// starts it again.
    pub fn pause(&mut self) {
        assert!(
            terminate(&mut self.child, STOP_TIMEOUT),
            "prism serve did not stop within {} s of SIGTERM:\n{}",
            STOP_TIMEOUT.as_secs(),
            self.log()
        );
    }

    /// Starts a paused server again, with `env` on top of its own; the
    /// server's log if it exits instead of becoming healthy.
    pub fn resume(&mut self, env: &[(&str, &str)]) -> Result<(), String> {
        let mut all = self.env.clone();
        all.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self.child = Self::spawn(&self.db, &self.scratch, self.port, &all);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !healthy(self.port) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Err(self.log());
            }
            if Instant::now() > deadline {
                return Err(format!("not healthy within 30 s:\n{}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
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
    /// on the same data directory, database and port.
    pub fn crash_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Self::spawn(&self.db, &self.scratch, self.port, &self.env);
        self.wait_healthy();
    }

    pub fn db(&self) -> &TestDb {
        &self.db
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> &Path {
        self.db.dir()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.scratch.join("server.log")).unwrap_or_default()
    }

    /// Where the CLI keeps credentials (PRISM_CONFIG_DIR); not created beforehand.
    pub fn config_dir(&self) -> PathBuf {
        self.scratch.join("config")
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
    pub fn with_app(name: &str) -> ServerProcess {
        let server = ServerProcess::start(name);
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

    /// Stops the server gracefully (SIGTERM) and checks that it left no job
    /// running or leased; then the database and directories go.
    pub fn stop(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        if std::mem::replace(&mut self.stopped, true) {
            return;
        }
        let graceful = terminate(&mut self.child, STOP_TIMEOUT);
        if !graceful {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            return;
        }
        assert!(
            graceful,
            "prism serve did not stop within {} s of SIGTERM:\n{}",
            STOP_TIMEOUT.as_secs(),
            self.log()
        );
        let jobs = self.db.leftover_jobs_blocking();
        self.db.assert_no_leftover_jobs(&jobs);
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.finish();
    }
}
