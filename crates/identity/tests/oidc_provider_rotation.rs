//! The relying party's network behaviour against a provider this test
//! plays (std TCP, the OpenID Connect documents as specified): a signing
//! key added after Prism first read the JWKS (rotation) is fetched when a
//! token names it; a token endpoint that redirects is not followed (the
//! code and client secret never reach the other address).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use prism_identity::oidc::{Oidc, OidcConfig};

mod common;
use ring::signature::RsaKeyPair;
use serde_json::{json, Value};

struct Key {
    pair: RsaKeyPair,
    jwk: Value,
}

fn key(kid: &str) -> Key {
    let (pair, n) = common::rsa_key();
    Key {
        pair,
        jwk: json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": B64URL.encode(n), "e": "AQAB"}),
    }
}

fn sign(k: &Key, kid: &str, claims: &Value) -> String {
    common::sign(&k.pair, &json!({"alg": "RS256", "kid": kid}), claims)
}

/// What the provider answers, changeable while it runs; every request line is logged.
#[derive(Default)]
struct Script {
    jwks: Value,
    token: Value,
    redirect_token_to: Option<String>,
    seen: Vec<String>,
}

fn serve(script: Arc<Mutex<Script>>) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let issuer = base.clone();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut first = String::new();
            r.read_line(&mut first).unwrap_or(0);
            let mut len = 0usize;
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; len];
            let _ = r.read_exact(&mut body);
            let path = first.split_whitespace().nth(1).unwrap_or("").to_owned();
            let mut sc = script.lock().unwrap();
            sc.seen.push(path.clone());
            let (status, answer, location) = match path.as_str() {
                "/.well-known/openid-configuration" => (
                    "200 OK",
                    json!({"issuer": issuer, "authorization_endpoint": format!("{issuer}/authorize"),
                           "token_endpoint": format!("{issuer}/token"), "jwks_uri": format!("{issuer}/jwks")}),
                    None,
                ),
                "/jwks" => ("200 OK", sc.jwks.clone(), None),
                "/token" => match &sc.redirect_token_to {
                    Some(to) => ("307 Temporary Redirect", json!({}), Some(to.clone())),
                    None => ("200 OK", sc.token.clone(), None),
                },
                _ => ("404 Not Found", json!({}), None),
            };
            drop(sc);
            let body = answer.to_string();
            let mut s = s;
            let loc = location.map(|l| format!("location: {l}\r\n")).unwrap_or_default();
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{loc}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    base
}

fn config(issuer: &str) -> OidcConfig {
    OidcConfig {
        issuer: issuer.to_owned(),
        client_id: "prism".into(),
        client_secret: "client-secret".into(),
        groups_claim: "groups".into(),
        username_claim: "preferred_username".into(),
        label: "Test".into(),
        scopes: vec!["profile".into()],
    }
}

#[tokio::test]
async fn a_rotated_key_is_fetched_and_a_redirecting_token_endpoint_is_not_followed() {
    let (k1, k2) = (key("k1"), key("k2"));
    let script = Arc::new(Mutex::new(Script {
        jwks: json!({"keys": [k1.jwk]}),
        ..Default::default()
    }));
    let issuer = serve(script.clone());
    let oidc = Oidc::new(config(&issuer)).unwrap();
    let (url, pending) = oidc.begin("https://prism.example/auth/oidc/callback").await.unwrap();
    assert!(url.starts_with(&format!("{issuer}/authorize?")), "{url}");
    // The provider rotates: k2 joins the JWKS and signs the token.
    let now = chrono_now();
    let claims = json!({"iss": issuer, "aud": "prism", "sub": "u1", "preferred_username": "alice",
                        "groups": ["shop-ops"], "exp": now + 300, "iat": now, "nonce": pending.nonce});
    {
        let mut sc = script.lock().unwrap();
        sc.jwks = json!({"keys": [k1.jwk, k2.jwk]});
        sc.token = json!({"id_token": sign(&k2, "k2", &claims), "token_type": "Bearer"});
    }
    // (The keys are fetched again at most every few seconds.)
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let user = oidc
        .finish("the-code", "https://prism.example/auth/oidc/callback", &pending)
        .await
        .unwrap();
    assert_eq!(user.username, "alice");
    assert_eq!(user.groups, ["shop-ops"]);
    let jwks_reads = script.lock().unwrap().seen.iter().filter(|p| *p == "/jwks").count();
    assert_eq!(jwks_reads, 2, "read at the first login and again for the new key");

    // A token endpoint that redirects elsewhere: not followed.
    let elsewhere = TcpListener::bind("127.0.0.1:0").unwrap();
    elsewhere.set_nonblocking(true).unwrap();
    script.lock().unwrap().redirect_token_to = Some(format!("http://{}/steal", elsewhere.local_addr().unwrap()));
    let (_, pending) = oidc.begin("https://prism.example/auth/oidc/callback").await.unwrap();
    let e = oidc
        .finish("the-code", "https://prism.example/auth/oidc/callback", &pending)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("refused the code") || e.to_string().contains("307"),
        "{e}"
    );
    assert!(elsewhere.accept().is_err(), "the redirect target was contacted");
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
