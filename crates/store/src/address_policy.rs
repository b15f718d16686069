//! The admin's address ranges (see `prism_domain::address_policy`): one
//! row, replaced as a whole.

use prism_domain::AddressRules;
use sqlx::AnyConnection;

use crate::{now_ms, Result, StoreError};

/// The stored rules (none stored: no additions to the built-in policy).
pub async fn get(c: &mut AnyConnection) -> Result<AddressRules> {
    let row: Option<String> = sqlx::query_scalar("SELECT rules FROM address_policy WHERE id = 1")
        .fetch_optional(c)
        .await?;
    match row {
        Some(text) => serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("address policy: {e}"))),
        None => Ok(AddressRules::default()),
    }
}

pub async fn put(c: &mut AnyConnection, rules: &AddressRules) -> Result<()> {
    let text = serde_json::to_string(rules).expect("rules serialise");
    let now = now_ms();
    let n = sqlx::query("UPDATE address_policy SET rules = $1, updated_at = $2 WHERE id = 1")
        .bind(&text)
        .bind(now)
        .execute(&mut *c)
        .await?
        .rows_affected();
    if n == 0 {
        sqlx::query("INSERT INTO address_policy (id, rules, updated_at) VALUES (1, $1, $2)")
            .bind(&text)
            .bind(now)
            .execute(c)
            .await?;
    }
    Ok(())
}
