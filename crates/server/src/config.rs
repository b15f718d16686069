//! Server settings: command-line flags, then `PRISM_*` environment variables,
//! then an optional TOML config file, then defaults. Secrets never appear in
//! `Debug` output or logs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "PRISM_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory for the SQLite store and the secret key [default: ./prism-data]
    #[arg(long, env = "PRISM_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Use PostgreSQL instead of the embedded SQLite store (postgres://...)
    #[arg(long, env = "PRISM_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// A TOML file with any of these settings
    #[arg(long, env = "PRISM_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log as JSON lines
    #[arg(long, env = "PRISM_LOG_JSON")]
    pub log_json: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    log_json: Option<bool>,
    instance_id: Option<String>,
    job_lease_seconds: Option<u64>,
    public_url: Option<String>,
}

/// A string that must never be printed.
#[derive(Clone, Default)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: Option<Secret>,
    pub secret_key: Option<Secret>,
    /// The key being rotated away from: opens, never seals (`PRISM_SECRET_KEY_PREVIOUS`).
    pub previous_secret_key: Option<Secret>,
    pub admin_password: Option<Secret>,
    pub log_json: bool,
    /// Names this process in job leases (several instances share one queue).
    /// Stable across restarts: PRISM_INSTANCE_ID, the config file, POD_NAME
    /// on Kubernetes, else the id stored in the data dir (the first id a
    /// server ran with on it; see `bootstrap::claim_data_dir`).
    pub instance_id: String,
    pub job_lease_ms: i64,
    pub job_poll_ms: u64,
    pub session_ttl_ms: i64,
    /// Whether the session cookie gets `Secure` (set when served behind TLS).
    pub secure_cookies: bool,
    pub build: BuildConfig,
    /// "Now" for deploy windows and freezes (the system clock; tests pin it).
    pub clock: crate::clock::Clock,
    /// Where people reach this server (`https://prism.example.com`), for the
    /// links in notifications (PRISM_PUBLIC_URL); without it links are
    /// relative (`/deploys/7`).
    pub public_url: Option<String>,
    pub notify: NotifyConfig,
    /// The company's LDAP / Active Directory server (PRISM_LDAP_*): when set,
    /// users Prism has no local password for log in with their directory
    /// password, and their groups set their roles at every login.
    pub directory: Option<prism_identity::LdapConfig>,
    /// Who may still log in with a password Prism keeps once the directory
    /// is on (PRISM_LOCAL_LOGIN).
    pub local_login: LocalLogin,
    /// The company's OpenID Connect provider (PRISM_OIDC_*): a "Log in
    /// with ..." button on the login page.
    pub oidc: Option<prism_identity::oidc::OidcConfig>,
}

/// OpenID Connect from the environment: PRISM_OIDC_ISSUER turns it on;
/// PRISM_OIDC_CLIENT_ID and PRISM_OIDC_CLIENT_SECRET are then required, and
/// PRISM_PUBLIC_URL (the callback is `{PRISM_PUBLIC_URL}/auth/oidc/callback`,
/// never made from a request's Host header). PRISM_OIDC_GROUPS_CLAIM
/// (default `groups`), PRISM_OIDC_USERNAME_CLAIM (default
/// `preferred_username`), PRISM_OIDC_SCOPES (default `profile email`),
/// PRISM_OIDC_LABEL (the button's name, default `SSO`).
pub fn oidc_from_env(
    env: impl Fn(&str) -> Option<String>,
    public_url: Option<&str>,
) -> Result<Option<prism_identity::oidc::OidcConfig>, ConfigError> {
    let Some(issuer) = env("PRISM_OIDC_ISSUER").filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    let bad = |name: &str, why: &str| ConfigError::Setting {
        name: name.to_owned(),
        message: why.to_owned(),
    };
    let issuer = issuer.trim().to_owned();
    // http:// only for a provider on this machine (the host parsed, not a prefix:
    // `http://localhost.evil.example` is not local).
    let parsed = reqwest::Url::parse(&issuer).ok();
    let local = parsed.as_ref().is_some_and(|u| {
        u.scheme() == "http"
            && u.host_str().is_some_and(|h| {
                h == "localhost"
                    || h.trim_matches(['[', ']'])
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            })
    });
    if !(parsed
        .as_ref()
        .is_some_and(|u| u.scheme() == "https" && u.host().is_some())
        || local)
    {
        return Err(bad(
            "PRISM_OIDC_ISSUER",
            "must be an https:// URL (http:// only on this machine)",
        ));
    }
    if public_url.is_none() {
        return Err(bad(
            "PRISM_PUBLIC_URL",
            "is required with PRISM_OIDC_ISSUER: the provider sends people back to {PRISM_PUBLIC_URL}/auth/oidc/callback",
        ));
    }
    let required = |name: &str| {
        env(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| bad(name, "is required when PRISM_OIDC_ISSUER is set"))
    };
    let claim = |name: &str, default: &str| {
        env(name)
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| default.into())
    };
    Ok(Some(prism_identity::oidc::OidcConfig {
        issuer,
        client_id: required("PRISM_OIDC_CLIENT_ID")?,
        client_secret: required("PRISM_OIDC_CLIENT_SECRET")?,
        groups_claim: claim("PRISM_OIDC_GROUPS_CLAIM", "groups"),
        username_claim: claim("PRISM_OIDC_USERNAME_CLAIM", "preferred_username"),
        label: claim("PRISM_OIDC_LABEL", "SSO"),
        scopes: claim("PRISM_OIDC_SCOPES", "profile email")
            .split_whitespace()
            .filter(|s| *s != "openid")
            .map(String::from)
            .collect(),
    }))
}

