//! Checkout of one ref from a git server with the `git` command-line client.
//!
//! Steps: `git init`, `git fetch --depth 1 -- <url> <ref>`, `git checkout FETCH_HEAD`,
//! `git rev-parse HEAD^{commit}`. Every argument goes to git as its own argv entry (no
//! shell). Credentials reach git only through the environment of the fetch process and a
//! `GIT_ASKPASS` helper that prints them from there: never in the URL, the argv, a file, or
//! the log.

use std::fmt;
use std::path::Path;
use std::process::Stdio;

use prism_netguard::Guard;
use serde::{Deserialize, Serialize};
use tokio::process::Command;

use crate::executor::GroupGuard;

/// A full, lower-case hex commit id (40 for SHA-1 repositories, 64 for SHA-256).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CommitSha(String);

impl CommitSha {
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        is_full_sha(s).then(|| Self(s.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CommitSha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_full_sha(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Username and password (or token) for an HTTP(S) git server. `Debug` never shows the
/// password.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// The only `host[:port]` they are offered to (`None`: any, for callers
    /// that chose the URL themselves).
    pub host: Option<String>,
}

impl Credentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
            host: None,
        }
    }

    /// Binds the credentials to one `host[:port]`: a checkout of a URL on any
    /// other host is refused before git runs, git follows no redirect, and
    /// the askpass helper answers only prompts for that host.
    pub fn for_host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into().to_ascii_lowercase());
        self
    }
}

