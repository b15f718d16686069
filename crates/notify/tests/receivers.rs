//! Deliveries to local receivers that check each vendor's signature the way
//! that vendor's documentation computes it (written here again, apart from
//! the crate's own signing code), plus retry semantics and an SMTP sink.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use prism_notify::deliver::{HEADER_DELIVERY, HEADER_EVENT, HEADER_SIGNATURE, HEADER_TIMESTAMP};
use prism_notify::{deliver, Channel, ChannelKind, DeliveryError, Lang, Notice, NoticeKind, SmtpSettings, SmtpTls};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const SECRET: &str = "SEC-robot-secret-0123456789";
const NOW_MS: i64 = 1_796_000_000_123;

fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

fn notice() -> Notice {
    Notice {
        kind: NoticeKind::DeployFailed,
        project: "shop".into(),
        application: "web".into(),
        release: "r42".into(),
        environment: Some("prd".into()),
        actor: "olga".into(),
        reason: Some("progress deadline exceeded".into()),
        link: "https://prism.example/deploys/7".into(),
    }
}

fn channel(kind: ChannelKind, url: String, secret: Option<&str>) -> Channel {
    Channel {
        kind,
        url,
        secret: secret.map(String::from),
        smtp: None,
    }
}

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Value>>>);

async fn serve(app: Router) -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    format!("http://{addr}")
}

async fn send(c: &Channel, lang: Lang) -> Result<prism_notify::Delivery, DeliveryError> {
    deliver(
        &reqwest::Client::new(),
        c,
        &notice(),
        lang,
        "d-1",
        NOW_MS,
        Duration::from_secs(2),
    )
    .await
}

/// Prism's generic webhook, checked as a receiver would: HMAC-SHA256 over
/// "<timestamp>.<body>" with the shared secret.
async fn webhook_receiver(State(seen): State<Seen>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let ts = h(HEADER_TIMESTAMP);
    let mut signed = format!("{ts}.").into_bytes();
    signed.extend_from_slice(&body);
    let want = format!("sha256={}", hex::encode(hmac(SECRET.as_bytes(), &signed)));
    let v: Value = serde_json::from_slice(&body).unwrap();
    seen.0.lock().unwrap().push(
        json!({"sig_ok": h(HEADER_SIGNATURE) == want, "delivery": h(HEADER_DELIVERY),
        "event": h(HEADER_EVENT), "ts": ts, "body": v}),
    );
    if h(HEADER_SIGNATURE) == want {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::UNAUTHORIZED
    }
}

#[tokio::test]
async fn generic_webhooks_are_signed_over_timestamp_and_body() {
    let seen = Seen::default();
    let base = serve(
        Router::new()
            .route("/hook", post(webhook_receiver))
            .with_state(seen.clone()),
    )
    .await;
    let ok = send(
        &channel(ChannelKind::Webhook, format!("{base}/hook"), Some(SECRET)),
        Lang::En,
    )
    .await
    .unwrap();
    assert_eq!(ok.status, Some(204));
    let got = seen.0.lock().unwrap()[0].clone();
    assert_eq!(got["sig_ok"], true);
    assert_eq!(got["delivery"], "d-1");
    assert_eq!(got["event"], "deploy_failed");
    assert_eq!(got["ts"], (NOW_MS / 1000).to_string());
    assert_eq!(got["body"]["notice"]["release"], "r42");
    assert_eq!(got["body"]["title"], "Deploy of web r42 to prd failed");
    // Signed with another secret: the receiver refuses, and that is final.
    let err = send(
        &channel(ChannelKind::Webhook, format!("{base}/hook"), Some("other")),
        Lang::En,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, DeliveryError::Refused { status: Some(401), .. }) && !err.retryable(),
        "{err:?}"
    );
}

/// DingTalk's documented check: sign = UrlEncode(Base64(HmacSHA256(key=secret, timestamp + "\n" + secret))).
async fn dingtalk_receiver(
    State(seen): State<Seen>,
    Query(q): Query<HashMap<String, String>>,
    Json(body): Json<Value>,
) -> Json<Value> {
    let ts = q.get("timestamp").cloned().unwrap_or_default();
    let want = B64.encode(hmac(SECRET.as_bytes(), format!("{ts}\n{SECRET}").as_bytes()));
    let ok = q.get("sign") == Some(&want) && q.get("access_token").map(String::as_str) == Some("T0K");
    seen.0.lock().unwrap().push(json!({"ok": ok, "body": body}));
    if ok {
        Json(json!({"errcode": 0, "errmsg": "ok"}))
    } else {
        Json(json!({"errcode": 310000, "errmsg": "sign not match"}))
    }
}

