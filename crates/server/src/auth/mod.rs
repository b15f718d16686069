//! Authentication: local passwords (argon2id), API tokens and browser
//! sessions (both stored as SHA-256 hashes), login throttling, and the
//! `Caller` extractor every handler uses to know who is asking.

pub mod caller;
pub mod metrics_token;
pub mod password;
pub mod proxy;
pub mod secret_token;
pub mod throttle;

pub use caller::Caller;
