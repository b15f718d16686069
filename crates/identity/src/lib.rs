//! Identity from the company's directory.
//!
//! - [`ldap`]: a user's password is checked by binding as that user over
//!   LDAPS or StartTLS (Prism never sees the directory's password hashes),
//!   the user's groups are read from the directory, and every piece of user
//!   input that reaches a search filter is escaped.
//! - [`oidc`]: OpenID Connect login (authorization code with PKCE), the ID
//!   token checked before anything in it is believed.
//! - [`mapping`]: rules an admin edits turn groups into project roles and
//!   admin, applied at every login, so leaving a group takes the role away
//!   at the next one.

pub mod ldap;
pub mod mapping;
pub mod oidc;

pub use ldap::{authenticate, DirectoryUser, LdapConfig, LdapError, LdapSecurity};
pub use mapping::{grants, Grants, GroupRule};
