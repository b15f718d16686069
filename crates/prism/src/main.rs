//! `prism`: one binary. `prism serve` runs the server; every other subcommand
//! is the command-line client, which talks only to the REST API.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod build_step;

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
    /// Operate on a server's store directly: backup and restore
    #[command(subcommand)]
    Admin(Admin),
    #[command(flatten)]
    Client(prism_cli::Command),
}

#[derive(Subcommand)]
enum Admin {
    /// Write a consistent backup of the store (safe while the server runs).
    /// The sealing key is not included: keep it apart, or the stored
    /// credentials cannot be opened after a restore.
    Backup {
        /// The archive to write
        #[arg(long)]
        to: std::path::PathBuf,
        #[command(flatten)]
        server: prism_server::ServeArgs,
    },
    /// Restore a backup into an empty data dir or database (SQLite or PostgreSQL)
    Restore {
        /// The archive to read
        #[arg(long)]
        from: std::path::PathBuf,
        #[command(flatten)]
        server: prism_server::ServeArgs,
    },
}

fn admin(runtime: &tokio::runtime::Runtime, cmd: Admin) -> ExitCode {
    let args = match &cmd {
        Admin::Backup { server, .. } | Admin::Restore { server, .. } => server,
    };
    let settings = match prism_server::Settings::from_args(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match &cmd {
            Admin::Backup { to, .. } => {
                let m = prism_server::admin::backup(&settings, to).await?;
                println!("backup written to {}: {}", to.display(), prism_server::admin::summary(&m));
                println!(
                    "the sealing key is NOT in the backup: keep {} (or PRISM_SECRET_KEY) apart; without it the stored credentials cannot be opened",
                    settings.data_dir.join("secret.key").display()
                );
                Ok::<_, anyhow::Error>(())
            }
            Admin::Restore { from, .. } => {
                let m = prism_server::admin::restore(&settings, from).await?;
                println!("restored {}: {}", from.display(), prism_server::admin::summary(&m));
                println!("put the sealing key of the backed-up server in the data dir (secret.key) or PRISM_SECRET_KEY before starting it");
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    // The hidden renderer child of `prism serve` (see prism_server::render_sandbox).
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == prism_server::render_sandbox::CHILD_ARG)
    {
        return prism_server::render_sandbox::child_main();
    }
    // The hidden in-pod steps of a build on a Kubernetes runner (see build_step.rs).
    let args: Vec<std::ffi::OsString> = std::env::args_os().take(3).collect();
    if args.get(1).and_then(|a| a.to_str()) == Some(prism_server::jobs::build_kube::STEP_COMMAND) {
        return build_step::main(args.get(2).and_then(|a| a.to_str()));
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
        Top::Admin(cmd) => admin(&runtime, cmd),
        Top::Client(cmd) => runtime.block_on(prism_cli::run(cmd)),
    }
}