/// Local (Prism-kept) passwords when the company's directory is on:
/// everyone's (`all`, the default) or only admins' (`admins`: the
/// break-glass account stays, every other person signs in through the
/// directory).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LocalLogin {
    #[default]
    All,
    AdminsOnly,
}

/// PRISM_LOCAL_LOGIN: `all` or `admins`; `admins` needs the directory
/// (without it only admins could ever log in).
pub fn local_login_from_env(env: impl Fn(&str) -> Option<String>, directory: bool) -> Result<LocalLogin, ConfigError> {
    let bad = |why: &str| ConfigError::Setting {
        name: "PRISM_LOCAL_LOGIN".to_owned(),
        message: why.to_owned(),
    };
    match env("PRISM_LOCAL_LOGIN").as_deref().map(str::trim) {
        None | Some("") | Some("all") => Ok(LocalLogin::All),
        Some("admins") if directory => Ok(LocalLogin::AdminsOnly),
        Some("admins") => Err(bad(
            "admins needs directory or single sign-on login (PRISM_LDAP_URL or PRISM_OIDC_ISSUER): without it nobody but admins could log in",
        )),
        Some(_) => Err(bad("must be all or admins")),
    }
}

/// The directory settings from the environment: PRISM_LDAP_URL (`ldaps://`
/// or `ldap://`) turns directory login on; PRISM_LDAP_USER_BASE and
/// PRISM_LDAP_GROUP_BASE are then required; PRISM_LDAP_SECURITY (`tls`,
/// `starttls`, or `plain` for a directory on the same host; default from
/// the URL's scheme), PRISM_LDAP_BIND_DN and PRISM_LDAP_BIND_PASSWORD (the
/// service account that finds users; anonymous without), PRISM_LDAP_USER_FILTER
/// (default `(uid={username})`; `(sAMAccountName={username})` for Active
/// Directory), PRISM_LDAP_GROUP_FILTER (default `(member={dn})`),
/// PRISM_LDAP_GROUP_NAME_ATTRIBUTE (default `cn`).
pub fn directory_from_env(
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<prism_identity::LdapConfig>, ConfigError> {
    use prism_identity::{LdapConfig, LdapSecurity};
    let Some(url) = env("PRISM_LDAP_URL") else {
        return Ok(None);
    };
    let bad = |name: &str, why: &str| ConfigError::Setting {
        name: name.to_owned(),
        message: why.to_owned(),
    };
    let security = match env("PRISM_LDAP_SECURITY").as_deref() {
        Some("tls") => LdapSecurity::Tls,
        Some("starttls") => LdapSecurity::StartTls,
        Some("plain") => LdapSecurity::Plain,
        Some(_) => return Err(bad("PRISM_LDAP_SECURITY", "must be tls, starttls or plain")),
        None if url.starts_with("ldaps://") => LdapSecurity::Tls,
        None => LdapSecurity::StartTls,
    };
    match (url.starts_with("ldaps://"), url.starts_with("ldap://"), security) {
        (true, _, LdapSecurity::Tls) | (_, true, LdapSecurity::StartTls | LdapSecurity::Plain) => {}
        _ => {
            return Err(bad(
                "PRISM_LDAP_URL",
                "must be ldaps:// (with tls) or ldap:// (with starttls or plain)",
            ))
        }
    }
    let required = |name: &str| env(name).ok_or_else(|| bad(name, "is required when PRISM_LDAP_URL is set"));
    let user_filter = env("PRISM_LDAP_USER_FILTER").unwrap_or_else(|| "(uid={username})".into());
    if !user_filter.contains("{username}") {
        return Err(bad("PRISM_LDAP_USER_FILTER", "must contain {username}"));
    }
    let group_filter = env("PRISM_LDAP_GROUP_FILTER").unwrap_or_else(|| "(member={dn})".into());
    if !group_filter.contains("{dn}") {
        return Err(bad("PRISM_LDAP_GROUP_FILTER", "must contain {dn}"));
    }
    Ok(Some(LdapConfig {
        url,
        security,
        bind_dn: env("PRISM_LDAP_BIND_DN"),
        bind_password: env("PRISM_LDAP_BIND_PASSWORD"),
        user_base: required("PRISM_LDAP_USER_BASE")?,
        user_filter,
        group_base: required("PRISM_LDAP_GROUP_BASE")?,
        group_filter,
        group_name_attribute: env("PRISM_LDAP_GROUP_NAME_ATTRIBUTE").unwrap_or_else(|| "cn".into()),
        timeout: std::time::Duration::from_secs(10),
    }))
}

/// How notifications are delivered.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// How long a receiver may take to answer (PRISM_NOTIFY_TIMEOUT_SECONDS, default 10).
    pub timeout: std::time::Duration,
    /// Attempts per delivery before it is given up (PRISM_NOTIFY_ATTEMPTS, default 6).
    pub max_attempts: i64,
    /// The wait after the first failed attempt, doubled after each further
    /// one (PRISM_NOTIFY_RETRY_SECONDS, default 30), at most an hour.
    pub retry_base_ms: i64,
    /// How long finished deliveries (delivered, or failed for good) stay in
    /// the delivery log before the maintenance sweep deletes them
    /// (PRISM_NOTIFY_LOG_DAYS, default 30).
    pub log_retention_ms: i64,
}

