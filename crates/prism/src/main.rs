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
    /// Operate on a server's store directly: backup, restore, key rotation
    #[command(subcommand)]
    Admin(Admin),
    #[command(flatten)]
    Client(prism_cli::Command),
}

#[derive(Subcommand)]
enum Admin {
    /// Write a consistent backup of the store (safe while the server runs).
    /// The sealing key is left out unless --include-key: keep it apart, or
    /// the stored credentials cannot be opened after a restore.
    Backup {
        /// The archive to write
        #[arg(long)]
        to: std::path::PathBuf,
        /// Include the sealing key, encrypted with a passphrase read from
        /// standard input (or PRISM_BACKUP_PASSPHRASE)
        #[arg(long)]
        include_key: bool,
        #[command(flatten)]
        server: prism_server::ServeArgs,
    },
    /// Restore a backup into an empty data dir or database (SQLite or PostgreSQL)
    Restore {
        /// The archive to read
        #[arg(long)]
        from: std::path::PathBuf,
        /// Also restore the archive's sealing key into the data dir; its
        /// passphrase is read from standard input (or PRISM_BACKUP_PASSPHRASE)
        #[arg(long)]
        with_key: bool,
        #[command(flatten)]
        server: prism_server::ServeArgs,
    },
    /// Build Prism's own server image from this binary (no Docker daemon)
    /// and push it: non-root (uid 10001), read-only root filesystem ready,
    /// entrypoint `prism serve` on 0.0.0.0:8080
    Image {
        /// Where to push, e.g. registry.example/prism/server:1.0
        #[arg(long)]
        to: String,
        /// Plain HTTP to the registry (loopback registries use it anyway)
        #[arg(long)]
        insecure_http: bool,
    },
    /// Re-seal every stored secret under a new key, in one transaction.
    /// With the key in the data dir: stop the server, run this, start it.
    /// With PRISM_SECRET_KEY: set the new key there and the old one in
    /// PRISM_SECRET_KEY_PREVIOUS on every instance first.
    RotateKey {
        #[command(flatten)]
        server: prism_server::ServeArgs,
    },
}

fn admin(runtime: &tokio::runtime::Runtime, cmd: Admin) -> ExitCode {
    if let Admin::Image { to, insecure_http } = &cmd {
        return match runtime.block_on(server_image(to, *insecure_http)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let args = match &cmd {
        Admin::Image { .. } => unreachable!("handled above"),
        Admin::Backup { server, .. } | Admin::Restore { server, .. } | Admin::RotateKey { server } => server,
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
            Admin::Image { .. } => unreachable!("handled above"),
            Admin::Backup { to, include_key, .. } => {
                let passphrase = if *include_key { Some(passphrase()?) } else { None };
                let m = prism_server::admin::backup(&settings, to, passphrase.as_deref()).await?;
                println!("backup written to {}: {}", to.display(), prism_server::admin::summary(&m));
                if *include_key {
                    println!("the sealing key IS in the backup, encrypted with your passphrase: without the passphrase it cannot be restored");
                } else {
                    println!(
                        "the sealing key is NOT in the backup: keep {} (or PRISM_SECRET_KEY) apart; without it the stored credentials cannot be opened",
                        settings.data_dir.join("secret.key").display()
                    );
                }
                Ok::<_, anyhow::Error>(())
            }
            Admin::Restore { from, with_key, .. } => {
                let passphrase = if *with_key { Some(passphrase()?) } else { None };
                let r = prism_server::admin::restore(&settings, from, passphrase.as_deref()).await?;
                println!("restored {}: {}", from.display(), prism_server::admin::summary(&r.manifest));
                if r.key_restored {
                    println!("the sealing key was restored into {}", settings.data_dir.join("secret.key").display());
                } else if r.manifest.sealing_key.is_some() {
                    println!("the archive holds the sealing key: restore it with --with-key (and its passphrase), or put the key in place yourself before starting the server");
                } else {
                    println!("put the sealing key of the backed-up server in the data dir (secret.key) or PRISM_SECRET_KEY before starting it");
                }
                Ok(())
            }
            Admin::RotateKey { .. } => {
                let r = prism_server::keys::rotate(&settings).await?;
                println!("re-sealed {} stored secrets under the new key", r.resealed);
                println!("{}", r.next_step);
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

async fn server_image(to: &str, insecure_http: bool) -> anyhow::Result<()> {
    use prism_image::registry::{Registries, RegistryOptions, Scheme};
    let target = prism_image::reference::ImageReference::parse(to).map_err(|e| anyhow::anyhow!("--to: {e}"))?;
    let options = RegistryOptions {
        scheme: if insecure_http { Scheme::Http } else { Scheme::Auto },
        ..Default::default()
    };
    let registries = Registries::new().with(&target.registry, options);
    let binary = std::env::current_exe()?;
    let pushed = prism_image::server_image::push_server_image(&registries, &binary, &target).await?;
    println!("pushed {to} ({})", pushed.manifest_digest);
    Ok(())
}

/// The backup passphrase: PRISM_BACKUP_PASSPHRASE, else the first line of standard input.
fn passphrase() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("PRISM_BACKUP_PASSPHRASE") {
        return Ok(p);
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let p = line.trim_end_matches(['\r', '\n']).to_owned();
    if p.is_empty() {
        anyhow::bail!("no passphrase: give it on standard input or in PRISM_BACKUP_PASSPHRASE");
    }
    Ok(p)
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
