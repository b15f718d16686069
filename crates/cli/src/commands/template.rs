//! `prism template ...`: a project's manifest templates (Jinja, rendered
//! into Kubernetes objects per application, environment and release).
//! Every edit stores the project's whole set as a new version; the
//! built-in templates fill in wherever the project has none of that name.

use std::collections::BTreeMap;

use clap::Subcommand;
use prism_api::applications::Application;
use prism_api::templates::{Preview, PreviewRequest, SaveTemplates, TemplateSetVersion, Templates, VersionSummary};
use serde_json::json;

use crate::context::{Ctx, GlobalArgs};
use crate::error::{CliError, CliResult};
use crate::input::{at_most_one_stdin, read_file};
use crate::output::{line, list_table, opt, parse, print_json, print_table, short, time};

#[derive(Debug, clap::Args)]
pub struct TemplateArgs {
    #[command(subcommand)]
    pub command: TemplateCommand,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// List a project's templates, built-in or the project's own, and the current version
    Show { project: String },
    /// Print one template: the project's own, else the built-in
    Get { project: String, name: String },
    /// Set one of a project's templates from a file, or drop it with --remove,
    /// as a new version (operators). An empty file removes a built-in template.
    Set {
        project: String,
        /// The template's name, e.g. deployment.yaml (partials start with `_`)
        name: String,
        /// The template's new body (- for standard input)
        #[arg(
            long,
            value_name = "PATH",
            required_unless_present = "remove",
            conflicts_with = "remove"
        )]
        file: Option<String>,
        /// Drop the project's own template of that name (a built-in comes back)
        #[arg(long)]
        remove: bool,
        /// What changed, for the version history
        #[arg(long, default_value = "", hide_default_value = true)]
        note: String,
    },
    /// List the versions of a project's templates, newest first
    Versions { project: String },
    /// Render an application's manifests for an environment and release, and print the YAML
    Preview {
        #[arg(long)]
        app: String,
        #[arg(long = "env", value_name = "ENV")]
        environment: String,
        /// The release, e.g. r42 (it needs an image)
        #[arg(long)]
        release: String,
        /// Try an unsaved template, laid over the project's current set (repeatable; PATH - for stdin)
        #[arg(long = "file", value_name = "NAME=PATH", value_parser = name_path)]
        files: Vec<(String, String)>,
    },
}

fn name_path(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((n, p)) if !n.is_empty() && !p.is_empty() => Ok((n.to_owned(), p.to_owned())),
        _ => Err(format!("{s:?} is not NAME=PATH")),
    }
}

