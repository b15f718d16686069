//! LDAP / Active Directory login.
//!
//! 1. Bind as Prism's service account (or anonymously when none is set).
//! 2. Find the user's entry with the configured filter, the username
//!    escaped (RFC 4515), so `*)(uid=*` is a name, not a filter.
//! 3. Bind as that entry with the password: the directory checks it. An
//!    empty password is refused before: most servers treat a bind with a
//!    DN and no password as an anonymous bind that "succeeds".
//! 4. Read the groups whose member attribute names the user's DN (escaped too).

use std::time::Duration;

use ldap3::{ldap_escape, LdapConnAsync, LdapConnSettings, Scope, SearchEntry};

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LdapSecurity {
    /// `ldaps://`
    Tls,
    /// `ldap://` then StartTLS before any bind.
    StartTls,
    /// Plain `ldap://`: only for a directory on the same host (tests).
    Plain,
}

#[derive(Clone)]
pub struct LdapConfig {
    /// `ldaps://dc.example.com:636` or `ldap://...`
    pub url: String,
    pub security: LdapSecurity,
    pub bind_dn: Option<String>,
    pub bind_password: Option<String>,
    pub user_base: String,
    /// With `{username}` where the escaped name goes: `(uid={username})`,
    /// `(sAMAccountName={username})`.
    pub user_filter: String,
    pub group_base: String,
    /// With `{dn}`: `(member={dn})`, `(uniqueMember={dn})`.
    pub group_filter: String,
    /// The group attribute that is its name (`cn`).
    pub group_name_attribute: String,
    pub timeout: Duration,
}

impl std::fmt::Debug for LdapConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapConfig")
            .field("url", &self.url)
            .field("security", &self.security)
            .field("bind_dn", &self.bind_dn)
            .field("bind_password", &self.bind_password.as_ref().map(|_| "<redacted>"))
            .field("user_base", &self.user_base)
            .field("user_filter", &self.user_filter)
            .finish()
    }
}

/// Who the directory says the user is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    pub username: String,
    pub dn: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LdapError {
    /// Wrong username or password (the two are not told apart).
    #[error("wrong username or password")]
    InvalidCredentials,
    /// The directory could not be reached or refused Prism's service account.
    #[error("the directory is unavailable: {0}")]
    Unavailable(String),
    #[error("directory settings: {0}")]
    Config(String),
}

fn unavailable(e: impl std::fmt::Display) -> LdapError {
    LdapError::Unavailable(e.to_string())
}

/// Checks `username` and `password` against the directory.
pub async fn authenticate(cfg: &LdapConfig, username: &str, password: &str) -> Result<DirectoryUser, LdapError> {
    if username.is_empty() || password.is_empty() || username.len() > 256 || password.len() > 1024 {
        return Err(LdapError::InvalidCredentials);
    }
    if !cfg.user_filter.contains("{username}") || !cfg.group_filter.contains("{dn}") {
        return Err(LdapError::Config(
            "the user filter needs {username} and the group filter {dn}".into(),
        ));
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let settings = LdapConnSettings::new()
        .set_conn_timeout(cfg.timeout)
        .set_starttls(cfg.security == LdapSecurity::StartTls);
    let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &cfg.url)
        .await
        .map_err(unavailable)?;
    ldap3::drive!(conn);
    ldap.with_timeout(cfg.timeout);
    let result = lookup(cfg, &mut ldap, username, password).await;
    let _ = ldap.unbind().await;
    result
}

async fn lookup(
    cfg: &LdapConfig,
    ldap: &mut ldap3::Ldap,
    username: &str,
    password: &str,
) -> Result<DirectoryUser, LdapError> {
    if let (Some(dn), Some(pw)) = (&cfg.bind_dn, &cfg.bind_password) {
        ldap.simple_bind(dn, pw)
            .await
            .map_err(unavailable)?
            .success()
            .map_err(|e| LdapError::Unavailable(format!("the service account's bind was refused: {e}")))?;
    }
    let filter = cfg.user_filter.replace("{username}", &ldap_escape(username));
    let (entries, _) = ldap
        .search(
            &cfg.user_base,
            Scope::Subtree,
            &filter,
            vec!["cn", "displayName", "mail", "uid"],
        )
        .await
        .map_err(unavailable)?
        .success()
        .map_err(unavailable)?;
    // Exactly one entry, or nobody: never pick one of several.
    if entries.len() != 1 {
        return Err(LdapError::InvalidCredentials);
    }
    let entry = SearchEntry::construct(entries.into_iter().next().expect("one entry"));
    let bound = ldap.simple_bind(&entry.dn, password).await.map_err(unavailable)?;
    if bound.rc != 0 {
        return Err(LdapError::InvalidCredentials);
    }
    let first = |attr: &str| entry.attrs.get(attr).and_then(|v| v.first()).cloned();
    // Groups are read as the user now bound; rebind as the service account
    // where one is set (a user may not be allowed to read groups).
    if let (Some(dn), Some(pw)) = (&cfg.bind_dn, &cfg.bind_password) {
        ldap.simple_bind(dn, pw)
            .await
            .map_err(unavailable)?
            .success()
            .map_err(unavailable)?;
    }
    let group_filter = cfg.group_filter.replace("{dn}", &ldap_escape(&entry.dn));
    let (groups, _) = ldap
        .search(
            &cfg.group_base,
            Scope::Subtree,
            &group_filter,
            vec![cfg.group_name_attribute.as_str()],
        )
        .await
        .map_err(unavailable)?
        .success()
        .map_err(unavailable)?;
    let mut names: Vec<String> = groups
        .into_iter()
        .filter_map(|g| {
            SearchEntry::construct(g)
                .attrs
                .get(&cfg.group_name_attribute)
                .and_then(|v| v.first().cloned())
        })
        .collect();
    names.sort();
    Ok(DirectoryUser {
        username: first("uid").unwrap_or_else(|| username.to_string()),
        dn: entry.dn.clone(),
        display_name: first("displayName").or_else(|| first("cn")),
        email: first("mail"),
        groups: names,
    })
}
