//! One delivery attempt of one notice to one channel.
//!
//! Chat robots answer HTTP 200 with an error code in the body when they
//! refuse a message (bad signature, rate limit); that is a failed delivery,
//! not a success. Whether a failure is worth retrying is part of the result,
//! so the job that delivers can back off or give up.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::{json, Value};

use crate::channel::{Channel, ChannelKind, SmtpTls};
use crate::message::{render, Lang};
use crate::notice::Notice;
use crate::sign;

/// How a delivery went, for the delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The receiver's HTTP status (None for e-mail or when none came).
    pub status: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The receiver answered with an error; `retry` when it may pass (5xx, 429).
    #[error("the receiver answered {status:?}: {message}")]
    Refused {
        status: Option<u16>,
        message: String,
        retry: bool,
    },
    /// No answer (connection refused, timeout): worth another attempt.
    #[error("the receiver could not be reached: {0}")]
    Unreachable(String),
    /// The channel's settings cannot work (no SMTP settings, bad address).
    #[error("channel settings: {0}")]
    Config(String),
}

impl DeliveryError {
    pub fn retryable(&self) -> bool {
        match self {
            Self::Refused { retry, .. } => *retry,
            Self::Unreachable(_) => true,
            Self::Config(_) => false,
        }
    }
}

/// The headers and body sent to a generic webhook (also the test's view).
pub const HEADER_DELIVERY: &str = "X-Prism-Delivery";
pub const HEADER_TIMESTAMP: &str = "X-Prism-Timestamp";
pub const HEADER_SIGNATURE: &str = "X-Prism-Signature";
pub const HEADER_EVENT: &str = "X-Prism-Event";

/// Delivers `notice` to `channel`. `delivery_id` is unique per notice and
/// channel (a receiver refuses repeats), `now_ms` the time of this attempt.
pub async fn deliver(
    http: &reqwest::Client,
    channel: &Channel,
    notice: &Notice,
    lang: Lang,
    delivery_id: &str,
    now_ms: i64,
    timeout: Duration,
) -> Result<Delivery, DeliveryError> {
    let m = render(notice, lang);
    let (url, body, extra): (String, Value, Vec<(&str, String)>) = match channel.kind {
        ChannelKind::Email => return email(channel, &m, timeout).await,
        ChannelKind::Webhook => {
            let body = json!({
                "delivery": delivery_id,
                "event": notice.kind,
                "notice": notice,
                "title": m.title,
                "text": m.text,
            });
            let bytes = serde_json::to_vec(&body).expect("JSON");
            let ts = now_ms / 1000;
            let mut headers = vec![
                (HEADER_DELIVERY, delivery_id.to_string()),
                (HEADER_TIMESTAMP, ts.to_string()),
                (HEADER_EVENT, notice.kind.as_str().to_string()),
            ];
            if let Some(secret) = &channel.secret {
                headers.push((HEADER_SIGNATURE, sign::webhook(secret, ts, &bytes)));
            }
            return post(http, &channel.url, bytes, headers, timeout, false).await;
        }
        ChannelKind::Slack => (channel.url.clone(), json!({"text": m.text}), vec![]),
        ChannelKind::Dingtalk => {
            let mut url = channel.url.clone();
            if let Some(secret) = &channel.secret {
                let sign = sign::dingtalk(secret, now_ms);
                let sep = if url.contains('?') { '&' } else { '?' };
                url.push_str(&format!(
                    "{sep}timestamp={now_ms}&sign={}",
                    utf8_percent_encode(&sign, NON_ALPHANUMERIC)
                ));
            }
            (
                url,
                json!({"msgtype": "markdown", "markdown": {"title": m.title, "text": m.text.replace('\n', "\n\n")}}),
                vec![],
            )
        }
        ChannelKind::Feishu => {
            let mut body = json!({"msg_type": "text", "content": {"text": m.text}});
            if let Some(secret) = &channel.secret {
                let ts = now_ms / 1000;
                body["timestamp"] = json!(ts.to_string());
                body["sign"] = json!(sign::feishu(secret, ts));
            }
            (channel.url.clone(), body, vec![])
        }
        ChannelKind::Wecom => (
            channel.url.clone(),
            json!({"msgtype": "markdown", "markdown": {"content": m.text}}),
            vec![],
        ),
    };
    let robot = matches!(
        channel.kind,
        ChannelKind::Dingtalk | ChannelKind::Feishu | ChannelKind::Wecom
    );
    post(
        http,
        &url,
        serde_json::to_vec(&body).expect("JSON"),
        extra,
        timeout,
        robot,
    )
    .await
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
    headers: Vec<(&str, String)>,
    timeout: Duration,
    robot: bool,
) -> Result<Delivery, DeliveryError> {
    let mut req = http
        .post(url)
        .timeout(timeout)
        .header("content-type", "application/json")
        .body(body);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let resp = req.send().await.map_err(|e| unreachable(e, timeout))?;
    let status = resp.status().as_u16();
    let text = match resp.text().await {
        Ok(t) => t.chars().take(300).collect::<String>(),
        // Headers came, then the body stalled: no answer either.
        Err(e) if e.is_timeout() => return Err(unreachable(e, timeout)),
        Err(_) => String::new(),
    };
    if !(200..300).contains(&status) {
        return Err(DeliveryError::Refused {
            status: Some(status),
            message: text,
            retry: status >= 500 || status == 429 || status == 408,
        });
    }
    if robot {
        // DingTalk and WeCom say `errcode`, Feishu/Lark `code` (or StatusCode); 0 is success.
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let code = v
            .get("errcode")
            .or_else(|| v.get("code"))
            .or_else(|| v.get("StatusCode"))
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if code != 0 {
            let msg = v
                .get("errmsg")
                .or_else(|| v.get("msg"))
                .and_then(Value::as_str)
                .unwrap_or("refused");
            return Err(DeliveryError::Refused {
                status: Some(status),
                message: format!("code {code}: {msg}"),
                // Rate limits (DingTalk 130101, Feishu 9499/11232, WeCom 45009) pass.
                retry: matches!(code, 130101 | 9499 | 11232 | 45009),
            });
        }
    }
    Ok(Delivery { status: Some(status) })
}

