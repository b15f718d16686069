//! The `prism` command-line client. It talks only to Prism's REST API, with
//! an API token stored by `prism login` (or given with --token/PRISM_TOKEN).
//!
//! Exit codes: 0 success, 1 the server reported an error, 2 a usage or
//! configuration problem, 3 the server could not be reached.

mod client;
mod commands;
mod config;
mod context;
mod error;
mod input;
mod output;
mod sse;

use std::process::ExitCode;

pub use commands::Command;

/// Runs one client command; errors are printed as `error: ...` on stderr.
pub async fn run(cmd: Command) -> ExitCode {
    match commands::dispatch(cmd).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}
