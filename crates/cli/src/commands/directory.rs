//! `prism directory rules ...`: the rules that map the company directory's
//! groups to Prism roles (`/api/v1/directory/group-rules`, admins): list
//! them, add one (a role in a project, or admin), remove the ones that
//! match, or replace them all from a JSON file in the API's format
//! (`{"rules": [{"group": ..., "project": ..., "role": ...}, {"group": ..., "admin": true}]}`).
//!
//! `add` and `remove` read the list, change it and put the whole list back,
//! as the console does; the server checks every rule (each project exists)
//! and names the one at fault (`rules[2].project`).

use clap::Subcommand;
use prism_api::directory::GroupRules;
use prism_domain::{GroupRule, Role};
use serde_json::Value;

use crate::context::{Ctx, GlobalArgs};
use crate::error::{CliError, CliResult};
use crate::input;
use crate::output::{line, list_table, opt, parse, print_json, print_table};

/// The roles a rule may grant in a project (the API's `role`).
const ROLES: [&str; 3] = ["developer", "tester", "operator"];

const PATH: [&str; 2] = ["directory", "group-rules"];

#[derive(Debug, clap::Args)]
pub struct DirectoryArgs {
    #[command(subcommand)]
    pub command: DirectoryCommand,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Subcommand)]
pub enum DirectoryCommand {
    /// The rules that map directory (LDAP / Active Directory) groups to Prism
    /// roles, applied at every directory login (admins). Without a
    /// subcommand: list them
    Rules {
        #[command(subcommand)]
        command: Option<RulesCommand>,
    },
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// List the rules: group, project and role, or admin
    List,
    /// Add a rule: members of GROUP get ROLE in PROJECT (--project, --role), or admin (--admin)
    Add {
        /// The group as the directory names it: its PRISM_LDAP_GROUP_NAME_ATTRIBUTE (cn by
        /// default; distinguishedName gives DNs), compared without regard to case
        #[arg(long, value_name = "CN_OR_DN")]
        group: String,
        /// The project the role is in
        #[arg(long, requires = "role", required_unless_present = "admin", conflicts_with = "admin")]
        project: Option<String>,
        /// The role in the project
        #[arg(long, value_parser = ROLES, requires = "project", conflicts_with = "admin")]
        role: Option<String>,
        /// Members of the group are admins
        #[arg(long)]
        admin: bool,
    },
    /// Remove the rules of GROUP (every one, or only those granting ROLE in
    /// PROJECT, or admin); fails when none matches
    Remove {
        /// The group (compared without regard to case, as directories do)
        #[arg(long, value_name = "CN_OR_DN")]
        group: String,
        /// Only the rules granting a role in this project
        #[arg(long, conflicts_with = "admin")]
        project: Option<String>,
        /// Only the rules granting this role
        #[arg(long, value_parser = ROLES, requires = "project", conflicts_with = "admin")]
        role: Option<String>,
        /// Only the rule granting admin
        #[arg(long)]
        admin: bool,
    },
    /// Replace every rule with the ones in a JSON file (`-` for standard
    /// input) in the API's format: {"rules": [{"group": "shop-dev",
    /// "project": "shop", "role": "developer"}, {"group": "platform", "admin": true}]}
    Set {
        #[arg(long, value_name = "PATH")]
        file: String,
    },
}

/// What a rule grants, for messages: `developer in shop` or `admin`.
fn grant(rule: &GroupRule) -> String {
    if rule.admin {
        "admin".into()
    } else {
        format!(
            "{} in {}",
            rule.role.map_or("?", Role::as_str),
            rule.project.as_deref().unwrap_or("?")
        )
    }
}