/// Why a request got no answer, without the URL (it may hold a robot's
/// access token): a timeout says so, anything else names its causes.
fn unreachable(e: reqwest::Error, timeout: Duration) -> DeliveryError {
    if e.is_timeout() {
        return DeliveryError::Unreachable(format!("no answer within {} ms (timed out)", timeout.as_millis()));
    }
    let e = e.without_url();
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    DeliveryError::Unreachable(text)
}

async fn email(channel: &Channel, m: &crate::message::Message, timeout: Duration) -> Result<Delivery, DeliveryError> {
    let smtp = channel
        .smtp
        .as_ref()
        .ok_or_else(|| DeliveryError::Config("an e-mail channel needs SMTP settings".into()))?;
    let from = smtp
        .from
        .parse()
        .map_err(|e| DeliveryError::Config(format!("from {:?}: {e}", smtp.from)))?;
    let mut builder = lettre::Message::builder().from(from).subject(m.title.clone());
    for to in &smtp.to {
        builder = builder.to(to
            .parse()
            .map_err(|e| DeliveryError::Config(format!("to {to:?}: {e}")))?);
    }
    let mail = builder
        .header(ContentType::TEXT_PLAIN)
        .body(m.text.clone())
        .map_err(|e| DeliveryError::Config(e.to_string()))?;
    // Connect to the pinned address when given; TLS checks the host's name.
    let server = smtp.address.map(|a| a.to_string()).unwrap_or_else(|| smtp.host.clone());
    let tls = |wrap: fn(TlsParameters) -> Tls| {
        TlsParameters::new(smtp.host.clone())
            .map(wrap)
            .map_err(|e| DeliveryError::Config(e.to_string()))
    };
    let tls = match smtp.tls {
        SmtpTls::None => Tls::None,
        SmtpTls::StartTls => tls(Tls::Required)?,
        SmtpTls::Implicit => tls(Tls::Wrapper)?,
    };
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server)
        .tls(tls)
        .port(smtp.port)
        .timeout(Some(timeout));
    if let (Some(u), Some(p)) = (&smtp.username, &smtp.password) {
        transport = transport.credentials(Credentials::new(u.clone(), p.clone()));
    }
    transport.build().send(mail).await.map_err(|e| {
        if e.is_permanent() {
            DeliveryError::Refused {
                status: None,
                message: e.to_string(),
                retry: false,
            }
        } else {
            DeliveryError::Unreachable(e.to_string())
        }
    })?;
    Ok(Delivery { status: None })
}
