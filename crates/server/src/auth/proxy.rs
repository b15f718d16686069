//! Who the client is, and whether it reached Prism over HTTPS, when Prism
//! runs behind a reverse proxy.
//!
//! Settings (environment, read once):
//! - `PRISM_TRUSTED_PROXY_HEADER`: the header the proxy sets to the client's
//!   address (`X-Forwarded-For`, `X-Real-IP` ...). Unset: the TCP peer's
//!   address is the client's, and forwarding headers are ignored (anyone
//!   can send them). For `X-Forwarded-For` the last entry is used: the one
//!   the trusted proxy appended.
//! - `PRISM_TRUSTED_PROXIES`: comma-separated addresses of the proxies whose
//!   headers are believed (default: any peer, once the header is configured).
//!   From the trusted proxy, `X-Forwarded-Proto: https` also marks the
//!   request as HTTPS (session cookies are then `Secure`).

use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::HeaderName;

struct Config {
    header: Option<HeaderName>,
    proxies: Vec<IpAddr>,
}

fn config() -> &'static Config {
    static C: OnceLock<Config> = OnceLock::new();
    C.get_or_init(|| Config {
        header: std::env::var("PRISM_TRUSTED_PROXY_HEADER")
            .ok()
            .and_then(|h| HeaderName::try_from(h.trim()).ok()),
        proxies: std::env::var("PRISM_TRUSTED_PROXIES")
            .unwrap_or_default()
            .split(',')
            .filter_map(|a| a.trim().parse().ok())
            .collect(),
    })
}

fn peer(parts: &Parts) -> Option<IpAddr> {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ci| ci.0.ip())
}

/// The last value of a comma-separated header (what the nearest proxy added).
fn last_value(parts: &Parts, name: &HeaderName) -> Option<String> {
    let all: Vec<&str> = parts
        .headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let last = all.last()?;
    Some(last.rsplit(',').next()?.trim().to_owned())
}

fn from_trusted_proxy(parts: &Parts) -> bool {
    let c = config();
    c.header.is_some() && (c.proxies.is_empty() || peer(parts).is_some_and(|p| c.proxies.contains(&p)))
}

/// The client's address: from the configured header when the request came
/// through a trusted proxy, else the TCP peer.
pub fn client_address(parts: &Parts) -> String {
    if from_trusted_proxy(parts) {
        let header = config().header.as_ref().expect("checked");
        if let Some(ip) = last_value(parts, header).and_then(|v| v.parse::<IpAddr>().ok()) {
            return ip.to_string();
        }
    }
    peer(parts).map(|ip| ip.to_string()).unwrap_or_default()
}

/// Whether the client reached Prism over HTTPS: an `https` request URI, or
/// `X-Forwarded-Proto: https` from the trusted proxy.
pub fn is_https(parts: &Parts) -> bool {
    if parts.uri.scheme_str() == Some("https") {
        return true;
    }
    from_trusted_proxy(parts)
        && last_value(parts, &HeaderName::from_static("x-forwarded-proto"))
            .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}