/// Whether `url` is an http(s) URL on `registered` (`host[:port]`; the
/// scheme's default port may be written or left out on either side).
fn same_host(registered: &str, url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once("://") else {
        return false;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "https" => ":443",
        "http" => ":80",
        _ => return false,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("").to_ascii_lowercase();
    let registered = registered.to_ascii_lowercase();
    let strip = |s: &str| s.strip_suffix(default_port).unwrap_or(s).to_owned();
    !authority.is_empty() && strip(&authority) == strip(&registered)
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    #[error("repository url {url:?} refused: {reason}")]
    InvalidUrl { url: String, reason: &'static str },
    #[error("the git credential is not for {url}: it is sent only to the host it was registered for")]
    CredentialHost { url: String },
    #[error("git ref {git_ref:?} refused: {reason}")]
    InvalidRef { git_ref: String, reason: &'static str },
    #[error("ref {git_ref:?} not found in {url}: {message}")]
    RefNotFound {
        url: String,
        git_ref: String,
        message: String,
    },
    #[error("authentication refused by {url}: {message}")]
    AuthRefused { url: String, message: String },
    #[error("repository {url} not found: {message}")]
    RepositoryNotFound { url: String, message: String },
    #[error("git server {url} unreachable: {message}")]
    Unreachable { url: String, message: String },
    #[error("checkout destination {dest} is not empty")]
    DestinationNotEmpty { dest: String },
    #[error("`git {step}` failed: {message}")]
    Git { step: &'static str, message: String },
    #[error("could not run git ({step}): {source}")]
    Io {
        step: &'static str,
        #[source]
        source: std::io::Error,
    },
}

const ALLOWED_SCHEMES: [&str; 3] = ["https://", "http://", "git://"];

fn validate_url(url: &str) -> Result<(), CheckoutError> {
    let refuse = |reason| {
        Err(CheckoutError::InvalidUrl {
            url: redact_url(url),
            reason,
        })
    };
    let Some(rest) = ALLOWED_SCHEMES.iter().find_map(|s| url.strip_prefix(s)) else {
        return refuse("only http://, https:// and git:// urls are supported");
    };
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return refuse("contains whitespace or control characters");
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() {
        return refuse("has no host");
    }
    if authority.contains('@') {
        return refuse("credentials must not be part of the url; store them in Prism instead");
    }
    Ok(())
}

/// Used only for error messages about a refused URL, which may contain credentials.
fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            match authority.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://***@{host}{path}"),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    }
}

/// Accepts branch and tag names (short or `refs/...`) and full commit ids; refuses
/// anything git would read as an option or as a refspec (`:`, `+`, globs), and what
/// `git check-ref-format` refuses.
fn validate_ref(r: &str) -> Result<(), CheckoutError> {
    let refuse = |reason| {
        Err(CheckoutError::InvalidRef {
            git_ref: r.to_owned(),
            reason,
        })
    };
    if r.is_empty() {
        return refuse("empty");
    }
    if r.len() > 255 {
        return refuse("longer than 255 characters");
    }
    if r.starts_with('-') {
        return refuse("must not start with '-'");
    }
    if r.starts_with('+') {
        return refuse("must not start with '+'");
    }
    if let Some(c) = r
        .chars()
        .find(|c| c.is_control() || c.is_whitespace() || ":?*[\\^~".contains(*c))
    {
        return refuse(match c {
            ':' => "must not contain ':' (a refspec, not a ref)",
            _ => "contains a character not allowed in a git ref (space, control, : ? * [ \\ ^ ~)",
        });
    }
    if r.contains("..") || r.contains("@{") || r == "@" || r.contains("//") {
        return refuse("contains '..', '@{', '//' or is '@'");
    }
    if r.starts_with('/') || r.ends_with('/') || r.ends_with('.') || r.ends_with(".lock") {
        return refuse("must not start or end with '/', or end with '.' or '.lock'");
    }
    if r.split('/').any(|c| c.starts_with('.')) {
        return refuse("a path component must not start with '.'");
    }
    Ok(())
}

/// Fetch `git_ref` (a branch, a tag, or a full commit id) from `url` into `dest` (which
/// must be missing or empty), check it out detached, and return the commit it resolved to.
///
/// There is no built-in timeout: wrap the call in `tokio::time::timeout` (or drop it on
/// cancel); dropping the future kills the running git process group.
pub async fn checkout(
    url: &str,
    git_ref: &str,
    dest: &Path,
    credentials: Option<&Credentials>,
) -> Result<CommitSha, CheckoutError> {
    checkout_guarded(url, git_ref, dest, credentials, &Guard::default()).await
}

/// [`checkout`] under an address policy: the server's name is resolved here
/// and refused when none of its addresses is allowed; git then connects to
/// the checked address only (`http.curloptResolve` pins the name, so curl
/// does not look it up again and a rebinding DNS answer cannot move it), and
/// follows no redirect (a redirect would name a host the pin does not cover).
pub async fn checkout_guarded(
    url: &str,
    git_ref: &str,
    dest: &Path,
    credentials: Option<&Credentials>,
    guard: &Guard,
) -> Result<CommitSha, CheckoutError> {
    validate_url(url)?;
    validate_ref(git_ref)?;
    let config = pin(url, guard).await?;
    if let Some(host) = credentials.and_then(|c| c.host.as_deref()) {
        if !same_host(host, url) {
            return Err(CheckoutError::CredentialHost { url: redact_url(url) });
        }
    }
    match std::fs::read_dir(dest) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(CheckoutError::DestinationNotEmpty {
                    dest: dest.display().to_string(),
                });
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dest).map_err(|source| CheckoutError::Io {
                step: "create destination",
                source,
            })?;
        }
        Err(source) => {
            return Err(CheckoutError::Io {
                step: "read destination",
                source,
            })
        }
    }

    // A private HOME (no user ~/.gitconfig with insteadOf rewrites or credential helpers)
    // that also holds the askpass helper; removed when this function returns.
    let scratch = tempfile::Builder::new()
        .prefix("prism-git-")
        .tempdir()
        .map_err(|source| CheckoutError::Io {
            step: "create scratch dir",
            source,
        })?;

    let git = Git {
        dest,
        home: scratch.path(),
        config: &config,
    };
    git.run("init", &["init", "--quiet", "."], None).await?;

    let askpass = match credentials {
        Some(c) => Some((write_askpass(scratch.path())?, c)),
        None => None,
    };
    let auth = askpass.as_ref().map(|(p, c)| (p.as_path(), *c));

    let fetched = git
        .run(
            "fetch",
            &["fetch", "--quiet", "--no-tags", "--depth", "1", "--", url, git_ref],
            auth,
        )
        .await;
    match fetched {
        Ok(_) => {}
        Err(GitFailure::Io(source)) => return Err(CheckoutError::Io { step: "fetch", source }),
        Err(GitFailure::Exit(stderr)) => {
            let classified = classify_fetch_error(url, git_ref, &stderr);
            // Servers that do not allow fetching an unadvertised commit by id: fetch the
            // branches and tags and look for the commit there.
            if is_full_sha(git_ref) && matches!(classified, CheckoutError::RefNotFound { .. }) {
                fetch_all_for_sha(&git, url, git_ref, auth).await?;
                git.run(
                    "checkout",
                    &["-c", "advice.detachedHead=false", "checkout", "--quiet", git_ref],
                    None,
                )
                .await?;
                return resolve_head(&git).await;
            }
            return Err(classified);
        }
    }
    git.run(
        "checkout",
        &[
            "-c",
            "advice.detachedHead=false",
            "checkout",
            "--quiet",
            "--detach",
            "FETCH_HEAD",
        ],
        None,
    )
    .await?;
    resolve_head(&git).await
}

