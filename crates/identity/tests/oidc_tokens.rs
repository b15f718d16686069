//! ID tokens as an attacker might forge them, against the real check: a
//! 2048-bit RSA key made by openssl for each run signs the good token; each
//! forgery changes one thing (another key, `alg: none`, HS256 keyed with the
//! public modulus, the audience, the issuer, the expiry, the nonce, an
//! unknown key id) and is refused naming what is wrong.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use prism_identity::oidc::{verify_id_token, Jwk, Jwks};
use ring::signature::RsaKeyPair;
use serde_json::{json, Value};

const ISSUER: &str = "https://id.example.com";
const CLIENT: &str = "prism";
const NONCE: &str = "n-0S6_WzA2Mj";
const NOW: i64 = 1_800_000_000;

struct Key {
    pair: RsaKeyPair,
    jwk: Jwk,
}

fn key(kid: &str) -> Key {
    let (pair, n) = common::rsa_key();
    Key {
        pair,
        jwk: Jwk {
            kty: "RSA".into(),
            kid: Some(kid.into()),
            use_: Some("sig".into()),
            n: Some(B64URL.encode(&n)),
            e: Some(B64URL.encode([1u8, 0, 1])),
        },
    }
}

fn sign(k: &Key, header: &Value, claims: &Value) -> String {
    common::sign(&k.pair, header, claims)
}

fn claims() -> Value {
    json!({"iss": ISSUER, "aud": CLIENT, "sub": "alice", "exp": NOW + 300, "iat": NOW,
           "nonce": NONCE, "preferred_username": "alice", "groups": ["shop-ops"]})
}

fn refused(token: &str, jwks: &Jwks, why: &str) {
    match verify_id_token(token, jwks, ISSUER, CLIENT, NONCE, NOW) {
        Ok(c) => panic!("accepted a forged token ({why}): {c}"),
        Err(e) => assert!(e.to_string().contains(why), "{e} (expected: {why})"),
    }
}

#[test]
fn only_a_token_signed_by_the_providers_key_for_this_login_is_accepted() {
    let good = key("k1");
    let other = key("k2");
    let jwks = Jwks {
        keys: vec![good.jwk.clone()],
    };
    let header = json!({"alg": "RS256", "kid": "k1", "typ": "JWT"});
    let ok = verify_id_token(&sign(&good, &header, &claims()), &jwks, ISSUER, CLIENT, NONCE, NOW).unwrap();
    assert_eq!(ok["groups"], json!(["shop-ops"]));
    // An audience list naming this client is fine when azp is this client.
    let mut c = claims();
    c["aud"] = json!([CLIENT, "other"]);
    c["azp"] = json!(CLIENT);
    verify_id_token(&sign(&good, &header, &c), &jwks, ISSUER, CLIENT, NONCE, NOW).unwrap();

    // No key id: any of the provider's keys may have signed it.
    let both = Jwks {
        keys: vec![other.jwk.clone(), good.jwk.clone()],
    };
    let no_kid = sign(&good, &json!({"alg": "RS256"}), &claims());
    verify_id_token(&no_kid, &both, ISSUER, CLIENT, NONCE, NOW).unwrap();
    refused(
        &sign(&other, &json!({"alg": "RS256"}), &claims()),
        &jwks,
        "signature does not verify",
    );

    // Signed by another key under the same key id.
    refused(&sign(&other, &header, &claims()), &jwks, "signature does not verify");
    // The payload changed after signing.
    let t = sign(&good, &header, &claims());
    let mut parts: Vec<String> = t.split('.').map(String::from).collect();
    let mut evil = claims();
    evil["groups"] = json!(["platform"]);
    parts[1] = B64URL.encode(evil.to_string());
    refused(&parts.join("."), &jwks, "signature does not verify");
    // alg none, with and without a signature part.
    let none = format!(
        "{}.{}.",
        B64URL.encode(json!({"alg": "none"}).to_string()),
        B64URL.encode(claims().to_string())
    );
    refused(&none, &jwks, "not RS256");
    // HS256 keyed with the public modulus (the classic key-confusion forgery).
    let hs = json!({"alg": "HS256", "kid": "k1"});
    let msg = format!(
        "{}.{}",
        B64URL.encode(hs.to_string()),
        B64URL.encode(claims().to_string())
    );
    let mac = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, good.jwk.n.as_ref().unwrap().as_bytes()),
        msg.as_bytes(),
    );
    refused(&format!("{msg}.{}", B64URL.encode(mac.as_ref())), &jwks, "not RS256");
    // A key the provider does not publish.
    refused(
        &sign(&other, &json!({"alg": "RS256", "kid": "k2"}), &claims()),
        &jwks,
        "unknown key",
    );
    // Right signature, wrong facts.
    for (field, value, why) in [
        ("aud", json!("someone-else"), "not this client"),
        ("aud", json!([CLIENT, "other"]), "not this client"),
        ("iss", json!("https://evil.example.com"), "issued by"),
        ("exp", json!(NOW - 120), "expired"),
        ("exp", Value::Null, "no expiry"),
        ("iat", json!(NOW + 3600), "in the future"),
        ("nonce", json!("another-login"), "nonce"),
        ("nonce", Value::Null, "nonce"),
    ] {
        let mut c = claims();
        c[field] = value;
        refused(&sign(&good, &header, &c), &jwks, why);
    }
    // Not a JWT at all.
    refused("abc", &jwks, "not a signed JWT");
    refused("a.b.c.d", &jwks, "not a signed JWT");
}
