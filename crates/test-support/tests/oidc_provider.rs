//! The OpenID Connect provider harness (a real `oidc-provider`): the
//! authorization code flow with PKCE signs a user in over plain HTTP, the
//! code buys an ID token carrying the user's groups, a change of groups shows
//! at the next login, and a wrong password yields no code.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use prism_test_support::oidc::{login_with_http, try_login_with_http, OidcProvider};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const CLIENT_ID: &str = "prism";
const CLIENT_SECRET: &str = "prism-client-secret";
const REDIRECT_URI: &str = "http://127.0.0.1:9/cb";

fn accounts(groups: &[&str]) -> Value {
    json!({
        "alice": {
            "password": "alice-pw",
            "email": "alice@example.com",
            "name": "Alice Ops",
            "groups": groups,
        },
        "bob": {"password": "bob-pw", "email": "bob@example.com", "name": "Bob Dev", "groups": []},
    })
}

fn random() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

struct Authorization {
    url: String,
    state: String,
    nonce: String,
    verifier: String,
}

fn authorization(discovery: &Value) -> Authorization {
    let (state, nonce, verifier) = (random(), random(), random());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let mut url = reqwest::Url::parse(discovery["authorization_endpoint"].as_str().unwrap()).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", CLIENT_ID)
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("scope", "openid profile email groups")
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    Authorization {
        url: url.into(),
        state,
        nonce,
        verifier,
    }
}

fn query(url: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(url).unwrap().query_pairs().into_owned().collect()
}

fn param(url: &str, name: &str) -> Option<String> {
    query(url).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// Signs in, checks the redirect, redeems the code; the token response.
fn sign_in(provider: &OidcProvider, discovery: &Value, user: &str, password: &str) -> (Authorization, Value) {
    let auth = authorization(discovery);
    let back = try_login_with_http(&auth.url, user, password).unwrap_or_else(|e| panic!("{e}\n{}", provider.log()));
    assert!(back.starts_with(&format!("{REDIRECT_URI}?")), "{back}");
    assert_eq!(param(&back, "state").as_deref(), Some(auth.state.as_str()), "{back}");
    assert_eq!(param(&back, "iss").as_deref(), Some(provider.issuer.as_str()), "{back}");
    let code = param(&back, "code").unwrap_or_else(|| panic!("no code in {back}"));
    let resp = reqwest::blocking::Client::new()
        .post(discovery["token_endpoint"].as_str().unwrap())
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", &auth.verifier),
        ])
        .send()
        .unwrap();
    let status = resp.status();
    let tokens: Value = resp.json().unwrap();
    assert!(status.is_success(), "{status}: {tokens}\n{}", provider.log());
    (auth, tokens)
}

fn id_token_claims(tokens: &Value) -> Value {
    let jwt = tokens["id_token"].as_str().expect("an id_token");
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "{jwt}");
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header["alg"], "RS256", "{header}");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap()
}

#[test]
fn a_user_signs_in_and_the_id_token_carries_the_groups_of_the_moment() {
    let provider = OidcProvider::start(
        CLIENT_ID,
        CLIENT_SECRET,
        REDIRECT_URI,
        accounts(&["shop-ops", "shop-dev"]),
    );
    let discovery = provider.discovery();
    assert_eq!(discovery["issuer"], provider.issuer.as_str());
    assert!(
        discovery["id_token_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("RS256")),
        "{discovery}"
    );
    assert_eq!(discovery["code_challenge_methods_supported"], json!(["S256"]));

    let (auth, tokens) = sign_in(&provider, &discovery, "alice", "alice-pw");
    assert_eq!(tokens["token_type"], "Bearer", "{tokens}");
    let claims = id_token_claims(&tokens);
    eprintln!("ID token payload: {claims:#}");
    assert_eq!(claims["iss"], provider.issuer.as_str(), "{claims}");
    assert_eq!(claims["aud"], CLIENT_ID, "{claims}");
    assert_eq!(claims["nonce"], auth.nonce.as_str(), "{claims}");
    assert_eq!(claims["sub"], "alice", "{claims}");
    assert_eq!(claims["preferred_username"], "alice", "{claims}");
    assert_eq!(claims["name"], "Alice Ops", "{claims}");
    assert_eq!(claims["email"], "alice@example.com", "{claims}");
    assert_eq!(claims["groups"], json!(["shop-ops", "shop-dev"]), "{claims}");

    // Her groups change in the directory: the next login says so.
    provider.set_accounts(accounts(&["shop-dev"]));
    let (auth, tokens) = sign_in(&provider, &discovery, "alice", "alice-pw");
    let claims = id_token_claims(&tokens);
    assert_eq!(claims["nonce"], auth.nonce.as_str(), "{claims}");
    assert_eq!(claims["groups"], json!(["shop-dev"]), "{claims}");

    // A code is good once, and only with its verifier.
    let auth = authorization(&discovery);
    let back = login_with_http(&auth.url, "bob", "bob-pw");
    let code = param(&back, "code").unwrap();
    let token = |verifier: &str| {
        reqwest::blocking::Client::new()
            .post(discovery["token_endpoint"].as_str().unwrap())
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", verifier),
            ])
            .send()
            .unwrap()
    };
    assert_eq!(token(&random()).status(), 400, "a wrong verifier");
    assert_eq!(token(&auth.verifier).status(), 200, "the right verifier");
    assert_eq!(token(&auth.verifier).status(), 400, "the code again");
}

#[test]
fn a_client_may_authenticate_with_client_secret_post() {
    let provider = OidcProvider::start_with(
        json!({
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "client_secret_post",
        }),
        accounts(&["shop-ops"]),
    );
    let discovery = provider.discovery();
    let auth = authorization(&discovery);
    let back = login_with_http(&auth.url, "alice", "alice-pw");
    let code = param(&back, "code").unwrap();
    let resp = reqwest::blocking::Client::new()
        .post(discovery["token_endpoint"].as_str().unwrap())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", &auth.verifier),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let tokens: Value = resp.json().unwrap();
    assert_eq!(id_token_claims(&tokens)["groups"], json!(["shop-ops"]));
}

#[test]
fn a_wrong_password_or_an_unknown_user_yields_no_code() {
    let provider = OidcProvider::start(CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, accounts(&["shop-ops"]));
    let discovery = provider.discovery();
    for (user, password) in [("alice", "wrong"), ("alice", ""), ("nobody", "alice-pw")] {
        let auth = authorization(&discovery);
        let err = try_login_with_http(&auth.url, user, password).expect_err("no code for a wrong password");
        assert!(err.contains("Invalid username or password"), "{err}");
    }
    // The right one still works.
    let auth = authorization(&discovery);
    let back = login_with_http(&auth.url, "alice", "alice-pw");
    assert!(param(&back, "code").is_some(), "{back}");
}

#[test]
fn without_pkce_the_provider_refuses_the_request() {
    let provider = OidcProvider::start(CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, accounts(&[]));
    let discovery = provider.discovery();
    let auth = authorization(&discovery);
    let url: String = {
        let mut u = reqwest::Url::parse(&auth.url).unwrap();
        let pairs: Vec<(String, String)> = query(&auth.url)
            .into_iter()
            .filter(|(k, _)| !k.starts_with("code_challenge"))
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
        u.into()
    };
    let back = login_with_http(&url, "alice", "alice-pw");
    assert_eq!(param(&back, "error").as_deref(), Some("invalid_request"), "{back}");
    assert!(param(&back, "code").is_none(), "{back}");
}