async fn fetch_all_for_sha(
    git: &Git<'_>,
    url: &str,
    sha: &str,
    auth: Option<(&Path, &Credentials)>,
) -> Result<(), CheckoutError> {
    let args = [
        "fetch",
        "--quiet",
        "--",
        url,
        "+refs/heads/*:refs/prism/heads/*",
        "+refs/tags/*:refs/prism/tags/*",
    ];
    match git.run("fetch", &args, auth).await {
        Ok(_) => {}
        Err(GitFailure::Io(source)) => return Err(CheckoutError::Io { step: "fetch", source }),
        Err(GitFailure::Exit(stderr)) => return Err(classify_fetch_error(url, sha, &stderr)),
    }
    let spec = format!("{sha}^{{commit}}");
    match git
        .run("rev-parse", &["rev-parse", "--quiet", "--verify", &spec], None)
        .await
    {
        Ok(_) => Ok(()),
        Err(_) => Err(CheckoutError::RefNotFound {
            url: url.to_owned(),
            git_ref: sha.to_owned(),
            message: format!("commit {sha} is not reachable from any branch or tag"),
        }),
    }
}

async fn resolve_head(git: &Git<'_>) -> Result<CommitSha, CheckoutError> {
    let out = git
        .run("rev-parse", &["rev-parse", "--verify", "HEAD^{commit}"], None)
        .await?;
    CommitSha::parse(&out).ok_or_else(|| CheckoutError::Git {
        step: "rev-parse",
        message: format!("unexpected output {out:?}"),
    })
}

fn classify_fetch_error(url: &str, git_ref: &str, stderr: &str) -> CheckoutError {
    let message = stderr.trim().to_owned();
    let lower = message.to_ascii_lowercase();
    let url = url.to_owned();
    let any = |pats: &[&str]| pats.iter().any(|p| lower.contains(p));
    if any(&[
        "couldn't find remote ref",
        "no such remote ref",
        "not our ref",
        "unadvertised object",
        "no matching remote head",
    ]) {
        CheckoutError::RefNotFound {
            url,
            git_ref: git_ref.to_owned(),
            message,
        }
    } else if any(&[
        "authentication failed",
        "could not read username",
        "could not read password",
        "terminal prompts disabled",
        "http 401",
        "error: 401",
        "http 403",
        "error: 403",
        "access denied",
        "permission denied",
    ]) {
        CheckoutError::AuthRefused { url, message }
    } else if any(&[
        "repository not found",
        "does not appear to be a git repository",
        "not exported",
        "http 404",
        "error: 404",
        "no such repository",
    ]) {
        CheckoutError::RepositoryNotFound { url, message }
    } else if any(&[
        "could not resolve host",
        "could not resolve hostname",
        "unable to look up",
        "connection refused",
        "unable to connect",
        "failed to connect",
        "couldn't connect",
        "connection timed out",
        "network is unreachable",
        "no route to host",
        "ssl certificate problem",
        "unable to access",
        "the remote end hung up unexpectedly",
    ]) {
        // The requester may be anyone who can start a build: refused,
        // filtered, unresolvable and TLS trouble read the same to them (the
        // detail goes to the server's log, for admins).
        tracing::info!(url = %redact_url(&url), detail = %message, "git server unreachable");
        CheckoutError::Unreachable {
            url,
            message: prism_netguard::UNREACHABLE.to_owned(),
        }
    } else {
        CheckoutError::Git { step: "fetch", message }
    }
}

