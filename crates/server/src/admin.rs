//! `prism admin ...`: operations on a data dir or database from the
//! command line, next to (backup) or instead of (restore) a running server.

use std::path::Path;

use prism_store::backup::{self, Manifest};
use prism_store::Store;

use crate::config::Settings;

/// Writes a consistent backup of the store to `to` (written beside it and
/// renamed into place, so a failed backup leaves no partial file). Safe
/// while the server runs: it reads one snapshot and takes no lock.
pub async fn backup(settings: &Settings, to: &Path) -> anyhow::Result<Manifest> {
    let store = Store::open(&settings.store_url(), 2).await?;
    let partial = to.with_extension("partial");
    let file =
        std::fs::File::create(&partial).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", partial.display()))?;
    let result = backup::export(&store, std::io::BufWriter::new(file)).await;
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

/// Restores a backup into the store the settings name, which must be unused.
pub async fn restore(settings: &Settings, from: &Path) -> anyhow::Result<Manifest> {
    std::fs::create_dir_all(&settings.data_dir)?;
    let file = std::fs::File::open(from).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", from.display()))?;
    let store = Store::open(&settings.store_url(), 2).await?;
    let result = backup::import(&store, std::io::BufReader::new(file)).await;
    store.close().await;
    Ok(result?)
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
