//! OpenID Connect login (authorization code flow with PKCE): Prism as the
//! relying party of the company's provider.
//!
//! - [`Oidc::begin`] makes the authorization request: a fresh `state`,
//!   `nonce` and PKCE verifier (S256), kept by the caller until the callback.
//! - [`Oidc::finish`] exchanges the code at the token endpoint (client
//!   secret, the verifier; no redirect followed) and checks the ID token:
//!   RS256 signature by a key of the provider's JWKS (fetched again when a
//!   token names a key Prism has not seen: key rotation), issuer, audience
//!   (and `azp` when several), expiry, issue time, and the `nonce`.
//!   `alg: none`, HMAC algorithms and unknown keys are refused.
//!
//! Discovery (`/.well-known/openid-configuration`) happens at the first
//! login, not at start, so a provider that is down when Prism starts only
//! delays SSO; its `issuer` must be exactly the configured one.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

/// How far clocks may disagree when checking `exp` and `iat`.
const LEEWAY_S: i64 = 60;
/// The JWKS is fetched again at most this often for an unknown key id.
const JWKS_REFETCH: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct OidcConfig {
    /// The provider's issuer URL, exactly as its discovery document says it.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// The ID token claim holding the user's groups (default `groups`).
    pub groups_claim: String,
    /// The claim that names the user in Prism (default `preferred_username`).
    pub username_claim: String,
    /// Shown on the login button: "Log in with {label}".
    pub label: String,
    /// Scopes asked for besides `openid`.
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for OidcConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("groups_claim", &self.groups_claim)
            .field("username_claim", &self.username_claim)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The provider could not be reached or answered nonsense.
    #[error("the identity provider is unavailable: {0}")]
    Unavailable(String),
    /// The login was refused or the token did not check out.
    #[error("{0}")]
    Refused(String),
}

fn refused(why: impl Into<String>) -> OidcError {
    OidcError::Refused(why.into())
}

/// What a login request must remember until the provider sends the browser
/// back: compared with the callback's `state`, the ID token's `nonce`, and
/// sent with the code (`verifier`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Pending {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
}

/// Who the provider says logged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcUser {
    pub subject: String,
    /// The `username_claim`'s value.
    pub username: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

/// A provider's signing keys, as published (only RSA keys are used).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Jwk {
    pub kty: String,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default, rename = "use")]
    pub use_: Option<String>,
    #[serde(default)]
    pub n: Option<String>,
    #[serde(default)]
    pub e: Option<String>,
}

struct Known {
    discovery: Discovery,
    jwks: Jwks,
    fetched: Instant,
}

/// The relying party: configuration, and what it learnt from the provider.
#[derive(Clone)]
pub struct Oidc {
    pub config: OidcConfig,
    http: reqwest::Client,
    known: Arc<Mutex<Option<Known>>>,
}

fn random() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    B64URL.encode(b)
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The PKCE S256 challenge of a verifier.
pub fn challenge(verifier: &str) -> String {
    B64URL.encode(Sha256::digest(verifier.as_bytes()))
}

impl Oidc {
    pub fn new(config: OidcConfig) -> Result<Self, OidcError> {
        let http = reqwest::Client::builder()
            // Never follow a redirect: a token exchange must not be sent elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| OidcError::Unavailable(e.to_string()))?;
        Ok(Self {
            config,
            http,
            known: Arc::new(Mutex::new(None)),
        })
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, OidcError> {
        let r = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| OidcError::Unavailable(format!("{url}: {e}")))?;
        if !r.status().is_success() {
            return Err(OidcError::Unavailable(format!("{url}: {}", r.status())));
        }
        r.json()
            .await
            .map_err(|e| OidcError::Unavailable(format!("{url}: {e}")))
    }

    /// The discovery document and keys, fetched once (and the keys again
    /// when `refresh` and the last fetch is old enough).
    async fn known(&self, refresh: bool) -> Result<(Discovery, Jwks), OidcError> {
        let mut known = self.known.lock().await;
        if known.is_none() {
            let url = format!(
                "{}/.well-known/openid-configuration",
                self.config.issuer.trim_end_matches('/')
            );
            let discovery: Discovery = self.get_json(&url).await?;
            if discovery.issuer != self.config.issuer {
                return Err(OidcError::Unavailable(format!(
                    "the provider calls itself {:?}, not the configured issuer {:?}",
                    discovery.issuer, self.config.issuer
                )));
            }
            let jwks: Jwks = self.get_json(&discovery.jwks_uri).await?;
            *known = Some(Known {
                discovery,
                jwks,
                fetched: Instant::now(),
            });
        } else if refresh {
            let k = known.as_mut().expect("known");
            if k.fetched.elapsed() >= JWKS_REFETCH {
                k.jwks = self.get_json(&k.discovery.jwks_uri).await?;
                k.fetched = Instant::now();
            }
        }
        let k = known.as_ref().expect("known");
        Ok((k.discovery.clone(), k.jwks.clone()))
    }

