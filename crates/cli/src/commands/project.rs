//! `prism project ...`: projects and their members' roles.

use clap::Subcommand;
use prism_api::projects::{CreateProject, Grant, Membership, Project, UpdateProject};

use crate::context::{Ctx, GlobalArgs};
use crate::error::CliResult;
use crate::output::{list_table, opt, print_fields, print_table, short, time};

#[derive(Debug, clap::Args)]
pub struct ProjectArgs {
    #[command(subcommand)]
    pub command: ProjectCommand,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// List the projects you can see
    List,
    /// Show one project
    Show { name: String },
    /// Create a project (admins)
    Create {
        name: String,
        #[arg(long, default_value = "", hide_default_value = true)]
        description: String,
    },
    /// Change a project's description (admins)
    Update {
        name: String,
        #[arg(long)]
        description: String,
    },
    /// Delete a project (admins)
    Delete { name: String },
    /// List a project's members and their roles
    Members { name: String },
    /// Give a user a role in a project: developer, tester or operator (admins)
    Grant {
        name: String,
        username: String,
        role: String,
    },
    /// Take a role in a project away from a user (admins)
    Revoke {
        name: String,
        username: String,
        role: String,
    },
    /// A project's git webhook: one URL for every repository of the project
    /// (a forge's organisation or group webhook); a push releases the
    /// applications whose git URL is the pushed repository (operators)
    #[command(subcommand)]
    Webhook(super::app::WebhookCommand),
}

pub async fn run(ctx: &Ctx, cmd: ProjectCommand) -> CliResult<()> {
    match cmd {
        ProjectCommand::Webhook(cmd) => super::app::webhook(ctx, "projects", cmd).await,
        ProjectCommand::List => {
            let answer = ctx.client.get(&["projects"], &[]).await?;
            super::show(ctx, &answer, |projects: Vec<Project>| {
                let mut t = list_table(&["NAME", "DESCRIPTION", "CREATED"]);
                for p in projects {
                    t.add_row(vec![p.name, opt(Some(&short(&p.description, 60))), time(p.created_at)]);
                }
                print_table(&t);
            })
        }
        ProjectCommand::Show { name } => {
            let answer = ctx.client.get(&["projects", &name], &[]).await?;
            super::show(ctx, &answer, print_project)
        }
        ProjectCommand::Create { name, description } => {
            let answer = ctx
                .client
                .post(&["projects"], &CreateProject { name, description })
                .await?;
            super::show(ctx, &answer, print_project)
        }
        ProjectCommand::Update { name, description } => {
            let answer = ctx
                .client
                .patch(&["projects", &name], &UpdateProject { description })
                .await?;
            super::show(ctx, &answer, print_project)
        }
        ProjectCommand::Delete { name } => {
            let answer = ctx.client.delete(&["projects", &name], &[]).await?;
            super::done(ctx, &answer, format!("Deleted project {name}."));
            Ok(())
        }
        ProjectCommand::Members { name } => {
            let answer = ctx.client.get(&["projects", &name, "members"], &[]).await?;
            super::show(ctx, &answer, print_members)
        }
        ProjectCommand::Grant { name, username, role } => {
            let answer = ctx
                .client
                .post(&["projects", &name, "members"], &Grant { username, role })
                .await?;
            super::show(ctx, &answer, print_members)
        }
        ProjectCommand::Revoke { name, username, role } => {
            let answer = ctx
                .client
                .delete(&["projects", &name, "members", &username, &role], &[])
                .await?;
            super::done(ctx, &answer, format!("{username} is no longer {role} in {name}."));
            Ok(())
        }
    }
}

fn print_project(p: Project) {
    print_fields(&[
        ("Name", p.name),
        ("Description", opt(Some(&p.description))),
        ("Created", time(p.created_at)),
    ]);
}

fn print_members(members: Vec<Membership>) {
    let mut t = list_table(&["USERNAME", "ROLE", "SINCE"]);
    for m in members {
        t.add_row(vec![m.username, m.role, time(m.created_at)]);
    }
    print_table(&t);
}
