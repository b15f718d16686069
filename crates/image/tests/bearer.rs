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
