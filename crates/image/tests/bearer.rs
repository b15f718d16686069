//! Bearer token auth flow (WWW-Authenticate: Bearer realm,service,scope → GET token → retry), against a
//! minimal in-test HTTP server standing in for a registry with a token service.

use std::sync::{Arc, Mutex};

use prism_image::{Credentials, ImageError, RegistryClient, RegistryOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

async fn serve(listener: TcpListener, seen: Arc<Mutex<Vec<String>>>) {
    let port = listener.local_addr().unwrap().port();
    loop {
        let Ok((mut socket, _)) = listener.accept().await else {
            return;
        };
        let seen = seen.clone();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = socket.read(&mut chunk).await.unwrap();
                if n == 0 {
                    return;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let request = String::from_utf8_lossy(&buf).to_string();
            let line = request.lines().next().unwrap_or("").to_string();
            let auth = request
                .lines()
                .find_map(|l| {
                    l.strip_prefix("authorization: ")
                        .or_else(|| l.strip_prefix("Authorization: "))
                })
                .unwrap_or("")
                .to_string();
            seen.lock().unwrap().push(format!("{line} | {auth}"));
            // base64("prism:s3cret")
            let (status, headers, body) = if line.starts_with("GET /token?") {
                if auth == "Basic cHJpc206czNjcmV0" {
                    ("200 OK", String::new(), r#"{"token":"tok123"}"#.to_string())
                } else {
                    (
                        "401 Unauthorized",
                        String::new(),
                        r#"{"details":"incorrect username or password"}"#.to_string(),
                    )
                }
            } else if auth == "Bearer tok123" {
                (
                    "404 Not Found",
                    String::new(),
                    r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#.to_string(),
                )
            } else {
                (
                    "401 Unauthorized",
                    format!(
                        "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"svc\",scope=\"repository:team/app:pull\"\r\n"
                    ),
                    r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.to_string(),
                )
            };
            let response = format!(
                "HTTP/1.1 {status}\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        });
    }
}

async fn start() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
    let seen = Arc::new(Mutex::new(Vec::new()));
    tokio::spawn(serve(listener, seen.clone()));
    (host, seen)
}

fn options(password: &str) -> RegistryOptions {
    RegistryOptions {
        credentials: Some(Credentials {
            username: "prism".into(),
            password: password.into(),
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn bearer_token_is_fetched_with_service_and_scope_and_reused() {
    let (host, seen) = start().await;
    let client = RegistryClient::new(&host, options("s3cret")).unwrap();
    assert!(client.get_manifest("team/app", "1").await.unwrap().is_none());
    assert!(client.get_manifest("team/app", "2").await.unwrap().is_none());
    let seen = seen.lock().unwrap().clone();
    let token_requests: Vec<_> = seen.iter().filter(|l| l.starts_with("GET /token?")).collect();
    assert_eq!(token_requests.len(), 1, "token cached per scope: {seen:#?}");
    assert!(token_requests[0].contains("service=svc"), "{seen:#?}");
    assert!(
        token_requests[0].contains("scope=repository%3Ateam%2Fapp%3Apull"),
        "{seen:#?}"
    );
    assert!(seen.last().unwrap().ends_with("Bearer tok123"), "{seen:#?}");
}

#[tokio::test]
async fn wrong_credentials_at_the_token_service_fail_with_its_message() {
    let (host, _) = start().await;
    let client = RegistryClient::new(&host, options("wrong")).unwrap();
    let err = client.get_manifest("team/app", "1").await.unwrap_err();
    assert!(matches!(err, ImageError::Auth { .. }), "{err}");
    assert!(err.to_string().contains("incorrect username or password"), "{err}");
}

/// A token service on its own listener that records the Authorization
/// header of every request and hands out a token to anyone.
async fn recording_realm(bind: &str) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind(bind).await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = socket.read(&mut chunk).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let request = String::from_utf8_lossy(&buf).to_string();
                let auth = request
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("authorization: ")
                            .map(|_| l.to_string())
                    })
                    .unwrap_or_default();
                log.lock().unwrap().push(auth);
                let body = r#"{"token":"anon"}"#;
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    (host, seen)
}

/// A registry that answers every request with a bearer challenge naming `realm`.
async fn registry_with_realm(realm: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let realm = realm.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = socket.read(&mut chunk).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
                let response = format!(
                    "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"{realm}\",service=\"svc\"\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    host
}

// Issue 11 item 2. Before the fix the registry's username and password went
// to whatever token realm the registry's challenge named.
#[tokio::test]
async fn a_token_realm_on_another_host_gets_no_credentials_unless_allowed() {
    // Another loopback address stands for another host.
    let (realm_host, seen) = recording_realm("127.0.0.2:0").await;
    let registry = registry_with_realm(format!("http://{realm_host}/token")).await;

    let client = RegistryClient::new(&registry, options("s3cret")).unwrap();
    let _ = client.get_manifest("team/app", "1").await;
    let got = seen.lock().unwrap().clone();
    assert!(!got.is_empty(), "the realm was asked for a token");
    assert!(
        got.iter().all(|a| a.is_empty()),
        "a realm on another host received credentials: {got:?}"
    );

    // The admin allows that realm host: now it gets them.
    seen.lock().unwrap().clear();
    let allowed = RegistryOptions {
        token_realm_hosts: vec![realm_host.clone()],
        ..options("s3cret")
    };
    let client = RegistryClient::new(&registry, allowed).unwrap();
    let _ = client.get_manifest("team/app", "1").await;
    let got = seen.lock().unwrap().clone();
    assert!(
        got.iter().any(|a| a.contains("Basic cHJpc206czNjcmV0")),
        "an allowed realm host gets the credentials: {got:?}"
    );
}

fn denying(ranges: &[&str]) -> prism_netguard::Guard {
    prism_netguard::Guard::new(
        prism_domain::AddressPolicy::parse(
            "p",
            &prism_domain::AddressRules {
                allowed: vec![],
                denied: ranges.iter().map(|r| r.to_string()).collect(),
            },
        )
        .unwrap(),
    )
}

// Issue 11 item 9: a registry in a denied range is not contacted, whether
// named by address or by a name that resolves into the range, and a redirect
// into a denied range is not followed.
#[tokio::test]
async fn registries_in_denied_ranges_are_not_contacted() {
    let (by_address, seen_a) = recording_realm("127.0.0.2:0").await;
    let (local, seen_b) = recording_realm("127.0.0.1:0").await;
    let by_name = format!("localhost:{}", local.rsplit_once(':').unwrap().1);
    for (host, guard) in [
        (by_address.clone(), denying(&["127.0.0.2/32"])),
        (by_name, denying(&["127.0.0.0/8", "::1"])),
    ] {
        let client = RegistryClient::new(
            &host,
            RegistryOptions {
                scheme: prism_image::Scheme::Http,
                guard,
                ..options("s3cret")
            },
        )
        .unwrap();
        let err = client.get_manifest("team/app", "1").await.unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(prism_netguard::UNREACHABLE),
            "{host}: refused like an unreachable host: {msg}"
        );
    }
    assert!(seen_a.lock().unwrap().is_empty(), "nothing reached the denied address");
    assert!(seen_b.lock().unwrap().is_empty(), "nothing reached the denied name");

    // A redirect from an allowed registry into the denied range.
    let target = format!("http://{by_address}/v2/team/app/manifests/1");
    let redirecting = redirect_to(target).await;
    let client = RegistryClient::new(
        &redirecting,
        RegistryOptions {
            guard: denying(&["127.0.0.2"]),
            ..options("s3cret")
        },
    )
    .unwrap();
    assert!(client.get_manifest("team/app", "1").await.is_err());
    assert!(seen_a.lock().unwrap().is_empty(), "the redirect was not followed");

    // The default policy refuses link-local metadata addresses outright.
    let client = RegistryClient::new("169.254.169.254", RegistryOptions::default()).unwrap();
    let err = client.get_manifest("team/app", "1").await.unwrap_err();
    assert!(matches!(err, ImageError::Unreachable { .. }), "{err}");
}

/// A registry whose every answer is a redirect to `location`.
async fn redirect_to(location: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let location = location.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = socket.read(&mut chunk).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let response =
                    format!("HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    host
}

// A realm in a denied range: not asked at all (the answer is an error that
// does not say why).
#[tokio::test]
async fn a_token_realm_in_a_denied_range_is_not_contacted() {
    let (realm_host, seen) = recording_realm("127.0.0.2:0").await;
    let registry = registry_with_realm(format!("http://{realm_host}/token")).await;
    let client = RegistryClient::new(
        &registry,
        RegistryOptions {
            token_realm_hosts: vec![realm_host.clone()],
            guard: denying(&["127.0.0.2"]),
            ..options("s3cret")
        },
    )
    .unwrap();
    let err = client.get_manifest("team/app", "1").await.unwrap_err();
    assert!(err.to_string().contains(prism_netguard::UNREACHABLE), "{err}");
    assert!(seen.lock().unwrap().is_empty());
}
