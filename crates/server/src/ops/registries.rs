//! Image registries builds push to and base images are built in: host,
//! scheme and credentials (the password sealed, never returned). Everyone
//! signed in reads them; admins change them.

use prism_domain::Name;
use prism_store::audit;
use prism_store::credentials::{self, Registry, RegistryFields};
use serde::Deserialize;
use serde_json::json;

use super::{access, Ctx, OpError, OpResult};
use crate::auth::Caller;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutRegistry {
    /// `host[:port]`, as in image references.
    pub host: String,
    /// Speak plain HTTP (default: HTTPS).
    #[serde(default)]
    pub insecure_http: bool,
    pub username: Option<String>,
    /// Stored encrypted; never returned. Omit to keep the stored one.
    pub password: Option<String>,
    /// Remove the stored username and password.
    #[serde(default)]
    pub clear_credentials: bool,
}

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

/// Every registry (everyone signed in may read them; no password is returned).
pub async fn list(ctx: &Ctx) -> OpResult<Vec<Registry>> {
    Ok(credentials::list_registries(&mut *ctx.store.conn().await?).await?)
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
    let mut tx = ctx.store.begin().await?;
    let existing = credentials::registry_by_name(&mut tx, name.as_str()).await.ok();
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
    };
    let saved = match existing {
        Some(_) => credentials::update_registry(&mut tx, name.as_str(), fields, req.clear_credentials).await?,
        None => credentials::create_registry(&mut tx, name.as_str(), fields).await?,
    };
    audit::record(
        &mut tx,
        &caller.origin(),
        "registry.put",
        "registry",
        name.as_str(),
        // The password is never written to the audit log, only whether it changed.
        json!({"host": saved.host, "insecure_http": req.insecure_http, "username": saved.username,
               "password_changed": req.password.is_some(), "cleared": req.clear_credentials}),
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