/// The longest delivery log retention PRISM_NOTIFY_LOG_DAYS accepts (ten years).
const MAX_LOG_DAYS: i64 = 3650;

impl NotifyConfig {
    /// The settings from the environment (`env` returns a variable's value,
    /// None when unset or empty). A PRISM_NOTIFY_LOG_DAYS that is not a whole
    /// number of days from 1 to 3650 is refused, naming the variable.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let positive = |k: &str| env(k).and_then(|v| v.parse::<u64>().ok()).filter(|n| *n > 0);
        let log_days = match env("PRISM_NOTIFY_LOG_DAYS") {
            None => 30,
            Some(v) => v
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|d| (1..=MAX_LOG_DAYS).contains(d))
                .ok_or_else(|| ConfigError::Setting {
                    name: "PRISM_NOTIFY_LOG_DAYS".into(),
                    message: format!("must be a whole number of days from 1 to {MAX_LOG_DAYS}, not {v:?}"),
                })?,
        };
        Ok(NotifyConfig {
            timeout: std::time::Duration::from_secs(positive("PRISM_NOTIFY_TIMEOUT_SECONDS").unwrap_or(10).min(300)),
            max_attempts: positive("PRISM_NOTIFY_ATTEMPTS").unwrap_or(6).min(20) as i64,
            retry_base_ms: positive("PRISM_NOTIFY_RETRY_SECONDS").unwrap_or(30).min(3600) as i64 * 1000,
            log_retention_ms: log_days * 86_400_000,
        })
    }
}

/// The public URL without a trailing slash, when it is an http(s) URL.
fn public_url(v: Option<String>) -> Option<String> {
    let v = v?.trim().trim_end_matches('/').to_owned();
    if v.starts_with("https://") || v.starts_with("http://") {
        Some(v)
    } else {
        tracing::warn!(value = %v, "ignoring PRISM_PUBLIC_URL: it must start with https:// or http://");
        None
    }
}

