//! `prism cluster ...`: the Kubernetes clusters Prism deploys to. The CA
//! certificate, token and kubeconfig are read from files (or `-` for
//! standard input), never from arguments.

use clap::Subcommand;
use prism_api::clusters::{Cluster, CreateCluster, Health, UpdateCluster};
use prism_api::rollouts::{PrometheusRequest, PrometheusSetting};

use crate::context::{Ctx, GlobalArgs};
use crate::error::{CliError, CliResult};
use crate::input::{at_most_one_stdin, read_file};
use crate::output::{list_table, opt, parse, print_fields, print_json, print_table, time, yes_no};

#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    pub command: ClusterCommand,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// List clusters
    List,
    /// Show one cluster
    Show { name: String },
    /// Add a cluster, from its API URL (and CA, token) or from a kubeconfig
    Create {
        name: String,
        /// The API server, e.g. https://10.0.0.1:6443
        #[arg(
            long,
            value_name = "URL",
            required_unless_present = "kubeconfig",
            conflicts_with = "kubeconfig"
        )]
        api_url: Option<String>,
        /// A file with the API server's PEM CA certificate (- for stdin)
        #[arg(long, value_name = "PATH", conflicts_with = "kubeconfig")]
        ca_file: Option<String>,
        /// A file with the bearer token Prism deploys with (- for stdin)
        #[arg(long, value_name = "PATH", conflicts_with = "kubeconfig")]
        token_file: Option<String>,
        /// Do not verify the API server's certificate (testing only)
        #[arg(long)]
        insecure_skip_tls_verify: bool,
        /// Import the server, CA and token from a kubeconfig file (- for stdin)
        #[arg(long, value_name = "PATH")]
        kubeconfig: Option<String>,
        /// The kubeconfig context to import (default: its current-context)
        #[arg(long, value_name = "CTX", requires = "kubeconfig")]
        context: Option<String>,
    },
    /// Change a cluster's API URL, CA certificate, token or TLS checking
    Update {
        name: String,
        #[arg(long, value_name = "URL")]
        api_url: Option<String>,
        /// A file with the new PEM CA certificate (- for stdin)
        #[arg(long, value_name = "PATH")]
        ca_file: Option<String>,
        /// A file with the new bearer token (- for stdin)
        #[arg(long, value_name = "PATH")]
        token_file: Option<String>,
        #[arg(long, value_name = "true|false")]
        insecure_skip_tls_verify: Option<bool>,
    },
    /// Delete a cluster
    Delete { name: String },
    /// Check that Prism can reach a cluster with its stored credentials (exit 1 when not)
    Health { name: String },
    /// The cluster's Prometheus, which canary and blue-green metric gates ask
    /// (without options: show it)
    Prometheus {
        name: String,
        /// The Prometheus server's base URL, e.g. http://prometheus.monitoring:9090
        #[arg(long, value_name = "URL", conflicts_with = "remove")]
        url: Option<String>,
        /// Basic auth user (the password is read from --password-file)
        #[arg(long, requires = "password_file", requires = "url")]
        username: Option<String>,
        /// A file with the basic auth password (- for stdin)
        #[arg(long, value_name = "PATH", requires = "username")]
        password_file: Option<String>,
        /// A file with a bearer token (- for stdin)
        #[arg(long, value_name = "PATH", conflicts_with = "username", requires = "url")]
        token_file: Option<String>,
        /// Remove the cluster's Prometheus
        #[arg(long)]
        remove: bool,
    },
}

