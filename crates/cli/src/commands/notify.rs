//! `prism notify ...`: notification channels (admins: `channel list`,
//! `show`, `set`, `delete`, `test`, and each channel's `deliveries`) and a
//! project's subscriptions (its operators: `subscriptions`, `subscribe`,
//! `unsubscribe`). A channel's URL (robots' URLs carry their token) and its
//! secret are read from standard input, never from the command line (where
//! shell history and `ps` would keep them), and never printed: Prism does
//! not give them back.

use clap::Subcommand;
use prism_api::notifications::{ChannelView, Delivery, PutSubscription, Subscription, TestMessage};
use serde_json::json;

use crate::context::{Ctx, GlobalArgs};
use crate::error::{CliError, CliResult};
use crate::output::{line, list_table, opt, opt_time, print_fields, print_table, short, time, yes_no};

#[derive(Debug, clap::Args)]
pub struct NotifyArgs {
    #[command(subcommand)]
    pub command: NotifyCommand,
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// The receivers Prism can send to (the API's `kind`).
const KINDS: [&str; 6] = ["webhook", "slack", "dingtalk", "feishu", "wecom", "email"];

#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Notification channels: where messages go (admins; others list the
    /// channels their projects may subscribe to)
    #[command(subcommand)]
    Channel(ChannelCommand),
    /// A channel's delivery log, newest first: status, response code,
    /// attempts, next retry, error (admins)
    Deliveries {
        /// The channel
        name: String,
        /// At most this many (1 to 500; default 50)
        #[arg(long, value_name = "N")]
        limit: Option<i64>,
    },
    /// A project's subscriptions: which channel hears of which events
    Subscriptions {
        /// The project
        project: String,
    },
    /// Subscribe a channel to a project's events, or change the events or
    /// language of its subscription (the project's operators)
    Subscribe {
        /// The project
        project: String,
        /// The channel (one for every project, or this project's own)
        channel: String,
        /// Comma-separated: build_failed, build_succeeded, deploy_awaiting_approval,
        /// deploy_succeeded, deploy_failed, auto_rollback, hold_placed, hold_overridden, freeze_broken
        #[arg(long, value_delimiter = ',', required = true, value_name = "EVENT,...")]
        events: Vec<String>,
        /// The messages' language: en (default) or zh-CN
        #[arg(long, value_name = "LANG")]
        language: Option<String>,
    },
    /// End a project's subscription of a channel (the project's operators)
    Unsubscribe {
        /// The project
        project: String,
        /// The channel
        channel: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ChannelCommand {
    /// List the channels (admins also see where each goes and who subscribes)
    List,
    /// Show one channel: kind, target (scheme and host only), settings (admins)
    Show { name: String },
    /// Create or replace a channel (admins). The URL and the secret come from
    /// standard input (with both flags: the URL on the first line, the secret
    /// on the second); left out, the stored ones are kept. The other settings
    /// are replaced by what is given here.
    Set {
        name: String,
        #[arg(long, value_parser = KINDS)]
        kind: String,
        /// Read the receiver's URL from standard input (every kind but email)
        #[arg(long)]
        url_stdin: bool,
        /// Read the signing secret (webhook, dingtalk, feishu) or the SMTP
        /// password (email) from standard input
        #[arg(long, conflicts_with = "clear_secret")]
        secret_stdin: bool,
        /// Remove the stored secret (messages go unsigned)
        #[arg(long)]
        clear_secret: bool,
        /// Only this project may subscribe to it (default: every project)
        #[arg(long)]
        project: Option<String>,
        /// Email: the SMTP server's host name or address
        #[arg(long, value_name = "HOST")]
        smtp_host: Option<String>,
        /// Email: the SMTP server's port (default 587)
        #[arg(long, value_name = "PORT", requires = "smtp_host")]
        smtp_port: Option<u16>,
        /// Email: starttls (default), tls (TLS from the first byte) or none
        #[arg(long, value_name = "MODE", requires = "smtp_host")]
        smtp_tls: Option<String>,
        /// Email: sign in as this user (its password with --secret-stdin)
        #[arg(long, value_name = "USER", requires = "smtp_host")]
        smtp_username: Option<String>,
        /// Email: the sender, e.g. 'Prism <prism@example.com>'
        #[arg(long, value_name = "ADDRESS", requires = "smtp_host")]
        from: Option<String>,
        /// Email: a recipient (repeatable, or comma-separated)
        #[arg(long, value_delimiter = ',', value_name = "ADDRESS", requires = "smtp_host")]
        to: Vec<String>,
    },
    /// Remove a channel and its delivery log (admins); refused while a project subscribes to it
    Delete { name: String },
    /// Send a test message now and show how it went (admins); exits 1 when
    /// it was not delivered
    Test {
        name: String,
        /// en (default) or zh-CN
        #[arg(long, value_name = "LANG")]
        language: Option<String>,
    },
}

pub async fn run(ctx: &Ctx, cmd: NotifyCommand) -> CliResult<()> {
    match cmd {
        NotifyCommand::Channel(cmd) => channel(ctx, cmd).await,
        NotifyCommand::Deliveries { name, limit } => {
            let query = [("limit", limit.map(|l| l.to_string()))];
            let answer = ctx
                .client
                .get(&["notification-channels", &name, "deliveries"], &query)
                .await?;
            super::show(ctx, &answer, |list: Vec<Delivery>| print_deliveries(&name, list))
        }
        NotifyCommand::Subscriptions { project } => {
            let answer = ctx.client.get(&["projects", &project, "subscriptions"], &[]).await?;
            super::show(ctx, &answer, |list: Vec<Subscription>| {
                if list.is_empty() {
                    line(format!("Project {project} has no subscriptions."));
                    return;
                }
                let mut t = list_table(&["CHANNEL", "KIND", "EVENTS", "LANGUAGE", "CHANGED BY", "CHANGED"]);
                for s in list {
                    t.add_row(vec![
                        s.channel,
                        s.channel_kind,
                        s.events.join(","),
                        s.language,
                        s.updated_by,
                        time(s.updated_at),
                    ]);
                }
                print_table(&t);
            })
        }
        NotifyCommand::Subscribe {
            project,
            channel,
            events,
            language,
        } => {
            let body = PutSubscription { events, language };
            let answer = ctx
                .client
                .put(&["projects", &project, "subscriptions", &channel], &body)
                .await?;
            super::show(ctx, &answer, |s: Subscription| {
                line(format!(
                    "Channel {} hears of {} in project {} ({}).",
                    s.channel,
                    s.events.join(", "),
                    s.project,
                    s.language
                ));
            })
        }
        NotifyCommand::Unsubscribe { project, channel } => {
            let answer = ctx
                .client
                .delete(&["projects", &project, "subscriptions", &channel], &[])
                .await?;
            super::done(
                ctx,
                &answer,
                format!("Project {project} no longer notifies channel {channel}."),
            );
            Ok(())
        }
    }
}

async fn channel(ctx: &Ctx, cmd: ChannelCommand) -> CliResult<()> {
    match cmd {
        ChannelCommand::List => {
            let answer = ctx.client.get(&["notification-channels"], &[]).await?;
            super::show(ctx, &answer, |list: Vec<ChannelView>| {
                if list.is_empty() {
                    line("No notification channels.");
                    return;
                }
                let mut t = list_table(&["NAME", "KIND", "FOR PROJECT", "TARGET", "SIGNED", "SUBSCRIBED BY"]);
                for c in list {
                    t.add_row(vec![
                        c.name,
                        c.kind.to_string(),
                        c.project.unwrap_or_else(|| "(all)".into()),
                        opt(c.target.as_deref()),
                        yes_no(c.has_secret),
                        c.subscribed_by.map_or_else(|| "-".into(), |p| opt(Some(&p.join(",")))),
                    ]);
                }
                print_table(&t);
            })
        }
        ChannelCommand::Show { name } => {
            let answer = ctx.client.get(&["notification-channels", &name], &[]).await?;
            super::show(ctx, &answer, print_channel)
        }
        ChannelCommand::Set {
            name,
            kind,
            url_stdin,
            secret_stdin,
            clear_secret,
            project,
            smtp_host,
            smtp_port,
            smtp_tls,
            smtp_username,
            from,
            to,
        } => {
            let email = kind == "email";
            if email && url_stdin {
                return Err(CliError::usage(
                    "an email channel has no URL: give --smtp-host, --from and --to",
                ));
            }
            if email && (smtp_host.is_none() || from.is_none() || to.is_empty()) {
                return Err(CliError::usage(
                    "an email channel needs its SMTP settings: --smtp-host, --from and --to",
                ));
            }
            if !email && smtp_host.is_some() {
                return Err(CliError::usage(format!(
                    "only email channels have SMTP settings, not {kind}"
                )));
            }
            let (url, secret) = match (url_stdin, secret_stdin) {
                (true, true) => {
                    let lines = crate::input::lines_from_stdin("URL and secret")?;
                    match lines.as_slice() {
                        [url, secret, rest @ ..]
                            if !url.is_empty() && !secret.is_empty() && rest.iter().all(String::is_empty) =>
                        {
                            (Some(url.clone()), Some(secret.clone()))
                        }
                        _ => {
                            return Err(CliError::usage(
                                "with --url-stdin and --secret-stdin, standard input holds the URL on its first line and the secret on its second",
                            ))
                        }
                    }
                }
                (true, false) => (Some(crate::input::secret_from_stdin("URL")?), None),
                (false, true) => (None, Some(crate::input::secret_from_stdin("secret")?)),
                (false, false) => (None, None),
            };
            // JSON, not `PutChannel`: the kind word and the SMTP defaults
            // (port, TLS) are the server's to judge and fill in.
            let mut body = json!({"kind": kind, "project": project});
            if let Some(u) = url {
                body["url"] = json!(u);
            }
            if let Some(s) = secret {
                body["secret"] = json!(s);
            }
            if clear_secret {
                body["clear_secret"] = json!(true);
            }
            if let Some(host) = smtp_host {
                let mut e = json!({"host": host, "from": from, "to": to, "username": smtp_username});
                if let Some(p) = smtp_port {
                    e["port"] = json!(p);
                }
                if let Some(t) = smtp_tls {
                    e["tls"] = json!(t);
                }
                body["email"] = e;
            }
            let answer = ctx.client.put(&["notification-channels", &name], &body).await?;
            super::show(ctx, &answer, |c: ChannelView| {
                line(format!("Saved the {} channel {}.", c.kind, c.name));
                print_channel(c);
            })
        }
        ChannelCommand::Delete { name } => {
            let answer = ctx.client.delete(&["notification-channels", &name], &[]).await?;
            super::done(ctx, &answer, format!("Deleted the notification channel {name}."));
            Ok(())
        }
        ChannelCommand::Test { name, language } => {
            let body = TestMessage { language };
            let answer = ctx
                .client
                .post(&["notification-channels", &name, "test"], &body)
                .await?;
            let d: Delivery = crate::output::parse(&answer)?;
            if ctx.json() {
                crate::output::print_json(&answer);
            } else {
                print_fields(&[
                    ("Delivery", d.delivery.clone()),
                    ("Status", d.status.clone()),
                    ("Response", code(d.response_code)),
                    ("Error", opt(d.error.as_deref())),
                ]);
            }
            if d.status == "delivered" {
                Ok(())
            } else {
                Err(not_delivered(&name, &d))
            }
        }
    }
}

fn not_delivered(name: &str, d: &Delivery) -> CliError {
    CliError::failed(format!(
        "the test message to {name} was not delivered ({}{}){}",
        d.status,
        d.response_code.map(|c| format!(", HTTP {c}")).unwrap_or_default(),
        d.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default()
    ))
}

fn code(c: Option<i64>) -> String {
    c.map_or_else(|| "-".into(), |c| c.to_string())
}

fn print_channel(c: ChannelView) {
    let mut fields = vec![
        ("Name", c.name),
        ("Kind", c.kind.to_string()),
        ("For project", c.project.unwrap_or_else(|| "(all projects)".into())),
        ("Target", opt(c.target.as_deref())),
        ("Secret stored", yes_no(c.has_secret)),
    ];
    if let Some(e) = c.email {
        fields.push(("SMTP server", format!("{}:{} ({})", e.host, e.port, e.tls)));
        fields.push(("SMTP user", opt(e.username.as_deref())));
        fields.push(("From", e.from));
        fields.push(("To", e.to.join(", ")));
    }
    if let Some(p) = c.subscribed_by {
        fields.push(("Subscribed by", if p.is_empty() { "-".into() } else { p.join(", ") }));
    }
    fields.push(("Created", format!("{} by {}", time(c.created_at), c.created_by)));
    fields.push(("Changed", time(c.updated_at)));
    print_fields(&fields);
}

fn print_deliveries(channel: &str, list: Vec<Delivery>) {
    if list.is_empty() {
        line(format!("Nothing was sent to {channel} yet."));
        return;
    }
    let mut t = list_table(&[
        "ID",
        "CREATED",
        "EVENT",
        "PROJECT",
        "LANGUAGE",
        "STATUS",
        "CODE",
        "ATTEMPTS",
        "NEXT RETRY",
        "ERROR",
    ]);
    for d in list {
        t.add_row(vec![
            d.id.to_string(),
            time(d.created_at),
            d.event,
            opt(d.project.as_deref()),
            d.language,
            d.status,
            code(d.response_code),
            d.attempts.to_string(),
            opt_time(d.next_retry_at),
            d.error.as_deref().map_or("-".into(), |e| short(e, 60)),
        ]);
    }
    print_table(&t);
}