/// The helper git runs for a username or password. It prints them from environment
/// variables that only the fetch process receives, so the script itself holds no secret.
fn write_askpass(dir: &Path) -> Result<std::path::PathBuf, CheckoutError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join("askpass.sh");
    // With a bound host, a prompt for any other origin (git prompts
    // "Password for 'https://user@host:port': ") gets nothing.
    let script = "#!/bin/sh\n\
if [ -n \"$PRISM_GIT_HOST\" ]; then\n\
  case \"$1\" in\n\
    *\"://$PRISM_GIT_HOST'\"*|*\"@$PRISM_GIT_HOST'\"*) ;;\n\
    *) exit 1 ;;\n\
  esac\n\
fi\n\
case \"$1\" in\n  [Uu]sername*) printf '%s\\n' \"$PRISM_GIT_USERNAME\" ;;\n  *) printf '%s\\n' \"$PRISM_GIT_PASSWORD\" ;;\nesac\n";
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o700)
        .open(&path)
        .map_err(|source| CheckoutError::Io {
            step: "write askpass helper",
            source,
        })?;
    f.write_all(script.as_bytes()).map_err(|source| CheckoutError::Io {
        step: "write askpass helper",
        source,
    })?;
    Ok(path)
}

struct Git<'a> {
    dest: &'a Path,
    home: &'a Path,
    /// `-c` settings for every git run (the address pin).
    config: &'a [String],
}

/// The server's host and port in `url` (`http`, `https` or `git`).
fn host_port(url: &str) -> Option<(String, u16)> {
    let (scheme, rest) = url.split_once("://")?;
    let default = match scheme {
        "https" => 443,
        "http" => 80,
        "git" => 9418,
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None => default,
        };
        return Some((host.to_owned(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host.to_owned(), port.parse().ok()?)),
        None => Some((authority.to_owned(), default)),
    }
}

/// Resolves and checks the server's address; the git settings that pin
/// curl to it. A refused or unresolvable host reads like an unreachable one.
async fn pin(url: &str, guard: &Guard) -> Result<Vec<String>, CheckoutError> {
    let unreachable = || CheckoutError::Unreachable {
        url: redact_url(url),
        message: prism_netguard::UNREACHABLE.to_owned(),
    };
    let (host, port) = host_port(url).ok_or_else(unreachable)?;
    let addrs = guard.resolve(&host, port).await.map_err(|_| unreachable())?;
    let mut config = vec!["http.followRedirects=false".to_owned()];
    if !url.starts_with("git://") {
        let list: Vec<String> = addrs
            .iter()
            .map(|a| match a.ip() {
                std::net::IpAddr::V6(v6) => format!("[{v6}]"),
                v4 => v4.to_string(),
            })
            .collect();
        config.push(format!("http.curloptResolve={host}:{port}:{}", list.join(",")));
    }
    Ok(config)
}

enum GitFailure {
    Exit(String),
    Io(std::io::Error),
}

impl From<GitFailure> for CheckoutError {
    fn from(f: GitFailure) -> Self {
        match f {
            GitFailure::Exit(message) => CheckoutError::Git {
                step: "git",
                message: message.trim().to_owned(),
            },
            GitFailure::Io(source) => CheckoutError::Io { step: "git", source },
        }
    }
}

/// Environment variables passed through to git from Prism's own environment (proxy and
/// CA settings an operator may need); everything else is cleared.
const PASS_THROUGH_ENV: [&str; 9] = [
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "GIT_SSL_CAINFO",
];

