//! `prism admin ...`: operations on a data dir or database from the
//! command line, next to (backup) or instead of (restore) a running server.

use std::path::Path;

use prism_store::backup::{self, Manifest};
use prism_store::Store;

use crate::config::Settings;
use crate::secrets::{read_key_file, write_private, KEY_FILE};

/// Writes a consistent backup of the store to `to` (written beside it and
/// renamed into place, so a failed backup leaves no partial file). Safe
/// while the server runs: it reads one snapshot and takes no lock. With a
/// passphrase the sealing key goes in too, encrypted with it.
pub async fn backup(settings: &Settings, to: &Path, key_passphrase: Option<&str>) -> anyhow::Result<Manifest> {
    let sealed_key = match key_passphrase {
        Some(p) => Some(crate::key_backup::seal(&current_key(settings)?, p)?),
        None => None,
    };
    let store = Store::open(&settings.store_url(), 2).await?;
    let partial = to.with_extension("partial");
    let file =
        std::fs::File::create(&partial).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", partial.display()))?;
    let result = backup::export_with_key(&store, std::io::BufWriter::new(file), sealed_key).await;
    store.close().await;
    match result {
        Ok(m) => {
            std::fs::rename(&partial, to)?;
            Ok(m)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e.into())
        }
    }
}

/// The sealing key the server runs with, base64.
fn current_key(settings: &Settings) -> anyhow::Result<String> {
    if let Some(k) = &settings.secret_key {
        return Ok(k.0.trim().to_owned());
    }
    let path = settings.data_dir.join(KEY_FILE);
    read_key_file(&path)?
        .ok_or_else(|| anyhow::anyhow!("there is no sealing key to include: {} does not exist", path.display()))
}

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    pub manifest: Manifest,
    /// Whether the archive's sealing key was restored into the data dir.
    pub key_restored: bool,
}

/// Restores a backup into the store the settings name, which must be
/// unused; with a passphrase, also the sealing key the archive holds
/// (checked before anything is written: a wrong passphrase writes nothing).
pub async fn restore(settings: &Settings, from: &Path, key_passphrase: Option<&str>) -> anyhow::Result<Restored> {
    std::fs::create_dir_all(&settings.data_dir)?;
    let open = || std::fs::File::open(from).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", from.display()));
    let key = match key_passphrase {
        None => None,
        Some(p) => {
            let (manifest, _) = backup::read_archive(std::io::BufReader::new(open()?))?;
            let sealed = manifest.sealing_key.ok_or_else(|| {
                anyhow::anyhow!("the archive holds no sealing key (it was taken without --include-key)")
            })?;
            let key = crate::key_backup::open(&sealed, p)?;
            let path = settings.data_dir.join(KEY_FILE);
            if path.exists() {
                anyhow::bail!("{} exists already: restore into an empty data dir", path.display());
            }
            Some(key)
        }
    };
    let store = Store::open(&settings.store_url(), 2).await?;
    let result = backup::import(&store, std::io::BufReader::new(open()?)).await;
    store.close().await;
    let manifest = result?;
    if let Some(k) = &key {
        let path = settings.data_dir.join(KEY_FILE);
        write_private(&path, k.as_bytes()).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    Ok(Restored {
        key_restored: key.is_some(),
        manifest,
    })
}

/// What a finished backup or restore tells the operator.
pub fn summary(m: &Manifest) -> String {
    let rows: u64 = m.tables.iter().map(|t| t.rows).sum();
    format!(
        "{} tables, {rows} rows, schema version {} (from {}, Prism {})",
        m.tables.len(),
        m.schema_version,
        m.source_engine,
        m.prism_version
    )
}
