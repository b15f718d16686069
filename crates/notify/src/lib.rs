//! Prism's notifications: what happened ([`Notice`]), said in the reader's
//! language ([`message`]), sent to a channel ([`deliver`]) signed the way
//! each receiver checks it ([`sign`]).
//!
//! Delivering is one attempt; what follows it (delivered, a retry after a
//! backoff, given up) is decided by [`retry`]. The delivery log and the
//! subscriptions live in the server, which runs each attempt as a job so a
//! failing channel never holds up a deploy.

pub mod channel;
pub mod deliver;
pub mod message;
pub mod notice;
pub mod retry;
pub mod sign;

pub use channel::{is_mailbox, Channel, ChannelKind, SmtpSettings, SmtpTls};
pub use deliver::{deliver, Delivery, DeliveryError};
pub use message::{render, Lang, Message};
pub use notice::{Notice, NoticeKind};
pub use retry::{after_attempt, redact, Backoff, DeliveryStatus};
