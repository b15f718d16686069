//! Prism as the one login in front of each cluster's ops tools (the talk's
//! nginx in front of the Dashboard, Prometheus and Grafana).
//!
//! Admins register a tool per cluster (`/tools/CLUSTER/NAME/`, where nginx
//! sends it, which roles may open it). nginx asks [`check`] through
//! `auth_request` before every request to a tool: allowed (with the
//! person's name and roles for nginx to pass upstream, overwriting whatever
//! the client sent), not logged in (401: nginx sends the browser to Prism's
//! login and back), or not allowed (403). [`nginx_config`] writes the
//! configuration that does all that.

use std::fmt::Write as _;

use prism_api::ops_tools::{PutTool, ToolView};
use prism_domain::{Name, Role};
use prism_store::ops_tools::{self as store, OpsTool, ToolFields};
use prism_store::{audit, clusters, projects};
use serde_json::json;

use super::{access, Ctx, OpError, OpResult};
use crate::auth::Caller;
use crate::wire::ToApi;

/// Where the tools live under the front's host.
pub const PREFIX: &str = "/tools/";

const KINDS: [&str; 5] = ["prometheus", "grafana", "dashboard", "headlamp", "other"];

fn path_of(t: &OpsTool) -> String {
    format!("{PREFIX}{}/{}/", t.cluster, t.name)
}

fn view(t: OpsTool) -> OpResult<ToolView> {
    Ok(ToolView {
        roles: t.role_words()?,
        path: path_of(&t),
        tool: t.to_api(),
    })
}

/// The caller's role words in any project, and whether they are an admin.
async fn roles_of(ctx: &Ctx, caller: &Caller) -> OpResult<Vec<String>> {
    let mut c = ctx.store.conn().await?;
    let mut words: Vec<String> = projects::memberships_of(&mut c, caller.user.id)
        .await?
        .into_iter()
        .map(|m| m.role)
        .collect();
    words.sort();
    words.dedup();
    Ok(words)
}

fn may_open(caller: &Caller, held: &[String], tool_roles: &[String]) -> bool {
    caller.is_admin() || tool_roles.iter().any(|r| held.contains(r))
}

/// The tools the caller may open (admins: every one).
pub async fn list(ctx: &Ctx, caller: &Caller) -> OpResult<Vec<ToolView>> {
    let held = roles_of(ctx, caller).await?;
    let tools = store::list(&mut *ctx.store.conn().await?).await?;
    let mut out = vec![];
    for t in tools {
        let v = view(t)?;
        if may_open(caller, &held, &v.roles) {
            out.push(v);
        }
    }
    Ok(out)
}

