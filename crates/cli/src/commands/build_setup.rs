//! What builds are configured with: `prism stack`, `prism registry`,
//! `prism git-credential`, `prism executor` and `prism base`. Secrets
//! (passwords, tokens) are read from standard input, never from arguments
//! (which other users of the machine can see).

use clap::Subcommand;
use prism_api::base_images::{CreateBase, UpdateBase};
use prism_api::credentials::{CreateExecutor, PutGitCredential, PutRegistry};
use serde_json::{json, Value};

use crate::context::{Ctx, GlobalArgs};
use crate::error::{CliError, CliResult};
use crate::input::{read_file, secret_from_stdin};
use crate::output::{line, list_table, opt, print_json, print_table, yes_no};

#[derive(Debug, clap::Args)]
pub struct Args<C: Subcommand> {
    #[command(subcommand)]
    pub command: C,
    #[command(flatten)]
    pub global: GlobalArgs,
}

fn json_file(path: &str, what: &str) -> CliResult<Value> {
    let text = read_file(path, what)?;
    serde_json::from_str(&text).map_err(|e| CliError::usage(format!("the {what} in {path} is not JSON: {e}")))
}

fn str_of(v: &Value, k: &str) -> String {
    match &v[k] {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// Prints a list of records as a table of the given fields (or JSON).
fn table(ctx: &Ctx, answer: &Value, fields: &[&str]) -> CliResult<()> {
    if ctx.json() {
        print_json(answer);
        return Ok(());
    }
    let header: Vec<String> = fields.iter().map(|f| f.to_uppercase()).collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut t = list_table(&header);
    for item in answer.as_array().into_iter().flatten() {
        t.add_row(fields.iter().map(|f| str_of(item, f)).collect::<Vec<_>>());
    }
    print_table(&t);
    Ok(())
}

fn done(ctx: &Ctx, answer: &Value, message: String) -> CliResult<()> {
    if ctx.json() {
        print_json(answer);
    } else {
        line(message);
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum StackCommand {
    /// List the stack presets
    List,
    /// Show one preset as JSON
    Show { name: String },
    /// Create or replace a preset from a JSON file (- for stdin): build_command,
    /// artifact_paths, image_dir, cmd, entrypoint, env, description
    Put { name: String, file: String },
    /// Delete a preset
    Delete { name: String },
}

pub async fn stack(ctx: &Ctx, cmd: StackCommand) -> CliResult<()> {
    match cmd {
        StackCommand::List => {
            let answer = ctx.client.get(&["stacks"], &[]).await?;
            table(ctx, &answer, &["name", "build_command", "image_dir", "description"])
        }
        StackCommand::Show { name } => {
            let answer = ctx.client.get(&["stacks"], &[]).await?;
            let one = answer
                .as_array()
                .and_then(|a| a.iter().find(|s| s["name"] == name.as_str()))
                .cloned()
                .ok_or_else(|| CliError::failed(format!("no stack named {name:?}")))?;
            print_json(&one);
            Ok(())
        }
        StackCommand::Put { name, file } => {
            let body = json_file(&file, "stack")?;
            let answer = ctx.client.put(&["stacks", &name], &body).await?;
            done(ctx, &answer, format!("Stack {name} saved."))
        }
        StackCommand::Delete { name } => {
            let answer = ctx.client.delete(&["stacks", &name], &[]).await?;
            done(ctx, &answer, format!("Stack {name} deleted."))
        }
    }
}

/// The projects part of a credential's body: set only when given, so a
/// change of password keeps the stored projects.
fn scope(projects: Vec<String>, all_projects: bool) -> (Option<bool>, Option<Vec<String>>) {
    (all_projects.then_some(true), (!projects.is_empty()).then_some(projects))
}

#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    List,
    /// Add or change a registry
    Put {
        name: String,
        /// host[:port], as in image references
        #[arg(long)]
        host: String,
        /// Plain HTTP instead of HTTPS
        #[arg(long)]
        insecure_http: bool,
        #[arg(long)]
        username: Option<String>,
        /// Read the password from standard input
        #[arg(long, requires = "username")]
        password_stdin: bool,
        /// Remove stored credentials
        #[arg(long, conflicts_with_all = ["username", "password_stdin"])]
        clear_credentials: bool,
        /// A token realm host[:port] besides the registry that may receive its credentials (repeat)
        #[arg(long = "token-realm-host")]
        token_realm_hosts: Vec<String>,
        /// A project allowed to use it (repeat; replaces the stored list)
        #[arg(long = "project")]
        projects: Vec<String>,
        /// Every project may use it
        #[arg(long)]
        all_projects: bool,
    },
    Delete {
        name: String,
    },
}

pub async fn registry(ctx: &Ctx, cmd: RegistryCommand) -> CliResult<()> {
    match cmd {
        RegistryCommand::List => {
            let answer = ctx.client.get(&["registries"], &[]).await?;
            if !ctx.json() {
                let mut t = list_table(&["NAME", "HOST", "HTTP", "USERNAME"]);
                for r in answer.as_array().into_iter().flatten() {
                    t.add_row(vec![
                        str_of(r, "name"),
                        str_of(r, "host"),
                        yes_no(r["insecure_http"].as_bool().unwrap_or(false)),
                        opt(r["username"].as_str()),
                    ]);
                }
                print_table(&t);
                return Ok(());
            }
            print_json(&answer);
            Ok(())
        }
        RegistryCommand::Put {
            name,
            host,
            insecure_http,
            username,
            password_stdin,
            clear_credentials,
            token_realm_hosts,
            projects,
            all_projects,
        } => {
            let (all_projects, projects) = scope(projects, all_projects);
            let password = if password_stdin {
                Some(secret_from_stdin("registry password")?)
            } else {
                None
            };
            let body = PutRegistry {
                host,
                insecure_http,
                username,
                password,
                clear_credentials,
                token_realm_hosts: (!token_realm_hosts.is_empty()).then_some(token_realm_hosts),
                all_projects,
                projects,
            };
            let answer = ctx.client.put(&["registries", &name], &body).await?;
            done(ctx, &answer, format!("Registry {name} saved."))
        }
        RegistryCommand::Delete { name } => {
            let answer = ctx.client.delete(&["registries", &name], &[]).await?;
            done(ctx, &answer, format!("Registry {name} deleted."))
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum GitCredentialCommand {
    List,
    /// Add or replace a credential; the password or access token is read from standard input
    Put {
        name: String,
        #[arg(long)]
        username: String,
        /// The git server's host[:port]: the credential is sent to no other
        #[arg(long)]
        host: String,
        /// A project allowed to use it (repeat; replaces the stored list)
        #[arg(long = "project")]
        projects: Vec<String>,
        /// Every project may use it
        #[arg(long)]
        all_projects: bool,
    },
    Delete {
        name: String,
    },
}

pub async fn git_credential(ctx: &Ctx, cmd: GitCredentialCommand) -> CliResult<()> {
    match cmd {
        GitCredentialCommand::List => {
            let answer = ctx.client.get(&["git-credentials"], &[]).await?;
            table(ctx, &answer, &["name", "username", "host", "all_projects", "projects"])
        }
        GitCredentialCommand::Put {
            name,
            username,
            host,
            projects,
            all_projects,
        } => {
            let password = secret_from_stdin("git password or access token")?;
            let (all_projects, projects) = scope(projects, all_projects);
            let body = PutGitCredential {
                username,
                password,
                host,
                all_projects,
                projects,
            };
            let answer = ctx.client.put(&["git-credentials", &name], &body).await?;
            done(ctx, &answer, format!("Git credential {name} saved."))
        }
        GitCredentialCommand::Delete { name } => {
            let answer = ctx.client.delete(&["git-credentials", &name], &[]).await?;
            done(ctx, &answer, format!("Git credential {name} deleted."))
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ExecutorCommand {
    List,
    /// Register a Jenkins job as an executor; the API token is read from standard input
    Create {
        name: String,
        /// Jenkins' base URL
        #[arg(long)]
        url: String,
        /// The parameterised job (folders separated by /)
        #[arg(long)]
        job: String,
        #[arg(long)]
        username: String,
        /// A project allowed to use it (repeat; replaces the stored list)
        #[arg(long = "project")]
        projects: Vec<String>,
        /// Every project may use it
        #[arg(long)]
        all_projects: bool,
    },
    /// Register a Kubernetes build runner: each build becomes a Job in NAMESPACE
    /// of the registered CLUSTER
    CreateKubernetes {
        name: String,
        /// A registered cluster
        #[arg(long)]
        cluster: String,
        #[arg(long)]
        namespace: String,
        /// Node selector, `key=value` (repeatable)
        #[arg(long = "node-selector")]
        node_selector: Vec<String>,
        /// Size limit of the workspace emptyDir (default 4Gi)
        #[arg(long)]
        workspace_size: Option<String>,
        /// Memory limit of the build step unless the application sets one
        #[arg(long)]
        memory_limit: Option<String>,
        /// ttlSecondsAfterFinished of the Jobs (default 600)
        #[arg(long)]
        ttl_seconds: Option<i32>,
        /// How long a build may wait for a node before it fails as unschedulable (default 600)
        #[arg(long)]
        queue_timeout_seconds: Option<u64>,
        /// Run build pods in the node's network (single-node clusters on loopback)
        #[arg(long)]
        host_network: bool,
        /// At most this many builds on the runner at once (across Prism instances); more wait in the queue
        #[arg(long, value_name = "N")]
        max_concurrent_builds: Option<u32>,
        /// A dependency cache volume (PersistentVolumeClaim) per application, of this size
        #[arg(long, value_name = "QUANTITY")]
        cache_size: Option<String>,
        /// The cache volumes' storage class (default: the cluster's default class)
        #[arg(long, value_name = "CLASS")]
        cache_storage_class: Option<String>,
        /// ReadWriteOnce (default) or ReadWriteMany
        #[arg(long, value_name = "MODE")]
        cache_access_mode: Option<String>,
        /// A project allowed to build on it (repeat)
        #[arg(long = "project")]
        projects: Vec<String>,
        /// Every project may build on it
        #[arg(long)]
        all_projects: bool,
    },
    Delete {
        name: String,
    },
}

pub async fn executor(ctx: &Ctx, cmd: ExecutorCommand) -> CliResult<()> {
    match cmd {
        ExecutorCommand::List => {
            let answer = ctx.client.get(&["executors"], &[]).await?;
            table(
                ctx,
                &answer,
                &["name", "kind", "url", "job", "username", "all_projects", "projects"],
            )
        }
        ExecutorCommand::Create {
            name,
            url,
            job,
            username,
            projects,
            all_projects,
        } => {
            let token = secret_from_stdin("Jenkins API token")?;
            let (all_projects, projects) = scope(projects, all_projects);
            let body = CreateExecutor {
                name: name.clone(),
                kind: "jenkins".into(),
                url,
                job,
                username,
                token,
                kubernetes: None,
                all_projects,
                projects,
            };
            let answer = ctx.client.post(&["executors"], &body).await?;
            done(ctx, &answer, format!("Executor {name} created."))
        }
        ExecutorCommand::CreateKubernetes {
            name,
            cluster,
            namespace,
            node_selector,
            workspace_size,
            memory_limit,
            ttl_seconds,
            queue_timeout_seconds,
            host_network,
            max_concurrent_builds,
            cache_size,
            cache_storage_class,
            cache_access_mode,
            projects,
            all_projects,
        } => {
            let selector: serde_json::Map<String, serde_json::Value> = node_selector
                .iter()
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (k.to_owned(), json!(v)),
                    None => (p.clone(), json!("")),
                })
                .collect();
            let mut k = json!({"cluster": cluster, "namespace": namespace, "node_selector": selector});
            if let Some(v) = workspace_size {
                k["workspace_size"] = json!(v);
            }
            if let Some(v) = memory_limit {
                k["memory_limit"] = json!(v);
            }
            if let Some(v) = ttl_seconds {
                k["ttl_seconds"] = json!(v);
            }
            if let Some(v) = queue_timeout_seconds {
                k["queue_timeout_seconds"] = json!(v);
            }
            if host_network {
                k["host_network"] = json!(true);
            }
            if let Some(n) = max_concurrent_builds {
                k["max_concurrent_builds"] = json!(n);
            }
            for (key, v) in [
                ("cache_size", cache_size),
                ("cache_storage_class", cache_storage_class),
                ("cache_access_mode", cache_access_mode),
            ] {
                if let Some(v) = v {
                    k[key] = json!(v);
                }
            }
            let (all_projects, projects) = scope(projects, all_projects);
            let body = CreateExecutor {
                name: name.clone(),
                kind: "kubernetes".into(),
                url: String::new(),
                job: String::new(),
                username: String::new(),
                token: String::new(),
                kubernetes: Some(k),
                all_projects,
                projects,
            };
            let answer = ctx.client.post(&["executors"], &body).await?;
            done(ctx, &answer, format!("Kubernetes build runner {name} created."))
        }
        ExecutorCommand::Delete { name } => {
            let answer = ctx.client.delete(&["executors", &name], &[]).await?;
            done(ctx, &answer, format!("Executor {name} deleted."))
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum BaseCommand {
    List,
    /// A base image with its versions and what is still built on an older digest
    Show {
        name: String,
    },
    /// Register a base image; with --recipe Prism builds it, without it the image is used as it is
    Create {
        name: String,
        /// 1 (public base) or 2 (runtime base on a tier-1 parent)
        #[arg(long)]
        tier: i64,
        #[arg(long)]
        parent: Option<String>,
        #[arg(long)]
        registry: String,
        #[arg(long)]
        repository: String,
        #[arg(long, default_value = "latest")]
        tag: String,
        /// A JSON recipe file (- for stdin): rootfs, layers [{source, destination}], config
        #[arg(long)]
        recipe: Option<String>,
    },
    /// Build it again (optionally with a new recipe)
    Build {
        name: String,
        #[arg(long)]
        recipe: Option<String>,
    },
    /// Create rebuild releases for applications still on an older digest, and build them
    RebuildApps {
        name: String,
    },
    Delete {
        name: String,
    },
}

pub async fn base(ctx: &Ctx, cmd: BaseCommand) -> CliResult<()> {
    match cmd {
        BaseCommand::List => {
            let answer = ctx.client.get(&["base-images"], &[]).await?;
            table(
                ctx,
                &answer,
                &["name", "tier", "parent", "repository", "tag", "digest", "build_state"],
            )
        }
        BaseCommand::Show { name } => {
            let answer = ctx.client.get(&["base-images", &name], &[]).await?;
            print_json(&answer);
            Ok(())
        }
        BaseCommand::Create {
            name,
            tier,
            parent,
            registry,
            repository,
            tag,
            recipe,
        } => {
            let body = CreateBase {
                name: name.clone(),
                tier,
                parent,
                registry,
                repository,
                tag,
                recipe: recipe.map(|r| json_file(&r, "recipe")).transpose()?,
            };
            let answer = ctx.client.post(&["base-images"], &body).await?;
            done(ctx, &answer, format!("Base image {name} registered; building it."))
        }
        BaseCommand::Build { name, recipe } => {
            let body = UpdateBase {
                recipe: recipe.map(|r| json_file(&r, "recipe")).transpose()?,
            };
            let answer = ctx.client.post(&["base-images", &name, "build"], &body).await?;
            done(ctx, &answer, format!("Base image {name}: build queued."))
        }
        BaseCommand::RebuildApps { name } => {
            let answer = ctx
                .client
                .post(&["base-images", &name, "rebuild-applications"], &json!({}))
                .await?;
            table(ctx, &answer, &["application", "release", "build"])
        }
        BaseCommand::Delete { name } => {
            let answer = ctx.client.delete(&["base-images", &name], &[]).await?;
            done(ctx, &answer, format!("Base image {name} deleted."))
        }
    }
}
