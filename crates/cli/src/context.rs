//! The options every client command takes, and what they resolve to: the
//! server, the token and the output format.

use crate::client::Client;
use crate::config::{self, normalise_url};
use crate::error::{CliError, CliResult};
use crate::output::Format;

#[derive(Debug, Clone, clap::Args)]
pub struct GlobalArgs {
    /// Output format
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Format::Table)]
    pub output: Format,
    /// Server URL, instead of the one stored by `prism login`
    #[arg(long, global = true, env = "PRISM_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// API token, instead of the stored one (prefer the PRISM_TOKEN variable: arguments show in `ps`)
    #[arg(
        long,
        global = true,
        env = "PRISM_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
}

/// What a command needs: a client for the server and the output format.
pub struct Ctx {
    pub client: Client,
    pub output: Format,
}

impl Ctx {
    pub fn json(&self) -> bool {
        self.output == Format::Json
    }
}

impl GlobalArgs {
    /// Picks the server and token: flags and variables first, then the
    /// stored credentials. A stored token is only sent to its own server.
    pub fn connect(&self) -> CliResult<Ctx> {
        let server = self
            .server
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(normalise_url);
        let token = self
            .token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        let (url, token) = match (server, token) {
            (Some(url), Some(token)) => (url, token),
            (Some(url), None) => match config::load()? {
                Some(c) if normalise_url(&c.url) == url => (url, c.token),
                _ => {
                    return Err(CliError::usage(format!(
                        "not logged in to {url}: run `prism login {url}` or pass --token"
                    )))
                }
            },
            (None, token) => match config::load()? {
                Some(c) => (normalise_url(&c.url), token.unwrap_or(c.token)),
                None if token.is_some() => {
                    return Err(CliError::usage(
                        "no server given: pass --server URL (or set PRISM_SERVER)",
                    ))
                }
                None => return Err(CliError::usage("not logged in: run `prism login URL`")),
            },
        };
        Ok(Ctx {
            client: Client::new(&url, Some(token))?,
            output: self.output,
        })
    }
}
