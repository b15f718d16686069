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
    // The hidden renderer child of `prism serve` (see prism_server::render_sandbox).
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == prism_server::render_sandbox::CHILD_ARG)
    {
        return prism_server::render_sandbox::child_main();
    }
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