/// Where builds run and what they may read.
#[derive(Debug, Clone)]
pub struct BuildConfig {
    /// Per-build workspaces (PRISM_BUILD_DIR, default `<data dir>/builds`).
    pub work_dir: PathBuf,
    /// The only directory base image recipes may read files from
    /// (PRISM_BASE_SOURCES, default `<data dir>/base-sources`).
    pub base_sources: PathBuf,
    /// A Docker `config.json` whose credentials are used for registries Prism
    /// has none for (PRISM_DOCKER_CONFIG, default `~/.docker/config.json`).
    pub docker_config: Option<PathBuf>,
    /// `local` or a registered executor's name (PRISM_BUILD_EXECUTOR).
    pub default_executor: String,
    /// How the local executor runs steps (PRISM_BUILD_RUNNER): `contained`
    /// (default) or `unsandboxed`, which runs build code as Prism's own user
    /// on Prism's host and is for trusted code only.
    pub runner: prism_domain::build::LocalRunner,
    /// Builder images unpacked once per digest (`<data dir>/builder-images`).
    pub builder_images: PathBuf,
    /// Dependency caches per application and stack (`<data dir>/build-caches`).
    pub caches: PathBuf,
    /// runc's state and the build containers' bundles (`<data dir>/runc`).
    pub runc_root: PathBuf,
    /// First host uid (and gid) of the build containers' 65536 ids: root in a
    /// build container is this unprivileged uid on the host (PRISM_BUILD_UID, default 100000).
    pub build_uid: u32,
}

impl BuildConfig {
    pub fn under(data_dir: &Path) -> Self {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        BuildConfig {
            work_dir: env("PRISM_BUILD_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| data_dir.join("builds")),
            base_sources: env("PRISM_BASE_SOURCES")
                .map(PathBuf::from)
                .unwrap_or_else(|| data_dir.join("base-sources")),
            docker_config: env("PRISM_DOCKER_CONFIG")
                .map(PathBuf::from)
                .or_else(|| dirs::home_dir().map(|h| h.join(".docker/config.json"))),
            default_executor: env("PRISM_BUILD_EXECUTOR").unwrap_or_else(|| prism_domain::build::LOCAL_EXECUTOR.into()),
            runner: match env("PRISM_BUILD_RUNNER") {
                None => prism_domain::build::LocalRunner::Contained,
                Some(v) => prism_domain::build::LocalRunner::parse("PRISM_BUILD_RUNNER", &v).unwrap_or_else(|e| {
                    // A typo must not open the host to build code: the safe runner.
                    tracing::warn!(error = %e, "using the contained build runner");
                    prism_domain::build::LocalRunner::Contained
                }),
            },
            builder_images: data_dir.join("builder-images"),
            caches: data_dir.join("build-caches"),
            runc_root: data_dir.join("runc"),
            build_uid: env("PRISM_BUILD_UID")
                .and_then(|v| v.parse().ok())
                .filter(|u| *u >= 1000)
                .unwrap_or(100_000),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("config file {path}: {source}")]
    Parse { path: String, source: toml::de::Error },
    #[error("{name} {message}")]
    Setting { name: String, message: String },
}

impl Settings {
    pub fn from_args(args: &ServeArgs) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => load_file(path)?,
            None => FileSettings::default(),
        };
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let lease_s = env("PRISM_JOB_LEASE_SECONDS")
            .and_then(|v| v.parse().ok())
            .or(file.job_lease_seconds)
            .unwrap_or(30);
        let configured_id = env("PRISM_INSTANCE_ID")
            .or(file.instance_id)
            .or_else(|| env("POD_NAME"));
        let data_dir = args
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("./prism-data"));
        Ok(Settings {
            build: BuildConfig::under(&data_dir),
            data_dir: data_dir.clone(),
            listen: args
                .listen
                .or(file.listen)
                .unwrap_or_else(|| "127.0.0.1:8080".parse().expect("valid default")),
            database_url: args.database_url.clone().or(file.database_url).map(Secret),
            secret_key: env("PRISM_SECRET_KEY").map(Secret),
            previous_secret_key: env("PRISM_SECRET_KEY_PREVIOUS").map(Secret),
            admin_password: env("PRISM_ADMIN_PASSWORD").map(Secret),
            log_json: args.log_json || file.log_json.unwrap_or(false),
            instance_id: configured_id
                .unwrap_or_else(|| stored_instance_id(&data_dir).unwrap_or_else(fresh_instance_id)),
            job_lease_ms: (lease_s as i64) * 1000,

            job_poll_ms: env("PRISM_JOB_POLL_MS").and_then(|v| v.parse().ok()).unwrap_or(500),
            session_ttl_ms: 12 * 3600 * 1000,
            secure_cookies: env("PRISM_SECURE_COOKIES").is_some_and(|v| v == "1" || v == "true"),
            clock: crate::clock::Clock::system(),
            public_url: public_url(env("PRISM_PUBLIC_URL").or(file.public_url.clone())),
            notify: NotifyConfig::from_env(env)?,
            directory: directory_from_env(env)?,
            local_login: local_login_from_env(
                env,
                env("PRISM_LDAP_URL").is_some() || env("PRISM_OIDC_ISSUER").is_some(),
            )?,
            oidc: oidc_from_env(
                env,
                public_url(env("PRISM_PUBLIC_URL").or(file.public_url.clone())).as_deref(),
            )?,
        })
    }

    /// The store URL: PostgreSQL when configured, else SQLite in the data dir.
    pub fn store_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.0.clone(),
            None => format!("sqlite://{}", self.data_dir.join("prism.db").display()),
        }
    }
}