impl Git<'_> {
    async fn run(
        &self,
        _step: &'static str,
        args: &[&str],
        auth: Option<(&Path, &Credentials)>,
    ) -> Result<String, GitFailure> {
        let mut cmd = Command::new("git");
        cmd.env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()),
            )
            .env("HOME", self.home)
            .env("XDG_CONFIG_HOME", self.home)
            .env("LC_ALL", "C")
            .env("LANG", "C")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ALLOW_PROTOCOL", "http:https:git")
            .env("GCM_INTERACTIVE", "never");
        for k in PASS_THROUGH_ENV {
            if let Some(v) = std::env::var_os(k) {
                cmd.env(k, v);
            }
        }
        // No credential helper may store or supply credentials.
        cmd.arg("-c").arg("credential.helper=");
        for c in self.config {
            cmd.arg("-c").arg(c);
        }
        match auth {
            Some((askpass, c)) => {
                cmd.env("GIT_ASKPASS", askpass)
                    .env("PRISM_GIT_USERNAME", &c.username)
                    .env("PRISM_GIT_PASSWORD", &c.password);
                if let Some(host) = &c.host {
                    // Redirects are not followed (see `pin`); this is the
                    // second lock: a prompt for another host gets nothing.
                    cmd.env("PRISM_GIT_HOST", host);
                }
            }
            None => {
                // Any prompt fails at once instead of waiting for a terminal.
                cmd.env("GIT_ASKPASS", "/bin/false");
            }
        }
        cmd.args(args)
            .current_dir(self.dest)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        tracing::debug!(args = ?args, dir = %self.dest.display(), "git");
        let child = cmd.spawn().map_err(GitFailure::Io)?;
        // Dropping the checkout future (a timeout around it, a cancelled build) kills git
        // and its helpers (git-remote-http, index-pack), not only the top process.
        let mut guard = GroupGuard(child.id().map(|p| p as libc::pid_t));
        let out = child.wait_with_output().await.map_err(GitFailure::Io)?;
        guard.0 = None;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            let mut msg = String::from_utf8_lossy(&out.stderr).trim().to_owned();
            if msg.is_empty() {
                msg = format!("git exited with {}", out.status);
            }
            Err(GitFailure::Exit(msg))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs() {
        for ok in [
            "main",
            "release/1.2",
            "v1.0.0",
            "refs/heads/main",
            "refs/tags/v1",
            "feature_x-y",
            &"a".repeat(40),
        ] {
            validate_ref(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "",
            "--upload-pack=touch /tmp/pwned",
            "-x",
            "main:refs/heads/x",
            "+main",
            "a b",
            "a..b",
            "refs/heads/*",
            "x@{1}",
            "/x",
            "x/",
            "x.lock",
            ".hidden",
            "a/.b",
            "x\n",
            "HEAD~1",
            "HEAD^",
        ] {
            assert!(
                matches!(validate_ref(bad), Err(CheckoutError::InvalidRef { .. })),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn urls() {
        for ok in [
            "https://git.example.com/a/b.git",
            "http://127.0.0.1:8080/r.git",
            "git://host/r",
        ] {
            validate_url(ok).unwrap();
        }
        for bad in [
            "ext::sh -c touch% /tmp/pwned",
            "file:///etc",
            "/srv/repo",
            "--upload-pack=x",
            "ssh://git@host/r",
            "https://user:pw@host/r",
            "https://",
            "https://host/a b",
        ] {
            assert!(
                matches!(validate_url(bad), Err(CheckoutError::InvalidUrl { .. })),
                "{bad:?} accepted"
            );
        }
        let e = validate_url("https://user:secret@host/r").unwrap_err().to_string();
        assert!(!e.contains("secret"), "{e}");
    }

    #[test]
    fn sha() {
        assert!(CommitSha::parse(&"A".repeat(40)).is_some());
        assert!(CommitSha::parse("abc").is_none());
        assert_eq!(CommitSha::parse(&"A".repeat(40)).unwrap().as_str(), "a".repeat(40));
    }

    #[test]
    fn host_and_port_of_urls() {
        assert_eq!(
            host_port("http://a.example:3000/x.git"),
            Some(("a.example".into(), 3000))
        );
        assert_eq!(host_port("https://a.example/x.git"), Some(("a.example".into(), 443)));
        assert_eq!(host_port("git://[::1]:9/x.git"), Some(("::1".into(), 9)));
        assert_eq!(host_port("git://[::1]/x.git"), Some(("::1".into(), 9418)));
        assert_eq!(host_port("ssh://a/x"), None);
    }

    #[test]
    fn credentials_only_for_their_host() {
        assert!(same_host("gitea.example:3000", "http://gitea.example:3000/a/b.git"));
        assert!(same_host("Gitea.Example", "https://gitea.example:443/a.git"));
        assert!(same_host("gitea.example:443", "https://gitea.example/a.git"));
        assert!(!same_host("gitea.example:3000", "http://attacker.example/x.git"));
        assert!(!same_host("gitea.example:3000", "http://gitea.example:3001/x.git"));
        assert!(!same_host(
            "gitea.example",
            "http://gitea.example.attacker.example/x.git"
        ));
        assert!(!same_host("gitea.example", "git://gitea.example/x.git"));
    }

    #[test]
    fn credentials_debug_hides_password() {
        let d = format!("{:?}", Credentials::new("u", "topsecret"));
        assert!(!d.contains("topsecret"));
    }
}
