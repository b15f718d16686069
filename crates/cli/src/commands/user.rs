//! `prism user ...`: list, create, show and update users.

use clap::Subcommand;
use serde_json::{json, Map, Value};

use crate::context::{Ctx, GlobalArgs};
use crate::error::{CliError, CliResult};
use crate::input;
use crate::model::User;
use crate::output::{list_table, opt, print_fields, print_table, time, yes_no};

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
            let body =
                json!({"username": username, "password": password, "admin": admin, "display_name": display_name});
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
            let mut body = Map::new();
            if let Some(a) = admin {
                body.insert("admin".into(), Value::Bool(a));
            }
            if let Some(d) = disabled {
                body.insert("disabled".into(), Value::Bool(d));
            }
            if let Some(n) = display_name {
                body.insert("display_name".into(), Value::String(n));
            }
            if body.is_empty() {
                return Err(CliError::usage(
                    "nothing to update: give --admin, --disabled or --display-name",
                ));
            }
            let answer = ctx.client.patch(&["users", &username], &Value::Object(body)).await?;
            super::show(ctx, &answer, print_user)
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
