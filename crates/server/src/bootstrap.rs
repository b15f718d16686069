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

/// Holds the data dir's lock for as long as it lives (the process, for `prism serve`).
#[derive(Debug)]
pub struct DataDirLock {
    _file: Option<std::fs::File>,
}

/// Before anything else at start: creates the data dir, takes its exclusive
/// lock (a second `prism serve` on the same data dir is refused, naming the
/// running process: on SQLite it would break the queue's one-writer
/// assumption, and on PostgreSQL two instances would share the instance id
/// stored here and take each other's leases as their own at start), and
/// stores the instance id there when the data dir has none yet, so a
/// restart without a configured id keeps it.
pub fn claim_data_dir(settings: &Settings) -> anyhow::Result<DataDirLock> {
    let dir = &settings.data_dir;
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("cannot create the data dir {}: {e}", dir.display()))?;
    let file = Some(lock(dir)?);
    crate::config::store_instance_id(dir, &settings.instance_id)
        .map_err(|e| anyhow::anyhow!("cannot store the instance id in {}: {e}", dir.display()))?;
    Ok(DataDirLock { _file: file })
}

const LOCK_FILE: &str = "prism.lock";

fn lock(dir: &std::path::Path) -> anyhow::Result<std::fs::File> {
    use std::io::{Read, Seek, Write};
    use std::os::fd::AsRawFd;
    let path = dir.join(LOCK_FILE);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
    // SAFETY: flock on a descriptor this function owns; no memory is involved.
    let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            let who = if pid.is_empty() {
                "another process".to_owned()
            } else {
                format!("another prism serve (pid {pid})")
            };
            anyhow::bail!(
                "the data dir {} is in use by {who}: one server per data dir (stop it, or give this one another --data-dir)",
                dir.display()
            );
        }
        anyhow::bail!("cannot lock {}: {err}", path.display());
    }
    file.set_len(0)?;
    file.rewind()?;
    writeln!(file, "{}", std::process::id())?;
    file.flush()?;
    Ok(file)
}
