//! `prism user ...`: list, create, show and update users.

use clap::Subcommand;
use prism_api::sessions::Me;
use prism_api::users::{CreateUser, UpdateUser, User};
use serde_json::Value;

use crate::context::{Ctx, GlobalArgs};
use crate::error::{CliError, CliResult};
use crate::input;
use crate::output::{line, list_table, opt, parse, print_fields, print_table, time, yes_no};

#[derive(Debug, clap::Args)]
pub struct UserArgs {
    #[command(subcommand)]
    pub command: UserCommand,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// List all users
    List,
    /// Create a user (the password is read from standard input or asked for)
    Create {
        username: String,
        /// Make the user an admin
        #[arg(long)]
        admin: bool,
        #[arg(long)]
        display_name: Option<String>,
        /// Read the password from standard input instead of asking for it
        #[arg(long)]
        password_stdin: bool,
    },
    /// Show one user
    Show { username: String },
    /// Change a user's display name, admin flag or disabled flag
    Update {
        username: String,
        #[arg(long, value_name = "true|false")]
        admin: Option<bool>,
        /// Disabled users cannot log in or use their tokens
        #[arg(long, value_name = "true|false")]
        disabled: Option<bool>,
        #[arg(long)]
        display_name: Option<String>,
    },
    /// Change a password: your own, or (admins) anyone's. Asks for it, or reads it from standard input
    Passwd {
        /// Whose password (default: yours)
        username: Option<String>,
        /// Read the new password from the first line of standard input and, when you change
        /// your own password and are not an admin, your current password from the second line
        #[arg(long)]
        password_stdin: bool,
    },
    /// End every browser session of a user now (admins); their API tokens stay
    EndSessions { username: String },
}

pub async fn run(ctx: &Ctx, cmd: UserCommand) -> CliResult<()> {
    match cmd {
        UserCommand::List => {
            let answer = ctx.client.get(&["users"], &[]).await?;
            super::show(ctx, &answer, |users: Vec<User>| {
                let mut t = list_table(&["USERNAME", "DISPLAY NAME", "ADMIN", "DISABLED", "CREATED"]);
                for u in users {
                    t.add_row(vec![
                        u.username,
                        opt(Some(&u.display_name)),
                        yes_no(u.is_admin),
                        yes_no(u.disabled),
                        time(u.created_at),
                    ]);
                }
                print_table(&t);
            })
        }
        UserCommand::Create {
            username,
            admin,
            display_name,
            password_stdin,
        } => {
            let password = if password_stdin {
                input::secret_from_stdin("password")?
            } else {
                input::prompt_new_password(&format!("Password for {username}: "))?
            };
            let body = CreateUser {
                username,
                password,
                display_name,
                admin,
            };
            let answer = ctx.client.post(&["users"], &body).await?;
            super::show(ctx, &answer, print_user)
        }
        UserCommand::Show { username } => {
            let answer = ctx.client.get(&["users", &username], &[]).await?;
            super::show(ctx, &answer, print_user)
        }
        UserCommand::Update {
            username,
            admin,
            disabled,
            display_name,
        } => {
            if admin.is_none() && disabled.is_none() && display_name.is_none() {
                return Err(CliError::usage(
                    "nothing to update: give --admin, --disabled or --display-name",
                ));
            }
            let body = UpdateUser {
                display_name,
                admin,
                disabled,
                password: None,
                current_password: None,
            };
            let answer = ctx.client.patch(&["users", &username], &body).await?;
            super::show(ctx, &answer, print_user)
        }
        UserCommand::Passwd {
            username,
            password_stdin,
        } => {
            let me: Me = parse(&ctx.client.get(&["me"], &[]).await?)?;
            let username = username.unwrap_or_else(|| me.user.username.clone());
            // Admins set anyone's password; others prove they know their own.
            let needs_current = username == me.user.username && !me.user.is_admin;
            let (password, current) = if password_stdin {
                let mut lines = input::lines_from_stdin("password")?.into_iter();
                let password = lines
                    .next()
                    .filter(|p| !p.is_empty())
                    .ok_or_else(|| CliError::usage("no new password on standard input"))?;
                let current = if needs_current {
                    Some(lines.next().filter(|p| !p.is_empty()).ok_or_else(|| {
                        CliError::usage(
                            "changing your own password needs your current password on the second line of standard input",
                        )
                    })?)
                } else {
                    None
                };
                (password, current)
            } else {
                let current = if needs_current {
                    Some(input::prompt_secret("Current password: ")?)
                } else {
                    None
                };
                (
                    input::prompt_new_password(&format!("New password for {username}: "))?,
                    current,
                )
            };
            let body = UpdateUser {
                display_name: None,
                admin: None,
                disabled: None,
                password: Some(password),
                current_password: current,
            };
            let answer = ctx.client.patch(&["users", &username], &body).await?;
            super::show(ctx, &answer, |u: User| {
                line(format!("Changed the password of {}.", u.username));
            })
        }
        UserCommand::EndSessions { username } => {
            let answer = ctx.client.delete(&["users", &username, "sessions"], &[]).await?;
            let ended = answer
                .get("ended")
                .and_then(Value::as_u64)
                .ok_or_else(|| CliError::unexpected("unexpected answer from the server: no \"ended\" count"))?;
            super::done(ctx, &answer, format!("Ended {ended} browser session(s) of {username}."));
            Ok(())
        }
    }
}

fn print_user(u: User) {
    print_fields(&[
        ("Id", u.id.to_string()),
        ("Username", u.username),
        ("Display name", opt(Some(&u.display_name))),
        ("Admin", yes_no(u.is_admin)),
        ("Disabled", yes_no(u.disabled)),
        ("Created", time(u.created_at)),
    ]);
}
