//! Where a checkout may go (issue 11 items 2 and 9): a git credential is
//! offered only to the host it was registered for (not to another host,
//! not after a redirect), and a server in a denied address range, by
//! address, by name or through a redirect, is not contacted.

use std::sync::{Arc, Mutex};

use prism_builder::{checkout, checkout_guarded, CheckoutError, Credentials};
use prism_domain::{AddressPolicy, AddressRules};
use prism_netguard::{Guard, UNREACHABLE};
use prism_test_support::git::{Fixture, HttpGit};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Every request's first line and Authorization header.
type Seen = Arc<Mutex<Vec<String>>>;

/// A server on `bind` answering every request with `answer` (a status line
/// and headers) and recording what it got.
async fn server(bind: &str, answer: String) -> (String, Seen) {
    let listener = TcpListener::bind(bind).await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen: Seen = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let log = log.clone();
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let request = String::from_utf8_lossy(&buf).to_string();
                let line = request.lines().next().unwrap_or("").to_string();
                let auth = request
                    .lines()
                    .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
                    .unwrap_or("")
                    .to_string();
                log.lock().unwrap().push(format!("{line} | {auth}"));
                let response = format!("{answer}Content-Length: 0\r\nConnection: close\r\n\r\n");
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    (addr, seen)
}

/// A git server that wants a password (and records whether it got one).
async fn greedy(bind: &str) -> (String, Seen) {
    server(
        bind,
        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\n".into(),
    )
    .await
}

fn authorizations(seen: &Seen) -> Vec<String> {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|l| !l.ends_with("| "))
        .cloned()
        .collect()
}

fn denying(ranges: &[&str]) -> Guard {
    Guard::new(
        AddressPolicy::parse(
            "p",
            &AddressRules {
                allowed: vec![],
                denied: ranges.iter().map(|s| s.to_string()).collect(),
            },
        )
        .unwrap(),
    )
}

// Before the fix the credential went to any host the application's git URL
// named: the greedy server on another address received "Authorization: Basic".
#[tokio::test]
async fn a_git_credential_is_offered_only_to_its_host() {
    let fx = Fixture::new();
    let real = HttpGit::start(fx.base(), Some(("alice", "s3cret-pass"))).await;
    let creds = Credentials::new("alice", "s3cret-pass").for_host(real.addr.to_string());

    // Its own host: works.
    let dest = tempfile::tempdir().unwrap();
    checkout(&real.url("app.git"), "main", dest.path(), Some(&creds))
        .await
        .expect("the registered host gets the credential");

    // Another host (another loopback address): refused before git runs.
    let (other, seen) = greedy("127.0.0.2:0").await;
    let dest = tempfile::tempdir().unwrap();
    let err = checkout(&format!("http://{other}/app.git"), "main", dest.path(), Some(&creds))
        .await
        .unwrap_err();
    assert!(matches!(err, CheckoutError::CredentialHost { .. }), "{err:?}");
    assert!(authorizations(&seen).is_empty(), "{:?}", seen.lock().unwrap());

    // The registered host redirects to the greedy one: not followed.
    let (redirector, _) = server(
        "127.0.0.1:0",
        format!("HTTP/1.1 302 Found\r\nLocation: http://{other}/app.git/info/refs?service=git-upload-pack\r\n"),
    )
    .await;
    let creds = Credentials::new("alice", "s3cret-pass").for_host(redirector.clone());
    let dest = tempfile::tempdir().unwrap();
    assert!(checkout(
        &format!("http://{redirector}/app.git"),
        "main",
        dest.path(),
        Some(&creds)
    )
    .await
    .is_err());
    assert!(
        authorizations(&seen).is_empty(),
        "the redirect target got the credential: {:?}",
        seen.lock().unwrap()
    );
}

// Before the fix git connected wherever the URL pointed.
#[tokio::test]
async fn git_servers_in_denied_ranges_are_not_contacted() {
    let (denied, seen) = greedy("127.0.0.2:0").await;
    let guard = denying(&["127.0.0.2/32"]);
    let dest = tempfile::tempdir().unwrap();
    let err = checkout_guarded(&format!("http://{denied}/app.git"), "main", dest.path(), None, &guard)
        .await
        .unwrap_err();
    assert!(matches!(err, CheckoutError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains(UNREACHABLE), "{err}");

    // By a name that resolves into a denied range.
    let (local, seen_local) = greedy("127.0.0.1:0").await;
    let port = local.rsplit_once(':').unwrap().1;
    let dest = tempfile::tempdir().unwrap();
    let err = checkout_guarded(
        &format!("http://localhost:{port}/app.git"),
        "main",
        dest.path(),
        None,
        &denying(&["127.0.0.0/8", "::1"]),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains(UNREACHABLE), "{err}");
    assert!(seen_local.lock().unwrap().is_empty());

    // Through a redirect from an allowed server.
    let (redirector, _) = server(
        "127.0.0.1:0",
        format!("HTTP/1.1 302 Found\r\nLocation: http://{denied}/app.git/info/refs?service=git-upload-pack\r\n"),
    )
    .await;
    let dest = tempfile::tempdir().unwrap();
    assert!(checkout_guarded(
        &format!("http://{redirector}/app.git"),
        "main",
        dest.path(),
        None,
        &guard
    )
    .await
    .is_err());
    assert!(seen.lock().unwrap().is_empty(), "{:?}", seen.lock().unwrap());

    // A closed port reads exactly like a refused address.
    let closed = prism_test_support::git::free_port();
    let dest = tempfile::tempdir().unwrap();
    let err = checkout(&format!("http://127.0.0.1:{closed}/app.git"), "main", dest.path(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, CheckoutError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().ends_with(UNREACHABLE), "{err}");

    // The built-in policy: link-local metadata addresses.
    let dest = tempfile::tempdir().unwrap();
    let err = checkout("http://169.254.169.254/latest/meta-data.git", "main", dest.path(), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains(UNREACHABLE), "{err}");
}