fn load_file(path: &Path) -> Result<FileSettings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.display().to_string(),
        source,
    })
}

const INSTANCE_ID_FILE: &str = "instance-id";

fn stored_instance_id(data_dir: &Path) -> Option<String> {
    let id = std::fs::read_to_string(data_dir.join(INSTANCE_ID_FILE)).ok()?;
    Some(id.trim().to_owned()).filter(|id| !id.is_empty())
}

/// Stores `id` as the data dir's instance id unless it has one already.
pub fn store_instance_id(data_dir: &Path, id: &str) -> std::io::Result<()> {
    if stored_instance_id(data_dir).is_some() {
        return Ok(());
    }
    let tmp = data_dir.join(format!("{INSTANCE_ID_FILE}.tmp"));
    std::fs::write(&tmp, format!("{id}\n"))?;
    std::fs::rename(&tmp, data_dir.join(INSTANCE_ID_FILE))
}

fn fresh_instance_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "prism".into());
    format!("{host}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_secrets() {
        let mut s = Settings::from_args(&ServeArgs::default()).unwrap();
        s.database_url = Some(Secret("postgres://u:hunter2@db/prism".into()));
        s.secret_key = Some(Secret("c2VjcmV0".into()));
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("c2VjcmV0"), "{shown}");
    }

    fn notify_with(vars: &[(&str, &str)]) -> Result<NotifyConfig, ConfigError> {
        NotifyConfig::from_env(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn an_issuer_is_https_or_on_this_machine() {
        let with = |issuer: &str| {
            oidc_from_env(
                |k| match k {
                    "PRISM_OIDC_ISSUER" => Some(issuer.to_owned()),
                    "PRISM_OIDC_CLIENT_ID" | "PRISM_OIDC_CLIENT_SECRET" => Some("x".into()),
                    _ => None,
                },
                Some("https://prism.example.com"),
            )
        };
        for ok in [
            "https://id.example.com/realms/x",
            "http://127.0.0.1:5556",
            "http://localhost:8080/dex",
        ] {
            assert!(with(ok).unwrap().is_some(), "{ok}");
        }
        for bad in [
            "http://localhost.evil.example",
            "http://127.0.0.1.evil.example",
            "http://id.example.com",
            "ftp://x",
        ] {
            let e = with(bad).unwrap_err().to_string();
            assert!(e.contains("PRISM_OIDC_ISSUER"), "{bad}: {e}");
        }
    }

    #[test]
    fn local_logins_are_limited_to_admins_only_with_a_directory() {
        let with = |v: Option<&str>, dir: bool| {
            local_login_from_env(
                |k| (k == "PRISM_LOCAL_LOGIN").then(|| v.map(String::from)).flatten(),
                dir,
            )
        };
        assert_eq!(with(None, false).unwrap(), LocalLogin::All);
        assert_eq!(with(Some("all"), true).unwrap(), LocalLogin::All);
        assert_eq!(with(Some("admins"), true).unwrap(), LocalLogin::AdminsOnly);
        let e = with(Some("admins"), false).unwrap_err().to_string();
        assert!(e.contains("PRISM_LOCAL_LOGIN") && e.contains("PRISM_LDAP_URL"), "{e}");
        let e = with(Some("none"), true).unwrap_err().to_string();
        assert!(e.contains("PRISM_LOCAL_LOGIN") && e.contains("all or admins"), "{e}");
    }

    #[test]
    fn the_delivery_log_is_kept_30_days_unless_configured() {
        assert_eq!(notify_with(&[]).unwrap().log_retention_ms, 30 * 86_400_000);
        let n = notify_with(&[("PRISM_NOTIFY_LOG_DAYS", "7")]).unwrap();
        assert_eq!(n.log_retention_ms, 7 * 86_400_000);
        for bad in ["0", "-3", "seven", "1.5", "3651"] {
            let e = notify_with(&[("PRISM_NOTIFY_LOG_DAYS", bad)]).unwrap_err().to_string();
            assert!(e.starts_with("PRISM_NOTIFY_LOG_DAYS must be"), "{bad}: {e}");
        }
    }
}
