//! `prism notify ...` against a real `prism serve`: an admin sets up a
//! webhook channel whose URL (with a token in it) and signing secret come
//! from standard input and are never printed again, sends it a test message
//! that a local receiver gets signed, and reads the delivery log; an
//! operator of shop subscribes the project to two events and unsubscribes
//! it; a developer is refused; a wrong event or URL names the field at fault.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use prism_test_support::process::{prism, Run};
use prism_test_support::{ServerProcess as Server, TempDir};

const PASSWORD: &str = "notify-cli-password-1";
const SECRET: &str = "cli-signing-secret-1234";
const TOKEN: &str = "ROBOT-TOKEN-in-the-url-99";

/// One request the receiver got: its headers (names lowercased) and body.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// A tiny HTTP receiver on 127.0.0.1: records every request and answers 204.
fn receiver() -> (u16, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Arc<Mutex<Vec<Received>>> = Arc::default();
    let rec = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(10)));
            let mut reader = BufReader::new(stream);
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let path = request_line.split_whitespace().nth(1).unwrap_or("").to_owned();
            let mut headers = vec![];
            loop {
                let mut l = String::new();
                if reader.read_line(&mut l).unwrap_or(0) == 0 || l.trim_end().is_empty() {
                    break;
                }
                if let Some((k, v)) = l.trim_end().split_once(':') {
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
                }
            }
            let length = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .and_then(|(_, v)| v.parse::<usize>().ok())
                .unwrap_or(0);
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            rec.lock().unwrap().push(Received { path, headers, body });
            let mut stream = reader.into_inner();
            let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
        }
    });
    (port, seen)
}

