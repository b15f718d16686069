//! The client's subcommands, one file per resource.

mod app;
mod audit;
mod auth;
mod board;
mod build;
mod build_setup;
mod cluster;
mod deploy;
mod directory;
mod env;
mod governance;
mod notify;
mod ops_front;
mod project;
mod release;
mod rollout;
mod secret;
mod template;
mod token;
mod user;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::context::{Ctx, GlobalArgs};
use crate::error::CliResult;
use crate::output::{line, parse, print_json};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Log in to a Prism server and store an API token
    Login(auth::LoginArgs),
    /// Revoke the stored API token and forget it
    Logout(GlobalArgs),
    /// Show the user you are logged in as, and your project roles
    Whoami(GlobalArgs),
    /// Manage users (admins)
    User(user::UserArgs),
    /// Manage your API tokens
    Token(token::TokenArgs),
    /// Manage the Kubernetes clusters Prism deploys to (admins)
    Cluster(cluster::ClusterArgs),
    /// Manage the environments of the lifecycle (fat, uat, prd, ...)
    Env(env::EnvArgs),
    /// Manage projects and their members
    Project(project::ProjectArgs),
    /// Manage applications, their settings per environment and holds
    App(app::AppArgs),
    /// Create releases and move them through the lifecycle
    Release(release::ReleaseArgs),
    /// Start, follow, show and cancel builds
    Build(build_setup::Args<build::BuildCommand>),
    /// Stack presets: how each kind of application is built and run
    Stack(build_setup::Args<build_setup::StackCommand>),
    /// Image registries builds push to (admins)
    Registry(build_setup::Args<build_setup::RegistryCommand>),
    /// Credentials for private git repositories (admins)
    GitCredential(build_setup::Args<build_setup::GitCredentialCommand>),
    /// Remote build executors (Jenkins) (admins)
    Executor(build_setup::Args<build_setup::ExecutorCommand>),
    /// Base images, their builds and lineage (admins)
    Base(build_setup::Args<build_setup::BaseCommand>),
    /// Deploy a release into an environment and follow it (`prism deploy RELEASE --env ENV`);
    /// show, review, roll back deploys and check for drift
    Deploy(deploy::DeployArgs),
    /// How releases roll out (rolling, canary, blue-green); promote, pause, resume, abort a running rollout
    Rollout(rollout::RolloutArgs),
    /// Show, edit and preview a project's manifest templates
    Template(template::TemplateArgs),
    /// Show what runs in each environment, what is on its way and what is held
    Board(board::BoardArgs),
    /// Search the audit log (admins)
    Audit(audit::AuditArgs),
    /// Notification channels, their delivery logs and projects' subscriptions
    Notify(notify::NotifyArgs),
    /// Directory (LDAP / Active Directory) login: the rules mapping groups to roles (admins)
    Directory(directory::DirectoryArgs),
    /// Prism as the one login in front of each cluster's ops tools: the tools and nginx's configuration
    OpsFront(ops_front::OpsFrontArgs),
}

pub async fn dispatch(cmd: Command) -> CliResult<()> {
    match cmd {
        Command::Login(args) => auth::login(args).await,
        Command::Logout(global) => auth::logout(global).await,
        Command::Whoami(global) => auth::whoami(&global.connect()?).await,
        Command::User(args) => user::run(&args.global.connect()?, args.command).await,
        Command::Token(args) => token::run(&args.global.connect()?, args.command).await,
        Command::Cluster(args) => cluster::run(&args.global.connect()?, args.command).await,
        Command::Env(args) => env::run(&args.global.connect()?, args.command).await,
        Command::Project(args) => project::run(&args.global.connect()?, args.command).await,
        Command::App(args) => app::run(&args.global.connect()?, args.command).await,
        Command::Release(args) => release::run(&args.global.connect()?, args.command).await,
        Command::Deploy(args) => deploy::run(args).await,
        Command::Build(args) => build::run(&args.global.connect()?, args.command).await,
        Command::Stack(args) => build_setup::stack(&args.global.connect()?, args.command).await,
        Command::Registry(args) => build_setup::registry(&args.global.connect()?, args.command).await,
        Command::GitCredential(args) => build_setup::git_credential(&args.global.connect()?, args.command).await,
        Command::Executor(args) => build_setup::executor(&args.global.connect()?, args.command).await,
        Command::Base(args) => build_setup::base(&args.global.connect()?, args.command).await,
        Command::Rollout(args) => rollout::run(&args.global.connect()?, args.command).await,
        Command::Template(args) => template::run(&args.global.connect()?, args.command).await,
        Command::Board(args) => board::run(&args.global.connect()?, args).await,
        Command::Audit(args) => audit::run(&args.global.connect()?, args).await,
        Command::Notify(args) => notify::run(&args.global.connect()?, args.command).await,
        Command::Directory(args) => directory::run(&args.global.connect()?, args.command).await,
        Command::OpsFront(args) => ops_front::run(&args.global.connect()?, args.command).await,
    }
}

/// Prints the server's answer as JSON, or parses it and draws it with `table`.
fn show<T: DeserializeOwned>(ctx: &Ctx, value: &Value, table: impl FnOnce(T)) -> CliResult<()> {
    if ctx.json() {
        print_json(value);
    } else {
        table(parse(value)?);
    }
    Ok(())
}

/// For answers without a body (deletions): a confirmation in table mode.
fn done(ctx: &Ctx, value: &Value, message: String) {
    if ctx.json() {
        if !value.is_null() {
            print_json(value);
        }
    } else {
        line(message);
    }
}
