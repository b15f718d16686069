//! The `prism` command-line client (placeholder until the client lands).

use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Log in to a Prism server and store an API token
    Login { url: String },
}

pub async fn run(_cmd: Command) -> ExitCode {
    ExitCode::FAILURE
}
