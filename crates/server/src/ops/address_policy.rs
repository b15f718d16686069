//! Where Prism may connect for git, registry, Jenkins and cluster URLs: the
//! admin's allowed and denied address ranges over the built-in policy
//! (link-local and metadata addresses refused). Admins only.

use prism_domain::{AddressPolicy, AddressRules};
use prism_store::{address_policy, audit};
use serde_json::json;

use super::{access, Ctx, OpResult};
use crate::auth::Caller;

pub async fn get(ctx: &Ctx, caller: &Caller) -> OpResult<AddressRules> {
    access::require_admin(caller)?;
    Ok(address_policy::get(&mut *ctx.store.conn().await?).await?)
}

/// Replaces the rules; every range is checked before anything is stored.
pub async fn put(ctx: &Ctx, caller: &Caller, rules: AddressRules) -> OpResult<AddressRules> {
    access::require_admin(caller)?;
    let rules = AddressRules {
        allowed: rules.allowed.iter().map(|s| s.trim().to_owned()).collect(),
        denied: rules.denied.iter().map(|s| s.trim().to_owned()).collect(),
    };
    AddressPolicy::parse("address_policy", &rules).map_err(|e| {
        // The API's body is the rules themselves: name `denied[1]`, not `address_policy.denied[1]`.
        let field = e.field.trim_start_matches("address_policy.").to_owned();
        e.at(field)
    })?;
    let mut tx = ctx.store.begin().await?;
    address_policy::put(&mut tx, &rules).await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "address_policy.put",
        "address_policy",
        "address_policy",
        json!({"allowed": rules.allowed, "denied": rules.denied}),
    )
    .await?;
    tx.commit().await?;
    Ok(rules)
}
