//! `prism login`, `prism logout` and `prism whoami`.

use prism_api::sessions::{CliLoginPollRequest, CliLoginStarted, Me, StartCliLogin, TokenLoginRequest};
use prism_api::tokens::NewToken;
use serde_json::json;

use crate::client::{parse_server_url, Client};
use crate::config::{self, Credentials};
use crate::context::{Ctx, GlobalArgs};
use crate::error::{CliError, CliResult};
use crate::input;
use crate::output::{self, line, opt_time, print_fields, print_json, yes_no};

#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// The server, e.g. https://prism.example.com
    pub url: String,
    /// Your username (asked for when left out)
    #[arg(long, short = 'u')]
    pub username: Option<String>,
    /// Read the password from standard input instead of asking for it
    #[arg(long)]
    pub password_stdin: bool,
    /// Log in through a browser instead (single sign-on, or any login the
    /// console accepts): prints a page and a code to approve there
    #[arg(long, conflicts_with_all = ["username", "password_stdin", "expires_in_days"])]
    pub sso: bool,
    /// A name for the token, e.g. the machine it is for (default: cli)
    #[arg(long)]
    pub name: Option<String>,
    /// Days until the token expires (1 to 365; default 30)
    #[arg(long, value_name = "DAYS")]
    pub expires_in_days: Option<i64>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

pub async fn login(args: LoginArgs) -> CliResult<()> {
    let parsed = parse_server_url(&args.url)?;
    let url = config::normalise_url(&args.url);
    if parsed.scheme() == "http" && !is_loopback(&parsed) {
        eprintln!("warning: {url} is not https://; the password and token travel unencrypted");
    }
    if args.sso {
        return login_in_browser(args, url).await;
    }
    let username = match args.username {
        Some(u) => u,
        None if args.password_stdin => return Err(CliError::usage("--password-stdin needs --username")),
        None => input::prompt_line("Username: ")?,
    };
    let password = if args.password_stdin {
        input::secret_from_stdin("password")?
    } else {
        input::prompt_secret("Password: ")?
    };
    let client = Client::new(&url, None)?;
    let body = TokenLoginRequest {
        username: username.clone(),
        password,
        name: args.name,
        expires_in_days: args.expires_in_days,
    };
    let answer = client.post(&["auth", "token"], &body).await?;
    let new: NewToken = output::parse(&answer)?;
    let previous = config::load().ok().flatten();
    let path = config::save(&Credentials {
        url: url.clone(),
        token: new.secret,
        token_id: Some(new.token.id),
        username: Some(username.clone()),
    })?;
    revoke_replaced(previous, &url).await;
    if args.global.output == output::Format::Json {
        print_json(&json!({"url": url, "username": username, "token": answer["token"], "credentials": path}));
    } else {
        line(format!("Logged in to {url} as {username}."));
        line(format!(
            "Token {} ({}) expires {}; stored in {}.",
            new.token.id,
            new.token.name,
            opt_time(new.token.expires_at),
            path.display()
        ));
    }
    Ok(())
}