/// Group names compare without regard to case, as the server does when it
/// applies the rules.
fn same_group(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

pub async fn run(ctx: &Ctx, cmd: DirectoryCommand) -> CliResult<()> {
    match cmd {
        DirectoryCommand::Rules { command } => match command.unwrap_or(RulesCommand::List) {
            RulesCommand::List => {
                let answer = ctx.client.get(&PATH, &[]).await?;
                super::show(ctx, &answer, print_rules)
            }
            RulesCommand::Add {
                group,
                project,
                role,
                admin,
            } => add(ctx, group.trim(), project, role, admin).await,
            RulesCommand::Remove {
                group,
                project,
                role,
                admin,
            } => remove(ctx, group.trim(), project.as_deref(), role.as_deref(), admin).await,
            RulesCommand::Set { file } => set(ctx, &file).await,
        },
    }
}

fn print_rules(list: GroupRules) {
    if list.rules.is_empty() {
        line("No group rules: directory users get no role.");
        return;
    }
    let mut t = list_table(&["GROUP", "PROJECT", "ROLE"]);
    for r in list.rules {
        let role = if r.admin {
            "admin".to_owned()
        } else {
            opt(r.role.map(Role::as_str))
        };
        t.add_row(vec![r.group, opt(r.project.as_deref()), role]);
    }
    print_table(&t);
}

/// The rules as the server has them now.
async fn current(ctx: &Ctx) -> CliResult<GroupRules> {
    parse(&ctx.client.get(&PATH, &[]).await?)
}

async fn put(ctx: &Ctx, rules: Vec<GroupRule>) -> CliResult<Value> {
    ctx.client.put(&PATH, &GroupRules { rules }).await
}

/// `prism directory rules add --group G (--project P --role R | --admin)`
async fn add(ctx: &Ctx, group: &str, project: Option<String>, role: Option<String>, admin: bool) -> CliResult<()> {
    // clap lets only the three roles through.
    let role = role
        .map(|r| Role::parse("--role", &r))
        .transpose()
        .map_err(|e| CliError::usage(e.to_string()))?;
    let new_rule = GroupRule {
        group: group.to_owned(),
        project,
        role,
        admin,
    };
    let GroupRules { mut rules } = current(ctx).await?;
    let there = rules.iter().any(|r| {
        same_group(&r.group, group) && r.admin == admin && r.project == new_rule.project && r.role == new_rule.role
    });
    if there {
        if ctx.json() {
            print_json(&serde_json::to_value(GroupRules { rules }).expect("rules serialise"));
        } else {
            line(format!(
                "The group {group} gets {} already; nothing changed.",
                grant(&new_rule)
            ));
        }
        return Ok(());
    }
    let added = grant(&new_rule);
    rules.push(new_rule);
    let answer = put(ctx, rules).await?;
    super::show(ctx, &answer, |list: GroupRules| {
        line(format!(
            "Added: the group {group} gets {added} ({} rule(s) now).",
            list.rules.len()
        ));
    })
}

/// `prism directory rules remove --group G [--project P [--role R] | --admin]`
async fn remove(ctx: &Ctx, group: &str, project: Option<&str>, role: Option<&str>, admin: bool) -> CliResult<()> {
    let matches = |r: &GroupRule| {
        same_group(&r.group, group)
            && (!admin || r.admin)
            && project.is_none_or(|p| r.project.as_deref() == Some(p))
            && role.is_none_or(|x| r.role.map(Role::as_str) == Some(x))
    };
    let (gone, kept): (Vec<_>, Vec<_>) = current(ctx).await?.rules.into_iter().partition(|r| matches(r));
    if gone.is_empty() {
        let which = match (admin, project, role) {
            (true, _, _) => " granting admin".to_owned(),
            (false, Some(p), Some(r)) => format!(" granting {r} in {p}"),
            (false, Some(p), None) => format!(" granting a role in {p}"),
            _ => String::new(),
        };
        return Err(CliError::failed(format!(
            "no group rule for {group}{which}: nothing removed (`prism directory rules` lists them)"
        )));
    }
    let answer = put(ctx, kept).await?;
    super::show(ctx, &answer, |list: GroupRules| {
        let what: Vec<String> = gone.iter().map(grant).collect();
        line(format!(
            "Removed {} rule(s) of the group {group}: {} ({} rule(s) left).",
            gone.len(),
            what.join(", "),
            list.rules.len()
        ));
    })
}

/// `prism directory rules set --file rules.json`: the whole list, replaced.
async fn set(ctx: &Ctx, file: &str) -> CliResult<()> {
    let text = input::read_file(file, "group rules")?;
    let file = if file == "-" { "standard input" } else { file };
    let body: Value = serde_json::from_str(&text)
        .map_err(|e| CliError::usage(format!("{file} is not JSON: {e}; nothing changed")))?;
    if !body.get("rules").is_some_and(Value::is_array) {
        return Err(CliError::usage(format!(
            "{file} should hold {{\"rules\": [...]}}, each rule {{\"group\": G, \"project\": P, \"role\": R}} \
             or {{\"group\": G, \"admin\": true}}; nothing changed"
        )));
    }
    let answer = ctx.client.put(&PATH, &body).await?;
    super::show(ctx, &answer, |list: GroupRules| {
        line(format!("Set {} group rule(s):", list.rules.len()));
        print_rules(list);
    })
}
