//! The sealing key inside a backup, only when the operator asks for it and
//! only encrypted with their passphrase: argon2id (64 MiB, 3 passes) derives
//! a key that seals Prism's key with XChaCha20-Poly1305, whose tag also
//! refuses an edited entry. Without the passphrase the archive's key is
//! useless, so a backup file alone never opens the stored credentials.

use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::rand_core::RngCore;
use chacha20poly1305::aead::{Aead, KeyInit, OsRng, Payload};
use chacha20poly1305::{AeadCore, XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};

/// Passphrases shorter than this are refused: the archive may travel.
pub const MIN_PASSPHRASE: usize = 12;
const FORMAT: &str = "argon2id+xchacha20poly1305/1";
const AAD: &[u8] = b"prism-backup-sealing-key";

#[derive(Debug, thiserror::Error)]
pub enum KeyBackupError {
    #[error("the passphrase must be at least {MIN_PASSPHRASE} characters")]
    ShortPassphrase,
    #[error("wrong passphrase (or the archive's sealing key was changed)")]
    WrongPassphrase,
    #[error("the archive's sealing key is unreadable: {0}")]
    Malformed(String),
}

#[derive(Debug, Serialize, Deserialize)]
struct Sealed {
    format: String,
    m_kib: u32,
    t: u32,
    p: u32,
    salt: String,
    nonce: String,
    ciphertext: String,
}

fn derive(passphrase: &str, salt: &[u8], m_kib: u32, t: u32, p: u32) -> Result<[u8; 32], KeyBackupError> {
    let params = Params::new(m_kib, t, p, Some(32)).map_err(|e| KeyBackupError::Malformed(e.to_string()))?;
    let mut out = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, &mut out)
        .map_err(|e| KeyBackupError::Malformed(e.to_string()))?;
    Ok(out)
}

/// Seals the base64 sealing key with `passphrase`, for the backup's manifest.
pub fn seal(key_b64: &str, passphrase: &str) -> Result<serde_json::Value, KeyBackupError> {
    if passphrase.chars().count() < MIN_PASSPHRASE {
        return Err(KeyBackupError::ShortPassphrase);
    }
    let (m_kib, t, p) = (64 * 1024, 3, 1);
    let mut salt = [0u8; 16];
    OsRng.fill_bytes(&mut salt);
    let derived = derive(passphrase, &salt, m_kib, t, p)?;
    let cipher = XChaCha20Poly1305::new_from_slice(&derived).expect("32-byte key");
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let ciphertext = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: key_b64.trim().as_bytes(),
                aad: AAD,
            },
        )
        .expect("encryption of a buffer cannot fail");
    let sealed = Sealed {
        format: FORMAT.into(),
        m_kib,
        t,
        p,
        salt: B64.encode(salt),
        nonce: B64.encode(nonce),
        ciphertext: B64.encode(ciphertext),
    };
    Ok(serde_json::to_value(sealed).expect("JSON"))
}

/// Opens what [`seal`] made: the base64 sealing key.
pub fn open(value: &serde_json::Value, passphrase: &str) -> Result<String, KeyBackupError> {
    let sealed: Sealed = serde_json::from_value(value.clone()).map_err(|e| KeyBackupError::Malformed(e.to_string()))?;
    if sealed.format != FORMAT {
        return Err(KeyBackupError::Malformed(format!("unknown format {:?}", sealed.format)));
    }
    // Bounds on what an edited archive can make this process spend.
    if sealed.m_kib > 1024 * 1024 || sealed.t > 16 || sealed.p > 16 {
        return Err(KeyBackupError::Malformed(
            "key derivation parameters out of range".into(),
        ));
    }
    let b64 = |s: &str| B64.decode(s).map_err(|e| KeyBackupError::Malformed(e.to_string()));
    let salt = b64(&sealed.salt)?;
    let nonce = b64(&sealed.nonce)?;
    if nonce.len() != 24 {
        return Err(KeyBackupError::Malformed("nonce".into()));
    }
    let derived = derive(passphrase, &salt, sealed.m_kib, sealed.t, sealed.p)?;
    let cipher = XChaCha20Poly1305::new_from_slice(&derived).expect("32-byte key");
    let plain = cipher
        .decrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &b64(&sealed.ciphertext)?,
                aad: AAD,
            },
        )
        .map_err(|_| KeyBackupError::WrongPassphrase)?;
    String::from_utf8(plain).map_err(|_| KeyBackupError::WrongPassphrase)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_with_the_passphrase_only_and_refuses_edits_and_short_passphrases() {
        let key = crate::secrets::SecretBox::generate_key();
        let sealed = seal(&key, "correct horse battery").unwrap();
        assert!(!sealed.to_string().contains(&key), "the key is not in the clear");
        assert_eq!(open(&sealed, "correct horse battery").unwrap(), key);
        assert!(matches!(
            open(&sealed, "wrong horse battery"),
            Err(KeyBackupError::WrongPassphrase)
        ));
        let mut edited = sealed.clone();
        let ct = edited["ciphertext"].as_str().unwrap().to_owned();
        let mut bytes = B64.decode(ct).unwrap();
        bytes[0] ^= 1;
        edited["ciphertext"] = B64.encode(bytes).into();
        assert!(matches!(
            open(&edited, "correct horse battery"),
            Err(KeyBackupError::WrongPassphrase)
        ));
        assert!(matches!(seal(&key, "short"), Err(KeyBackupError::ShortPassphrase)));
    }
}
