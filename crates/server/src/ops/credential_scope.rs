//! Which projects may use a registry, git credential or executor (issue 11
//! item 2): admins name the projects or mark the record for all of them. A
//! record starts with no project, so a new credential is used by nobody
//! until an admin says who may.

use super::{access, referenced, OpResult};
use crate::auth::Caller;
use prism_store::{projects, AnyConnection};

/// The projects part of a credential's request body.
#[derive(Default)]
pub struct ScopeRequest {
    /// Every project may use it (present and future).
    pub all_projects: Option<bool>,
    /// The projects allowed to use it; replaces the stored list.
    pub projects: Option<Vec<String>>,
}

impl ScopeRequest {
    /// Whether the request changes the scope at all (else the stored one stays).
    pub fn given(&self) -> bool {
        self.all_projects.is_some() || self.projects.is_some()
    }

    /// The flag and project ids, every named project checked to exist.
    pub async fn resolve(&self, c: &mut AnyConnection) -> OpResult<(bool, Vec<i64>)> {
        let mut ids = Vec::new();
        for name in self.projects.iter().flatten() {
            let p = referenced("projects", projects::by_name(c, name).await)?;
            if !ids.contains(&p.id) {
                ids.push(p.id);
            }
        }
        Ok((self.all_projects.unwrap_or(false), ids))
    }
}

/// Keeps what the caller may see: admins everything, others the records of
/// every project or of a project they belong to (another project's
/// credential is not even named to them).
pub async fn visible<T>(
    c: &mut AnyConnection,
    caller: &Caller,
    records: Vec<T>,
    scope: impl Fn(&T) -> (bool, &[String]),
) -> OpResult<Vec<T>> {
    let Some(user) = access::visibility(caller) else {
        return Ok(records);
    };
    let mine: Vec<String> = projects::list_visible(c, Some(user))
        .await?
        .into_iter()
        .map(|p| p.name)
        .collect();
    Ok(records
        .into_iter()
        .filter(|r| {
            let (all, names) = scope(r);
            all || names.iter().any(|n| mine.contains(n))
        })
        .collect())
}
