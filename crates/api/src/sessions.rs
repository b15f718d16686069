//! Signing in: browser sessions, password-for-token exchange, and who the caller is.

use serde::{Deserialize, Serialize};

use crate::projects::Membership;
use crate::users::User;

#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenLoginRequest {
    pub username: String,
    pub password: String,
    /// A label for the token, e.g. the machine it is for.
    #[serde(default)]
    pub name: Option<String>,
    /// Days until the token expires (default 30, at most 365).
    #[serde(default)]
    pub expires_in_days: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Me {
    pub user: User,
    pub memberships: Vec<Membership>,
    /// Present when authenticated by session cookie.
    pub csrf_token: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LoginResponse {
    pub user: User,
    /// Send this as `X-CSRF-Token` with every state-changing request made with the session cookie.
    pub csrf_token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CliLoginPollRequest {
    pub poll_secret: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartCliLogin {
    /// The token's name, e.g. the machine it is for (default `cli`).
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CliLoginStarted {
    /// Shown in the terminal and on the page, to be compared.
    pub user_code: String,
    /// The page to open, on this server (`/cli-login`), where the code is typed.
    pub verify_path: String,
    /// The same with PRISM_PUBLIC_URL in front, when it is set.
    pub verify_url: Option<String>,
    /// Poll `/api/v1/auth/cli-login/poll` with it; shown to nobody else.
    pub poll_secret: String,
    pub interval_seconds: u64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CliLoginView {
    pub user_code: String,
    pub name: String,
    pub address: String,
    pub created_at: i64,
    /// Asked for from another address than the person looking at it.
    pub elsewhere: bool,
}

/// What the command line gets when it polls.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CliLoginPoll {
    Pending,
    Approved {
        username: String,
        token_id: i64,
        secret: String,
        expires_at: Option<i64>,
    },
}
