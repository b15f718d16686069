//! Where notifications go. A channel's secret (signing secret, SMTP
//! password) is sealed at rest by the server and only ever handed to
//! [`crate::deliver`]; `Debug` never shows it.

pub use prism_domain::ChannelKind;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain SMTP (only for a relay on the same machine or network).
    None,
    /// STARTTLS on the submission port.
    StartTls,
    /// TLS from the first byte (port 465).
    Implicit,
}

#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<String>,
    pub from: String,
    pub to: Vec<String>,
    /// Connect to this address instead of resolving `host` (the server
    /// resolves it through its address policy and pins the answer, so a
    /// second lookup cannot lead elsewhere); TLS still checks `host`.
    pub address: Option<std::net::IpAddr>,
}

impl SmtpTls {
    /// The stored word: `none`, `starttls` or `tls`.
    pub fn as_str(self) -> &'static str {
        match self {
            SmtpTls::None => "none",
            SmtpTls::StartTls => "starttls",
            SmtpTls::Implicit => "tls",
        }
    }

    pub fn parse(word: &str) -> Option<Self> {
        match word {
            "none" => Some(SmtpTls::None),
            "starttls" => Some(SmtpTls::StartTls),
            "tls" => Some(SmtpTls::Implicit),
            _ => None,
        }
    }
}

/// Whether `s` is an e-mail address lettre can send to or from
/// (`ops@example.com` or `Prism <prism@example.com>`).
pub fn is_mailbox(s: &str) -> bool {
    s.parse::<lettre::message::Mailbox>().is_ok()
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("from", &self.from)
            .field("to", &self.to)
            .field("address", &self.address)
            .finish()
    }
}

/// One configured channel.
#[derive(Clone)]
pub struct Channel {
    pub kind: ChannelKind,
    /// The endpoint (unused for e-mail).
    pub url: String,
    /// Signing secret (webhook, DingTalk, Feishu); `None` sends unsigned.
    pub secret: Option<String>,
    pub smtp: Option<SmtpSettings>,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("kind", &self.kind)
            .field("url", &self.url)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("smtp", &self.smtp)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_holds_a_secret() {
        let c = Channel {
            kind: ChannelKind::Email,
            url: String::new(),
            secret: Some("signing-secret-1".into()),
            smtp: Some(SmtpSettings {
                host: "smtp".into(),
                port: 25,
                tls: SmtpTls::None,
                username: Some("u".into()),
                password: Some("smtp-password-2".into()),
                from: "prism@x".into(),
                to: vec!["ops@x".into()],
                address: None,
            }),
        };
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("signing-secret-1") && !shown.contains("smtp-password-2"),
            "{shown}"
        );
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn tls_words_and_mailboxes() {
        for t in [SmtpTls::None, SmtpTls::StartTls, SmtpTls::Implicit] {
            assert_eq!(SmtpTls::parse(t.as_str()), Some(t));
        }
        assert_eq!(SmtpTls::parse("ssl"), None);
        assert!(is_mailbox("ops@example.com") && is_mailbox("Prism <prism@example.com>"));
        assert!(!is_mailbox("ops") && !is_mailbox("a@b@c") && !is_mailbox(""));
    }
}