    /// The authorization URL to send the browser to, and what to remember.
    pub async fn begin(&self, redirect_uri: &str) -> Result<(String, Pending), OidcError> {
        let (d, _) = self.known(false).await?;
        let pending = Pending {
            state: random(),
            nonce: random(),
            verifier: random(),
        };
        let mut scopes = vec!["openid".to_owned()];
        scopes.extend(self.config.scopes.iter().cloned());
        let mut url = reqwest::Url::parse(&d.authorization_endpoint)
            .map_err(|e| OidcError::Unavailable(format!("authorization_endpoint: {e}")))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &scopes.join(" "))
            .append_pair("state", &pending.state)
            .append_pair("nonce", &pending.nonce)
            .append_pair("code_challenge", &challenge(&pending.verifier))
            .append_pair("code_challenge_method", "S256");
        Ok((url.to_string(), pending))
    }

    /// Exchanges the code and checks the ID token it returns.
    pub async fn finish(&self, code: &str, redirect_uri: &str, pending: &Pending) -> Result<OidcUser, OidcError> {
        let (d, _) = self.known(false).await?;
        let r = self
            .http
            .post(&d.token_endpoint)
            .basic_auth(&self.config.client_id, Some(&self.config.client_secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect_uri),
                ("code_verifier", &pending.verifier),
            ])
            .send()
            .await
            .map_err(|e| OidcError::Unavailable(format!("token endpoint: {e}")))?;
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            // An expired or replayed code, a wrong verifier: the provider says which.
            let why = body["error_description"]
                .as_str()
                .or(body["error"].as_str())
                .unwrap_or("no reason given");
            return Err(refused(format!("the provider refused the code ({status}): {why}")));
        }
        let token = body["id_token"]
            .as_str()
            .ok_or_else(|| refused("the provider's answer has no id_token"))?;
        let claims = match self.check(token, &pending.nonce, false).await {
            Err(OidcError::Refused(why)) if why.contains("unknown key") => {
                self.check(token, &pending.nonce, true).await?
            }
            other => other?,
        };
        user_of(&claims, &self.config)
    }

    async fn check(&self, token: &str, nonce: &str, refresh: bool) -> Result<Value, OidcError> {
        let (_, jwks) = self.known(refresh).await?;
        verify_id_token(
            token,
            &jwks,
            &self.config.issuer,
            &self.config.client_id,
            nonce,
            now_s(),
        )
    }
}

/// Checks an ID token against the provider's keys and what this login
/// expects; returns its claims.
pub fn verify_id_token(
    token: &str,
    jwks: &Jwks,
    issuer: &str,
    client_id: &str,
    nonce: &str,
    now: i64,
) -> Result<Value, OidcError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(refused("the ID token is not a signed JWT"));
    };
    let decode = |part: &str, what: &str| -> Result<Vec<u8>, OidcError> {
        B64URL
            .decode(part.trim_end_matches('='))
            .map_err(|_| refused(format!("the ID token's {what} is not base64url")))
    };
    let header: Value =
        serde_json::from_slice(&decode(h, "header")?).map_err(|_| refused("the ID token's header is not JSON"))?;
    // Only RS256: never `none`, never an HMAC keyed with something public.
    if header["alg"] != "RS256" {
        return Err(refused(format!(
            "the ID token is signed with {}, not RS256",
            header["alg"]
        )));
    }
    let kid = header["kid"].as_str();
    // The key the token names; without a kid, any of the provider's RSA signing keys.
    let candidates: Vec<&Jwk> = jwks
        .keys
        .iter()
        .filter(|k| k.kty == "RSA" && k.use_.as_deref().unwrap_or("sig") == "sig")
        .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
        .collect();
    if candidates.is_empty() {
        return Err(refused(format!("the ID token names an unknown key {kid:?}")));
    }
    let signature = decode(s, "signature")?;
    let signed = format!("{h}.{p}");
    let mut verified = false;
    for key in candidates {
        let (Some(n), Some(e)) = (&key.n, &key.e) else {
            continue;
        };
        let public = ring::signature::RsaPublicKeyComponents {
            n: decode(n, "key modulus")?,
            e: decode(e, "key exponent")?,
        };
        if public
            .verify(
                &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                signed.as_bytes(),
                &signature,
            )
            .is_ok()
        {
            verified = true;
            break;
        }
    }
    if !verified {
        return Err(refused("the ID token's signature does not verify"));
    }
    let claims: Value =
        serde_json::from_slice(&decode(p, "payload")?).map_err(|_| refused("the ID token's payload is not JSON"))?;
    if claims["iss"] != issuer {
        return Err(refused(format!(
            "the ID token was issued by {}, not {issuer}",
            claims["iss"]
        )));
    }
    let audience_ok = match &claims["aud"] {
        Value::String(a) => a == client_id,
        Value::Array(list) => list.iter().any(|a| a == client_id) && (list.len() == 1 || claims["azp"] == client_id),
        _ => false,
    };
    if !audience_ok {
        return Err(refused(format!(
            "the ID token is for {}, not this client",
            claims["aud"]
        )));
    }
    let exp = claims["exp"]
        .as_i64()
        .ok_or_else(|| refused("the ID token has no expiry"))?;
    if exp + LEEWAY_S < now {
        return Err(refused("the ID token has expired"));
    }
    if claims["iat"].as_i64().is_some_and(|iat| iat - LEEWAY_S > now) {
        return Err(refused("the ID token was issued in the future"));
    }
    if claims["nonce"] != nonce {
        return Err(refused("the ID token's nonce is not this login's"));
    }
    Ok(claims)
}

/// The user the claims name.
pub fn user_of(claims: &Value, config: &OidcConfig) -> Result<OidcUser, OidcError> {
    let subject = claims["sub"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| refused("the ID token names no subject"))?;
    let username = claims[config.username_claim.as_str()]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| refused(format!("the ID token has no {} claim", config.username_claim)))?;
    let groups = match &claims[config.groups_claim.as_str()] {
        Value::Array(list) => list.iter().filter_map(|g| g.as_str().map(String::from)).collect(),
        Value::String(one) => vec![one.clone()],
        _ => vec![],
    };
    Ok(OidcUser {
        subject: subject.to_owned(),
        username: username.to_owned(),
        display_name: claims["name"].as_str().map(String::from),
        email: claims["email"].as_str().map(String::from),
        groups,
    })
}
