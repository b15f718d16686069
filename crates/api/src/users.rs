//! Users. The password hash never leaves the server.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub is_admin: bool,
    pub disabled: bool,
    pub created_at: i64,
    /// `local` (a password Prism keeps) or `ldap` (the directory checks it
    /// and the user's groups set the roles at every login).
    pub source: String,
}

#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub admin: bool,
}

#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    pub display_name: Option<String>,
    /// Admin only.
    pub admin: Option<bool>,
    /// Admin only.
    pub disabled: Option<bool>,
    pub password: Option<String>,
    /// Required when users change their own password.
    pub current_password: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EndedSessions {
    /// How many browser sessions were ended.
    pub ended: u64,
}