fn sha256(data: &[u8]) -> Vec<u8> {
    let hex = prism_image::sha256_digest(data);
    let hex = hex.trim_start_matches("sha256:");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// HMAC-SHA256 (RFC 2104) in hex, as a receiver of Prism's webhook computes it.
fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&sha256(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
    inner.extend_from_slice(message);
    let mut outer: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
    outer.extend_from_slice(&sha256(&inner));
    sha256(&outer).iter().map(|b| format!("{b:02x}")).collect()
}

/// A user with `role` in shop, logged in with a config dir of their own.
fn person(server: &Server, dirs: &TempDir, name: &str, role: &str) -> std::path::PathBuf {
    server
        .run_with_stdin(&["user", "create", name, "--password-stdin"], &format!("{PASSWORD}\n"))
        .ok();
    server.run(&["project", "grant", "shop", name, role]).ok();
    let dir = dirs.join(name);
    prism(
        &dir,
        &["login", &server.url, "--username", name, "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    )
    .ok();
    dir
}

#[test]
fn channels_tests_deliveries_and_subscriptions_from_the_cli() {
    // A known answer for the HMAC above (RFC 4231, test case 2).
    assert_eq!(
        hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    let (port, seen) = receiver();
    let hook = format!("http://127.0.0.1:{port}/hook?token={TOKEN}");
    let server = Server::with_app("cli-notify");
    let dirs = TempDir::new("cli-notify-people");
    // Every output, to check at the end that neither the token nor the secret shows.
    let mut outputs: Vec<Run> = vec![];
    let mut keep = |r: Run| -> Run {
        outputs.push(Run {
            code: r.code,
            stdout: r.stdout.clone(),
            stderr: r.stderr.clone(),
        });
        r
    };

    // The admin sets the channel up: URL and secret on standard input.
    let set = keep(server.run_with_stdin(
        &[
            "notify",
            "channel",
            "set",
            "ops-hook",
            "--kind",
            "webhook",
            "--url-stdin",
            "--secret-stdin",
        ],
        &format!("{hook}\n{SECRET}\n"),
    ))
    .ok();
    assert!(
        set.stdout.contains("ops-hook") && set.stdout.contains(&format!("http://127.0.0.1:{port}")),
        "{set:#?}"
    );
    // A URL the API refuses names the field.
    keep(server.run_with_stdin(
        &["notify", "channel", "set", "broken", "--kind", "webhook", "--url-stdin"],
        "ftp://nowhere.example\n",
    ))
    .fails_with(1, "(field: url)");

    let list = keep(server.run(&["notify", "channel", "list"])).ok();
    assert!(
        list.stdout.contains("ops-hook")
            && list.stdout.contains("webhook")
            && list.stdout.contains(&format!("http://127.0.0.1:{port}")),
        "{list:#?}"
    );
    assert!(!list.stdout.contains("broken"), "{list:#?}");
    let json = keep(server.run(&["notify", "channel", "list", "--output", "json"])).json();
    assert_eq!(json[0]["name"], "ops-hook", "{json}");
    assert_eq!(json[0]["has_secret"], true, "{json}");
    let show = keep(server.run(&["notify", "channel", "show", "ops-hook"])).ok();
    let stored = show
        .stdout
        .lines()
        .find(|l| l.trim().starts_with("Secret stored:"))
        .unwrap_or("");
    assert!(stored.trim_end().ends_with("yes"), "{show:#?}");

    // A test message reaches the receiver, signed with the secret.
    let test = keep(server.run(&["notify", "channel", "test", "ops-hook"])).ok();
    assert!(
        test.stdout.contains("delivered") && test.stdout.contains("204"),
        "{test:#?}"
    );
    let got = seen.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "{got:#?}");
    let req = &got[0];
    assert_eq!(req.path, format!("/hook?token={TOKEN}"));
    assert_eq!(req.header("x-prism-event"), "test", "{req:#?}");
    assert!(!req.header("x-prism-delivery").is_empty(), "{req:#?}");
    let mut signed = format!("{}.", req.header("x-prism-timestamp")).into_bytes();
    signed.extend_from_slice(&req.body);
    assert_eq!(
        req.header("x-prism-signature"),
        format!("sha256={}", hmac_sha256_hex(SECRET.as_bytes(), &signed)),
        "{req:#?}"
    );
    // The delivery log shows it delivered, with the receiver's answer.
    let log = keep(server.run(&["notify", "deliveries", "ops-hook", "--limit", "5"])).ok();
    let row = log.stdout.lines().find(|l| l.contains(" test ")).unwrap_or("");
    assert!(row.contains("delivered") && row.contains("204"), "{log:#?}");
    let json = keep(server.run(&["notify", "deliveries", "ops-hook", "--output", "json"])).json();
    assert_eq!(json[0]["delivery"], req.header("x-prism-delivery"), "{json}");
    assert_eq!(json[0]["status"], "delivered", "{json}");
    assert_eq!(json[0]["response_code"], 204, "{json}");
    keep(server.run(&["notify", "deliveries", "ops-hook", "--limit", "0"])).fails_with(1, "(field: limit)");

    // The project's operator subscribes shop to two events.
    let otto = person(&server, &dirs, "otto", "operator");
    let dev = person(&server, &dirs, "dev", "developer");
    let sub = keep(prism(
        &otto,
        &[
            "notify",
            "subscribe",
            "shop",
            "ops-hook",
            "--events",
            "deploy_failed,build_failed",
            "--language",
            "zh-CN",
        ],
        None,
    ))
    .ok();
    assert!(sub.stdout.contains("build_failed, deploy_failed"), "{sub:#?}");
    let subs = keep(prism(&otto, &["notify", "subscriptions", "shop"], None)).ok();
    let row = subs
        .stdout
        .lines()
        .find(|l| l.trim().starts_with("ops-hook"))
        .unwrap_or("");
    assert!(
        row.contains("build_failed,deploy_failed") && row.contains("zh-CN") && row.contains("otto"),
        "{subs:#?}"
    );
    // The developer sees the channel but may not subscribe; a wrong event names its field.
    let theirs = keep(prism(&dev, &["notify", "channel", "list"], None)).ok();
    assert!(theirs.stdout.contains("ops-hook"), "{theirs:#?}");
    keep(prism(
        &dev,
        &["notify", "subscribe", "shop", "ops-hook", "--events", "build_failed"],
        None,
    ))
    .fails_with(1, "needs the operator role");
    keep(prism(
        &otto,
        &[
            "notify",
            "subscribe",
            "shop",
            "ops-hook",
            "--events",
            "build_failed,build_exploded",
        ],
        None,
    ))
    .fails_with(1, "(field: events[1])");
    // A subscribed channel cannot be deleted.
    keep(server.run(&["notify", "channel", "delete", "ops-hook"])).fails_with(1, "shop");

    let gone = keep(prism(&otto, &["notify", "unsubscribe", "shop", "ops-hook"], None)).ok();
    assert!(gone.stdout.contains("no longer"), "{gone:#?}");
    let subs = keep(prism(&otto, &["notify", "subscriptions", "shop"], None)).ok();
    assert!(!subs.stdout.contains("ops-hook"), "{subs:#?}");
    let json = keep(prism(
        &otto,
        &["notify", "subscriptions", "shop", "--output", "json"],
        None,
    ))
    .json();
    assert_eq!(json, serde_json::json!([]));
    keep(prism(&otto, &["notify", "unsubscribe", "shop", "ops-hook"], None)).fails_with(1, "not found");

    keep(server.run(&["notify", "channel", "delete", "ops-hook"])).ok();
    keep(server.run(&["notify", "channel", "show", "ops-hook"])).fails_with(1, "not found");

    for r in &outputs {
        for s in [&r.stdout, &r.stderr] {
            assert!(!s.contains(SECRET) && !s.contains(TOKEN), "printed a secret: {r:#?}");
        }
    }
    server.stop();
}
