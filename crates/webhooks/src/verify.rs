//! Signatures of each forge, as each documents them.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use prism_domain::Forge;
use sha2::{Digest, Sha256};

/// The request headers a verification needs (names lowercase).
pub trait Headers {
    fn get(&self, name: &str) -> Option<&str>;
}

impl Headers for std::collections::HashMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        std::collections::HashMap::get(self, name).map(String::as_str)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the request is not signed ({0} missing)")]
    Missing(&'static str),
    #[error("the signature does not match")]
    Mismatch,
    #[error("no forge's webhook headers were found")]
    UnknownForge,
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().to_vec()
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Which forge sent this request, by its event header. Gitea and Forgejo
/// also send GitHub's headers (`X-GitHub-Event`, `X-Hub-Signature-256`) for
/// compatibility, so their own headers are looked for first.
pub fn forge_of(h: &dyn Headers) -> Option<Forge> {
    if h.get("x-gitea-event").is_some() || h.get("x-forgejo-event").is_some() {
        Some(Forge::Gitea)
    } else if h.get("x-gitlab-event").is_some() {
        Some(Forge::Gitlab)
    } else if h.get("x-github-event").is_some() {
        Some(Forge::Github)
    } else {
        None
    }
}

/// Checks the request against `secret`; returns the forge.
///
/// - GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`.
/// - Gitea/Forgejo: `X-Gitea-Signature` (or `X-Forgejo-Signature`): `<hex HMAC-SHA256(secret, body)>`.
/// - GitLab: `X-Gitlab-Token: <secret>`; or, with a signing token
///   (`whsec_<base64 key>`), the Standard Webhooks headers `webhook-id`,
///   `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256(key, "id.timestamp.body")>`.
pub fn verify(h: &dyn Headers, body: &[u8], secret: &str) -> Result<Forge, VerifyError> {
    let forge = forge_of(h).ok_or(VerifyError::UnknownForge)?;
    verify_as(forge, h, body, secret)
}

/// Checks the request the way `forge` signs (whatever headers else it
/// carries): a webhook set up for one forge is checked only as that forge.
pub fn verify_as(forge: Forge, h: &dyn Headers, body: &[u8], secret: &str) -> Result<Forge, VerifyError> {
    match forge {
        Forge::Github => {
            let sig = h
                .get("x-hub-signature-256")
                .ok_or(VerifyError::Missing("X-Hub-Signature-256"))?;
            let hex_sig = sig.strip_prefix("sha256=").ok_or(VerifyError::Mismatch)?;
            let given = hex::decode(hex_sig).map_err(|_| VerifyError::Mismatch)?;
            ok(same(&given, &hmac(secret.as_bytes(), &[body])), forge)
        }
        Forge::Gitea => {
            let sig = h
                .get("x-gitea-signature")
                .or_else(|| h.get("x-forgejo-signature"))
                .ok_or(VerifyError::Missing("X-Gitea-Signature"))?;
            let given = hex::decode(sig.trim()).map_err(|_| VerifyError::Mismatch)?;
            ok(same(&given, &hmac(secret.as_bytes(), &[body])), forge)
        }
        Forge::Gitlab => {
            if let Some(key) = secret.strip_prefix("whsec_") {
                let key = B64.decode(key).map_err(|_| VerifyError::Mismatch)?;
                let id = h.get("webhook-id").ok_or(VerifyError::Missing("webhook-id"))?;
                let ts = h
                    .get("webhook-timestamp")
                    .ok_or(VerifyError::Missing("webhook-timestamp"))?;
                let sigs = h
                    .get("webhook-signature")
                    .ok_or(VerifyError::Missing("webhook-signature"))?;
                let want = hmac(&key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
                // Several signatures may be sent (key rotation): any valid one counts.
                let any = sigs.split(' ').any(|s| {
                    s.strip_prefix("v1,")
                        .and_then(|b| B64.decode(b).ok())
                        .is_some_and(|given| same(&given, &want))
                });
                ok(any, forge)
            } else {
                let token = h.get("x-gitlab-token").ok_or(VerifyError::Missing("X-Gitlab-Token"))?;
                // Compared as digests of equal length, so the time taken tells
                // nothing of the secret's length either.
                ok(
                    same(&Sha256::digest(token.as_bytes()), &Sha256::digest(secret.as_bytes())),
                    forge,
                )
            }
        }
    }
}

fn ok(matched: bool, forge: Forge) -> Result<Forge, VerifyError> {
    if matched {
        Ok(forge)
    } else {
        Err(VerifyError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn headers(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn github_documented_example() {
        // From GitHub's "Validating webhook deliveries": secret "It's a Secret to Everybody",
        // payload "Hello, World!".
        let h = headers(&[
            ("x-github-event", "push"),
            (
                "x-hub-signature-256",
                "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            ),
        ]);
        assert_eq!(
            verify(&h, b"Hello, World!", "It's a Secret to Everybody"),
            Ok(Forge::Github)
        );
        assert_eq!(
            verify(&h, b"Hello, World?", "It's a Secret to Everybody"),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(&h, b"Hello, World!", "another secret"),
            Err(VerifyError::Mismatch)
        );
        let unsigned = headers(&[("x-github-event", "push")]);
        assert_eq!(
            verify(&unsigned, b"{}", "s"),
            Err(VerifyError::Missing("X-Hub-Signature-256"))
        );
    }

    #[test]
    fn gitea_signs_the_body_in_plain_hex() {
        let sig = hex::encode(hmac(b"s3cret", &[b"{\"ref\":\"x\"}"]));
        let h = headers(&[("x-gitea-event", "push"), ("x-gitea-signature", &sig)]);
        assert_eq!(verify(&h, b"{\"ref\":\"x\"}", "s3cret"), Ok(Forge::Gitea));
        let forgejo = headers(&[("x-forgejo-event", "push"), ("x-forgejo-signature", &sig)]);
        assert_eq!(verify(&forgejo, b"{\"ref\":\"x\"}", "s3cret"), Ok(Forge::Gitea));
        assert_eq!(verify(&h, b"{\"ref\":\"y\"}", "s3cret"), Err(VerifyError::Mismatch));
    }

    #[test]
    fn gitlab_token_or_signing_token() {
        let h = headers(&[("x-gitlab-event", "Push Hook"), ("x-gitlab-token", "tok-1")]);
        assert_eq!(verify(&h, b"{}", "tok-1"), Ok(Forge::Gitlab));
        assert_eq!(verify(&h, b"{}", "tok-2"), Err(VerifyError::Mismatch));
        // Standard Webhooks: key is the base64 after whsec_.
        let key = b"0123456789abcdef0123456789abcdef";
        let secret = format!("whsec_{}", B64.encode(key));
        let sig = B64.encode(hmac(key, &[b"msg_1.1700000000.{}"]));
        let signed = headers(&[
            ("x-gitlab-event", "Push Hook"),
            ("webhook-id", "msg_1"),
            ("webhook-timestamp", "1700000000"),
            ("webhook-signature", &format!("v1,bm90LWl0 v1,{sig}")),
        ]);
        assert_eq!(verify(&signed, b"{}", &secret), Ok(Forge::Gitlab));
        assert_eq!(verify(&signed, b"{ }", &secret), Err(VerifyError::Mismatch));
    }

    #[test]
    fn gitea_sends_github_headers_too_and_is_read_as_gitea() {
        // Gitea's documented headers: its own, Gogs' and GitHub's, all signed alike.
        let body = b"{\"ref\":\"refs/heads/main\"}";
        let hex_sig = hex::encode(hmac(b"s3cret", &[body]));
        let h = headers(&[
            ("x-github-event", "push"),
            ("x-gogs-event", "push"),
            ("x-gitea-event", "push"),
            ("x-gitea-signature", &hex_sig),
            ("x-hub-signature-256", &format!("sha256={hex_sig}")),
        ]);
        assert_eq!(forge_of(&h), Some(Forge::Gitea));
        assert_eq!(verify(&h, body, "s3cret"), Ok(Forge::Gitea));
        // A webhook set up as GitHub checks X-Hub-Signature-256, which Gitea sends as well.
        assert_eq!(verify_as(Forge::Github, &h, body, "s3cret"), Ok(Forge::Github));
        // Set up as GitLab, the same request is refused (no X-Gitlab-Token).
        assert_eq!(
            verify_as(Forge::Gitlab, &h, body, "s3cret"),
            Err(VerifyError::Missing("X-Gitlab-Token"))
        );
    }

    #[test]
    fn unknown_senders_are_refused() {
        assert_eq!(verify(&headers(&[]), b"{}", "s"), Err(VerifyError::UnknownForge));
    }
}
