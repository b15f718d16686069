//! `prism build watch` survives its connection being cut mid-stream (issue
//! 15 item 1): the CLI reconnects, sends `Last-Event-ID` with the last line
//! it printed, and the server resumes after it, so every log line is printed
//! exactly once. Between the CLI and a real `prism serve` sits a small TCP
//! proxy that cuts the first stream it carries part way through, as a load
//! balancer does when the instance behind it dies.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prism_domain::{BuildEvent, BuildState, ReleaseId};
use prism_store::builds::{self, LogLine, NewBuild, Pushed};
use prism_store::Store;
use serde_json::json;

use prism_test_support::db::block_on;
use prism_test_support::process::clean_command;
use prism_test_support::{ServerProcess as Server, TempDir};

/// Bytes of the first stream's answer the proxy passes on before it cuts
/// the connection: the head, the first events and part of a line.
const CUT_AFTER: usize = 1500;

/// A TCP proxy to `upstream` that cuts the first connection asking for a
/// stream after CUT_AFTER bytes of its answer; the request heads it saw,
/// in order.
struct CuttingProxy {
    url: String,
    heads: Arc<Mutex<Vec<String>>>,
}

impl CuttingProxy {
    fn start(upstream: u16) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        std::thread::spawn(move || {
            let mut cut_one = false;
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let head = read_head(&client);
                let cut = !cut_one && head.contains("/stream");
                cut_one |= cut;
                seen.lock().unwrap().push(head.clone());
                relay(client, server, head, cut.then_some(CUT_AFTER));
            }
        });
        CuttingProxy { url, heads }
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

/// The request head (up to the blank line; the CLI's GETs have no body).
fn read_head(mut client: &TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match client.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// Passes `head` and the rest of the request on, and the answer back; with
/// `limit`, only that many bytes of the answer, then both sides are shut.
fn relay(client: TcpStream, server: TcpStream, head: String, limit: Option<usize>) {
    let (mut up_from, mut up_to) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    std::thread::spawn(move || {
        if up_to.write_all(head.as_bytes()).is_ok() {
            let _ = std::io::copy(&mut up_from, &mut up_to);
        }
    });
    std::thread::spawn(move || {
        let (mut from, mut to) = (server, client);
        let mut buf = [0u8; 512];
        let mut sent = 0;
        loop {
            let room = limit.map_or(buf.len(), |l| buf.len().min(l - sent));
            let n = match from.read(&mut buf[..room]) {
                Ok(n) if n > 0 && room > 0 => n,
                _ => break,
            };
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
            sent += n;
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}

fn log_line(seq: i64) -> LogLine {
    LogLine {
        seq,
        stream: "stdout".into(),
        line: format!("line {seq:03} {}", "x".repeat(60)),
        at: 0,
    }
}

/// A building build of release `rel` with log lines `0..lines`, in the store.
async fn building(store: &Store, rel: &str, lines: i64) -> i64 {
    let mut c = store.conn().await.unwrap();
    let release = ReleaseId::parse("release", rel).unwrap();
    let r = prism_store::releases::get(&mut c, release).await.unwrap();
    let b = builds::create(
        &mut c,
        NewBuild {
            release,
            app_id: r.app_id,
            executor: "local",
            settings: &json!({}),
            base_image_id: None,
            requested_by: "admin",
        },
    )
    .await
    .unwrap();
    for (from, event) in [
        (BuildState::Queued, BuildEvent::Start),
        (BuildState::Checkout, BuildEvent::CheckedOut),
    ] {
        assert!(builds::step(&mut c, b.id, from, event).await.unwrap());
    }
    let first: Vec<LogLine> = (0..lines).map(log_line).collect();
    builds::append_logs(&mut c, b.id, &first).await.unwrap();
    b.id
}

/// More lines, then the build succeeds (as the build job would finish it).
async fn finish(store: &Store, build: i64, more: std::ops::Range<i64>) {
    let mut c = store.conn().await.unwrap();
    let lines: Vec<LogLine> = more.map(log_line).collect();
    builds::append_logs(&mut c, build, &lines).await.unwrap();
    assert!(builds::step(&mut c, build, BuildState::Building, BuildEvent::Built)
        .await
        .unwrap());
    let digest = format!("sha256:{}", "b".repeat(64));
    let pushed = Pushed {
        image_ref: "registry.example/shop/web:r1",
        image_digest: &digest,
        layer_digest: &digest,
        base_digest: None,
        bytes_uploaded: 0,
    };
    assert!(builds::succeed(&mut c, build, pushed).await.unwrap());
}

#[test]
fn build_watch_reconnects_after_a_cut_and_prints_every_line_once() {
    let server = Server::with_app("stream-resume");
    let rel = server.json(&["release", "create", "--app", "web", "--ref", "main", "--note", "resume"])["id"]
        .as_str()
        .expect("release id")
        .to_owned();
    let token = server.json(&["token", "create", "--name", "watch"])["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    // The store is opened for each step: a pool lives on the runtime of one `block_on`.
    let db_url = server.db().url();
    let build = block_on({
        let (url, rel) = (db_url.clone(), rel.clone());
        async move {
            let store = Store::open(&url, 1).await.expect("the store");
            let build = building(&store, &rel, 40).await;
            store.close().await;
            build
        }
    });
    let proxy = CuttingProxy::start(server.port);

    let elsewhere = TempDir::new("stream-resume-client");
    let watch = clean_command()
        .args(["build", "watch", &build.to_string()])
        .env("PRISM_CONFIG_DIR", elsewhere.join("config"))
        .env("PRISM_SERVER", &proxy.url)
        .env("PRISM_TOKEN", &token)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run prism build watch");

    // Once the CLI is back (its second request for the stream), the build
    // writes more and ends: those lines must come too, once.
    let deadline = Instant::now() + Duration::from_secs(30);
    while proxy.heads().iter().filter(|h| h.contains("/stream")).count() < 2 {
        assert!(
            Instant::now() < deadline,
            "the CLI never reconnected: {:?}",
            proxy.heads()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    block_on(async move {
        let store = Store::open(&db_url, 1).await.expect("the store");
        finish(&store, build, 40..50).await;
        store.close().await;
    });
    let out = watch.wait_with_output().expect("wait for prism");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");

    let expected: Vec<String> = (0..50).map(|seq| log_line(seq).line).collect();
    let printed: Vec<&str> = stdout.lines().collect();
    assert_eq!(printed, expected, "every line once, in order; stderr:\n{stderr}");
    assert!(stderr.contains("reconnecting"), "{stderr}");
    assert!(stderr.contains(&format!("build {build} succeeded")), "{stderr}");

    // The reconnection said where it was: after a line it had printed whole.
    let heads = proxy.heads();
    let again = heads
        .iter()
        .filter(|h| h.contains("/stream"))
        .nth(1)
        .expect("a second stream request");
    let last_id = again
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("last-event-id")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no Last-Event-ID in {again:?}"));
    let last: i64 = last_id.parse().expect("a line's seq");
    assert!((0..39).contains(&last), "cut part way through the replay: {last}");

    server.stop();
}
