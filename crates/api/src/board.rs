//! The applications x environments board, and holds on its cells.

use serde::{Deserialize, Serialize};

/// One cell of the applications x environments board.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BoardCell {
    pub application: String,
    pub environment: String,
    pub current_release: Option<String>,
    pub incoming_release: Option<String>,
    pub incoming_state: Option<String>,
    pub held_by: Option<String>,
    pub hold_release: Option<String>,
    pub hold_since: Option<i64>,
    pub hold_note: Option<String>,
    pub hold_expires_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldRequest {
    #[serde(default)]
    pub note: String,
    /// The hold ends by itself after this many minutes (default: never).
    pub expires_in_minutes: Option<i64>,
}