/// `prism login --sso`: the server gives a code and a page; the person
/// approves the login there (in a browser where they are, or get, logged
/// in); meanwhile this polls with a secret only it holds, and stores the
/// token it then receives.
async fn login_in_browser(args: LoginArgs, url: String) -> CliResult<()> {
    let client = Client::new(&url, None)?;
    let answer = client
        .post(&["auth", "cli-login"], &StartCliLogin { name: args.name })
        .await?;
    let started: CliLoginStarted = output::parse(&answer)?;
    let page = started
        .verify_url
        .clone()
        .unwrap_or_else(|| format!("{url}{}", started.verify_path));
    eprintln!("Open this page in a browser and log in there if asked:\n\n  {page}\n");
    eprintln!(
        "Then type this code there and approve:\n\n  {}\n\nWaiting...",
        started.user_code
    );
    let poll = CliLoginPollRequest {
        poll_secret: started.poll_secret,
    };
    let approved = loop {
        tokio::time::sleep(std::time::Duration::from_secs(started.interval_seconds.max(1))).await;
        let a = client.post(&["auth", "cli-login", "poll"], &poll).await?;
        match a["status"].as_str() {
            Some("approved") => break a,
            Some("pending") if chrono::Utc::now().timestamp_millis() < started.expires_at => continue,
            Some("pending") => {
                return Err(CliError::usage(
                    "nobody approved the login within 10 minutes; run prism login --sso again",
                ))
            }
            _ => return Err(CliError::usage(format!("unexpected answer from the server: {a}"))),
        }
    };
    let username = approved["username"].as_str().unwrap_or_default().to_owned();
    let previous = config::load().ok().flatten();
    let path = config::save(&Credentials {
        url: url.clone(),
        token: approved["secret"].as_str().unwrap_or_default().to_owned(),
        token_id: approved["token_id"].as_i64(),
        username: Some(username.clone()),
    })?;
    revoke_replaced(previous, &url).await;
    if args.global.output == output::Format::Json {
        print_json(&json!({"url": url, "username": username, "token_id": approved["token_id"], "credentials": path}));
    } else {
        line(format!("Logged in to {url} as {username}."));
        line(format!(
            "Token {} expires {}; stored in {}.",
            approved["token_id"],
            opt_time(approved["expires_at"].as_i64()),
            path.display()
        ));
    }
    Ok(())
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or("");
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Logging in again replaces the stored token; revoke the old one on the
/// same server so that tokens do not pile up. Best effort.
async fn revoke_replaced(previous: Option<Credentials>, url: &str) {
    let Some(old) = previous.filter(|c| config::normalise_url(&c.url) == url) else {
        return;
    };
    let Some(id) = old.token_id else { return };
    if let Ok(client) = Client::new(url, Some(old.token)) {
        let _ = client.delete(&["tokens", &id.to_string()], &[]).await;
    }
}

pub async fn logout(global: GlobalArgs) -> CliResult<()> {
    let Some(creds) = config::load()? else {
        return Err(CliError::usage("not logged in: run `prism login URL`"));
    };
    let url = config::normalise_url(&creds.url);
    let revoked = match creds.token_id {
        Some(id) => {
            let client = Client::new(&url, Some(creds.token))?;
            match client.delete(&["tokens", &id.to_string()], &[]).await {
                Ok(_) => Ok(Some(id)),
                // Already revoked or expired: nothing left to do on the server.
                Err(CliError::Api { status: 401 | 404, .. }) => Ok(None),
                Err(e) => Err(e),
            }
        }
        None => Ok(None),
    };
    // Forget the token locally in any case: that is what the user asked for.
    config::delete()?;
    let revoked = revoked.inspect_err(|_| {
        let id = creds.token_id.map(|i| i.to_string()).unwrap_or_default();
        eprintln!("warning: forgot the stored token, but could not revoke it on {url}; once logged in again, run `prism token revoke {id}`");
    })?;
    if global.output == output::Format::Json {
        print_json(&json!({"url": url, "revoked_token": revoked}));
    } else {
        match revoked {
            Some(id) => line(format!("Logged out of {url}; token {id} revoked.")),
            None => line(format!("Logged out of {url}.")),
        }
    }
    Ok(())
}

pub async fn whoami(ctx: &Ctx) -> CliResult<()> {
    let answer = ctx.client.get(&["me"], &[]).await?;
    super::show(ctx, &answer, |me: Me| {
        let roles: Vec<String> = me
            .memberships
            .iter()
            .map(|m| format!("{}: {}", m.project, m.role))
            .collect();
        print_fields(&[
            ("Server", ctx.client.server()),
            ("Username", me.user.username),
            ("Display name", output::opt(Some(&me.user.display_name))),
            ("Admin", yes_no(me.user.is_admin)),
            ("Roles", if roles.is_empty() { "-".into() } else { roles.join("\n") }),
        ]);
    })
}
