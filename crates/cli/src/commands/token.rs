//! `prism token ...`: list, create and revoke API tokens.

use clap::Subcommand;
use prism_api::tokens::{ApiToken, CreateToken, NewToken};

use crate::context::{Ctx, GlobalArgs};
use crate::error::CliResult;
use crate::output::{line, list_table, opt_time, print_fields, print_table, time};

#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// List your tokens (--all: every user's, for admins)
    List {
        #[arg(long)]
        all: bool,
    },
    /// Create a token; its secret is shown once
    Create {
        /// A label, e.g. the CI system it is for (default: cli)
        #[arg(long)]
        name: Option<String>,
        /// Days until it expires (1 to 365; default 30)
        #[arg(long, value_name = "DAYS")]
        expires_in_days: Option<i64>,
    },
    /// Revoke a token
    Revoke { id: i64 },
}

pub async fn run(ctx: &Ctx, cmd: TokenCommand) -> CliResult<()> {
    match cmd {
        TokenCommand::List { all } => {
            let answer = ctx
                .client
                .get(&["tokens"], &[("all", all.then(|| "true".to_owned()))])
                .await?;
            super::show(ctx, &answer, |tokens: Vec<ApiToken>| {
                let mut t = list_table(&["ID", "NAME", "USER ID", "CREATED", "EXPIRES", "LAST USED", "REVOKED"]);
                for k in tokens {
                    t.add_row(vec![
                        k.id.to_string(),
                        k.name,
                        k.user_id.to_string(),
                        time(k.created_at),
                        opt_time(k.expires_at),
                        opt_time(k.last_used_at),
                        opt_time(k.revoked_at),
                    ]);
                }
                print_table(&t);
            })
        }
        TokenCommand::Create { name, expires_in_days } => {
            let answer = ctx
                .client
                .post(&["tokens"], &CreateToken { name, expires_in_days })
                .await?;
            super::show(ctx, &answer, |new: NewToken| {
                print_token(new.token);
                line(format!("\nSecret (shown only now; store it safely):\n{}", new.secret));
            })
        }
        TokenCommand::Revoke { id } => {
            let answer = ctx.client.delete(&["tokens", &id.to_string()], &[]).await?;
            super::show(ctx, &answer, print_token)
        }
    }
}

fn print_token(k: ApiToken) {
    print_fields(&[
        ("Id", k.id.to_string()),
        ("Name", k.name),
        ("User id", k.user_id.to_string()),
        ("Created", time(k.created_at)),
        ("Expires", opt_time(k.expires_at)),
        ("Last used", opt_time(k.last_used_at)),
        ("Revoked", opt_time(k.revoked_at)),
    ]);
}
