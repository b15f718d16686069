//! Encryption at rest for secrets in the store (cluster tokens, later
//! registry and git credentials): XChaCha20-Poly1305 with a 256-bit key kept
//! in the data dir (created 0600 on first start) or given by `PRISM_SECRET_KEY`.

use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, OsRng};
use chacha20poly1305::{AeadCore, XChaCha20Poly1305, XNonce};

#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
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
        Ok(Self { cipher })
    }

    /// Loads `secret.key` from the data dir, creating it (mode 0600) if absent.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, SecretError> {
        let path = data_dir.join("secret.key");
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
        self.cipher
            .decrypt(XNonce::from_slice(nonce), ct)
            .map_err(|_| SecretError::Decrypt)
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
}
