//! `prism app ...`: applications, their settings per environment, and holds
//! on environments for testing.

use clap::Subcommand;
use prism_api::applications::{Application, CreateApplication, EnvSettings, PutSettings, UpdateApplication};
use prism_api::board::{BoardCell, HoldRequest};
use prism_api::webhooks::{Delivery, ProjectApplication, ProjectWebhookView, RotateWebhook, WebhookView};
use prism_domain::ReleaseRules;
use serde_json::{json, Value};

use crate::context::{Ctx, GlobalArgs};
use crate::error::{CliError, CliResult};
use crate::output::{list_table, parse, print_fields, print_json, print_table, time, yes_no};

#[derive(Debug, clap::Args)]
pub struct AppArgs {
    #[command(subcommand)]
    pub command: AppCommand,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// List the applications you can see
    List {
        /// Only this project's applications
        #[arg(long)]
        project: Option<String>,
    },
    /// Show one application
    Show { name: String },
    /// Create an application in a project
    Create {
        name: String,
        #[arg(long)]
        project: String,
        /// Where its source is (https://, ssh://, git://, file:// or user@host:path)
        #[arg(long, value_name = "URL")]
        git_url: String,
        /// Build settings as a JSON file (- for stdin): stack, base_image, registry,
        /// repository, build_command, artifact_paths, workdir, image_dir, cmd, env, ...
        #[arg(long, value_name = "FILE")]
        build_settings: Option<String>,
    },
    /// Change an application's git URL or build settings
    Update {
        name: String,
        #[arg(long, value_name = "URL")]
        git_url: Option<String>,
        /// Build settings as a JSON file (- for stdin); replaces the current ones
        #[arg(long, value_name = "FILE")]
        build_settings: Option<String>,
    },
    /// Delete an application (admins)
    Delete { name: String },
    /// Show an application's settings in each environment
    Settings { name: String },
    /// Set an application's replicas, resources and variables in one environment
    /// (what is left out stays as it is)
    Set {
        name: String,
        /// The environment
        #[arg(long = "env", value_name = "ENV")]
        environment: String,
        /// Number of pods (0 to 1000)
        #[arg(long, value_name = "N")]
        replicas: Option<i64>,
        /// CPU request, e.g. 100m or 0.5
        #[arg(long, value_name = "QUANTITY")]
        cpu_request: Option<String>,
        /// CPU limit, e.g. 1
        #[arg(long, value_name = "QUANTITY")]
        cpu_limit: Option<String>,
        /// Memory request, e.g. 128Mi
        #[arg(long, value_name = "QUANTITY")]
        memory_request: Option<String>,
        /// Memory limit, e.g. 512Mi
        #[arg(long, value_name = "QUANTITY")]
        memory_limit: Option<String>,
        /// Set an environment variable (repeatable)
        #[arg(long = "env-var", value_name = "KEY=VALUE", value_parser = key_value)]
        env_vars: Vec<(String, String)>,
        /// Remove an environment variable (repeatable)
        #[arg(long = "unset-env-var", value_name = "KEY")]
        unset_env_vars: Vec<String>,
    },
    /// Hold an environment for testing the release running there
    Hold {
        name: String,
        #[arg(long = "env", value_name = "ENV")]
        environment: String,
        /// What is being tested
        #[arg(long, default_value = "", hide_default_value = true)]
        note: String,
        /// End the hold by itself after this many minutes
        #[arg(long, value_name = "N")]
        expires_in_minutes: Option<i64>,
    },
    /// An application's git webhook: pushes and tags that create releases
    /// (operators of its project)
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// An application's secrets (or a project's, with --project): values
    /// sealed in Prism, delivered as a Kubernetes Secret, never shown
    #[command(subcommand)]
    Secret(super::secret::SecretCommand),
    /// Release a hold on an environment
    Unhold {
        name: String,
        #[arg(long = "env", value_name = "ENV")]
        environment: String,
        /// Why, when releasing someone else's hold (operators)
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Give the application a webhook; prints its URL and secret (shown once)
    Create {
        name: String,
        /// github, gitea (also Forgejo) or gitlab
        #[arg(long)]
        forge: String,
        /// A branch pattern that makes releases, `*` for any run of characters (repeatable)
        #[arg(long = "branch", value_name = "PATTERN")]
        branches: Vec<String>,
        /// A tag pattern that makes releases, e.g. 'v*' (repeatable)
        #[arg(long = "tag", value_name = "PATTERN")]
        tags: Vec<String>,
        /// Create releases without building them
        #[arg(long)]
        no_build: bool,
        /// Read your own secret from standard input (e.g. GitLab's signing token
        /// whsec_...) instead of having one generated
        #[arg(long)]
        secret_stdin: bool,
    },
    /// Show the webhook: URL, forge, rules and its last deliveries
    Show { name: String },
    /// Change the webhook's forge or rules, or enable or disable it
    Update {
        name: String,
        #[arg(long)]
        forge: Option<String>,
        /// Replaces the branch patterns (repeatable)
        #[arg(long = "branch", value_name = "PATTERN")]
        branches: Vec<String>,
        /// Replaces the tag patterns (repeatable)
        #[arg(long = "tag", value_name = "PATTERN")]
        tags: Vec<String>,
        /// Build releases at once (true or false)
        #[arg(long, value_name = "BOOL")]
        build: Option<bool>,
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        #[arg(long)]
        disable: bool,
    },
    /// Replace the webhook's secret; prints the new one (shown once)
    Rotate {
        name: String,
        /// Read the new secret from standard input instead of having one generated
        #[arg(long)]
        secret_stdin: bool,
    },
    /// Remove the webhook (the releases it made stay)
    Delete { name: String },
}

/// An application's webhook (`collection` "applications") or a project's ("projects").
pub(super) async fn webhook(ctx: &Ctx, collection: &str, cmd: WebhookCommand) -> CliResult<()> {
    let server = ctx.client.server();
    match cmd {
        WebhookCommand::Create {
            name,
            forge,
            branches,
            tags,
            no_build,
            secret_stdin,
        } => {
            // The forge goes as given: the server names the ones it knows.
            let rules = ReleaseRules {
                branches,
                tags,
                build: !no_build,
            };
            let mut body = json!({"forge": forge, "release_rules": rules});
            if secret_stdin {
                body["secret"] = json!(crate::input::secret_from_stdin("secret")?);
            }
            let answer = ctx.client.post(&[collection, &name, "webhook"], &body).await?;
            show_webhook(ctx, &server, collection, &answer)
        }
        WebhookCommand::Show { name } => {
            let answer = ctx.client.get(&[collection, &name, "webhook"], &[]).await?;
            show_webhook(ctx, &server, collection, &answer)
        }
        WebhookCommand::Update {
            name,
            forge,
            branches,
            tags,
            build,
            enable,
            disable,
        } => {
            let mut body = json!({});
            if let Some(f) = forge {
                body["forge"] = json!(f);
            }
            if !branches.is_empty() || !tags.is_empty() || build.is_some() {
                // The rules are replaced as a whole: start from the current ones.
                let current = ctx.client.get(&[collection, &name, "webhook"], &[]).await?;
                let mut rules = Shown::read(collection, &current)?.release_rules;
                if !branches.is_empty() {
                    rules.branches = branches;
                }
                if !tags.is_empty() {
                    rules.tags = tags;
                }
                if let Some(b) = build {
                    rules.build = b;
                }
                body["release_rules"] = json!(rules);
            }
            if enable || disable {
                body["enabled"] = json!(enable);
            }
            if body.as_object().is_some_and(|o| o.is_empty()) {
                return Err(CliError::usage(
                    "nothing to update: give --forge, --branch, --tag, --build, --enable or --disable",
                ));
            }
            let answer = ctx.client.patch(&[collection, &name, "webhook"], &body).await?;
            show_webhook(ctx, &server, collection, &answer)
        }
        WebhookCommand::Rotate { name, secret_stdin } => {
            let body = RotateWebhook {
                secret: if secret_stdin {
                    Some(crate::input::secret_from_stdin("secret")?)
                } else {
                    None
                },
            };
            let answer = ctx
                .client
                .post(&[collection, &name, "webhook", "rotate"], &body)
                .await?;
            show_webhook(ctx, &server, collection, &answer)
        }
        WebhookCommand::Delete { name } => {
            let answer = ctx.client.delete(&[collection, &name, "webhook"], &[]).await?;
            super::done(ctx, &answer, format!("Deleted the webhook of {name}."));
            Ok(())
        }
    }
}

/// What the table shows of a webhook, an application's or a project's.
struct Shown {
    path: String,
    forge: String,
    enabled: bool,
    release_rules: ReleaseRules,
    secret_set_at: i64,
    deliveries: Vec<Delivery>,
    /// A project's webhook: the applications a push can release.
    applications: Vec<ProjectApplication>,
    /// Only in the answer that set it.
    secret: Option<String>,
}

impl Shown {
    /// The answer read as the collection's webhook (`WebhookView` or
    /// `ProjectWebhookView`, with the secret when it was just set).
    fn read(collection: &str, answer: &Value) -> CliResult<Shown> {
        let secret = answer.get("secret").and_then(Value::as_str).map(str::to_owned);
        Ok(if collection == "projects" {
            let v: ProjectWebhookView = parse(answer)?;
            Shown {
                path: v.path,
                forge: v.webhook.forge,
                enabled: v.webhook.enabled,
                release_rules: v.release_rules,
                secret_set_at: v.webhook.secret_set_at,
                deliveries: v.deliveries,
                applications: v.applications,
                secret,
            }
        } else {
            let v: WebhookView = parse(answer)?;
            Shown {
                path: v.path,
                forge: v.webhook.forge,
                enabled: v.webhook.enabled,
                release_rules: v.release_rules,
                secret_set_at: v.webhook.secret_set_at,
                deliveries: v.deliveries,
                applications: vec![],
                secret,
            }
        })
    }
}

fn show_webhook(ctx: &Ctx, server: &str, collection: &str, answer: &Value) -> CliResult<()> {
    if ctx.json() {
        print_json(answer);
    } else {
        print_webhook(server, Shown::read(collection, answer)?);
    }
    Ok(())
}

fn print_webhook(server: &str, w: Shown) {
    let mut fields = vec![
        ("URL", format!("{server}{}", w.path)),
        ("Forge", w.forge),
        ("Content type", "application/json".into()),
        ("Branches", w.release_rules.branches.join(", ")),
        ("Tags", w.release_rules.tags.join(", ")),
        ("Build", yes_no(w.release_rules.build)),
        ("Enabled", yes_no(w.enabled)),
        ("Secret set", time(w.secret_set_at)),
    ];
    if let Some(s) = &w.secret {
        fields.push(("Secret", format!("{s}  (shown once: paste it into the forge now)")));
    }
    print_fields(&fields);
    if !w.deliveries.is_empty() {
        let mut t = list_table(&["RECEIVED", "EVENT", "REF", "COMMIT", "OUTCOME", "RELEASE"]);
        for d in w.deliveries {
            t.add_row(vec![
                time(d.received_at),
                d.event,
                d.git_ref.unwrap_or_default(),
                d.commit_sha.map(|c| c.chars().take(12).collect()).unwrap_or_default(),
                d.outcome,
                d.release_id.unwrap_or_default(),
            ]);
        }
        print_table(&t);
    }
    if !w.applications.is_empty() {
        println!("Applications a push can release (by repository):");
        let mut t = list_table(&["APPLICATION", "GIT URL"]);
        for a in w.applications {
            t.add_row(vec![a.name, a.git_url]);
        }
        print_table(&t);
    }
}

fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

pub async fn run(ctx: &Ctx, cmd: AppCommand) -> CliResult<()> {
    match cmd {
        AppCommand::List { project } => {
            let answer = ctx.client.get(&["applications"], &[("project", project)]).await?;
            super::show(ctx, &answer, |apps: Vec<Application>| {
                let mut t = list_table(&["NAME", "PROJECT", "GIT URL", "UPDATED"]);
                for a in apps {
                    t.add_row(vec![a.name, a.project, a.git_url, time(a.updated_at)]);
                }
                print_table(&t);
            })
        }
        AppCommand::Show { name } => {
            let answer = ctx.client.get(&["applications", &name], &[]).await?;
            super::show(ctx, &answer, print_app)
        }
        AppCommand::Create {
            name,
            project,
            git_url,
            build_settings,
        } => {
            let body = CreateApplication {
                project,
                name,
                git_url,
                build_settings: build_settings.map(|f| settings_file(&f)).transpose()?,
                template_settings: None,
            };
            let answer = ctx.client.post(&["applications"], &body).await?;
            super::show(ctx, &answer, print_app)
        }
        AppCommand::Update {
            name,
            git_url,
            build_settings,
        } => {
            if git_url.is_none() && build_settings.is_none() {
                return Err(CliError::usage("nothing to update: give --git-url or --build-settings"));
            }
            let body = UpdateApplication {
                git_url,
                build_settings: build_settings.map(|f| settings_file(&f)).transpose()?,
                template_settings: None,
            };
            let answer = ctx.client.patch(&["applications", &name], &body).await?;
            super::show(ctx, &answer, print_app)
        }
        AppCommand::Delete { name } => {
            let answer = ctx.client.delete(&["applications", &name], &[]).await?;
            super::done(ctx, &answer, format!("Deleted application {name}."));
            Ok(())
        }
        AppCommand::Settings { name } => {
            let answer = ctx.client.get(&["applications", &name, "settings"], &[]).await?;
            super::show(ctx, &answer, print_settings)
        }
        AppCommand::Set {
            name,
            environment,
            replicas,
            cpu_request,
            cpu_limit,
            memory_request,
            memory_limit,
            env_vars,
            unset_env_vars,
        } => {
            let nothing = replicas.is_none()
                && cpu_request.is_none()
                && cpu_limit.is_none()
                && memory_request.is_none()
                && memory_limit.is_none()
                && env_vars.is_empty()
                && unset_env_vars.is_empty();
            if nothing {
                return Err(CliError::usage("nothing to set: give --replicas, --cpu-request, --cpu-limit, --memory-request, --memory-limit, --env-var or --unset-env-var"));
            }
            // The API replaces an environment's settings as a whole: start from the current ones.
            let all: Vec<EnvSettings> = parse(&ctx.client.get(&["applications", &name, "settings"], &[]).await?)?;
            let current = all.into_iter().find(|s| s.environment == environment).ok_or_else(|| {
                CliError::usage(format!(
                    "application {name} has no environment {environment}; see `prism env list`"
                ))
            })?;
            let mut vars = current.env_vars;
            for key in &unset_env_vars {
                vars.remove(key);
            }
            vars.extend(env_vars);
            let body = PutSettings {
                replicas: replicas.unwrap_or(current.replicas),
                cpu_request: cpu_request.unwrap_or(current.cpu_request),
                cpu_limit: cpu_limit.unwrap_or(current.cpu_limit),
                memory_request: memory_request.unwrap_or(current.memory_request),
                memory_limit: memory_limit.unwrap_or(current.memory_limit),
                env_vars: vars,
            };
            let answer = ctx
                .client
                .put(&["applications", &name, "settings", &environment], &body)
                .await?;
            super::show(ctx, &answer, print_settings)
        }
        AppCommand::Hold {
            name,
            environment,
            note,
            expires_in_minutes,
        } => {
            let body = HoldRequest {
                note,
                expires_in_minutes,
            };
            let answer = ctx
                .client
                .post(&["applications", &name, "environments", &environment, "hold"], &body)
                .await?;
            super::show(ctx, &answer, |cells: Vec<BoardCell>| super::board::print_board(cells))
        }
        AppCommand::Webhook(cmd) => webhook(ctx, "applications", cmd).await,
        AppCommand::Secret(cmd) => super::secret::run(ctx, cmd).await,
        AppCommand::Unhold {
            name,
            environment,
            reason,
        } => {
            let answer = ctx
                .client
                .delete(
                    &["applications", &name, "environments", &environment, "hold"],
                    &[("reason", reason)],
                )
                .await?;
            super::show(ctx, &answer, |cells: Vec<BoardCell>| super::board::print_board(cells))
        }
    }
}

fn print_app(a: Application) {
    print_fields(&[
        ("Name", a.name),
        ("Project", a.project),
        ("Git URL", a.git_url),
        ("Created", time(a.created_at)),
        ("Updated", time(a.updated_at)),
    ]);
}

fn print_settings(settings: Vec<EnvSettings>) {
    let mut t = list_table(&[
        "ENVIRONMENT",
        "REPLICAS",
        "CPU REQUEST",
        "CPU LIMIT",
        "MEMORY REQUEST",
        "MEMORY LIMIT",
        "ENV VARS",
        "CUSTOMISED",
    ]);
    for s in settings {
        let vars: Vec<String> = s.env_vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
        t.add_row(vec![
            s.environment,
            s.replicas.to_string(),
            s.cpu_request,
            s.cpu_limit,
            s.memory_request,
            s.memory_limit,
            if vars.is_empty() { "-".into() } else { vars.join("\n") },
            yes_no(s.customised),
        ]);
    }
    print_table(&t);
}

fn settings_file(path: &str) -> CliResult<serde_json::Value> {
    let text = crate::input::read_file(path, "build settings")?;
    serde_json::from_str(&text).map_err(|e| CliError::usage(format!("the build settings in {path} are not JSON: {e}")))
}
