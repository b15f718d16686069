//! Encryption at rest for secrets in the store (cluster tokens, registry
//! passwords, git credentials, executor tokens): XChaCha20-Poly1305 with a
//! 256-bit key kept in the data dir (created 0600 on first start) or given by
//! `PRISM_SECRET_KEY`.
//!
//! A box seals with one key and opens with that key or an older one, which is
//! what lets `prism admin rotate-key` re-seal a live store: the old key stays
//! accepted (`PRISM_SECRET_KEY_PREVIOUS`, or `secret.key.next` beside an
//! interrupted rotation) until every value is sealed under the new one.

use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, OsRng};
use chacha20poly1305::{AeadCore, XChaCha20Poly1305, XNonce};

/// The key file in the data dir.
pub const KEY_FILE: &str = "secret.key";
/// The new key while a rotation is under way (kept if it was interrupted).
pub const NEXT_KEY_FILE: &str = "secret.key.next";
/// The key a finished rotation replaced: only for backups taken before it.
pub const RETIRED_KEY_FILE: &str = "secret.key.retired";

#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
    /// Keys that still open (never seal): the previous key during a rotation.
    older: Vec<XChaCha20Poly1305>,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(<key hidden>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret key must be 32 bytes, base64-encoded")]
    BadKey,
    #[error("cannot read or write the key file {path}: {source}")]
    KeyFile { path: String, source: std::io::Error },
    #[error("a stored secret could not be decrypted (wrong PRISM_SECRET_KEY?)")]
    Decrypt,
}

impl SecretBox {
    pub fn from_base64(key: &str) -> Result<Self, SecretError> {
        let bytes = B64.decode(key.trim()).map_err(|_| SecretError::BadKey)?;
        let cipher = XChaCha20Poly1305::new_from_slice(&bytes).map_err(|_| SecretError::BadKey)?;
        Ok(Self {
            cipher,
            older: Vec::new(),
        })
    }

    /// A new random key, base64-encoded as the key file holds it.
    pub fn generate_key() -> String {
        B64.encode(XChaCha20Poly1305::generate_key(&mut OsRng))
    }

    /// Also opens (never seals) what `key` sealed.
    pub fn also_opening(mut self, key: &str) -> Result<Self, SecretError> {
        self.older.push(Self::from_base64(key)?.cipher);
        Ok(self)
    }

    /// Whether the data dir holds a key file.
    pub fn key_file_exists(data_dir: &Path) -> bool {
        data_dir.join(KEY_FILE).exists()
    }

    /// Adds the key of an interrupted rotation (`secret.key.next`) as one
    /// that opens, so values it already re-sealed stay readable.
    pub fn with_interrupted_rotation(self, data_dir: &Path) -> Result<Self, SecretError> {
        match read_key_file(&data_dir.join(NEXT_KEY_FILE))? {
            Some(k) => self.also_opening(&k),
            None => Ok(self),
        }
    }

    /// Loads `secret.key` from the data dir, creating it (mode 0600) if absent.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, SecretError> {
        let path = data_dir.join(KEY_FILE);
        let io = |source| SecretError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(s) => Self::from_base64(&s),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = XChaCha20Poly1305::generate_key(&mut OsRng);
                let encoded = B64.encode(key);
                write_private(&path, encoded.as_bytes()).map_err(io)?;
                Self::from_base64(&encoded)
            }
            Err(e) => Err(io(e)),
        }
    }

    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let mut out = nonce.to_vec();
        out.extend(
            self.cipher
                .encrypt(&nonce, plaintext)
                .expect("encryption of a buffer cannot fail"),
        );
        out
    }

    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, SecretError> {
        if sealed.len() < 24 {
            return Err(SecretError::Decrypt);
        }
        let (nonce, ct) = sealed.split_at(24);
        std::iter::once(&self.cipher)
            .chain(&self.older)
            .find_map(|c| c.decrypt(XNonce::from_slice(nonce), ct).ok())
            .ok_or(SecretError::Decrypt)
    }
}

/// Reads a key file; `None` when it does not exist.
pub fn read_key_file(path: &Path) -> Result<Option<String>, SecretError> {
    match std::fs::read_to_string(path) {
        Ok(s) => {
            SecretBox::from_base64(&s)?;
            Ok(Some(s.trim().to_owned()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SecretError::KeyFile {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// Writes a file readable only by its owner.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_and_detects_tampering() {
        let dir = std::env::temp_dir().join(format!("prism-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let b = SecretBox::load_or_create(&dir).unwrap();
        let sealed = b.seal(b"cluster-token");
        assert!(!sealed.windows(13).any(|w| w == b"cluster-token"));
        assert_eq!(b.open(&sealed).unwrap(), b"cluster-token");
        let mut bad = sealed.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(b.open(&bad).is_err());
        // The same key file is read back on the next start.
        let again = SecretBox::load_or_create(&dir).unwrap();
        assert_eq!(again.open(&sealed).unwrap(), b"cluster-token");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("secret.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_older_key_opens_but_never_seals() {
        let old_key = SecretBox::generate_key();
        let new_key = SecretBox::generate_key();
        let old = SecretBox::from_base64(&old_key).unwrap();
        let sealed_old = old.seal(b"registry-password");
        let ring = SecretBox::from_base64(&new_key)
            .unwrap()
            .also_opening(&old_key)
            .unwrap();
        assert_eq!(ring.open(&sealed_old).unwrap(), b"registry-password");
        let sealed_new = ring.seal(b"registry-password");
        assert!(old.open(&sealed_new).is_err(), "sealed under the new key only");
        let new_only = SecretBox::from_base64(&new_key).unwrap();
        assert!(new_only.open(&sealed_old).is_err());
        assert_eq!(new_only.open(&sealed_new).unwrap(), b"registry-password");
    }
}
