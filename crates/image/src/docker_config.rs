//! Registry credentials from a Docker `config.json` (`auths.<host>.auth` as
//! base64 `user:password`, or `username`/`password`), the file `docker login`
//! writes. Credential helpers (`credsStore`) are not run: Prism never executes
//! programs named in a config file it did not write.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use serde::Deserialize;

use crate::error::{ImageError, Result};
use crate::registry::Credentials;

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    auths: BTreeMap<String, Entry>,
}

#[derive(Deserialize)]
struct Entry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// `host -> credentials` from the file at `path`; a missing file gives none.
pub fn load(path: &Path) -> Result<BTreeMap<String, Credentials>> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(ImageError::io(format!("reading {}", path.display()))(e)),
    };
    parse(&text).map_err(|reason| ImageError::Io {
        context: format!("{}: {reason}", path.display()),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, "invalid Docker config"),
    })
}

/// Parses the contents of a `config.json`.
pub fn parse(text: &[u8]) -> std::result::Result<BTreeMap<String, Credentials>, String> {
    let value: serde_json::Value =
        serde_json::from_slice(text).map_err(|e| format!("not a Docker config.json: {e}"))?;
    if !value.is_object() {
        return Err("not a Docker config.json: expected a JSON object".into());
    }
    let file: File = serde_json::from_value(value).map_err(|e| format!("not a Docker config.json: {e}"))?;
    let mut out = BTreeMap::new();
    for (key, entry) in file.auths {
        let creds = match (&entry.auth, &entry.username, &entry.password) {
            (Some(auth), _, _) if !auth.is_empty() => {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .map_err(|_| format!("auths.{key}.auth is not base64"))?;
                let raw = String::from_utf8(raw).map_err(|_| format!("auths.{key}.auth is not UTF-8"))?;
                let (u, p) = raw
                    .split_once(':')
                    .ok_or_else(|| format!("auths.{key}.auth is not user:password"))?;
                Credentials {
                    username: u.to_string(),
                    password: p.to_string(),
                }
            }
            (_, Some(u), Some(p)) => Credentials {
                username: u.clone(),
                password: p.clone(),
            },
            _ => continue,
        };
        out.insert(host_of(&key), creds);
    }
    Ok(out)
}

/// `https://index.docker.io/v1/` -> `index.docker.io`; `reg:5000` stays.
fn host_of(key: &str) -> String {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_auth_and_plain_entries() {
        let text = br#"{"auths": {
            "127.0.0.1:5000": {"auth": "YWxpY2U6czNjcmV0"},
            "https://index.docker.io/v1/": {"username": "bob", "password": "pw"},
            "helper-only.example": {}
        }, "credsStore": "desktop"}"#;
        let m = parse(text).unwrap();
        assert_eq!(m["127.0.0.1:5000"].username, "alice");
        assert_eq!(m["127.0.0.1:5000"].password, "s3cret");
        assert_eq!(m["index.docker.io"].username, "bob");
        assert!(!m.contains_key("helper-only.example"));
    }

    #[test]
    fn refuses_malformed_files() {
        assert!(parse(b"[]").is_err());
        assert!(parse(br#"{"auths": {"h": {"auth": "%%%"}}}"#)
            .unwrap_err()
            .contains("auths.h.auth"));
        assert!(parse(br#"{"auths": {"h": {"auth": "bm9jb2xvbg=="}}}"#)
            .unwrap_err()
            .contains("user:password"));
    }

    #[test]
    fn a_missing_file_is_no_credentials() {
        assert!(load(Path::new("/nonexistent/config.json")).unwrap().is_empty());
    }
}