fn check_upstream(raw: &str) -> OpResult<String> {
    let url = reqwest::Url::parse(raw.trim()).map_err(|e| OpError::invalid("upstream", format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(OpError::invalid(
            "upstream",
            "must be an http:// or https:// URL with a host",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() || url.query().is_some() || url.fragment().is_some() {
        return Err(OpError::invalid(
            "upstream",
            "must not carry a user, password, query or fragment",
        ));
    }
    // It is written into nginx's configuration: nothing that could end a directive.
    let s = url.to_string();
    if format!("{raw}{s}")
        .trim()
        .chars()
        .any(|c| c.is_whitespace() || matches!(c, ';' | '{' | '}' | '"' | '\'' | '$' | '#'))
    {
        return Err(OpError::invalid(
            "upstream",
            "must not contain spaces, quotes, ';', '{', '}', '$' or '#'",
        ));
    }
    Ok(s)
}

/// Registers a tool or changes it (admins).
pub async fn put(ctx: &Ctx, caller: &Caller, cluster: &str, name: &str, req: PutTool) -> OpResult<ToolView> {
    access::require_admin(caller)?;
    let name = Name::parse("name", name)?;
    if !KINDS.contains(&req.kind.as_str()) {
        return Err(OpError::invalid(
            "kind",
            "must be prometheus, grafana, dashboard, headlamp or other",
        ));
    }
    let upstream = check_upstream(&req.upstream)?;
    let mut roles = vec![];
    for (i, r) in req.roles.iter().enumerate() {
        roles.push(Role::parse(&format!("roles[{i}]"), r)?.as_str().to_owned());
    }
    roles.sort();
    roles.dedup();
    if req.description.len() > 500 {
        return Err(OpError::invalid("description", "at most 500 characters"));
    }
    let mut tx = ctx.store.begin().await?;
    let c = clusters::by_name(&mut tx, cluster).await?;
    let roles_json = serde_json::to_string(&roles).expect("roles serialise");
    let created = store::put(
        &mut tx,
        c.id,
        name.as_str(),
        ToolFields {
            kind: &req.kind,
            upstream: &upstream,
            strip_prefix: req.strip_prefix,
            roles: &roles_json,
            description: &req.description,
            updated_by: &caller.user.username,
        },
    )
    .await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        if created { "ops_tool.create" } else { "ops_tool.update" },
        "ops_tool",
        &format!("{}/{}", c.name, name.as_str()),
        json!({"kind": req.kind, "upstream": upstream, "strip_prefix": req.strip_prefix, "roles": roles}),
    )
    .await?;
    let t = store::find(&mut tx, &c.name, name.as_str())
        .await?
        .ok_or_else(|| OpError::not_found("ops tool", name.as_str()))?;
    tx.commit().await?;
    view(t)
}

pub async fn delete(ctx: &Ctx, caller: &Caller, cluster: &str, name: &str) -> OpResult<()> {
    access::require_admin(caller)?;
    let mut tx = ctx.store.begin().await?;
    let t = store::find(&mut tx, cluster, name)
        .await?
        .ok_or_else(|| OpError::not_found("ops tool", name))?;
    store::delete(&mut tx, t.id).await?;
    audit::record(
        &mut tx,
        &caller.origin(),
        "ops_tool.delete",
        "ops_tool",
        &format!("{cluster}/{name}"),
        json!({"kind": t.kind}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// What nginx's `auth_request` gets to know.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Let the request through, with these identity headers for the tool.
    Allow {
        user: String,
        name: String,
        roles: String,
    },
    NotLoggedIn,
    Forbidden,
}

/// The tool a front path names (`/tools/CLUSTER/NAME/...`).
/// A path with dot segments or percent-encoding is never a tool's: nginx
/// picks the location from the normalised path, so only a path that is its
/// own normal form can name the tool nginx is serving. (The generated
/// configuration sends the location's own path, not the client's.)
fn tool_of(uri: &str) -> Option<(&str, &str)> {
    let path = uri.split(['?', '#']).next().unwrap_or(uri);
    if path.contains('%') || path.split('/').any(|seg| seg == "." || seg == "..") {
        return None;
    }
    let rest = path.strip_prefix(PREFIX)?;
    let mut parts = rest.splitn(3, '/');
    let cluster = parts.next().filter(|s| !s.is_empty())?;
    let name = parts.next().filter(|s| !s.is_empty())?;
    Some((cluster, name))
}

/// May the request for `original_uri` (nginx's `X-Original-URI`) go through?
pub async fn check(ctx: &Ctx, caller: Option<&Caller>, original_uri: Option<&str>) -> OpResult<Verdict> {
    let Some(caller) = caller else {
        return Ok(Verdict::NotLoggedIn);
    };
    let Some((cluster, name)) = original_uri.and_then(tool_of) else {
        return Ok(Verdict::Forbidden);
    };
    // `..` or encoded tricks never name a registered tool: the lookup is exact.
    // Asked before every request to a tool: one connection, one read of the memberships.
    let mut c = ctx.store.conn().await?;
    let Some(tool) = store::find(&mut c, cluster, name).await? else {
        return Ok(Verdict::Forbidden);
    };
    let memberships = projects::memberships_of(&mut c, caller.user.id).await?;
    drop(c);
    let held: Vec<String> = memberships.iter().map(|m| m.role.clone()).collect();
    if !may_open(caller, &held, &tool.role_words()?) {
        return Ok(Verdict::Forbidden);
    }
    let mut memberships: Vec<String> = memberships
        .into_iter()
        .map(|m| format!("{}:{}", m.project, m.role))
        .collect();
    if caller.is_admin() {
        memberships.insert(0, "admin".into());
    }
    Ok(Verdict::Allow {
        user: caller.user.username.clone(),
        name: caller.user.display_name.chars().filter(|c| !c.is_control()).collect(),
        roles: memberships.join(","),
    })
}

/// nginx's configuration for the front (admins): Prism at `/`, each tool
/// at its path behind `auth_request`. `prism` is where nginx reaches Prism
/// (`127.0.0.1:8080`), `listen` what it listens on (`80`).
pub async fn nginx_config(ctx: &Ctx, caller: &Caller, prism: &str, listen: &str) -> OpResult<String> {
    access::require_admin(caller)?;
    let ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '-' | '[' | ']'))
    };
    if !ok(prism) {
        return Err(OpError::invalid(
            "prism",
            "host:port where nginx reaches Prism, e.g. 127.0.0.1:8080",
        ));
    }
    if !ok(listen) {
        return Err(OpError::invalid(
            "listen",
            "what nginx listens on, e.g. 80 or 127.0.0.1:8443",
        ));
    }
    let tools = store::list(&mut *ctx.store.conn().await?).await?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# nginx in front of Prism and the ops tools it guards; generated by Prism.\n\
         # Include it in nginx's http block (Debian: /etc/nginx/conf.d/prism.conf).\n\
         # Prism trusts this proxy's X-Forwarded-For when started with\n\
         # PRISM_TRUSTED_PROXY_HEADER=X-Forwarded-For. Add TLS (listen 443 ssl) in production.\n\
         \n\
         map $http_upgrade $prism_connection_upgrade {{\n    default upgrade;\n    ''      close;\n}}\n\
         \n\
         # Prism's session cookie never reaches a tool (with it a tool could act as\n\
         # the person against Prism); the tools' own cookies pass.\n\
         # Two Prism session cookies (one planted by a tool under its own path): refused.\n\
         map $http_cookie $prism_cookie_twice {{\n    default 0;\n    \"~prism_session=.*prism_session=\" 1;\n}}\n\
         \n\
         map $http_cookie $prism_tool_cookie {{\n    default $http_cookie;\n    \"~^(?<prism_c1>.*?)(?:^|;\\s*)prism_session=[^;]*(?<prism_c2>.*)$\" \"$prism_c1$prism_c2\";\n}}\n\
         \n\
         upstream prism {{\n    server {prism};\n}}\n\
         \n\
         server {{\n    listen {listen};\n\
         \n    location / {{\n        proxy_pass http://prism;\n        proxy_http_version 1.1;\n        proxy_set_header Host $host;\n        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n        proxy_set_header X-Forwarded-Proto $scheme;\n        # Live pages stream (server-sent events).\n        proxy_buffering off;\n        proxy_read_timeout 1h;\n    }}\n\
         \n    # Asked before every request to a tool: 2xx allow, 401 log in, 403 not allowed.\n    location = /_prism_auth {{\n        internal;\n        proxy_pass http://prism/auth/ops/check;\n        proxy_pass_request_body off;\n        proxy_set_header Content-Length \"\";\n        # The tool's own location path (set there), not the client's raw URI:\n        # nginx chose the location from the normalised path.\n        proxy_set_header X-Original-URI $prism_tool;\n        # Only Prism's session decides; a tool's own Authorization header is not Prism's.\n        proxy_set_header Authorization \"\";\n        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n    }}\n\
         \n    # Not logged in: Prism's login, then back to the tool.\n    location @prism_login {{\n        return 302 /login?next=$request_uri;\n    }}"
    );
    for t in &tools {
        let path = path_of(t);
        let roles = t.role_words()?.join(", ");
        let pass = if t.strip_prefix != 0 {
            // A trailing slash makes nginx replace the location's prefix.
            format!("{}/", t.upstream.trim_end_matches('/'))
        } else {
            t.upstream.trim_end_matches('/').to_owned()
        };
        let _ = writeln!(
            out,
            "\n    # {kind} of cluster {cluster} ({who}).\n    location {path} {{\n        set $prism_tool {path};\n        if ($prism_cookie_twice) {{\n            return 400;\n        }}\n        auth_request /_prism_auth;\n        auth_request_set $prism_user $upstream_http_x_auth_user;\n        auth_request_set $prism_name $upstream_http_x_auth_name;\n        auth_request_set $prism_roles $upstream_http_x_auth_roles;\n        error_page 401 = @prism_login;\n        # Set here, so whatever a client sent under these names is replaced.\n        proxy_set_header X-Auth-User $prism_user;\n        proxy_set_header X-Auth-Name $prism_name;\n        proxy_set_header X-Auth-Roles $prism_roles;\n        proxy_set_header X-WEBAUTH-USER $prism_user;\n        proxy_set_header Cookie $prism_tool_cookie;\n        proxy_set_header Host $proxy_host;\n        proxy_http_version 1.1;\n        proxy_set_header Upgrade $http_upgrade;\n        proxy_set_header Connection $prism_connection_upgrade;\n        proxy_pass {pass};\n    }}",
            kind = t.kind,
            cluster = t.cluster,
            who = if roles.is_empty() { "admins".to_owned() } else { format!("admins and {roles}") },
        );
    }
    out.push_str("}\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_front_path_names_cluster_and_tool_exactly() {
        assert_eq!(
            tool_of("/tools/edge/prometheus/graph?g0.expr=up"),
            Some(("edge", "prometheus"))
        );
        assert_eq!(tool_of("/tools/edge/grafana/"), Some(("edge", "grafana")));
        assert_eq!(tool_of("/tools/edge/grafana?x=1"), Some(("edge", "grafana")));
        assert_eq!(tool_of("/tools/edge/"), None);
        assert_eq!(tool_of("/tools//x/"), None);
        assert_eq!(tool_of("/api/v1/me"), None);
        // Dot segments and encodings name no tool: nginx would have served another location.
        assert_eq!(tool_of("/tools/edge/grafana/../prometheus/api"), None);
        assert_eq!(tool_of("/tools/edge/../../api/"), None);
        assert_eq!(tool_of("/tools/edge/grafana/%2e%2e/prometheus/"), None);
        assert_eq!(tool_of("/tools/edge/./grafana/"), None);
    }

    #[test]
    fn upstreams_cannot_inject_nginx_directives() {
        assert!(check_upstream("http://prometheus.monitoring:9090").is_ok());
        for bad in [
            "ftp://x",
            "http://u:p@x/",
            "http://x/?q=1",
            "http://x/a;b",
            "http://x/$host",
            "http://x/ {",
            "not a url",
        ] {
            assert!(check_upstream(bad).is_err(), "{bad}");
        }
    }
}