#[tokio::test]
async fn dingtalk_robots_get_their_signature_in_the_query() {
    let seen = Seen::default();
    let base = serve(
        Router::new()
            .route("/robot/send", post(dingtalk_receiver))
            .with_state(seen.clone()),
    )
    .await;
    let url = format!("{base}/robot/send?access_token=T0K");
    send(&channel(ChannelKind::Dingtalk, url.clone(), Some(SECRET)), Lang::ZhCn)
        .await
        .unwrap();
    let got = seen.0.lock().unwrap()[0].clone();
    assert_eq!(got["ok"], true);
    assert_eq!(got["body"]["msgtype"], "markdown");
    assert_eq!(got["body"]["markdown"]["title"], "web r42 发布到 prd 失败");
    // A 200 with an error code is a refused delivery, not a success.
    let err = send(&channel(ChannelKind::Dingtalk, url, Some("wrong")), Lang::ZhCn)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("310000"), "{err}");
    assert!(!err.retryable());
}

/// Feishu/Lark's documented check: sign = Base64(HmacSHA256(key = timestamp + "\n" + secret, message = "")).
async fn feishu_receiver(State(seen): State<Seen>, Json(body): Json<Value>) -> Json<Value> {
    let ts = body["timestamp"].as_str().unwrap_or_default().to_string();
    let want = B64.encode(hmac(format!("{ts}\n{SECRET}").as_bytes(), b""));
    let ok = body["sign"].as_str() == Some(want.as_str());
    seen.0.lock().unwrap().push(json!({"ok": ok, "body": body}));
    if ok {
        Json(json!({"code": 0, "msg": "success"}))
    } else {
        Json(json!({"code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time"}))
    }
}

#[tokio::test]
async fn feishu_bots_get_timestamp_and_signature_in_the_body() {
    let seen = Seen::default();
    let base = serve(
        Router::new()
            .route("/open-apis/bot/v2/hook/x", post(feishu_receiver))
            .with_state(seen.clone()),
    )
    .await;
    let url = format!("{base}/open-apis/bot/v2/hook/x");
    send(&channel(ChannelKind::Feishu, url.clone(), Some(SECRET)), Lang::En)
        .await
        .unwrap();
    let got = seen.0.lock().unwrap()[0].clone();
    assert_eq!(got["ok"], true);
    assert_eq!(got["body"]["timestamp"], (NOW_MS / 1000).to_string());
    assert_eq!(got["body"]["msg_type"], "text");
    assert!(got["body"]["content"]["text"]
        .as_str()
        .unwrap()
        .contains("https://prism.example/deploys/7"));
    let err = send(&channel(ChannelKind::Feishu, url, Some("wrong")), Lang::En)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("19021"), "{err}");
}

#[tokio::test]
async fn slack_and_wecom_bodies() {
    let seen = Seen::default();
    async fn slack(State(seen): State<Seen>, Json(b): Json<Value>) -> &'static str {
        seen.0.lock().unwrap().push(b);
        "ok"
    }
    async fn wecom(State(seen): State<Seen>, Json(b): Json<Value>) -> Json<Value> {
        seen.0.lock().unwrap().push(b);
        Json(json!({"errcode": 0, "errmsg": "ok"}))
    }
    let base = serve(
        Router::new()
            .route("/services/T/B/X", post(slack))
            .route("/cgi-bin/webhook/send", post(wecom))
            .with_state(seen.clone()),
    )
    .await;
    send(
        &channel(ChannelKind::Slack, format!("{base}/services/T/B/X"), None),
        Lang::En,
    )
    .await
    .unwrap();
    send(
        &channel(ChannelKind::Wecom, format!("{base}/cgi-bin/webhook/send?key=K"), None),
        Lang::ZhCn,
    )
    .await
    .unwrap();
    let got = seen.0.lock().unwrap().clone();
    assert!(got[0]["text"]
        .as_str()
        .unwrap()
        .starts_with("Deploy of web r42 to prd failed"));
    assert_eq!(got[1]["msgtype"], "markdown");
    assert!(got[1]["markdown"]["content"]
        .as_str()
        .unwrap()
        .contains("发布到 prd 失败"));
}

