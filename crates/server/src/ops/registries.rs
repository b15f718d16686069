//! Image registries builds push to and base images are built in: host,
//! scheme and credentials (the password sealed, never returned), and the
//! projects allowed to use each. Members read those their projects may use;
//! admins read all and change them.

use prism_api::credentials::PutRegistry;
use prism_domain::Name;
use prism_store::audit;
use prism_store::credentials::{self, Kind, Registry, RegistryFields};
use serde_json::json;

use super::credential_scope::ScopeRequest;
use super::{access, Ctx, OpError, OpResult};
use crate::auth::Caller;

pub fn validate_host(field: &str, host: &str) -> OpResult<()> {
    let ok = !host.is_empty()
        && host.len() <= 255
        && !host.starts_with(['-', '.', ':'])
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if ok {
        Ok(())
    } else {
        Err(OpError::invalid(
            field,
            "must be a registry host, e.g. registry.example.com or 10.0.0.5:5000",
        ))
    }
}

/// The registries the caller's projects may use (admins: all; no password
/// is returned).
pub async fn list(ctx: &Ctx, caller: &Caller) -> OpResult<Vec<Registry>> {
    let mut c = ctx.store.conn().await?;
    let all = credentials::list_registries(&mut c).await?;
    super::credential_scope::visible(&mut c, caller, all, |r| (r.all_projects != 0, &r.projects)).await
}

/// Creates or updates a registry.
pub async fn put_registry(ctx: &Ctx, caller: &Caller, name: &str, req: PutRegistry) -> OpResult<Registry> {
    access::require_admin(caller)?;
    let name = Name::parse("name", name)?;
    validate_host("host", &req.host)?;
    if let Some(u) = &req.username {
        super::secret_text("username", u, 256)?;
    }
    if let Some(p) = &req.password {
        super::secret_text("password", p, 16 * 1024)?;
    }
    if req.clear_credentials && (req.username.is_some() || req.password.is_some()) {
        return Err(OpError::invalid(
            "clear_credentials",
            "cannot clear and set credentials at once",
        ));
    }
    if let Some(hosts) = &req.token_realm_hosts {
        for (i, h) in hosts.iter().enumerate() {
            validate_host(&format!("token_realm_hosts[{i}]"), h)?;
        }
    }
    let scope = ScopeRequest {
        all_projects: req.all_projects,
        projects: req.projects.clone(),
    };
    let mut tx = ctx.store.begin().await?;
    let (all, ids) = scope.resolve(&mut tx).await?;
    let existing = credentials::registry_by_name(&mut tx, name.as_str()).await.ok();
    let realm_hosts = match &req.token_realm_hosts {
        Some(h) => h.iter().map(|h| h.to_ascii_lowercase()).collect::<Vec<_>>().join(","),
        None => existing
            .as_ref()
            .map(|r| r.token_realm_hosts.clone())
            .unwrap_or_default(),
    };
    let has_password = req.password.is_some() || existing.as_ref().is_some_and(|r| r.password_enc.is_some());
    let username = req.username.clone().or_else(|| {
        existing
            .as_ref()
            .and_then(|r| r.username.clone())
            .filter(|_| !req.clear_credentials)
    });
    if !req.clear_credentials && username.is_some() != has_password {
        return Err(OpError::invalid(
            if username.is_some() { "password" } else { "username" },
            "give both username and password, or neither",
        ));
    }
    let fields = RegistryFields {
        host: &req.host,
        insecure_http: req.insecure_http,
        username: username.as_deref(),
        password_enc: req.password.as_ref().map(|p| ctx.secrets.seal(p.as_bytes())),
        token_realm_hosts: &realm_hosts,
    };
    match existing {
        Some(_) => credentials::update_registry(&mut tx, name.as_str(), fields, req.clear_credentials).await?,
        None => credentials::create_registry(&mut tx, name.as_str(), fields).await?,
    };
    if scope.given() {
        credentials::set_scope(&mut tx, Kind::Registry, name.as_str(), all, &ids).await?;
    }
    let saved = credentials::registry_by_name(&mut tx, name.as_str()).await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "registry.put",
        "registry",
        name.as_str(),
        // The password is never written to the audit log, only whether it changed.
        json!({"host": saved.host, "insecure_http": req.insecure_http, "username": saved.username,
               "password_changed": req.password.is_some(), "cleared": req.clear_credentials,
               "token_realm_hosts": saved.token_realm_hosts(), "all_projects": saved.all_projects != 0,
               "projects": saved.projects}),
    )
    .await?;
    tx.commit().await?;
    Ok(saved)
}

pub async fn delete_registry(ctx: &Ctx, caller: &Caller, name: &str) -> OpResult<()> {
    access::require_admin(caller)?;
    let mut tx = ctx.store.begin().await?;
    credentials::delete_registry(&mut tx, name).await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "registry.delete",
        "registry",
        name,
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
