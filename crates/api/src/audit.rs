//! The audit log.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEvent {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub address: String,
    pub action: String,
    pub record_type: String,
    pub record_id: String,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}
