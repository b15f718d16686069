//! `prism app secret ...`: an application's (or with `--project`, a whole
//! project's) secrets. Values are read from standard input, never from the
//! command line (where shell history and `ps` would keep them), and never
//! printed: Prism does not give them back.

use clap::Subcommand;
use prism_api::app_secrets::{AppSecret, ExistingSecret, PutSecret};
use prism_domain::SecretDelivery;

use crate::context::Ctx;
use crate::error::{CliError, CliResult};
use crate::output::{list_table, print_table, time};

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// List the secrets (name, scope, source, version, who changed it; never values)
    List {
        /// The application (or, with --project, the project)
        target: String,
        /// TARGET is a project: its secrets, which every application of it sees
        #[arg(long)]
        project: bool,
    },
    /// Set a secret's value, read from standard input, or point it at an existing Secret
    Set {
        /// The application (or, with --project, the project)
        target: String,
        /// The variable (or file) name the container sees, e.g. DB_PASSWORD
        name: String,
        #[arg(long)]
        project: bool,
        /// Only in this environment (default: every environment)
        #[arg(long = "env", value_name = "ENV")]
        environment: Option<String>,
        /// Use the key of a Secret that already exists in the namespace: SECRET:KEY
        #[arg(long, value_name = "SECRET:KEY")]
        existing: Option<String>,
        /// Deliver it as a file in the secrets directory instead of a variable
        #[arg(long)]
        as_file: bool,
    },
    /// Remove a secret from one scope
    Delete {
        target: String,
        name: String,
        #[arg(long)]
        project: bool,
        #[arg(long = "env", value_name = "ENV")]
        environment: Option<String>,
    },
}

fn base(project: bool) -> &'static str {
    if project {
        "projects"
    } else {
        "applications"
    }
}

pub async fn run(ctx: &Ctx, cmd: SecretCommand) -> CliResult<()> {
    match cmd {
        SecretCommand::List { target, project } => {
            let answer = ctx.client.get(&[base(project), &target, "secrets"], &[]).await?;
            super::show(ctx, &answer, |list: Vec<AppSecret>| {
                let mut t = list_table(&[
                    "NAME",
                    "SCOPE",
                    "ENVIRONMENT",
                    "SOURCE",
                    "VERSION",
                    "CHANGED BY",
                    "CHANGED",
                ]);
                for s in list {
                    let scope = match &s.application {
                        Some(a) => format!("application {a}"),
                        None => format!("project {}", s.project),
                    };
                    let source = match (&s.ref_secret, &s.ref_key) {
                        (Some(secret), Some(key)) => format!("existing {secret}:{key}"),
                        _ => format!("value ({})", s.delivery),
                    };
                    t.add_row(vec![
                        s.name,
                        scope,
                        s.environment.unwrap_or_else(|| "(all)".into()),
                        source,
                        s.version.to_string(),
                        s.updated_by,
                        time(s.updated_at),
                    ]);
                }
                print_table(&t);
            })
        }
        SecretCommand::Set {
            target,
            name,
            project,
            environment,
            existing,
            as_file,
        } => {
            let delivery = if as_file {
                SecretDelivery::File
            } else {
                SecretDelivery::Env
            };
            let mut body = PutSecret {
                environment,
                value: None,
                existing: None,
                delivery: Some(delivery),
            };
            match existing {
                Some(e) => {
                    let (secret, key) = e
                        .split_once(':')
                        .ok_or_else(|| CliError::usage(format!("--existing {e:?} is not SECRET:KEY")))?;
                    body.existing = Some(ExistingSecret {
                        secret: secret.to_owned(),
                        key: key.to_owned(),
                    });
                }
                None => body.value = Some(crate::input::secret_from_stdin("value")?),
            }
            let answer = ctx
                .client
                .put(&[base(project), &target, "secrets", &name], &body)
                .await?;
            super::show(ctx, &answer, |s: AppSecret| {
                println!("Set {} (version {}).", s.name, s.version);
            })
        }
        SecretCommand::Delete {
            target,
            name,
            project,
            environment,
        } => {
            let answer = ctx
                .client
                .delete(
                    &[base(project), &target, "secrets", &name],
                    &[("environment", environment)],
                )
                .await?;
            super::done(ctx, &answer, format!("Deleted the secret {name}."));
            Ok(())
        }
    }
}
