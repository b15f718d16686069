//! RSA keys made by openssl for each run, and JWTs signed with them: what
//! the ID-token tests forge and sign with.

use std::process::Command;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use serde_json::Value;

/// A fresh 2048-bit RSA key pair and its modulus (big-endian).
pub fn rsa_key() -> (RsaKeyPair, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("key.pem");
    let ok = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&pem)
        .output()
        .expect("openssl")
        .status
        .success();
    assert!(ok, "openssl genpkey");
    let der = Command::new("openssl")
        .args(["pkcs8", "-topk8", "-nocrypt", "-outform", "DER", "-in"])
        .arg(&pem)
        .output()
        .unwrap()
        .stdout;
    let modulus = String::from_utf8(
        Command::new("openssl")
            .args(["rsa", "-noout", "-modulus", "-in"])
            .arg(&pem)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let n = hex::decode(modulus.trim().trim_start_matches("Modulus=")).unwrap();
    (RsaKeyPair::from_pkcs8(&der).expect("PKCS#8 key"), n)
}

/// `header.claims.signature`, RS256 with `pair`.
pub fn sign(pair: &RsaKeyPair, header: &Value, claims: &Value) -> String {
    let msg = format!(
        "{}.{}",
        B64URL.encode(header.to_string()),
        B64URL.encode(claims.to_string())
    );
    let mut sig = vec![0u8; pair.public().modulus_len()];
    pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), msg.as_bytes(), &mut sig)
        .unwrap();
    format!("{msg}.{}", B64URL.encode(sig))
}
