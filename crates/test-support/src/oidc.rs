//! A real OpenID Connect provider: panva's certified `oidc-provider`
//! (npm, 9.13.3, installed into a cache directory by
//! scripts/ensure-oidc-provider.sh, which scripts/test.sh runs) under Node,
//! on a free loopback port with the issuer `http://127.0.0.1:PORT`. The
//! script it runs is `oidc_provider.mjs` next to this file; what it serves:
//!
//! - one static confidential client (authorization code flow, PKCE with
//!   S256 required, `client_secret_basic` unless the client metadata given
//!   to [`OidcProvider::start_with`] says otherwise);
//! - scopes `openid`, `profile` (`preferred_username`, `name`), `email`
//!   (`email`) and `groups` (`groups`), whose claims are in the ID token as
//!   well as at the userinfo endpoint;
//! - the accounts of a JSON file, read at each login and each token
//!   issuance, so [`OidcProvider::set_accounts`] changes a user's groups for
//!   the next login: `{"alice": {"password": "alice-pw", "email":
//!   "alice@example.com", "name": "Alice Ops", "groups": ["shop-ops"]}}`
//!   (`sub` and `preferred_username` are the key);
//! - a plain HTML login page (inputs `login` and `password`, a button with
//!   id `submit`) that grants everything requested, without a consent page;
//!   a browser or [`login_with_http`] drives it.
//!
//! Stopped on `Drop`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

use serde_json::{json, Value};

use crate::{free_port, TempDir};

const SCRIPT: &str = include_str!("oidc_provider.mjs");

pub struct OidcProvider {
    /// `http://127.0.0.1:PORT`, also the provider's origin.
    pub issuer: String,
    pub port: u16,
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uri: String,
    child: Child,
    accounts: PathBuf,
    log: PathBuf,
    _dir: TempDir,
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The cached install's directory (holding `node_modules`), from
/// scripts/ensure-oidc-provider.sh: run once per test binary.
pub fn install_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .canonicalize()
            .unwrap();
        let out = Command::new("bash")
            .arg(repo.join("scripts/ensure-oidc-provider.sh"))
            .current_dir(&repo)
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/ensure-oidc-provider.sh");
        assert!(out.status.success(), "scripts/ensure-oidc-provider.sh failed");
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        assert!(
            dir.join("node_modules/oidc-provider/package.json").exists(),
            "no oidc-provider under {}",
            dir.display()
        );
        dir
    })
}

impl OidcProvider {
    /// A provider with one client (`client_secret_basic`, the authorization
    /// code flow with PKCE) redirecting to `redirect_uri`, and `accounts`.
    pub fn start(client_id: &str, client_secret: &str, redirect_uri: &str, accounts: Value) -> OidcProvider {
        OidcProvider::start_with(
            json!({
                "client_id": client_id,
                "client_secret": client_secret,
                "redirect_uris": [redirect_uri],
            }),
            accounts,
        )
    }

    /// A provider whose client has the metadata `client` (at least
    /// `client_id`, `client_secret` and `redirect_uris`; e.g.
    /// `"token_endpoint_auth_method": "client_secret_post"`) over the
    /// defaults (`grant_types` `["authorization_code"]`, `response_types`
    /// `["code"]`, `client_secret_basic`).
    pub fn start_with(client: Value, accounts: Value) -> OidcProvider {
        let str_field = |k: &str| {
            client[k]
                .as_str()
                .unwrap_or_else(|| panic!("client metadata without {k}"))
                .to_owned()
        };
        let (client_id, client_secret) = (str_field("client_id"), str_field("client_secret"));
        let redirect_uri = client["redirect_uris"][0]
            .as_str()
            .expect("client metadata without redirect_uris")
            .to_owned();
        let modules = install_dir().join("node_modules");
        let dir = TempDir::new("oidc");
        // ESM ignores NODE_PATH: the script finds the package through a
        // `node_modules` next to it.
        std::os::unix::fs::symlink(&modules, dir.join("node_modules")).unwrap();
        let script = dir.join("oidc_provider.mjs");
        std::fs::write(&script, SCRIPT).unwrap();
        let accounts_file = dir.join("accounts.json");
        write_json(&accounts_file, &accounts);
        let log = dir.join("provider.log");
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = free_port();
            let mut child = Command::new("node")
                .arg(&script)
                .arg(port.to_string())
                .arg(&accounts_file)
                .arg(client.to_string())
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .expect("start node (installed with npm by scripts/ensure-oidc-provider.sh)");
            let stdout = child.stdout.take().unwrap();
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stdout);
                let mut line = String::new();
                let _ = reader.read_line(&mut line);
                let _ = tx.send(line);
                // Keep the pipe open (and drained) while node runs.
                let _ = std::io::copy(&mut reader, &mut std::io::sink());
            });
            let ready = rx.recv_timeout(Duration::from_secs(60));
            if matches!(&ready, Ok(line) if line.trim() == format!("ready {port}")) {
                return OidcProvider {
                    issuer: format!("http://127.0.0.1:{port}"),
                    port,
                    client_id,
                    client_secret,
                    redirect_uri,
                    child,
                    accounts: accounts_file,
                    log,
                    _dir: dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            let stderr = std::fs::read_to_string(&log).unwrap_or_default();
            // Someone took the free port before node bound it, or node did
            // not come up within a minute on a machine loaded by the rest of
            // the suite (seen once): another try.
            if attempt < 3 && (stderr.contains("EADDRINUSE") || ready.is_err()) {
                continue;
            }
            panic!("oidc-provider did not start ({ready:?}):\n{stderr}");
        }
    }

    /// Replaces the accounts: the next login and token see them.
    pub fn set_accounts(&self, accounts: Value) {
        write_json(&self.accounts, &accounts);
    }

    /// What the provider wrote on stderr so far (warnings, server errors).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The discovery document (`/.well-known/openid-configuration`).
    pub fn discovery(&self) -> Value {
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        off_runtime(move || {
            reqwest::blocking::get(&url)
                .and_then(|r| r.error_for_status())
                .and_then(|r| r.json())
                .expect("the discovery document")
        })
    }
}

