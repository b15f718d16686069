//! Signatures, each computed exactly as its receiver documents it.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// Prism's generic webhook: `X-Prism-Signature: sha256=<hex>` of
/// HMAC-SHA256(secret, "<timestamp>.<body>"). Signing the timestamp with the
/// body lets a receiver refuse an old delivery replayed with its signature.
pub fn webhook(secret: &str, timestamp_secs: i64, body: &[u8]) -> String {
    let mut signed = format!("{timestamp_secs}.").into_bytes();
    signed.extend_from_slice(body);
    format!("sha256={}", hex::encode(hmac(secret.as_bytes(), &signed)))
}

/// DingTalk custom robot ("加签"): the string to sign is
/// `timestamp + "\n" + secret` (timestamp in milliseconds), signed with
/// HMAC-SHA256 keyed by the secret, Base64-encoded, then URL-encoded into
/// the `sign` query parameter beside `timestamp`.
pub fn dingtalk(secret: &str, timestamp_ms: i64) -> String {
    let to_sign = format!("{timestamp_ms}\n{secret}");
    B64.encode(hmac(secret.as_bytes(), to_sign.as_bytes()))
}

/// Feishu/Lark custom bot: `timestamp + "\n" + secret` (seconds) is the
/// HMAC-SHA256 *key*, the message is empty; the Base64 of the result goes
/// into the body as `sign` beside `timestamp`.
pub fn feishu(secret: &str, timestamp_secs: i64) -> String {
    let key = format!("{timestamp_secs}\n{secret}");
    B64.encode(hmac(key.as_bytes(), b""))
}

/// Compares two signatures in constant time.
pub fn equal(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha256_matches_rfc_4231_case_2() {
        // Key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            hex::encode(hmac(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn signatures_change_with_every_input() {
        let a = webhook("s", 1, b"{}");
        assert!(a.starts_with("sha256=") && a.len() == 7 + 64);
        assert_ne!(a, webhook("s", 2, b"{}"));
        assert_ne!(a, webhook("t", 1, b"{}"));
        assert_ne!(a, webhook("s", 1, b"{ }"));
        assert_ne!(dingtalk("s", 1), dingtalk("s", 2));
        assert_ne!(feishu("s", 1), feishu("t", 1));
        assert!(equal(&a, &a.clone()) && !equal(&a, &webhook("s", 2, b"{}")) && !equal("a", "ab"));
    }
}
