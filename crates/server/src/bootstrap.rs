//! First start: with no users at all, create `admin` with the password from
//! `PRISM_ADMIN_PASSWORD`, or a random one printed once on standard output,
//! and the default lifecycle fat -> uat -> prd (not yet bound to a cluster).

use prism_domain::EnvPolicy;
use prism_store::audit::{self, Origin};
use prism_store::environments::{self, NewEnvironment};
use prism_store::{users, Store};

use crate::auth::{password, secret_token};
use crate::config::Settings;

pub async fn first_admin(store: &Store, settings: &Settings) -> anyhow::Result<()> {
    let mut tx = store.begin().await?;
    if users::count(&mut tx).await? > 0 {
        return Ok(());
    }
    let (pw, generated) = match &settings.admin_password {
        Some(p) => (p.0.clone(), false),
        None => (secret_token::generate("")[..20].to_owned(), true),
    };
    let hash = password::hash(pw.clone())
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let user = match users::create(&mut tx, "admin", "Administrator", &hash, true).await {
        Ok(u) => u,
        // Another instance sharing the database bootstrapped first.
        Err(prism_store::StoreError::Duplicate { .. }) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let origin = Origin::system("bootstrap");
    audit::record(
        &mut tx,
        &origin,
        "user.create",
        "user",
        &user.username,
        serde_json::json!({"admin": true}),
    )
    .await?;
    if environments::list(&mut tx).await?.is_empty() {
        // The default lifecycle: FAT where developers deploy, then the formal UAT and PRD.
        for (name, policy) in [
            ("fat", EnvPolicy::development()),
            ("uat", EnvPolicy::formal()),
            ("prd", EnvPolicy::formal()),
        ] {
            let env = environments::create(
                &mut tx,
                NewEnvironment {
                    name,
                    position: None,
                    cluster_id: None,
                    namespace: name,
                    policy: &policy,
                },
            )
            .await?;
            audit::record(
                &mut tx,
                &origin,
                "environment.create",
                "environment",
                name,
                serde_json::to_value(&env)?,
            )
            .await?;
        }
    }
    tx.commit().await?;
    if generated {
        // Printed once, never logged: the log may be shipped elsewhere.
        println!("Created the first user `admin` with the one-time password: {pw}");
        println!("Log in and change it: prism login http://{}", settings.listen);
    }
    Ok(())
}