pub async fn run(ctx: &Ctx, cmd: TemplateCommand) -> CliResult<()> {
    match cmd {
        TemplateCommand::Show { project } => {
            let answer = ctx.client.get(&["projects", &project, "templates"], &[]).await?;
            super::show(ctx, &answer, |t: Templates| print_templates(&project, t))
        }
        TemplateCommand::Get { project, name } => {
            let t: Templates = parse(&ctx.client.get(&["projects", &project, "templates"], &[]).await?)?;
            let (source, body) = match (t.current.files.get(&name), t.builtin.get(&name)) {
                (Some(own), _) if !own.trim().is_empty() => ("project", own.clone()),
                (Some(_), Some(_)) => {
                    return Err(CliError::failed(format!(
                        "project {project} removed the built-in template {name} (version {})",
                        t.current.version
                    )))
                }
                (None, Some(builtin)) => ("built-in", builtin.clone()),
                _ => {
                    return Err(CliError::failed(format!(
                        "project {project} has no template {name}; see `prism template show {project}`"
                    )))
                }
            };
            if ctx.json() {
                print_json(&json!({
                    "project": project,
                    "name": name,
                    "source": source,
                    "version": t.current.version,
                    "body": body,
                }));
            } else {
                line(body.strip_suffix('\n').unwrap_or(&body));
            }
            Ok(())
        }
        TemplateCommand::Set {
            project,
            name,
            file,
            // clap makes --remove and --file exclusive, and one of them required.
            remove: _,
            note,
        } => {
            let body = match file {
                Some(path) => Some(read_file(&path, "template")?),
                None => None,
            };
            let t: Templates = parse(&ctx.client.get(&["projects", &project, "templates"], &[]).await?)?;
            let mut files = t.current.files;
            let what = match body {
                Some(body) => {
                    let what = if body.trim().is_empty() {
                        if t.builtin.contains_key(&name) {
                            format!("removed the built-in template {name}")
                        } else {
                            format!("set {name} to nothing")
                        }
                    } else {
                        format!("set {name}")
                    };
                    files.insert(name, body);
                    what
                }
                None => {
                    if files.remove(&name).is_none() {
                        return Err(CliError::usage(format!(
                            "project {project} has no template {name} of its own to remove"
                        )));
                    }
                    if t.builtin.contains_key(&name) {
                        format!("removed its own {name}; the built-in one applies again")
                    } else {
                        format!("removed {name}")
                    }
                }
            };
            let answer = ctx
                .client
                .put(
                    &["projects", &project, "templates"],
                    &SaveTemplates {
                        base_version: t.current.version,
                        files,
                        note,
                    },
                )
                .await?;
            super::show(ctx, &answer, |v: TemplateSetVersion| {
                line(format!(
                    "Saved the templates of {project} as version {}: {what}.",
                    v.version
                ));
            })
        }
        TemplateCommand::Versions { project } => {
            let answer = ctx
                .client
                .get(&["projects", &project, "templates", "versions"], &[])
                .await?;
            super::show(ctx, &answer, |versions: Vec<VersionSummary>| {
                let mut t = list_table(&["VERSION", "AUTHOR", "CREATED", "NOTE"]);
                for v in versions {
                    t.add_row(vec![
                        v.version.to_string(),
                        v.author,
                        time(v.created_at),
                        opt(Some(&short(&v.note, 60))),
                    ]);
                }
                print_table(&t);
            })
        }
        TemplateCommand::Preview {
            app,
            environment,
            release,
            files,
        } => {
            let paths: Vec<Option<&str>> = files.iter().map(|(_, p)| Some(p.as_str())).collect();
            at_most_one_stdin(&paths)?;
            let mut body = PreviewRequest {
                environment,
                release: super::release::release_id(&release),
                files: None,
            };
            if !files.is_empty() {
                let mut unsaved = BTreeMap::new();
                for (name, path) in &files {
                    unsaved.insert(name.clone(), read_file(path, &format!("template {name}"))?);
                }
                // The server renders exactly the set it is given: lay the
                // unsaved templates over the project's current ones.
                let a: Application = parse(&ctx.client.get(&["applications", &app], &[]).await?)?;
                let t: Templates = parse(&ctx.client.get(&["projects", &a.project, "templates"], &[]).await?)?;
                let mut set = t.current.files;
                set.extend(unsaved);
                body.files = Some(set);
            }
            let answer = ctx.client.post(&["applications", &app, "preview"], &body).await?;
            super::show(ctx, &answer, |p: Preview| {
                line(p.yaml.strip_suffix('\n').unwrap_or(&p.yaml));
            })
        }
    }
}

fn print_templates(project: &str, t: Templates) {
    let current = &t.current;
    if current.version == 0 {
        line(format!(
            "Templates of {project}: version 0 (never edited: the built-ins only)"
        ));
    } else {
        let note = if current.note.is_empty() {
            String::new()
        } else {
            format!(": {}", short(&current.note, 60))
        };
        line(format!(
            "Templates of {project}: version {} (by {}, {}{note})",
            current.version,
            current.author,
            time(current.created_at)
        ));
    }
    let mut names: Vec<&String> = t.builtin.keys().chain(current.files.keys()).collect();
    names.sort();
    names.dedup();
    let mut table = list_table(&["NAME", "SOURCE", "BYTES"]);
    for name in names {
        let builtin = t.builtin.get(name);
        let (source, bytes) = match current.files.get(name) {
            Some(own) if own.trim().is_empty() => ("(built-in, removed)", "-".to_owned()),
            Some(own) if builtin.is_some() => ("(project, replaces the built-in)", own.len().to_string()),
            Some(own) => ("(project)", own.len().to_string()),
            None => ("(built-in)", builtin.map(|b| b.len()).unwrap_or(0).to_string()),
        };
        table.add_row(vec![name.clone(), source.to_owned(), bytes]);
    }
    print_table(&table);
}
