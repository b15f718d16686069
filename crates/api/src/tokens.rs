//! API tokens (for the CLI and CI). A token's secret is shown once, at creation.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiToken {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NewToken {
    pub token: ApiToken,
    /// The secret, shown this once; only its hash is stored.
    pub secret: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    pub name: Option<String>,
    pub expires_in_days: Option<i64>,
}
