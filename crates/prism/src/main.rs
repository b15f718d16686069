//! `prism`: one binary. `prism serve` runs the server; every other subcommand
//! is the command-line client, which talks only to the REST API.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "prism", version, about = "Continuous delivery for Kubernetes")]
struct Cli {
    #[command(subcommand)]
    command: Top,
}

#[derive(Subcommand)]
enum Top {
    /// Run the Prism server (SQLite in --data-dir by default, or PostgreSQL)
    Serve(prism_server::ServeArgs),
    #[command(flatten)]
    Client(prism_cli::Command),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match cli.command {
        Top::Serve(args) => {
            let settings = match prism_server::Settings::from_args(&args) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            match runtime.block_on(prism_server::serve(settings)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Top::Client(cmd) => runtime.block_on(prism_cli::run(cmd)),
    }
}
