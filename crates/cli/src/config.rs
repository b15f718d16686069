//! Stored credentials: `{url, token}` in `credentials.json` under the user's
//! config directory (`$PRISM_CONFIG_DIR`, else `<config dir>/prism`). The
//! directory is created 0700 and the file written 0600, atomically.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{CliError, CliResult};

const FILE_NAME: &str = "credentials.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credentials {
    /// The server's base URL, without a trailing slash.
    pub url: String,
    /// The API token's secret.
    pub token: String,
    /// The token's id on the server, so that `prism logout` can revoke it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<i64>,
    /// Who logged in, for messages only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

pub fn config_dir() -> CliResult<PathBuf> {
    if let Some(dir) = std::env::var_os("PRISM_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    dirs::config_dir()
        .map(|d| d.join("prism"))
        .ok_or_else(|| CliError::usage("cannot find a config directory for the credentials; set PRISM_CONFIG_DIR"))
}

pub fn credentials_path() -> CliResult<PathBuf> {
    Ok(config_dir()?.join(FILE_NAME))
}

/// The stored credentials, or `None` when not logged in.
pub fn load() -> CliResult<Option<Credentials>> {
    let path = credentials_path()?;
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(CliError::usage(format!("cannot read {}: {e}", path.display()))),
    };
    warn_if_readable_by_others(&path);
    serde_json::from_str(&text).map(Some).map_err(|e| {
        CliError::usage(format!(
            "{} is damaged ({e}); run `prism login URL` again",
            path.display()
        ))
    })
}

pub fn save(creds: &Credentials) -> CliResult<PathBuf> {
    let dir = config_dir()?;
    create_private_dir(&dir)?;
    let path = dir.join(FILE_NAME);
    let tmp = dir.join(format!(".{FILE_NAME}.{}.tmp", std::process::id()));
    let text = serde_json::to_string_pretty(creds).expect("credentials serialise");
    let written = write_private(&tmp, text.as_bytes()).and_then(|()| fs::rename(&tmp, &path));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(CliError::usage(format!("cannot write {}: {e}", path.display())));
    }
    Ok(path)
}

/// Deletes the stored credentials; `false` when there were none.
pub fn delete() -> CliResult<bool> {
    let path = credentials_path()?;
    match fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(CliError::usage(format!("cannot delete {}: {e}", path.display()))),
    }
}

fn create_private_dir(dir: &Path) -> CliResult<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| CliError::usage(format!("cannot create {}: {e}", dir.display())))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                eprintln!(
                    "warning: {} is readable by other users; run `chmod 600` on it",
                    path.display()
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// A server URL as stored and compared: no trailing slash.
pub fn normalise_url(url: &str) -> String {
    url.trim().trim_end_matches('/').to_owned()
}
