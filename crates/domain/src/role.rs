use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// A role a user holds in one project. The global admin role is separate
/// (see [`RoleSet`]): an admin may do everything any role may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Developer,
    Tester,
    Operator,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Developer, Role::Tester, Role::Operator];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Developer => "developer",
            Role::Tester => "tester",
            Role::Operator => "operator",
        }
    }

    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationError> {
        match raw {
            "developer" => Ok(Role::Developer),
            "tester" => Ok(Role::Tester),
            "operator" => Ok(Role::Operator),
            other => Err(ValidationError::new(
                field,
                format!("unknown role {other:?} (developer, tester or operator)"),
            )),
        }
    }

    fn bit(self) -> u8 {
        match self {
            Role::Developer => 1,
            Role::Tester => 2,
            Role::Operator => 4,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one caller may do in one project: the roles granted there, plus the
/// global admin flag.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoleSet {
    admin: bool,
    bits: u8,
}

impl RoleSet {
    pub fn admin() -> Self {
        Self { admin: true, bits: 0 }
    }
    pub fn none() -> Self {
        Self::default()
    }
    pub fn of(roles: impl IntoIterator<Item = Role>) -> Self {
        let mut s = Self::default();
        for r in roles {
            s.bits |= r.bit();
        }
        s
    }
    pub fn with_admin(mut self, admin: bool) -> Self {
        self.admin = admin;
        self
    }
    pub fn is_admin(&self) -> bool {
        self.admin
    }
    /// True when the caller holds `role` in the project, or is an admin.
    pub fn has(&self, role: Role) -> bool {
        self.admin || self.bits & role.bit() != 0
    }
    pub fn has_any(&self, roles: &[Role]) -> bool {
        roles.iter().any(|r| self.has(*r))
    }
    /// True when the caller has any role at all in the project (may see it).
    pub fn is_member(&self) -> bool {
        self.admin || self.bits != 0
    }
    pub fn roles(&self) -> Vec<Role> {
        Role::ALL.into_iter().filter(|r| self.bits & r.bit() != 0).collect()
    }
}
