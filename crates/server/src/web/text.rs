//! Every piece of interface text, keyed by message id. Templates ask for
//! text with `t("message.id")`; a test checks that each id they use is here
//! and that every translation has the same ids. The language is chosen per
//! request (the `prism_lang` cookie, else Accept-Language) and held in a
//! task-local while the page renders.

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use axum_extra::extract::CookieJar;

pub use super::text_zh_cn::ZH_CN;

pub const LANG_COOKIE: &str = "prism_lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    ZhCn,
}

impl Lang {
    pub fn parse(code: &str) -> Option<Lang> {
        match code.trim().to_ascii_lowercase().as_str() {
            "en" => Some(Lang::En),
            "zh-cn" | "zh" => Some(Lang::ZhCn),
            _ => None,
        }
    }

    /// The first language of an Accept-Language header we have, else English.
    fn from_accept(header: &str) -> Lang {
        header
            .split(',')
            .map(|part| part.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
            .find_map(|tag| {
                if tag.starts_with("zh") {
                    Some(Lang::ZhCn)
                } else if tag.starts_with("en") {
                    Some(Lang::En)
                } else {
                    None
                }
            })
            .unwrap_or(Lang::En)
    }
}

tokio::task_local! {
    static LANG: Lang;
}

/// Middleware: the request's language for everything rendered while it runs.
pub async fn with_language(req: Request, next: Next) -> Response {
    let jar = CookieJar::from_headers(req.headers());
    let lang = jar
        .get(LANG_COOKIE)
        .and_then(|c| Lang::parse(c.value()))
        .unwrap_or_else(|| {
            let accept = req
                .headers()
                .get(axum::http::header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            Lang::from_accept(accept)
        });
    LANG.scope(lang, next.run(req)).await
}

fn current() -> Lang {
    LANG.try_with(|l| *l).unwrap_or(Lang::En)
}

pub const EN: &[(&str, &str)] = &[
    ("lang", "en"),
    // navigation and layout
    ("nav.dashboard", "Dashboard"),
    ("nav.apps", "Applications"),
    ("nav.releases", "Releases"),
    ("nav.tokens", "API tokens"),
    ("nav.audit", "Audit log"),
    ("nav.users", "Users"),
    ("nav.projects", "Projects"),
    ("nav.clusters", "Clusters"),
    ("nav.environments", "Environments"),
    ("nav.logout", "Log out"),
    ("layout.role_in", "Role in project"),
    // accessibility (issue 20)
    ("layout.skip", "Skip to content"),
    ("layout.nav", "Main"),
    ("projects.role", "Role"),
    ("stats.as_table", "The numbers as a table"),
    ("stats.week_of", "Week of"),
    ("stats.releases", "Releases"),
    ("stats.succeeded", "Succeeded"),
    ("stats.failed", "Failed"),
    ("stats.median_seconds", "Median (seconds)"),
    // words used on many pages
    ("common.application", "Application"),
    ("common.project", "Project"),
    ("common.environment", "Environment"),
    ("common.release", "Release"),
    ("common.deploy", "Deploy"),
    ("common.state", "State"),
    ("common.by", "By"),
    ("common.created", "Created"),
    ("common.when", "When"),
    ("common.note", "Note"),
    ("common.name", "Name"),
    ("common.save", "Save"),
    ("common.filter", "Filter"),
    ("common.any", "any"),
    ("common.older", "Older →"),
    ("common.more", "More →"),
    ("common.none_yet", "Nothing yet."),
    // login
    ("login.or", "or"),
    ("login.sso", "Log in with"),
    ("nav.ops_tools", "Ops tools"),
    ("tools.help", "Each cluster's Prometheus, Grafana, Dashboard and other tools, opened through the nginx front with your Prism login: no second password, and your access ends when your Prism roles do."),
    ("tools.tool", "Tool"),
    ("tools.cluster", "Cluster"),
    ("tools.kind", "Kind"),
    ("tools.who", "Who may open it"),
    ("tools.admins", "admins"),
    ("tools.none", "No tool you may open."),
    ("tools.admin_help", "Admins register tools with prism ops-front set (or PUT /api/v1/ops-tools/CLUSTER/NAME) and write nginx's configuration with prism ops-front nginx-config."),
    ("cli_login.title", "Log in the command line"),
    ("cli_login.check", "Approve only a login you started yourself with prism login --sso, and only if this code is the one your terminal shows: the command line then gets an API token of yours."),
    ("cli_login.code", "Code"),
    ("cli_login.name", "Token name"),
    ("cli_login.from", "Requested from"),
    ("cli_login.asked", "Requested at"),
    ("cli_login.approve", "Approve this login"),
    ("cli_login.approved", "Approved: go back to your terminal."),
    ("cli_login.unknown", "No login with this code is waiting (it may have expired after 10 minutes, or been approved already)."),
    ("cli_login.continue", "Continue"),
    ("cli_login.type", "Type the code your terminal shows after prism login --sso."),
    ("cli_login.elsewhere", "This login was asked for from another address than the one you are using now. Approve it only if that is your own machine."),
    ("login.title", "Log in to Prism"),
    ("login.username", "Username"),
    ("login.password", "Password"),
    ("login.submit", "Log in"),
    ("login.expired", "The login form expired; please try again."),
    // errors
    ("error.forbidden", "Not allowed"),
    ("error.not_found", "Not found"),
    ("error.conflict", "Cannot do that now"),
    ("error.bad_request", "Please check the input"),
    ("error.internal", "Something went wrong"),
    ("error.field", "Field:"),
    // dashboard
    ("dashboard.title", "Dashboard"),
    ("dashboard.board", "What runs where"),
    ("dashboard.runs", "runs"),
    ("dashboard.held_by", "held by"),
    ("dashboard.board_truncated", "Showing the first applications:"),
    ("dashboard.no_apps", "No applications you can see yet."),
    ("dashboard.holds", "Held environments"),
    ("dashboard.failed_builds", "Your failed builds"),
    ("dashboard.new_release", "Create a release →"),
    ("dashboard.ready_to_move", "Releases ready to move on"),
    ("dashboard.to_pass", "tested here? pass it"),
    ("dashboard.to_promote", "promote to the next environment"),
    ("dashboard.awaiting_review", "Waiting for you"),
    ("dashboard.to_deploy", "promoted, ready to deploy"),
    ("dashboard.nothing", "Nothing waiting."),
    // applications and settings
    ("apps.git_url", "Git URL"),
    ("app.environments", "Environments"),
    ("app.running", "Running"),
    ("app.incoming", "On its way in"),
    ("app.hold", "Hold"),
    ("app.settings", "Settings per environment"),
    ("app.defaults", "defaults"),
    ("app.fix_errors", "Not saved: fix the field marked below."),
    ("app.build_settings", "Build settings"),
    ("app.build_settings_help", "How releases of this application are built: the stack preset and what overrides it (build command, artifact paths, base image, registry, credentials, executor, layer_compression gzip or zstd). Every field and reference is checked when saved."),
    ("app.deploys", "Deploys"),
    ("webhook.title", "Git webhook"),
    ("webhook.project_help", "One webhook for every repository of the project, e.g. a GitHub organisation's, a Gitea organisation's or a GitLab group's webhook: a push releases each application below whose git URL is the pushed repository, when a branch or tag pattern matches. A push an application's own webhook released already makes no second release."),
    ("webhook.project_apps", "Applications a push can release"),
    ("webhook.git_url", "Git URL"),
    ("webhook.project_link", "Project webhook"),
    ("webhook.help", "Pushes and tags from GitHub, Gitea/Forgejo or GitLab create a release of the pushed commit (its message is the change note) when a branch or tag pattern below matches; * matches any run of characters (release/*, v*). Paste the URL (content type application/json) and the secret into the repository's webhook settings; for GitLab the secret is its Secret token, or paste GitLab's signing token (whsec_...) as your own secret."),
    ("webhook.secret_once", "The webhook's secret, shown this once: paste it into the forge now."),
    ("webhook.rules", "Rules"),
    ("webhook.url", "URL"),
    ("webhook.forge", "Forge"),
    ("webhook.content_type", "Content type"),
    ("webhook.secret", "Secret"),
    ("webhook.secret_set", "set"),
    ("webhook.branches", "Branches that make releases"),
    ("webhook.tags", "Tags that make releases"),
    ("webhook.build", "Build each release at once"),
    ("webhook.enabled", "Enabled"),
    ("webhook.rotate", "Rotate secret"),
    ("webhook.delete", "Delete webhook"),
    ("webhook.create", "Create webhook"),
    ("webhook.own_secret", "Your own secret (optional; otherwise one is generated)"),
    ("webhook.deliveries", "Last deliveries"),
    ("webhook.received", "Received"),
    ("webhook.event", "Event"),
    ("webhook.ref", "Ref"),
    ("webhook.commit", "Commit"),
    ("webhook.outcome", "Outcome"),
    ("webhook.no_deliveries", "Nothing received yet."),
    ("settings.replicas", "Replicas"),
    ("settings.cpu", "CPU request / limit"),
    ("settings.cpu_request", "CPU request"),
    ("settings.cpu_limit", "CPU limit"),
    ("settings.memory", "Memory request / limit"),
    ("settings.memory_request", "Memory request"),
    ("settings.memory_limit", "Memory limit"),
    ("settings.env_vars", "Environment variables (NAME=value, one per line)"),
    ("settings.env_vars_short", "Environment variables"),
    ("hold.hold", "Hold"),
    ("hold.note", "what you are testing"),
    ("hold.release", "Release hold"),
    ("hold.reason", "reason (another user's hold)"),
    // templates
    ("templates.title", "Manifest templates"),
    ("templates.help", "Templates are shared by the project's applications. Built-in templates apply unless the project changes them; empty a template to drop it. Preview renders them for one environment and release without saving."),
    ("templates.builtin", "built-in"),
    ("templates.project", "project's own"),
    ("templates.preview", "Preview"),
    ("templates.note", "What changed"),
    ("templates.rendered", "Rendered for"),
    // releases
    ("release.create", "Create a release"),
    ("release.ref", "Git branch, tag or commit"),
    ("release.change_note", "Change note"),
    ("release.facts", "Release"),
    ("release.commit", "Commit"),
    ("release.image", "Image"),
    ("release.digest", "Image digest"),
    ("release.actions", "What you can do"),
    ("release.no_actions", "Nothing you can do with this release now."),
    ("release.override_reason", "why override the hold"),
    ("release.build_log", "Build"),
    ("release.build_now", "Build it now"),
    ("build.title", "Build"),
    ("build.facts", "What was built"),
    ("build.executor", "Executor"),
    ("build.external", "console"),
    ("build.base", "Base image"),
    ("build.failure", "Failure"),
    ("build.requested_by", "Started by"),
    ("build.duration", "Duration"),
    ("build.running_since", "running since"),
    ("build.builder", "Builder image"),
    ("build.queue_place", "place in the queue:"),
    ("build.uploaded", "Uploaded"),
    ("build.cancel_requested", "cancelling…"),
    ("build.log", "Log"),
    ("build.log_text", "plain text"),
    ("build.log_truncated", "The page shows the first 10000 lines; the plain text has them all."),
    ("build.following", "Following the build live…"),
    ("build.permanent", "permanent page"),
    ("build.all", "Every build of this release"),
    ("build.start", "Build"),
    ("build.again", "Build again"),
    ("build.cancel", "Cancel build"),
    ("build.retry", "Retry build"),
    ("build.none", "Not built yet."),
    ("release.history", "Promotion history"),
    ("release.step", "Step"),
    ("release.from", "From"),
    ("release.to", "To"),
    ("action.start_build", "Start build"),
    ("action.promote", "Promote to"),
    ("action.deploy", "Deploy to"),
    ("action.pass", "Pass (tested)"),
    ("action.close", "Close"),
    ("action.abandon", "Abandon"),
    // deploys
    ("deploy.kind", "Kind"),
    ("deploy.rollback_kind", "rollback"),
    ("deploy.what", "What will run"),
    ("deploy.created_by", "Release created by"),
    ("deploy.built_by", "Built by"),
    ("deploy.tested_by", "Tested by"),
    ("deploy.requested_by", "Deploy requested by"),
    ("deploy.reviewer", "Reviewed by"),
    ("deploy.template_version", "Template version"),
    ("deploy.progress", "Progress"),
    ("deploy.in_progress", "In progress…"),
    ("deploy.awaiting", "Waiting for review; nothing is applied before it."),
    ("deploy.result", "Result"),
    ("deploy.rollback", "Roll back to the previous deploy"),
    ("deploy.retry", "Retry deploy"),
    ("deploy.review", "Review"),
    ("deploy.review_help", "Check the change note, the image digest and the diff below, then approve to apply or reject with a reason."),
    ("deploy.review_needs", "Waiting for a review by the role:"),
    ("deploy.comment", "Comment (required to reject)"),
    ("deploy.approve", "Approve and deploy"),
    ("deploy.reject", "Reject"),
    ("deploy.diff", "Changes against the live objects"),
    ("envs.approval_policy", "Approval policy"),
    ("envs.approvals_required", "Approvals a deploy needs"),
    ("envs.approver_roles", "Roles that may approve (admins always may; the requester never)"),
    ("envs.allow_creator", "The release's creator may approve its deploys"),
    ("envs.clear_policy", "Remove the policy"),
    ("envs.schedule", "Deploy windows and freezes"),
    ("envs.open_now", "open now"),
    ("envs.schedule_help", "Windows (RFC 5545 rules with a TZID), freezes, when_closed (queue or refuse) and break_glass_roles, as JSON"),
    ("deploy.approvals", "Approvals"),
    ("deploy.approvals_count", "approvals of the"),
    ("deploy.approvals_needed", "needed"),
    ("deploy.approved_by", "Approved by"),
    ("deploy.rejected_by", "Rejected by"),
    ("deploy.may_still_approve", "May still approve"),
    ("deploy.nobody", "nobody"),
    ("deploy.cannot_vote", "You cannot vote on this deploy:"),
    ("deploy.waiting_window", "Approved; waiting for its window: deploys at"),
    ("deploy.break_glass", "Deployed during a freeze (break-glass) by"),
    ("deploy.break_glass_reason", "Break-glass reason (only to deploy while deploying is closed)"),
    ("window.next_open", "Deploying is closed; it opens"),
    ("window.never", "not within a year"),
    ("deploy.manifests", "Rendered manifests"),
    ("deploy.no_plan", "Not planned yet."),
    ("diff.create", "create"),
    ("diff.update", "update"),
    ("diff.unchanged", "unchanged"),
    ("diff.prune", "delete"),
    ("diff.unknown", "unknown"),
    ("diff.field", "Field"),
    ("diff.before", "Live"),
    ("diff.after", "New"),
    // audit
    ("audit.actor", "Who"),
    ("audit.action", "Action"),
    ("audit.record_type", "Record type"),
    ("audit.record_id", "Record"),
    ("audit.record", "Record"),
    ("audit.detail", "Detail"),
    ("audit.address", "Address"),
    // tokens
    ("tokens.create", "Create a token"),
    ("tokens.days", "Expires in days"),
    ("tokens.expires", "Expires"),
    ("tokens.last_used", "Last used"),
    ("tokens.revoke", "Revoke"),
    ("tokens.revoked", "revoked"),
    ("tokens.expired", "expired"),
    ("tokens.shown_once", "Copy the token now: it is shown only this once."),
    // users and projects
    ("users.display_name", "Display name"),
    ("users.admin", "Admin"),
    ("users.status", "Status"),
    ("users.make_admin", "make admin"),
    ("users.revoke_admin", "remove admin"),
    ("users.disabled", "disabled"),
    ("users.disable", "disable"),
    ("users.enable", "enable"),
    ("users.create", "Add a user"),
    ("users.roles_help", "Roles (developer, tester, operator) are granted per project:"),
    ("projects.description", "Description"),
    ("projects.create", "Create a project"),
    ("projects.members", "Members and roles"),
    ("projects.grant", "Grant a role"),
    ("projects.revoke", "revoke"),
    ("projects.new_app", "Add an application"),
    // clusters and environments
    ("clusters.api_url", "API server URL"),
    ("clusters.token", "Bearer token"),
    ("clusters.ca_cert", "CA certificate (PEM)"),
    ("clusters.insecure", "skip TLS verification"),
    ("clusters.kubeconfig", "…or paste a kubeconfig"),
    ("clusters.check", "Check health"),
    ("clusters.create", "Register a cluster"),
    ("clusters.healthy", "reachable, Kubernetes"),
    ("clusters.unhealthy", "not reachable:"),
    ("envs.help", "Releases move through the environments in this order. Each environment's policy says who may deploy there, whether a deploy waits for review, and whether the release must pass the previous environment first."),
    ("envs.cluster", "Cluster"),
    ("envs.namespace", "Namespace"),
    ("envs.deploy_roles", "Who may deploy"),
    ("envs.requires_review", "Deploys wait for an operator's review"),
    ("envs.requires_previous", "Must pass the previous environment first"),
    ("envs.create", "Add an environment"),
    ("envs.bindings", "Namespaces bound per project"),
    ("envs.bindings_help", "The namespace field takes a fixed namespace every project shares, or a pattern such as {project}-{environment} giving each project its own (Prism creates it when its token may). A namespace bound here for one project wins over the pattern."),
    ("envs.project", "Project"),
    ("envs.bind", "Bind namespace"),
    ("envs.unbind", "Unbind"),
    ("nav.registries", "Registries"),
    ("nav.base_images", "Base images"),
    ("nav.build_setup", "Build setup"),
    ("common.edit", "edit"),
    ("common.delete", "delete"),
    ("common.updated", "Updated"),
    ("registries.host", "Host"),
    ("registries.username", "Username"),
    ("registries.password", "Password"),
    ("registries.insecure_http", "plain HTTP"),
    ("registries.stored", "stored"),
    ("registries.edit", "Change a registry"),
    ("registries.create", "Add a registry"),
    ("registries.password_keep", "leave empty to keep the stored one"),
    ("registries.clear", "remove the stored username and password"),
    ("base.tier", "Tier"),
    ("base.parent", "Parent"),
    ("base.digest", "Digest"),
    ("base.built_at", "Built"),
    ("base.lineage", "Lineage"),
    ("base.children", "Runtime bases on it"),
    ("base.outdated", "older digest"),
    ("base.versions", "Every digest it was built as"),
    ("base.parent_digest", "Parent digest"),
    ("base.current", "current"),
    ("base.outdated_children", "Runtime bases still on an older digest"),
    ("base.outdated_apps", "Applications still on an older digest"),
    ("base.built_on", "Built on digest"),
    ("base.none_outdated", "None: all on the current digest."),
    ("base.build_again", "Build again"),
    ("base.rebuild_apps", "Create rebuild releases"),
    ("base.rebuilt", "Rebuild releases created:"),
    ("base.nothing_to_rebuild", "none were needed."),
    ("base.new", "Register a base image"),
    ("base.new_help", "As JSON: name, tier (1: from a root filesystem tarball or an existing image; 2: on a tier-1 parent), parent, registry, repository, tag, and the recipe (rootfs, layers, config) read from the base sources directory. Prism builds it at once."),
    ("base.create", "Register and build"),
    ("setup.stacks", "Stacks"),
    ("setup.stacks_help", "Presets an application's build settings start from: build command, artifact paths, where they go in the image, the command the image runs. Edit one as JSON."),
    ("setup.new_stack", "Add a stack"),
    ("scope.projects", "Projects"),
    ("scope.all", "all projects"),
    ("scope.all_projects", "every project may use it"),
    // notifications
    ("nav.notifications", "Notifications"),
    ("notify.help", "Channels tell people what happened: a generic webhook (JSON, signed with HMAC-SHA256 over the timestamp and body, with a delivery id), Slack, DingTalk, Feishu/Lark, WeCom or e-mail. Each project's operators choose which events go to which channel. URLs and secrets are stored encrypted and never shown again; failed deliveries are retried with backoff."),
    ("notify.channels", "Channels"),
    ("notify.kind", "Kind"),
    ("notify.target", "Goes to"),
    ("notify.url", "Receiver URL"),
    ("notify.url_keep", "leave empty to keep the stored URL"),
    ("notify.secret", "Signing secret or SMTP password"),
    ("notify.clear_secret", "remove the stored secret"),
    ("notify.project", "Only for the project"),
    ("notify.email", "E-mail (SMTP), for kind email"),
    ("notify.smtp_host", "SMTP server"),
    ("notify.smtp_port", "Port"),
    ("notify.smtp_tls", "TLS"),
    ("notify.smtp_user", "SMTP user"),
    ("notify.from", "From"),
    ("notify.to", "To (comma-separated)"),
    ("notify.create", "Add a channel"),
    ("notify.edit", "Change a channel"),
    ("notify.subscribed_by", "Subscribed by"),
    ("notify.log", "Delivery log"),
    ("notify.test", "Send a test message"),
    ("notify.event", "Event"),
    ("notify.code", "Response"),
    ("notify.attempts", "Attempts"),
    ("notify.next_retry", "Next attempt"),
    ("notify.error", "Error"),
    ("notify.subscriptions", "Notifications"),
    ("notify.subscriptions_help", "Which channels hear of this project's events, and in which language. The project's operators change them; an admin sets up the channels."),
    ("notify.channel", "Channel"),
    ("notify.events", "Events"),
    ("notify.language", "Language"),
    ("notify.subscribe", "Subscribe a channel"),
    ("notify.unsubscribe", "unsubscribe"),
    ("directory.badge", "directory"),
    ("directory.title", "Directory groups"),
    ("directory.on", "Directory login is on:"),
    ("directory.off", "Directory login is off (set PRISM_LDAP_URL). Rules can be prepared now."),
    ("directory.help", "At every directory login a user's roles become exactly what their groups grant here; local users keep their own roles."),
    ("directory.group", "Group"),
    ("directory.grants", "Grants"),
    ("directory.in", "in"),
    ("directory.role", "Role"),
    ("directory.admin", "Grants admin (instead of a role in a project)"),
    ("directory.add", "Add rule"),
    ("secrets.title", "Secrets"),
    ("secrets.help", "Values are sealed with Prism's key and never shown again, not to admins either. A deploy delivers them in a Kubernetes Secret; a changed value takes effect with the next deploy, which rolls the pods. Changing one in an environment needs the right to deploy there."),
    ("secrets.scope", "Scope"),
    ("secrets.source", "Source"),
    ("secrets.version", "Version"),
    ("secrets.every_environment", "every environment"),
    ("secrets.existing", "existing Secret"),
    ("secrets.sealed_value", "sealed value"),
    ("secrets.as_env", "as a variable"),
    ("secrets.as_file", "as a file"),
    ("secrets.set", "Set a secret"),
    ("secrets.name_help", "The variable or file name the container sees: letters, digits and _, e.g. DB_PASSWORD."),
    ("secrets.value", "Value (write-only)"),
    ("secrets.existing_secret", "Existing Secret in the namespace"),
    ("secrets.existing_key", "Its key"),
    ("secrets.delivery", "Delivery"),
    ("app.secrets_link", "Secrets"),
    ("notify.no_channels", "No channel is open to this project yet: an admin adds channels on the Notifications page."),
    ("event.build_failed", "build failed"),
    ("event.build_succeeded", "build succeeded"),
    ("event.deploy_awaiting_approval", "deploy waits for approval"),
    ("event.deploy_succeeded", "deploy succeeded"),
    ("event.deploy_failed", "deploy failed"),
    ("event.auto_rollback", "automatic rollback"),
    ("event.hold_placed", "hold placed"),
    ("event.hold_overridden", "hold overridden"),
    ("event.freeze_broken", "freeze broken (break-glass)"),
    ("event.test", "test message"),
    ("delivery.queued", "queued"),
    ("delivery.retrying", "retrying"),
    ("delivery.delivered", "delivered"),
    ("delivery.failed", "failed"),
    ("registries.token_realm_hosts", "Token realm hosts that may receive the credentials"),
    ("setup.git_host", "Git host[:port]"),
    ("setup.address_policy", "Where Prism may connect"),
    ("setup.address_policy_help", "Git, registry, Jenkins and cluster addresses are checked after DNS resolution. Link-local and cloud metadata addresses are always refused unless allowed here; the most specific range wins."),
    ("setup.allowed_ranges", "Allowed ranges (CIDR, one per line)"),
    ("setup.denied_ranges", "Denied ranges (CIDR, one per line)"),
    ("setup.git_credentials", "Git credentials"),
    ("setup.password_or_token", "password or access token"),
    ("setup.executors", "Executors"),
    ("setup.executors_help", "Builds run locally unless an application names a Jenkins executor here."),
    ("setup.jenkins_url", "Jenkins URL"),
    ("setup.job", "Job"),
    ("setup.api_token", "API token"),
    ("setup.add_executor", "Add a Jenkins executor"),
    ("setup.add_kube_runner", "Add a Kubernetes build runner"),
    ("setup.kube_runner_help", "Each build becomes a Job in this cluster and namespace: checkout and push by Prism's own binary, the build command in the builder image."),
    ("setup.kube_cluster", "Cluster"),
    ("setup.namespace", "Namespace"),
    ("setup.node_selector", "Node selector (key=value, comma separated)"),
    ("setup.workspace_size", "Workspace size limit"),
    ("setup.memory_limit", "Build memory limit"),
    ("setup.ttl_seconds", "Keep finished Jobs (seconds)"),
    ("setup.max_concurrent_builds", "At most this many builds at once (empty: no limit)"),
    ("setup.host_network", "Use the node's network (single-node clusters only)"),
    ("setup.cache_size", "Dependency cache volume per application, size (empty: none)"),
    ("setup.cache_storage_class", "Cache volume storage class (empty: the cluster's default)"),
    ("setup.cache_access_mode", "Cache volume access mode"),
    ("nav.stats", "Statistics"),
    ("stats.lead_time", "Lead time to"),
    ("stats.median", "median, from release to a successful deploy"),
    ("stats.failure_rate", "Change failure rate"),
    ("stats.deploys_to", "deploys to"),
    ("stats.restore", "Time to restore"),
    ("stats.releases_per_week", "Releases per week"),
    ("stats.deploys_per_week", "Deploys per week"),
    ("stats.bounded", "Computed from the newest releases, deploys and builds (at most, respectively):"),
    ("stats.build_duration", "Build duration"),
    ("stats.build_note", "median of the successful ones among the newest finished builds:"),
    ("stats.builds_failed", "failed or cancelled"),
    ("stats.build_per_week", "Median build duration per week"),
    ("stats.seconds", "seconds"),
    ("stats.restore_note", "median, from a failed deploy to the next success"),
    ("rollout.title", "Rollout"),
    ("rollout.help", r#"How a release reaches each environment: rolling (one rolling update), canary (a second Deployment stepped through replica shares, with pauses, metric gates on Prometheus and a person's word) or blue-green (the new version beside the old, then the live Service switched in one apply; the old version is kept for a delay so switching back is immediate). Without a traffic router, a canary's share of requests follows its share of ready pods only approximately. Examples: {"type": "canary", "steps": [{"weight": 10, "manual": true}, {"weight": 50, "pause_seconds": 300}, {"weight": 100}]} or {"type": "blue-green", "preview": true, "scale_down_delay_seconds": 600}."#),
    ("rollout.type.rolling", "rolling update"),
    ("rollout.type.canary", "canary by replica share"),
    ("rollout.type.blue-green", "blue-green by Service switch"),
    ("rollout.strategy_json", "Strategy (JSON)"),
    ("rollout.canary_note", "The share of requests follows the share of ready pods only approximately: no traffic router is involved."),
    ("rollout.phase", "Phase"),
    ("rollout.phase.starting", "new pods coming up"),
    ("rollout.phase.checking", "checking (pause, gates, approval)"),
    ("rollout.phase.keeping", "switched; old version kept for switching back"),
    ("rollout.phase.finishing", "the stable Deployment takes the new version"),
    ("rollout.phase.done", "done"),
    ("rollout.phase.aborted", "aborted: traffic back on the version that ran before"),
    ("rollout.not_started", "not started: the deploy is planned; this is how it will roll out"),
    ("rollout.paused", "paused"),
    ("rollout.waits", "waiting for a person to resume or promote"),
    ("rollout.step", "Step"),
    ("rollout.split", "Pods"),
    ("rollout.stable_pods", "of the version that ran before"),
    ("rollout.new_pods", "of the new version"),
    ("rollout.previous", "Version before"),
    ("rollout.time_left", "Pause left"),
    ("rollout.outcome", "Outcome"),
    ("rollout.gates", "Metric gates"),
    ("rollout.gate", "Gate"),
    ("rollout.condition", "Condition"),
    ("rollout.measured", "Measured"),
    ("rollout.last", "Last value"),
    ("rollout.action.promote", "Promote now"),
    ("rollout.action.pause", "Pause"),
    ("rollout.action.resume", "Resume"),
    ("rollout.action.abort", "Abort and go back"),
];

fn table(lang: Lang) -> &'static HashMap<&'static str, &'static str> {
    static EN_TABLE: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    static ZH_TABLE: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    match lang {
        Lang::En => EN_TABLE.get_or_init(|| EN.iter().copied().collect()),
        Lang::ZhCn => ZH_TABLE.get_or_init(|| ZH_CN.iter().copied().collect()),
    }
}

/// The text for a message id in the request's language (English where a
/// translation lacks it); an unknown id is logged and marked.
pub fn get(id: &str) -> &'static str {
    let lang = current();
    match table(lang).get(id).or_else(|| table(Lang::En).get(id)) {
        Some(t) => t,
        None => {
            tracing::warn!(id, "unknown message id");
            "[missing text]"
        }
    }
}

#[cfg(test)]
pub fn has(id: &str) -> bool {
    table(Lang::En).contains_key(id)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn ids_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for (id, _) in EN {
            assert!(seen.insert(id), "duplicate message id {id}");
        }
    }

    #[test]
    fn zh_cn_has_every_id_and_no_other() {
        let en: BTreeSet<_> = EN.iter().map(|(id, _)| *id).collect();
        let zh: BTreeSet<_> = ZH_CN.iter().map(|(id, _)| *id).collect();
        assert_eq!(zh.len(), ZH_CN.len(), "duplicate ids in ZH_CN");
        assert_eq!(
            en.difference(&zh).collect::<Vec<_>>(),
            Vec::<&&str>::new(),
            "missing in zh-CN"
        );
        assert_eq!(
            zh.difference(&en).collect::<Vec<_>>(),
            Vec::<&&str>::new(),
            "unknown in zh-CN"
        );
    }

    #[test]
    fn accept_language_picks_chinese_or_english() {
        assert_eq!(Lang::from_accept("zh-CN,zh;q=0.9,en;q=0.8"), Lang::ZhCn);
        assert_eq!(Lang::from_accept("en-US,en;q=0.9"), Lang::En);
        assert_eq!(Lang::from_accept("fr-FR,zh;q=0.5"), Lang::ZhCn);
        assert_eq!(Lang::from_accept(""), Lang::En);
    }
}
