//! The address policy as the clients use it: read from the store each time
//! a client is made (a change applies to the next build, push or connect).

use prism_netguard::Guard;
use prism_store::{address_policy, AnyConnection, StoreError};

pub async fn guard(c: &mut AnyConnection) -> Result<Guard, StoreError> {
    let rules = address_policy::get(c).await?;
    // Stored rules were checked when saved; a failure here is corruption.
    let policy = prism_domain::AddressPolicy::parse("address_policy", &rules)
        .map_err(|e| StoreError::Corrupt(format!("address policy: {e}")))?;
    Ok(Guard::new(policy))
}
