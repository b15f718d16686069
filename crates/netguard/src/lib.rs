//! Where Prism's outgoing requests may go (issue 11 item 9). The policy is
//! checked on resolved addresses:
//! - reqwest clients get [`Guard::resolver`], which resolves names itself and
//!   hands hyper only permitted addresses. hyper calls the resolver for every
//!   new connection, including one opened for a redirect, so a redirect to a
//!   name that resolves to a refused address fails too. IP literals skip the
//!   resolver, so URLs are checked with [`Guard::check_url`] before sending
//!   and on every redirect by [`Guard::redirect_policy`].
//! - Clients that resolve names themselves (the git CLI, the Kubernetes
//!   client) use [`Guard::resolve`] and then connect to the checked address
//!   only (pinned), so a second lookup cannot return another address
//!   (DNS rebinding).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use prism_domain::AddressPolicy;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

pub use prism_domain::address_policy::UNREACHABLE;

/// A destination the policy refuses, or a name that does not resolve. The
/// message is the same for both and for a closed port elsewhere, so a
/// non-admin reading it learns nothing about what is there.
#[derive(Debug, thiserror::Error)]
#[error("{host}: {}", UNREACHABLE)]
pub struct Refused {
    pub host: String,
}

/// The address policy, shared by every client built with it.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    policy: Arc<AddressPolicy>,
}

impl Guard {
    pub fn new(policy: AddressPolicy) -> Self {
        Guard {
            policy: Arc::new(policy),
        }
    }

    pub fn policy(&self) -> &AddressPolicy {
        &self.policy
    }

    /// A resolver for `reqwest::ClientBuilder::dns_resolver`.
    pub fn resolver(&self) -> Arc<PolicyResolver> {
        Arc::new(PolicyResolver {
            policy: self.policy.clone(),
        })
    }

    /// Refuses a URL whose host is a literal address the policy refuses
    /// (names are checked when they are resolved).
    pub fn check_url(&self, url: &Url) -> Result<(), Refused> {
        match literal_ip(url) {
            Some(ip) if !self.policy.permits(ip) => Err(Refused {
                host: url.host_str().unwrap_or("").to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// Follows up to `max` redirects, none to a refused literal address
    /// (`max` 0: follows none).
    pub fn redirect_policy(&self, max: usize) -> reqwest::redirect::Policy {
        if max == 0 {
            return reqwest::redirect::Policy::none();
        }
        let guard = self.clone();
        reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= max {
                return attempt.error(format!("more than {max} redirects"));
            }
            match guard.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(e) => attempt.error(e),
            }
        })
    }

    /// Resolves `host` and returns its permitted addresses; refused when it
    /// has none (every address refused, or no address at all).
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Refused> {
        let refused = || Refused { host: host.to_string() };
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((bare, port))
                .await
                .map_err(|_| refused())?
                .collect(),
        };
        let ok: Vec<SocketAddr> = addrs.into_iter().filter(|a| self.policy.permits(a.ip())).collect();
        if ok.is_empty() {
            Err(refused())
        } else {
            Ok(ok)
        }
    }
}

fn literal_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(_) => None,
    }
}

/// The reqwest resolver: the system's answer with refused addresses dropped.
#[derive(Debug)]
pub struct PolicyResolver {
    policy: Arc<AddressPolicy>,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = Guard {
            policy: self.policy.clone(),
        };
        let host = name.as_str().to_string();
        Box::pin(async move {
            // hyper sets the port itself; 0 here.
            let addrs = guard.resolve(&host, 0).await?;
            let out: Addrs = Box::new(addrs.into_iter());
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prism_domain::AddressRules;

    fn guard(denied: &[&str]) -> Guard {
        Guard::new(
            AddressPolicy::parse(
                "p",
                &AddressRules {
                    allowed: vec![],
                    denied: denied.iter().map(|s| s.to_string()).collect(),
                },
            )
            .unwrap(),
        )
    }

    #[tokio::test]
    async fn resolution_drops_refused_addresses() {
        let g = guard(&["127.0.0.2"]);
        assert!(g.resolve("127.0.0.2", 80).await.is_err());
        assert!(g.resolve("169.254.169.254", 80).await.is_err());
        assert_eq!(g.resolve("127.0.0.1", 80).await.unwrap().len(), 1);
        assert!(g
            .resolve("localhost", 80)
            .await
            .unwrap()
            .iter()
            .all(|a| a.ip().is_loopback()));
        let err = g.resolve("no-such-host.invalid", 80).await.unwrap_err();
        assert!(err.to_string().contains(UNREACHABLE), "{err}");
    }

    #[test]
    fn literal_urls_are_checked() {
        let g = guard(&[]);
        assert!(g
            .check_url(&Url::parse("http://169.254.169.254/latest").unwrap())
            .is_err());
        assert!(g.check_url(&Url::parse("http://[fd00:ec2::254]/").unwrap()).is_err());
        assert!(g
            .check_url(&Url::parse("http://[::ffff:169.254.169.254]/").unwrap())
            .is_err());
        assert!(g.check_url(&Url::parse("http://127.0.0.1:5000/").unwrap()).is_ok());
        assert!(g.check_url(&Url::parse("http://metadata.example/").unwrap()).is_ok());
    }
}
