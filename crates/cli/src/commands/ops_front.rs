//! `prism ops-front ...`: Prism as the one login in front of each cluster's
//! ops tools (`/api/v1/ops-tools`). List the tools you may open (admins:
//! all), register or change one (`set`, admins), remove one (`delete`,
//! admins), and print the nginx configuration for the front
//! (`nginx-config`, admins): Prism at `/`, each tool at
//! `/tools/CLUSTER/NAME/` behind `auth_request`.

use clap::Subcommand;
use prism_api::ops_tools::{PutTool, ToolView};

use crate::context::{Ctx, GlobalArgs};
use crate::error::CliResult;
use crate::output::{line, list_table, opt, print_fields, print_table, time, yes_no};

/// The kinds of tool the server knows (the API's `kind`).
const KINDS: [&str; 5] = ["prometheus", "grafana", "dashboard", "headlamp", "other"];

#[derive(Debug, clap::Args)]
pub struct OpsFrontArgs {
    #[command(subcommand)]
    pub command: OpsFrontCommand,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Subcommand)]
pub enum OpsFrontCommand {
    /// List the ops tools you may open (admins: every one), with their path on the front
    Tools,
    /// Register a cluster's ops tool, or replace its settings (admins)
    Set {
        /// The cluster the tool belongs to
        cluster: String,
        /// The tool's name: its path on the front is /tools/CLUSTER/NAME/
        name: String,
        #[arg(long, value_parser = KINDS)]
        kind: String,
        /// Where nginx sends the requests, e.g. http://prometheus.monitoring:9090
        #[arg(long, value_name = "URL")]
        upstream: String,
        /// Remove /tools/CLUSTER/NAME before passing requests on (for tools
        /// that cannot be told their sub-path)
        #[arg(long)]
        strip_prefix: bool,
        /// A project role (developer, tester, operator) whose holders, in any
        /// project, may open it (repeatable); admins always may
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
    },
    /// Remove a cluster's ops tool (admins)
    Delete { cluster: String, name: String },
    /// Print the nginx configuration for the front, as text to include in
    /// nginx's http block (admins)
    NginxConfig {
        /// Where nginx reaches Prism (default 127.0.0.1:8080)
        #[arg(long, value_name = "HOST:PORT")]
        prism: Option<String>,
        /// What nginx listens on (default 80)
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
}

pub async fn run(ctx: &Ctx, cmd: OpsFrontCommand) -> CliResult<()> {
    match cmd {
        OpsFrontCommand::Tools => {
            let answer = ctx.client.get(&["ops-tools"], &[]).await?;
            super::show(ctx, &answer, print_tools)
        }
        OpsFrontCommand::Set {
            cluster,
            name,
            kind,
            upstream,
            strip_prefix,
            roles,
            description,
        } => {
            let body = PutTool {
                kind,
                upstream,
                strip_prefix,
                roles,
                description: description.unwrap_or_default(),
            };
            let answer = ctx.client.put(&["ops-tools", &cluster, &name], &body).await?;
            super::show(ctx, &answer, print_tool)
        }
        OpsFrontCommand::Delete { cluster, name } => {
            let answer = ctx.client.delete(&["ops-tools", &cluster, &name], &[]).await?;
            super::done(
                ctx,
                &answer,
                format!("Deleted the ops tool {name} of cluster {cluster}."),
            );
            Ok(())
        }
        OpsFrontCommand::NginxConfig { prism, listen } => {
            let text = ctx
                .client
                .get_text(&["ops-tools", "nginx-config"], &[("prism", prism), ("listen", listen)])
                .await?;
            // As it came, whatever the output format: it is a file for nginx.
            line(text.strip_suffix('\n').unwrap_or(&text));
            Ok(())
        }
    }
}

fn roles(list: &[String]) -> String {
    if list.is_empty() {
        "-".into()
    } else {
        list.join(",")
    }
}

fn print_tools(tools: Vec<ToolView>) {
    if tools.is_empty() {
        line("No ops tools you may open.");
        return;
    }
    let mut t = list_table(&["CLUSTER", "NAME", "KIND", "PATH", "ROLES", "UPSTREAM"]);
    for tool in tools {
        t.add_row(vec![
            tool.tool.cluster,
            tool.tool.name,
            tool.tool.kind,
            tool.path,
            roles(&tool.roles),
            tool.tool.upstream,
        ]);
    }
    print_table(&t);
}

fn print_tool(view: ToolView) {
    let t = view.tool;
    let who = if view.roles.is_empty() {
        "admins".to_owned()
    } else {
        format!("admins and {}", view.roles.join(", "))
    };
    print_fields(&[
        ("Cluster", t.cluster),
        ("Name", t.name),
        ("Kind", t.kind),
        ("Path", view.path),
        ("Upstream", t.upstream),
        ("Strip prefix", yes_no(t.strip_prefix)),
        ("Who may open it", who),
        ("Description", opt(Some(&t.description))),
        ("Updated by", opt(Some(&t.updated_by))),
        ("Updated", time(t.updated_at)),
    ]);
}