pub async fn run(ctx: &Ctx, cmd: ClusterCommand) -> CliResult<()> {
    match cmd {
        ClusterCommand::List => {
            let answer = ctx.client.get(&["clusters"], &[]).await?;
            super::show(ctx, &answer, |clusters: Vec<Cluster>| {
                let mut t = list_table(&["NAME", "API URL", "CA", "SKIP TLS VERIFY", "UPDATED"]);
                for c in clusters {
                    t.add_row(vec![
                        c.name,
                        c.api_url,
                        yes_no(c.ca_cert.is_some()),
                        yes_no(c.insecure_skip_tls_verify),
                        time(c.updated_at),
                    ]);
                }
                print_table(&t);
            })
        }
        ClusterCommand::Show { name } => {
            let answer = ctx.client.get(&["clusters", &name], &[]).await?;
            super::show(ctx, &answer, print_cluster)
        }
        ClusterCommand::Create {
            name,
            api_url,
            ca_file,
            token_file,
            insecure_skip_tls_verify,
            kubeconfig,
            context,
        } => {
            at_most_one_stdin(&[ca_file.as_deref(), token_file.as_deref(), kubeconfig.as_deref()])?;
            let body = CreateCluster {
                name,
                api_url,
                ca_cert: ca_file.map(|p| read_file(&p, "CA certificate")).transpose()?,
                token: token_file.map(|p| read_token(&p)).transpose()?,
                insecure_skip_tls_verify,
                kubeconfig: kubeconfig.map(|p| read_file(&p, "kubeconfig")).transpose()?,
                context,
            };
            let answer = ctx.client.post(&["clusters"], &body).await?;
            super::show(ctx, &answer, print_cluster)
        }
        ClusterCommand::Update {
            name,
            api_url,
            ca_file,
            token_file,
            insecure_skip_tls_verify,
        } => {
            at_most_one_stdin(&[ca_file.as_deref(), token_file.as_deref()])?;
            let body = UpdateCluster {
                api_url,
                ca_cert: ca_file.map(|p| read_file(&p, "CA certificate")).transpose()?,
                token: token_file.map(|p| read_token(&p)).transpose()?,
                insecure_skip_tls_verify,
            };
            if body.api_url.is_none()
                && body.ca_cert.is_none()
                && body.token.is_none()
                && body.insecure_skip_tls_verify.is_none()
            {
                return Err(CliError::usage(
                    "nothing to update: give --api-url, --ca-file, --token-file or --insecure-skip-tls-verify",
                ));
            }
            let answer = ctx.client.patch(&["clusters", &name], &body).await?;
            super::show(ctx, &answer, print_cluster)
        }
        ClusterCommand::Prometheus {
            name,
            url,
            username,
            password_file,
            token_file,
            remove,
        } => {
            at_most_one_stdin(&[password_file.as_deref(), token_file.as_deref()])?;
            prometheus(ctx, name, url, username, password_file, token_file, remove).await
        }
        ClusterCommand::Delete { name } => {
            let answer = ctx.client.delete(&["clusters", &name], &[]).await?;
            super::done(ctx, &answer, format!("Deleted cluster {name}."));
            Ok(())
        }
        ClusterCommand::Health { name } => {
            let answer = ctx.client.get(&["clusters", &name, "health"], &[]).await?;
            let health: Health = parse(&answer)?;
            if ctx.json() {
                print_json(&answer);
            } else {
                print_fields(&[
                    ("Cluster", name.clone()),
                    ("Healthy", yes_no(health.ok)),
                    ("Version", opt(health.version.as_deref())),
                    ("Error", opt(health.error.as_deref())),
                ]);
            }
            if health.ok {
                Ok(())
            } else {
                Err(CliError::failed(format!(
                    "cluster {name} is not healthy: {}",
                    health.error.as_deref().unwrap_or("no reason given")
                )))
            }
        }
    }
}

async fn prometheus(
    ctx: &Ctx,
    name: String,
    url: Option<String>,
    username: Option<String>,
    password_file: Option<String>,
    token_file: Option<String>,
    remove: bool,
) -> CliResult<()> {
    let path = ["clusters", name.as_str(), "prometheus"];
    if remove {
        let answer = ctx.client.delete(&path, &[]).await?;
        super::done(ctx, &answer, format!("Cluster {name} has no Prometheus now."));
        return Ok(());
    }
    let answer = match url {
        None => ctx.client.get(&path, &[]).await?,
        Some(url) => {
            let body = PrometheusRequest {
                url,
                username,
                password: password_file.map(|p| read_token(&p)).transpose()?,
                token: token_file.map(|p| read_token(&p)).transpose()?,
            };
            ctx.client.put(&path, &body).await?
        }
    };
    super::show(ctx, &answer, |p: PrometheusSetting| {
        print_fields(&[
            ("Cluster", p.cluster),
            ("Prometheus", opt(p.url.as_deref())),
            ("Auth", p.auth),
        ])
    })
}

/// A token file's content, without the surrounding whitespace editors add.
fn read_token(path: &str) -> CliResult<String> {
    Ok(read_file(path, "token")?.trim().to_owned())
}

fn print_cluster(c: Cluster) {
    let ca = match &c.ca_cert {
        Some(pem) => format!("set ({} bytes of PEM)", pem.len()),
        None => "-".into(),
    };
    print_fields(&[
        ("Name", c.name),
        ("API URL", c.api_url),
        ("CA certificate", ca),
        ("Skip TLS verify", yes_no(c.insecure_skip_tls_verify)),
        ("Created", time(c.created_at)),
        ("Updated", time(c.updated_at)),
    ]);
}