#[tokio::test]
async fn server_errors_and_silence_are_retried_client_errors_are_not() {
    async fn boom() -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }
    async fn bad() -> StatusCode {
        StatusCode::BAD_REQUEST
    }
    async fn hang() -> StatusCode {
        tokio::time::sleep(Duration::from_secs(30)).await;
        StatusCode::OK
    }
    let base = serve(
        Router::new()
            .route("/500", post(boom))
            .route("/400", post(bad))
            .route("/hang", post(hang)),
    )
    .await;
    let e = send(&channel(ChannelKind::Slack, format!("{base}/500"), None), Lang::En)
        .await
        .unwrap_err();
    assert!(e.retryable(), "{e:?}");
    let e = send(&channel(ChannelKind::Slack, format!("{base}/400"), None), Lang::En)
        .await
        .unwrap_err();
    assert!(!e.retryable(), "{e:?}");
    let started = std::time::Instant::now();
    let e = send(&channel(ChannelKind::Slack, format!("{base}/hang"), None), Lang::En)
        .await
        .unwrap_err();
    assert!(matches!(e, DeliveryError::Unreachable(_)) && e.retryable(), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn a_robots_token_in_its_url_never_shows_in_an_error() {
    // A closed port: the error must not repeat the URL and its access token.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let url = format!("http://127.0.0.1:{port}/robot/send?access_token=VERY-SECRET-TOKEN");
    let e = send(&channel(ChannelKind::Dingtalk, url, Some(SECRET)), Lang::En)
        .await
        .unwrap_err();
    let shown = format!("{e} {e:?}");
    assert!(
        !shown.contains("VERY-SECRET-TOKEN") && !shown.contains(SECRET),
        "{shown}"
    );
    assert!(e.retryable());
}

/// A minimal SMTP server: enough of RFC 5321 for one message.
async fn smtp_sink() -> (u16, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let store = got.clone();
    tokio::spawn(async move {
        loop {
            let (s, _) = l.accept().await.unwrap();
            let store = store.clone();
            tokio::spawn(async move {
                let (r, mut w) = s.into_split();
                let mut r = BufReader::new(r);
                w.write_all(b"220 sink ESMTP\r\n").await.unwrap();
                let mut line = String::new();
                let mut data = String::new();
                let mut in_data = false;
                loop {
                    line.clear();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if in_data {
                        if line == ".\r\n" {
                            in_data = false;
                            store.lock().unwrap().push(std::mem::take(&mut data));
                            w.write_all(b"250 queued\r\n").await.unwrap();
                        } else {
                            data.push_str(&line);
                        }
                        continue;
                    }
                    let cmd = line.to_ascii_uppercase();
                    let reply: &[u8] = if cmd.starts_with("EHLO") || cmd.starts_with("HELO") {
                        b"250 sink\r\n"
                    } else if cmd.starts_with("DATA") {
                        in_data = true;
                        b"354 go ahead\r\n"
                    } else if cmd.starts_with("QUIT") {
                        let _ = w.write_all(b"221 bye\r\n").await;
                        return;
                    } else {
                        b"250 ok\r\n"
                    };
                    w.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (port, got)
}

#[tokio::test]
async fn e_mail_goes_through_smtp() {
    let (port, got) = smtp_sink().await;
    let c = Channel {
        kind: ChannelKind::Email,
        url: String::new(),
        secret: None,
        smtp: Some(SmtpSettings {
            host: "127.0.0.1".into(),
            port,
            tls: SmtpTls::None,
            username: None,
            password: None,
            from: "Prism <prism@example.com>".into(),
            to: vec!["ops@example.com".into()],
            address: None,
        }),
    };
    send(&c, Lang::En).await.unwrap();
    let mail = got.lock().unwrap()[0].clone();
    assert!(mail.contains("Subject: Deploy of web r42 to prd failed"), "{mail}");
    assert!(mail.contains("To: ops@example.com"), "{mail}");
    assert!(mail.contains("https://prism.example/deploys/7"), "{mail}");
    // A pinned address is what is dialled: the host name need not resolve.
    let mut pinned = c.clone();
    if let Some(s) = pinned.smtp.as_mut() {
        s.host = "smtp.example.invalid".into();
        s.address = Some("127.0.0.1".parse().unwrap());
    }
    send(&pinned, Lang::ZhCn).await.unwrap();
    assert_eq!(got.lock().unwrap().len(), 2);
    // No SMTP settings: a configuration error, not retried.
    let e = send(&channel(ChannelKind::Email, String::new(), None), Lang::En)
        .await
        .unwrap_err();
    assert!(matches!(e, DeliveryError::Config(_)) && !e.retryable());
}