/// Written whole, then renamed, so the provider never reads half a file.
fn write_json(path: &Path, value: &Value) {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(value).unwrap()).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Runs blocking reqwest on a thread of its own: callable from async tests
/// too (a blocking client may not be dropped inside a Tokio runtime).
fn off_runtime<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match std::thread::spawn(f).join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Signs in at the provider as a user would with a browser without
/// JavaScript, and returns where the provider finally sends the browser: the
/// client's redirect URI with `code` and `state` (and `iss`), or with
/// `error` if the provider refused the request. Panics if the login fails;
/// see [`try_login_with_http`].
pub fn login_with_http(authorize_url: &str, user: &str, password: &str) -> String {
    try_login_with_http(authorize_url, user, password).unwrap_or_else(|e| panic!("login as {user}: {e}"))
}

/// [`login_with_http`], with `Err` when the provider does not let the user
/// through (a wrong password: the login form again) or shows an error page.
///
/// A fresh cookie jar; redirects followed by hand while they stay on the
/// provider's origin (that of `authorize_url`); the login form is posted to
/// its `action`; the first redirect leaving the origin is returned, not
/// followed.
pub fn try_login_with_http(authorize_url: &str, user: &str, password: &str) -> Result<String, String> {
    let (url, user, password) = (authorize_url.to_owned(), user.to_owned(), password.to_owned());
    off_runtime(move || login_blocking(&url, &user, &password))
}

fn login_blocking(authorize_url: &str, user: &str, password: &str) -> Result<String, String> {
    let client = reqwest::blocking::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    let start = reqwest::Url::parse(authorize_url).map_err(|e| format!("{authorize_url}: {e}"))?;
    let origin = start.origin();
    let mut resp = client.get(start).send().map_err(chain)?;
    let mut posted = false;
    for _ in 0..20 {
        let url = resp.url().clone();
        let status = resp.status();
        if status.is_redirection() {
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .ok_or_else(|| format!("{status} from {url} without a Location"))?;
            let next = url.join(location).map_err(|e| format!("Location {location}: {e}"))?;
            if next.origin() != origin {
                return Ok(next.to_string());
            }
            resp = client.get(next).send().map_err(chain)?;
            continue;
        }
        let body = resp.text().map_err(|e| e.to_string())?;
        let action = login_form_action(&body);
        match action {
            Some(_) if posted => return Err(format!("the login was refused ({status}): {}", text_of(&body))),
            Some(action) => {
                let target = url.join(&action).map_err(|e| format!("form action {action}: {e}"))?;
                resp = client
                    .post(target)
                    .form(&[("login", user), ("password", password)])
                    .send()
                    .map_err(chain)?;
                posted = true;
            }
            None => return Err(format!("{status} at {url}: {}", text_of(&body))),
        }
    }
    Err("more than 20 redirects at the provider".into())
}

/// An error with its causes (reqwest's own message says little).
fn chain(e: reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        out.push_str(&format!(": {s}"));
        source = s.source();
    }
    out
}

/// The `action` of the page's login form (one with a `password` input).
fn login_form_action(html: &str) -> Option<String> {
    if !html.contains("name=\"password\"") {
        return None;
    }
    let form = &html[html.find("<form")?..];
    let form = &form[..form.find('>')?];
    let action = &form[form.find("action=\"")? + "action=\"".len()..];
    let action = &action[..action.find('"')?];
    Some(unescape(action))
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let c = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            _ => entity
                .strip_prefix('#')
                .and_then(|n| n.parse::<u32>().ok())
                .and_then(char::from_u32),
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A page's text without its tags, whitespace collapsed (for errors).
fn text_of(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    unescape(&out.split_whitespace().collect::<Vec<_>>().join(" "))
}
