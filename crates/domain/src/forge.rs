//! The git forges whose webhooks Prism reads. Pure, so the REST API's types
//! (prism-api) and the signature checks (prism-webhooks) share it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Forge {
    Github,
    Gitea,
    Gitlab,
}

impl Forge {
    pub const ALL: [Forge; 3] = [Forge::Github, Forge::Gitea, Forge::Gitlab];

    /// The name as stored and as the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Forge::Github => "github",
            Forge::Gitea => "gitea",
            Forge::Gitlab => "gitlab",
        }
    }

    pub fn parse(s: &str) -> Option<Forge> {
        Forge::ALL.into_iter().find(|f| f.as_str() == s)
    }
}
