//! Who may do what. The main matrix sends every mutating endpoint as every
//! kind of caller and compares each answer with a table of expected statuses;
//! every refused call must leave the store as it was (no audit event, no row,
//! no change), every successful one writes exactly one audit event. Further
//! tests: project isolation (404, never 403, and nothing in listings), 401 on
//! every endpoint without valid credentials, session cookies with CSRF, login
//! throttling, and the last admin.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, COOKIE, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::both_backends;
use crate::harness::{TestApp, ADMIN_PASSWORD, PASSWORD};

/// The kinds of caller. The first six are authenticated; the last four must
/// get 401 from every endpoint that needs a login.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Admin,
    /// developer in project alpha
    Developer,
    /// tester in project alpha
    Tester,
    /// operator in project alpha
    Operator,
    /// developer, tester and operator in project beta only
    OtherProject,
    /// a user without any membership
    NoRoles,
    /// no credentials at all
    Anonymous,
    /// a revoked API token (of a user with every role in alpha)
    Revoked,
    /// an expired API token (of a user with every role in alpha)
    Expired,
    /// a token string that was never issued
    Garbage,
}

impl Who {
    const ALL: [Who; 10] = [
        Who::Admin,
        Who::Developer,
        Who::Tester,
        Who::Operator,
        Who::OtherProject,
        Who::NoRoles,
        Who::Anonymous,
        Who::Revoked,
        Who::Expired,
        Who::Garbage,
    ];

    fn index(self) -> usize {
        Who::ALL.iter().position(|w| *w == self).unwrap()
    }

    /// Used to make the names of per-cell records unique.
    fn slug(self) -> &'static str {
        [
            "admin", "dev", "tester", "ops", "cross", "nobody", "anon", "revoked", "expired", "garbage",
        ][self.index()]
    }

    /// The user behind the credential (for "my own user" endpoints); callers
    /// without a user aim at `nora`.
    fn username(self) -> &'static str {
        [
            "admin", "dana", "tess", "otto", "bea", "nora", "nora", "rex", "exa", "nora",
        ][self.index()]
    }

    fn password(self) -> &'static str {
        if self == Who::Admin {
            ADMIN_PASSWORD
        } else {
            PASSWORD
        }
    }

    fn authenticated(self) -> bool {
        self.index() < 6
    }
}

/// Everything the matrix works on: projects alpha (applications web and svc)
/// and beta (application api), one user per kind of caller, a spare user
/// `vic` to act upon, and `tina`, a second tester of alpha who holds
/// environments. `web` runs a release in fat (so it can be held); `svc` is
/// where the release actions happen.
struct World {
    tokens: Vec<Option<String>>,
    victim: String,
    tina: String,
}

impl World {
    async fn build(app: &TestApp) -> World {
        app.project_with_app("alpha", "web").await;
        app.ok(
            Method::POST,
            "/api/v1/applications",
            &app.admin,
            Some(json!({"project": "alpha", "name": "svc", "git_url": "https://git.example/svc.git"})),
        )
        .await;
        app.project_with_app("beta", "api").await;
        let all = ["developer", "tester", "operator"];
        let dev = app.user("dana", Some("alpha"), &["developer"]).await;
        let tester = app.user("tess", Some("alpha"), &["tester"]).await;
        let ops = app.user("otto", Some("alpha"), &["operator"]).await;
        let tina = app.user("tina", Some("alpha"), &["tester"]).await;
        let cross = app.user("bea", Some("beta"), &all).await;
        let nobody = app.user("nora", None, &[]).await;
        let victim = app.user("vic", None, &[]).await;

        // A revoked token: rex revokes his own (only) token.
        let revoked = app.user("rex", Some("alpha"), &all).await;
        let mine = app.get("/api/v1/tokens", &revoked).await.1;
        let id = mine[0]["id"].as_i64().unwrap();
        app.ok(Method::DELETE, &format!("/api/v1/tokens/{id}"), &revoked, None)
            .await;

        // An expired token: the API will not issue one, so age it in the store.
        let expired = app.user("exa", Some("alpha"), &all).await;
        let mut c = app.store.conn().await.unwrap();
        sqlx::query("UPDATE api_tokens SET expires_at = $1 WHERE user_id = (SELECT id FROM users WHERE username = $2)")
            .bind(1_i64)
            .bind("exa")
            .execute(&mut *c)
            .await
            .unwrap();
        drop(c);

        let web = app.built_release("web").await;
        app.deploy_to(&web, "fat").await;

        let garbage = "prism_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned();
        let tokens = vec![
            Some(app.admin.clone()),
            Some(dev),
            Some(tester),
            Some(ops),
            Some(cross),
            Some(nobody),
            None,
            Some(revoked),
            Some(expired),
            Some(garbage),
        ];
        World { tokens, victim, tina }
    }

    fn token(&self, who: Who) -> Option<&str> {
        self.tokens[who.index()].as_deref()
    }
}

/// Audit events written by requests; the job runner's own events (the
/// maintenance sweep marking the expired token, the self-test job finishing)
/// arrive at their own time and are left out.
async fn request_audit_count(app: &TestApp) -> i64 {
    let mut c = app.store.conn().await.unwrap();
    sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM audit_events WHERE action NOT IN ('job.selftest_done', 'token.expire', 'environment.hold_expired', 'base_image.built', 'base_image.failed')",
    )
    .fetch_one(&mut *c)
    .await
    .unwrap()
}

/// How far a fresh release of `svc` is driven (as admin) before the cell's
/// action: the number of steps of [`PATH`] applied.
const CREATED: usize = 0;
const BUILDING: usize = 1;
const BUILT: usize = 2;
const PROMOTED_FAT: usize = 3;
const DEPLOYING_FAT: usize = 4;
const DEPLOYED_FAT: usize = 5;
const PASSED_FAT: usize = 6;
const PROMOTED_UAT: usize = 7;

const PATH: [(&str, Option<&str>); 7] = [
    ("start_build", None),
    ("build_succeeded", None),
    ("promote", Some("fat")),
    ("deploy", Some("fat")),
    ("deploy_succeeded", None),
    ("pass", None),
    ("promote", Some("uat")),
];

fn act_body(action: &str, env: Option<&str>) -> Value {
    match (action, env) {
        ("build_succeeded", _) => {
            json!({"commit_sha": "0123456789abcdef0123456789abcdef01234567", "image_digest": format!("sha256:{}", "c".repeat(64))})
        }
        (_, Some(e)) => json!({"environment": e}),
        _ => json!({}),
    }
}

async fn svc_release_at(app: &TestApp, steps: usize) -> String {
    let r = app
        .ok(
            Method::POST,
            "/api/v1/releases",
            &app.admin,
            Some(json!({"application": "svc", "git_ref": "main", "change_note": "matrix"})),
        )
        .await;
    let id = r["id"].as_str().unwrap().to_owned();
    for (action, env) in &PATH[..steps] {
        app.act(&id, action, &app.admin, act_body(action, *env)).await;
    }
    id
}

#[derive(Clone, Copy, Debug)]
enum Ep {
    UserCreate,
    UserCreateAdmin,
    UserUpdateOther,
    UserUpdateSelf,
    UserMakeSelfAdmin,
    UserChangeOwnPassword,
    TokenCreate,
    TokenRevokeOwn,
    TokenRevokeOthers,
    ClusterCreate,
    ClusterUpdate,
    ClusterDelete,
    EnvCreate,
    EnvNamespaceBind,
    EnvNamespaceUnbind,
    EnvUpdate,
    EnvDelete,
    ProjectCreate,
    ProjectUpdate,
    ProjectDelete,
    MemberGrant,
    MemberRevoke,
    AppCreate,
    AppUpdate,
    AppDelete,
    SettingsPut,
    Hold,
    UnholdOthersWithReason,
    UnholdOthersWithoutReason,
    ReleaseCreate,
    /// A release action on a fresh `svc` release that went `steps` along [`PATH`].
    Act {
        action: &'static str,
        env: Option<&'static str>,
        steps: usize,
    },
    JobSelftest,
    Logout,
    StackPut,
    StackDelete,
    OpsToolPut,
    EndSessions,
    OpsToolDelete,
    RegistryPut,
    RegistryDelete,
    GitCredentialPut,
    GitCredentialDelete,
    ExecutorCreate,
    ExecutorDelete,
    BaseCreate,
    BaseDelete,
    /// PATCH web's build settings naming a record (`field`) of project `owner`.
    AppUpdateUsing {
        field: &'static str,
        owner: &'static str,
    },
    /// POST an application of alpha whose build settings name a record of `owner`.
    AppCreateUsing {
        field: &'static str,
        owner: &'static str,
    },
    PolicyPut,
    WebhookCreate,
    WebhookUpdate,
    WebhookRotate,
    WebhookDelete,
    ProjectWebhookCreate,
    ProjectWebhookUpdate,
    ProjectWebhookRotate,
    ProjectWebhookDelete,
    ChannelPut,
    ChannelDelete,
    ChannelTest,
    SubscriptionPut,
    SubscriptionDelete,
    PrometheusPut,
    PrometheusDelete,
    RolloutPut,
    /// Pause a running canary of web in prd (a deploy made in the store).
    RolloutSteer,
}

/// One cell's request, prepared with whatever records it needs.
struct Req {
    method: Method,
    path: String,
    body: Option<Value>,
    /// A table whose row count must not change when the call is refused, and
    /// must change by this much when it succeeds.
    table: Option<(&'static str, i64)>,
    /// A GET (as admin) whose answer must not change when the call is refused.
    probe: Option<String>,
    /// A release to abandon afterwards, so that it frees its environment.
    release: Option<String>,
}

impl Req {
    fn new(method: Method, path: impl Into<String>, body: Option<Value>) -> Req {
        Req {
            method,
            path: path.into(),
            body,
            table: None,
            probe: None,
            release: None,
        }
    }
    fn table(mut self, table: &'static str, delta: i64) -> Req {
        self.table = Some((table, delta));
        self
    }
    fn probe(mut self, path: impl Into<String>) -> Req {
        self.probe = Some(path.into());
        self
    }
}

const HOLD: &str = "/api/v1/applications/web/environments/fat/hold";

const WEBHOOK: &str = "/api/v1/applications/web/webhook";
const PROJECT_WEBHOOK: &str = "/api/v1/projects/alpha/webhook";

/// Gives project alpha a webhook (as admin) unless it has one.
async fn ensure_project_webhook(app: &TestApp) {
    let (s, _) = app.get(PROJECT_WEBHOOK, &app.admin).await;
    if s == StatusCode::NOT_FOUND {
        app.ok(
            Method::POST,
            PROJECT_WEBHOOK,
            &app.admin,
            Some(json!({"forge": "gitlab", "release_rules": {"tags": ["v*"]}})),
        )
        .await;
    }
}

/// Gives web a webhook (as admin) unless it has one.
async fn ensure_webhook(app: &TestApp) {
    let (s, _) = app.get(WEBHOOK, &app.admin).await;
    if s == StatusCode::NOT_FOUND {
        app.ok(
            Method::POST,
            WEBHOOK,
            &app.admin,
            Some(json!({"forge": "gitea", "release_rules": {"tags": ["v*"]}})),
        )
        .await;
    }
}

/// A canary of web running in prd (made once, in the store: the matrix has
/// no cluster to run one on); returns its id.
async fn ensure_running_canary(app: &TestApp) -> i64 {
    use prism_domain::{DeployKind, DeployState, ReleaseId};
    let mut c = app.store.conn().await.unwrap();
    let found: Option<i64> = sqlx::query_scalar("SELECT id FROM deploys WHERE rollout IS NOT NULL")
        .fetch_optional(&mut *c)
        .await
        .unwrap();
    if let Some(id) = found {
        return id;
    }
    drop(c);
    let rel = app
        .ok(
            Method::POST,
            "/api/v1/releases",
            &app.admin,
            Some(json!({"application": "web", "git_ref": "main", "change_note": "canary"})),
        )
        .await;
    let rid = ReleaseId::parse("id", rel["id"].as_str().unwrap()).unwrap();
    let mut c = app.store.conn().await.unwrap();
    let app_id: i64 = sqlx::query_scalar("SELECT id FROM applications WHERE name = 'web'")
        .fetch_one(&mut *c)
        .await
        .unwrap();
    let env_id: i64 = sqlx::query_scalar("SELECT id FROM environments WHERE name = 'prd'")
        .fetch_one(&mut *c)
        .await
        .unwrap();
    let d = prism_store::deploys::create(
        &mut c,
        prism_store::deploys::NewDeploy {
            release: rid,
            app_id,
            env_id,
            kind: DeployKind::Deploy,
            requested_by: "admin",
            rollback_of: None,
            manifests: None,
        },
    )
    .await
    .unwrap();
    sqlx::query("UPDATE deploys SET state = $2 WHERE id = $1")
        .bind(d.id)
        .bind(DeployState::Watching.as_str())
        .execute(&mut *c)
        .await
        .unwrap();
    let progress = json!({"strategy": {"type": "canary", "steps": [{"weight": 50, "manual": true}]},
                          "replicas": 2, "phase": "checking"});
    prism_store::deploys::set_rollout(&mut c, d.id, &progress)
        .await
        .unwrap();
    d.id
}

/// A cluster for ops tools (made once, as admin).
async fn ensure_tools_cluster(app: &TestApp) {
    let (s, _) = app.get("/api/v1/clusters/tools-c", &app.admin).await;
    if s == StatusCode::NOT_FOUND {
        app.ok(
            Method::POST,
            "/api/v1/clusters",
            &app.admin,
            Some(json!({"name": "tools-c", "api_url": "https://10.0.0.9:6443"})),
        )
        .await;
    }
}

/// Ends whatever hold there is on web in fat (as admin, with a reason).
async fn clear_hold(app: &TestApp) {
    let (s, e) = app
        .call(Method::DELETE, &format!("{HOLD}?reason=reset"), Some(&app.admin), None)
        .await;
    assert!(
        s == StatusCode::OK || e["code"] == "not_held",
        "clearing the hold: {s} {e}"
    );
}

async fn prepare(app: &TestApp, w: &World, ep: Ep, who: Who) -> Req {
    let s = who.slug();
    let admin = app.admin.as_str();
    match ep {
        Ep::UserCreate => Req::new(
            Method::POST,
            "/api/v1/users",
            Some(json!({"username": format!("uc-{s}"), "password": PASSWORD})),
        )
        .table("users", 1),
        Ep::UserCreateAdmin => Req::new(
            Method::POST,
            "/api/v1/users",
            Some(json!({"username": format!("ua-{s}"), "password": PASSWORD, "admin": true})),
        )
        .table("users", 1),
        Ep::UserUpdateOther => Req::new(
            Method::PATCH,
            "/api/v1/users/vic",
            Some(json!({"display_name": format!("renamed by {s}")})),
        )
        .probe("/api/v1/users/vic"),
        Ep::UserUpdateSelf => {
            let path = format!("/api/v1/users/{}", who.username());
            Req::new(Method::PATCH, &path, Some(json!({"display_name": format!("me, {s}")}))).probe(path)
        }
        Ep::UserMakeSelfAdmin => {
            let path = format!("/api/v1/users/{}", who.username());
            Req::new(Method::PATCH, &path, Some(json!({"admin": true}))).probe(path)
        }
        Ep::UserChangeOwnPassword => {
            let path = format!("/api/v1/users/{}", who.username());
            let body = json!({"password": "a-brand-new-password", "current_password": who.password()});
            Req::new(Method::PATCH, &path, Some(body)).probe(path)
        }
        Ep::TokenCreate => {
            Req::new(Method::POST, "/api/v1/tokens", Some(json!({"name": format!("tc-{s}")}))).table("api_tokens", 1)
        }
        Ep::TokenRevokeOwn => {
            // The caller's own fresh token (callers without a user: the admin's).
            let owner = if who.authenticated() {
                w.token(who).unwrap()
            } else {
                admin
            };
            let t = app
                .ok(
                    Method::POST,
                    "/api/v1/tokens",
                    owner,
                    Some(json!({"name": format!("own-{s}")})),
                )
                .await;
            let id = t["token"]["id"].as_i64().unwrap();
            Req::new(Method::DELETE, format!("/api/v1/tokens/{id}"), None).table("api_tokens", 0)
        }
        Ep::TokenRevokeOthers => {
            let t = app
                .ok(
                    Method::POST,
                    "/api/v1/tokens",
                    &w.victim,
                    Some(json!({"name": format!("vic-{s}")})),
                )
                .await;
            let id = t["token"]["id"].as_i64().unwrap();
            Req::new(Method::DELETE, format!("/api/v1/tokens/{id}"), None).table("api_tokens", 0)
        }
        Ep::ClusterCreate => Req::new(
            Method::POST,
            "/api/v1/clusters",
            Some(json!({"name": format!("cc-{s}"), "api_url": "https://10.0.0.1:6443", "token": "sekrit"})),
        )
        .table("clusters", 1),
        Ep::ClusterUpdate => {
            app.ok(
                Method::POST,
                "/api/v1/clusters",
                admin,
                Some(json!({"name": format!("cu-{s}"), "api_url": "https://10.0.0.1:6443"})),
            )
            .await;
            let path = format!("/api/v1/clusters/cu-{s}");
            Req::new(Method::PATCH, &path, Some(json!({"api_url": "https://10.0.0.2:6443"}))).probe(path)
        }
        Ep::ClusterDelete => {
            app.ok(
                Method::POST,
                "/api/v1/clusters",
                admin,
                Some(json!({"name": format!("cd-{s}"), "api_url": "https://10.0.0.1:6443"})),
            )
            .await;
            Req::new(Method::DELETE, format!("/api/v1/clusters/cd-{s}"), None).table("clusters", -1)
        }
        Ep::EnvCreate => Req::new(
            Method::POST,
            "/api/v1/environments",
            Some(json!({"name": format!("ec-{s}"), "namespace": format!("ec-{s}")})),
        )
        .table("environments", 1),
        Ep::EnvNamespaceBind => {
            app.ok(Method::POST, "/api/v1/projects", admin, Some(json!({"name": format!("nb-{s}")})))
                .await;
            Req::new(
                Method::PUT,
                format!("/api/v1/environments/fat/namespaces/nb-{s}"),
                Some(json!({"namespace": format!("nb-{s}")})),
            )
            .table("environment_namespaces", 1)
        }
        Ep::EnvNamespaceUnbind => {
            app.ok(Method::POST, "/api/v1/projects", admin, Some(json!({"name": format!("nu-{s}")})))
                .await;
            app.ok(
                Method::PUT,
                &format!("/api/v1/environments/fat/namespaces/nu-{s}"),
                admin,
                Some(json!({"namespace": format!("nu-{s}")})),
            )
            .await;
            Req::new(Method::DELETE, format!("/api/v1/environments/fat/namespaces/nu-{s}"), None)
                .table("environment_namespaces", -1)
        }
        Ep::EnvUpdate => {
            app.ok(
                Method::POST,
                "/api/v1/environments",
                admin,
                Some(json!({"name": format!("eu-{s}"), "namespace": format!("eu-{s}")})),
            )
            .await;
            let path = format!("/api/v1/environments/eu-{s}");
            Req::new(Method::PATCH, &path, Some(json!({"namespace": "moved"}))).probe(path)
        }
        Ep::EnvDelete => {
            app.ok(
                Method::POST,
                "/api/v1/environments",
                admin,
                Some(json!({"name": format!("ed-{s}"), "namespace": format!("ed-{s}")})),
            )
            .await;
            Req::new(Method::DELETE, format!("/api/v1/environments/ed-{s}"), None).table("environments", -1)
        }
        Ep::ProjectCreate => Req::new(
            Method::POST,
            "/api/v1/projects",
            Some(json!({"name": format!("pc-{s}")})),
        )
        .table("projects", 1),
        Ep::ProjectUpdate => Req::new(
            Method::PATCH,
            "/api/v1/projects/alpha",
            Some(json!({"description": format!("by {s}")})),
        )
        .probe("/api/v1/projects/alpha"),
        Ep::ProjectDelete => {
            app.ok(
                Method::POST,
                "/api/v1/projects",
                admin,
                Some(json!({"name": format!("pd-{s}")})),
            )
            .await;
            Req::new(Method::DELETE, format!("/api/v1/projects/pd-{s}"), None).table("projects", -1)
        }
        Ep::MemberGrant => {
            let (st, e) = app
                .call(
                    Method::DELETE,
                    "/api/v1/projects/alpha/members/vic/tester",
                    Some(admin),
                    None,
                )
                .await;
            assert!(st == StatusCode::NO_CONTENT || st == StatusCode::NOT_FOUND, "{st} {e}");
            Req::new(
                Method::POST,
                "/api/v1/projects/alpha/members",
                Some(json!({"username": "vic", "role": "tester"})),
            )
            .table("memberships", 1)
        }
        Ep::MemberRevoke => {
            app.ok(
                Method::POST,
                "/api/v1/projects/alpha/members",
                admin,
                Some(json!({"username": "vic", "role": "tester"})),
            )
            .await;
            Req::new(Method::DELETE, "/api/v1/projects/alpha/members/vic/tester", None).table("memberships", -1)
        }
        Ep::AppCreate => Req::new(
            Method::POST,
            "/api/v1/applications",
            Some(json!({"project": "alpha", "name": format!("ac-{s}"), "git_url": "https://git.example/ac.git"})),
        )
        .table("applications", 1),
        Ep::AppUpdate => Req::new(
            Method::PATCH,
            "/api/v1/applications/web",
            Some(json!({"git_url": format!("https://git.example/web-{s}.git")})),
        )
        .probe("/api/v1/applications/web"),
        Ep::WebhookCreate => {
            // Each cell starts without a webhook on web.
            let _ = app.call(Method::DELETE, WEBHOOK, Some(admin), None).await;
            Req::new(
                Method::POST,
                WEBHOOK,
                Some(json!({"forge": "github", "release_rules": {"branches": ["main"]}})),
            )
            .table("app_webhooks", 1)
        }
        Ep::WebhookUpdate => {
            ensure_webhook(app).await;
            Req::new(
                Method::PATCH,
                WEBHOOK,
                Some(json!({"release_rules": {"branches": [format!("by-{s}")]}})),
            )
            .probe(WEBHOOK)
        }
        Ep::WebhookRotate => {
            ensure_webhook(app).await;
            // The rotation time is in milliseconds: let the clock move on.
            tokio::time::sleep(Duration::from_millis(3)).await;
            Req::new(Method::POST, format!("{WEBHOOK}/rotate"), None).probe(WEBHOOK)
        }
        Ep::WebhookDelete => {
            ensure_webhook(app).await;
            Req::new(Method::DELETE, WEBHOOK, None).table("app_webhooks", -1)
        }
        Ep::ProjectWebhookCreate => {
            // Each cell starts without a webhook on alpha.
            let _ = app.call(Method::DELETE, PROJECT_WEBHOOK, Some(admin), None).await;
            Req::new(
                Method::POST,
                PROJECT_WEBHOOK,
                Some(json!({"forge": "github", "release_rules": {"branches": ["main"]}})),
            )
            .table("project_webhooks", 1)
        }
        Ep::ProjectWebhookUpdate => {
            ensure_project_webhook(app).await;
            Req::new(
                Method::PATCH,
                PROJECT_WEBHOOK,
                Some(json!({"release_rules": {"branches": [format!("by-{s}")]}})),
            )
            .probe(PROJECT_WEBHOOK)
        }
        Ep::ProjectWebhookRotate => {
            ensure_project_webhook(app).await;
            tokio::time::sleep(Duration::from_millis(3)).await;
            Req::new(Method::POST, format!("{PROJECT_WEBHOOK}/rotate"), None).probe(PROJECT_WEBHOOK)
        }
        Ep::ProjectWebhookDelete => {
            ensure_project_webhook(app).await;
            Req::new(Method::DELETE, PROJECT_WEBHOOK, None).table("project_webhooks", -1)
        }
        Ep::AppDelete => {
            app.ok(
                Method::POST,
                "/api/v1/applications",
                admin,
                Some(json!({"project": "alpha", "name": format!("ad-{s}"), "git_url": "https://git.example/ad.git"})),
            )
            .await;
            Req::new(Method::DELETE, format!("/api/v1/applications/ad-{s}"), None).table("applications", -1)
        }
        Ep::SettingsPut => {
            let body = json!({
                "replicas": 2, "cpu_request": "100m", "cpu_limit": "500m", "memory_request": "128Mi",
                "memory_limit": "256Mi", "env_vars": {"SET_BY": s},
            });
            Req::new(Method::PUT, "/api/v1/applications/web/settings/fat", Some(body))
                .probe("/api/v1/applications/web/settings")
        }
        Ep::Hold => {
            clear_hold(app).await;
            Req::new(Method::POST, HOLD, Some(json!({"note": format!("testing, {s}")})))
                .probe("/api/v1/board?application=web")
        }
        Ep::UnholdOthersWithReason | Ep::UnholdOthersWithoutReason => {
            clear_hold(app).await;
            app.ok(Method::POST, HOLD, &w.tina, Some(json!({"note": "tina tests"})))
                .await;
            let path = match ep {
                Ep::UnholdOthersWithReason => format!("{HOLD}?reason=urgent%20fix"),
                _ => HOLD.to_owned(),
            };
            Req::new(Method::DELETE, path, None).probe("/api/v1/board?application=web")
        }
        Ep::ReleaseCreate => Req::new(
            Method::POST,
            "/api/v1/releases",
            Some(json!({"application": "svc", "git_ref": "main", "change_note": format!("by {s}")})),
        )
        .table("releases", 1),
        Ep::Act { action, env, steps } => {
            let id = svc_release_at(app, steps).await;
            let mut r = Req::new(
                Method::POST,
                format!("/api/v1/releases/{id}/actions/{action}"),
                Some(act_body(action, env)),
            )
            .table("release_transitions", 1)
            .probe(format!("/api/v1/releases/{id}"));
            r.release = Some(id);
            r
        }
        Ep::JobSelftest => Req::new(Method::POST, "/api/v1/jobs/selftest", Some(json!({"duration_ms": 0}))),
        Ep::StackPut => Req::new(
            Method::PUT,
            format!("/api/v1/stacks/sp-{s}"),
            Some(json!({"build_command": "make", "artifact_paths": ["out"]})),
        )
        .table("stacks", 1),
        Ep::OpsToolPut => {
            ensure_tools_cluster(app).await;
            Req::new(
            Method::PUT,
            format!("/api/v1/ops-tools/tools-c/tp-{s}"),
            Some(json!({"kind": "prometheus", "upstream": "http://127.0.0.1:9090", "roles": ["operator"]})),
        )
        .table("ops_tools", 1)
        }
        Ep::PrometheusPut => {
            ensure_tools_cluster(app).await;
            Req::new(
                Method::PUT,
                "/api/v1/clusters/tools-c/prometheus",
                Some(json!({"url": format!("http://127.0.0.1:9/{s}"), "token": "sekrit"})),
            )
            .probe("/api/v1/clusters/tools-c/prometheus")
        }
        Ep::PrometheusDelete => {
            ensure_tools_cluster(app).await;
            app.ok(
                Method::PUT,
                "/api/v1/clusters/tools-c/prometheus",
                &app.admin,
                Some(json!({"url": "http://127.0.0.1:9"})),
            )
            .await;
            Req::new(Method::DELETE, "/api/v1/clusters/tools-c/prometheus", None)
                .probe("/api/v1/clusters/tools-c/prometheus")
        }
        Ep::RolloutPut => {
            let weight = 1 + (s.len() % 90);
            Req::new(
                Method::PUT,
                "/api/v1/applications/web/environments/fat/rollout",
                Some(json!({"type": "canary", "steps": [{"weight": weight}, {"weight": 100}]})),
            )
            .probe("/api/v1/applications/web/environments/fat/rollout")
        }
        Ep::RolloutSteer => {
            let id = ensure_running_canary(app).await;
            // Each cell asks for something else, so that a refused one would show.
            let action = ["pause", "resume", "promote"][s.len() % 3];
            Req::new(Method::POST, format!("/api/v1/deploys/{id}/rollout/{action}"), Some(json!({"reason": s})))
                .probe(format!("/api/v1/deploys/{id}"))
        }
        Ep::EndSessions => {
            // A browser session of a user made for this cell, to be ended.
            let name = format!("es-{s}");
            app.user(&name, None, &[]).await;
            let (st, _) = app
                .call(
                    Method::POST,
                    "/api/v1/auth/login",
                    None,
                    Some(json!({"username": name, "password": prism_test_support::app::PASSWORD})),
                )
                .await;
            assert!(st.is_success(), "login {name}: {st}");
            Req::new(Method::DELETE, format!("/api/v1/users/{name}/sessions"), None).table("sessions", -1)
        }
        Ep::OpsToolDelete => {
            ensure_tools_cluster(app).await;
            app.ok(
                Method::PUT,
                &format!("/api/v1/ops-tools/tools-c/td-{s}"),
                admin,
                Some(json!({"kind": "grafana", "upstream": "http://127.0.0.1:3000"})),
            )
            .await;
            Req::new(Method::DELETE, format!("/api/v1/ops-tools/tools-c/td-{s}"), None).table("ops_tools", -1)
        }
        Ep::StackDelete => {
            app.ok(Method::PUT, &format!("/api/v1/stacks/sd-{s}"), admin, Some(json!({}))).await;
            Req::new(Method::DELETE, format!("/api/v1/stacks/sd-{s}"), None).table("stacks", -1)
        }
        Ep::RegistryPut => Req::new(
            Method::PUT,
            format!("/api/v1/registries/rp-{s}"),
            Some(json!({"host": "registry.example.com", "username": "u", "password": "registry-secret"})),
        )
        .table("registries", 1),
        Ep::RegistryDelete => {
            app.ok(Method::PUT, &format!("/api/v1/registries/rd-{s}"), admin, Some(json!({"host": "r.example.com"})))
                .await;
            Req::new(Method::DELETE, format!("/api/v1/registries/rd-{s}"), None).table("registries", -1)
        }
        Ep::GitCredentialPut => Req::new(
            Method::PUT,
            format!("/api/v1/git-credentials/gp-{s}"),
            Some(json!({"username": "u", "password": "git-secret", "host": "git.example"})),
        )
        .table("git_credentials", 1),
        Ep::GitCredentialDelete => {
            app.ok(
                Method::PUT,
                &format!("/api/v1/git-credentials/gd-{s}"),
                admin,
                Some(json!({"username": "u", "password": "p", "host": "git.example"})),
            )
            .await;
            Req::new(Method::DELETE, format!("/api/v1/git-credentials/gd-{s}"), None).table("git_credentials", -1)
        }
        Ep::ExecutorCreate => Req::new(
            Method::POST,
            "/api/v1/executors",
            Some(json!({"name": format!("ec-{s}"), "kind": "jenkins", "url": "https://ci.example.com", "job": "build", "username": "u", "token": "t"})),
        )
        .table("executors", 1),
        Ep::ExecutorDelete => {
            app.ok(
                Method::POST,
                "/api/v1/executors",
                admin,
                Some(json!({"name": format!("ed-{s}"), "kind": "jenkins", "url": "https://ci.example.com", "job": "build", "username": "u", "token": "t"})),
            )
            .await;
            Req::new(Method::DELETE, format!("/api/v1/executors/ed-{s}"), None).table("executors", -1)
        }
        Ep::BaseCreate => {
            app.ok(Method::PUT, &format!("/api/v1/registries/br-{s}"), admin, Some(json!({"host": "127.0.0.1:9"})))
                .await;
            Req::new(
                Method::POST,
                "/api/v1/base-images",
                Some(json!({"name": format!("bc-{s}"), "tier": 1, "registry": format!("br-{s}"), "repository": "base/x"})),
            )
            .table("base_images", 1)
        }
        Ep::BaseDelete => {
            app.ok(Method::PUT, &format!("/api/v1/registries/bd-{s}"), admin, Some(json!({"host": "127.0.0.1:9"})))
                .await;
            app.ok(
                Method::POST,
                "/api/v1/base-images",
                admin,
                Some(json!({"name": format!("bd-{s}"), "tier": 1, "registry": format!("bd-{s}"), "repository": "base/y"})),
            )
            .await;
            Req::new(Method::DELETE, format!("/api/v1/base-images/bd-{s}"), None).table("base_images", -1)
        }
        Ep::Logout => Req::new(Method::POST, "/api/v1/auth/logout", None),
        Ep::AppUpdateUsing { field, owner } => {
            scoped_credentials(app).await;
            Req::new(
                Method::PATCH,
                "/api/v1/applications/web",
                Some(json!({"build_settings": {field: scoped_name(field, owner)}})),
            )
            .probe("/api/v1/applications/web")
        }
        Ep::AppCreateUsing { field, owner } => {
            scoped_credentials(app).await;
            Req::new(
                Method::POST,
                "/api/v1/applications",
                Some(json!({"project": "alpha", "name": format!("cu-{}-{owner}-{s}", field.replace('_', "-")),
                            "git_url": "https://git.example/cu.git", "build_settings": {field: scoped_name(field, owner)}})),
            )
            .table("applications", 1)
        }
        Ep::PolicyPut => Req::new(
            Method::PUT,
            "/api/v1/address-policy",
            Some(json!({"denied": [format!("10.0.0.{}", who.index())]})),
        )
        .probe("/api/v1/address-policy"),
        Ep::ChannelPut => Req::new(
            Method::PUT,
            format!("/api/v1/notification-channels/np-{s}"),
            Some(json!({"kind": "webhook", "url": "https://hooks.example.com/p", "secret": "channel-secret"})),
        )
        .table("notification_channels", 1),
        Ep::ChannelDelete => {
            app.ok(
                Method::PUT,
                &format!("/api/v1/notification-channels/nd-{s}"),
                admin,
                Some(json!({"kind": "slack", "url": "https://hooks.example.com/d"})),
            )
            .await;
            Req::new(Method::DELETE, format!("/api/v1/notification-channels/nd-{s}"), None)
                .table("notification_channels", -1)
        }
        Ep::ChannelTest => {
            // A closed port: the test message fails at once, and is logged.
            app.ok(
                Method::PUT,
                &format!("/api/v1/notification-channels/nt-{s}"),
                admin,
                Some(json!({"kind": "webhook", "url": "http://127.0.0.1:9/t"})),
            )
            .await;
            Req::new(Method::POST, format!("/api/v1/notification-channels/nt-{s}/test"), Some(json!({})))
                .table("notification_deliveries", 1)
        }
        Ep::SubscriptionPut => {
            app.ok(
                Method::PUT,
                &format!("/api/v1/notification-channels/ns-{s}"),
                admin,
                Some(json!({"kind": "webhook", "url": "https://hooks.example.com/s"})),
            )
            .await;
            Req::new(
                Method::PUT,
                format!("/api/v1/projects/alpha/subscriptions/ns-{s}"),
                Some(json!({"events": ["deploy_failed"], "language": "zh-CN"})),
            )
            .table("notification_subscriptions", 1)
        }
        Ep::SubscriptionDelete => {
            app.ok(
                Method::PUT,
                &format!("/api/v1/notification-channels/nu-{s}"),
                admin,
                Some(json!({"kind": "webhook", "url": "https://hooks.example.com/u"})),
            )
            .await;
            app.ok(
                Method::PUT,
                &format!("/api/v1/projects/alpha/subscriptions/nu-{s}"),
                admin,
                Some(json!({"events": ["deploy_failed"]})),
            )
            .await;
            Req::new(Method::DELETE, format!("/api/v1/projects/alpha/subscriptions/nu-{s}"), None)
                .table("notification_subscriptions", -1)
        }
    }
}

/// The registry, git credential and executor of alpha and of beta (each
/// allowed to its project only), made once per matrix.
async fn scoped_credentials(app: &TestApp) {
    if app.count("credential_projects").await > 0 {
        return;
    }
    for p in ["alpha", "beta"] {
        app.ok(
            Method::PUT,
            &format!("/api/v1/registries/{p}-reg"),
            &app.admin,
            Some(json!({"host": format!("{p}.registry.example"), "projects": [p]})),
        )
        .await;
        app.ok(
            Method::PUT,
            &format!("/api/v1/git-credentials/{p}-git"),
            &app.admin,
            Some(json!({"username": "u", "password": "p", "host": format!("{p}.git.example"), "projects": [p]})),
        )
        .await;
        app.ok(
            Method::POST,
            "/api/v1/executors",
            &app.admin,
            Some(
                json!({"name": format!("{p}-ci"), "kind": "jenkins", "url": "https://ci.example.com", "job": "b",
                        "username": "u", "token": "t", "projects": [p]}),
            ),
        )
        .await;
    }
}

fn scoped_name(field: &str, owner: &str) -> String {
    match field {
        "registry" => format!("{owner}-reg"),
        "git_credential" => format!("{owner}-git"),
        _ => format!("{owner}-ci"),
    }
}

/// One row of the matrix: an endpoint and the status expected for each
/// authenticated caller, in the order admin, developer, tester, operator,
/// other-project member, user without roles. The four unauthenticated
/// callers (none, revoked, expired, garbage token) always expect 401.
struct Row {
    label: &'static str,
    ep: Ep,
    expect: [u16; 6],
}

const fn row(label: &'static str, ep: Ep, expect: [u16; 6]) -> Row {
    Row { label, ep, expect }
}

const fn act(action: &'static str, env: Option<&'static str>, steps: usize) -> Ep {
    Ep::Act { action, env, steps }
}

#[rustfmt::skip]
const ACCOUNT_AND_ADMIN_ROWS: &[Row] = &[
    //                                                                             admin dev  test ops  cross none
    row("POST /users",                                   Ep::UserCreate,            [201, 403, 403, 403, 403, 403]),
    row("POST /users (admin: true)",                     Ep::UserCreateAdmin,       [201, 403, 403, 403, 403, 403]),
    row("PATCH /users/{another user}",                   Ep::UserUpdateOther,       [200, 403, 403, 403, 403, 403]),
    row("PATCH /users/{self} display_name",              Ep::UserUpdateSelf,        [200, 200, 200, 200, 200, 200]),
    row("PATCH /users/{self} admin: true",               Ep::UserMakeSelfAdmin,     [200, 403, 403, 403, 403, 403]),
    row("PATCH /users/{self} password+current_password", Ep::UserChangeOwnPassword, [200, 200, 200, 200, 200, 200]),
    row("POST /tokens",                                  Ep::TokenCreate,           [201, 201, 201, 201, 201, 201]),
    row("DELETE /tokens/{own}",                          Ep::TokenRevokeOwn,        [200, 200, 200, 200, 200, 200]),
    row("DELETE /tokens/{another user's}",               Ep::TokenRevokeOthers,     [200, 404, 404, 404, 404, 404]),
    row("POST /clusters",                                Ep::ClusterCreate,         [201, 403, 403, 403, 403, 403]),
    row("PATCH /clusters/{name}",                        Ep::ClusterUpdate,         [200, 403, 403, 403, 403, 403]),
    row("DELETE /clusters/{name}",                       Ep::ClusterDelete,         [204, 403, 403, 403, 403, 403]),
    row("POST /environments",                            Ep::EnvCreate,             [201, 403, 403, 403, 403, 403]),
    row("PATCH /environments/{name}",                    Ep::EnvUpdate,             [200, 403, 403, 403, 403, 403]),
    row("PUT /environments/fat/namespaces/{project}",    Ep::EnvNamespaceBind,      [200, 403, 403, 403, 403, 403]),
    row("DELETE /environments/fat/namespaces/{project}", Ep::EnvNamespaceUnbind,    [204, 403, 403, 403, 403, 403]),
    row("DELETE /environments/{name}",                   Ep::EnvDelete,             [204, 403, 403, 403, 403, 403]),
    row("POST /projects",                                Ep::ProjectCreate,         [201, 403, 403, 403, 403, 403]),
    row("PATCH /projects/alpha",                         Ep::ProjectUpdate,         [200, 403, 403, 403, 403, 403]),
    row("DELETE /projects/{name}",                       Ep::ProjectDelete,         [204, 403, 403, 403, 403, 403]),
    row("POST /projects/alpha/members",                  Ep::MemberGrant,           [201, 403, 403, 403, 403, 403]),
    row("DELETE /projects/alpha/members/{user}/{role}",  Ep::MemberRevoke,          [204, 403, 403, 403, 403, 403]),
    row("POST /jobs/selftest",                           Ep::JobSelftest,           [201, 403, 403, 403, 403, 403]),
    row("POST /auth/logout (bearer)",                    Ep::Logout,                [204, 204, 204, 204, 204, 204]),
    row("PUT /stacks/{name}",                            Ep::StackPut,              [200, 403, 403, 403, 403, 403]),
    row("DELETE /stacks/{name}",                         Ep::StackDelete,           [204, 403, 403, 403, 403, 403]),
    row("DELETE /users/{username}/sessions",             Ep::EndSessions,           [200, 403, 403, 403, 403, 403]),
    row("PUT /ops-tools/tools-c/{name}",                 Ep::OpsToolPut,            [200, 403, 403, 403, 403, 403]),
    row("PUT /clusters/tools-c/prometheus",              Ep::PrometheusPut,         [200, 403, 403, 403, 403, 403]),
    row("DELETE /clusters/tools-c/prometheus",           Ep::PrometheusDelete,      [204, 403, 403, 403, 403, 403]),
    row("DELETE /ops-tools/tools-c/{name}",              Ep::OpsToolDelete,         [204, 403, 403, 403, 403, 403]),
    row("PUT /registries/{name}",                        Ep::RegistryPut,           [200, 403, 403, 403, 403, 403]),
    row("DELETE /registries/{name}",                     Ep::RegistryDelete,        [204, 403, 403, 403, 403, 403]),
    row("PUT /git-credentials/{name}",                   Ep::GitCredentialPut,      [200, 403, 403, 403, 403, 403]),
    row("DELETE /git-credentials/{name}",                Ep::GitCredentialDelete,   [204, 403, 403, 403, 403, 403]),
    row("POST /executors",                               Ep::ExecutorCreate,        [201, 403, 403, 403, 403, 403]),
    row("DELETE /executors/{name}",                      Ep::ExecutorDelete,        [204, 403, 403, 403, 403, 403]),
    row("POST /base-images",                             Ep::BaseCreate,            [201, 403, 403, 403, 403, 403]),
    row("DELETE /base-images/{name}",                    Ep::BaseDelete,            [204, 403, 403, 403, 403, 403]),
    row("PUT /address-policy",                           Ep::PolicyPut,             [200, 403, 403, 403, 403, 403]),
    row("PUT /notification-channels/{name}",             Ep::ChannelPut,            [200, 403, 403, 403, 403, 403]),
    row("DELETE /notification-channels/{name}",          Ep::ChannelDelete,         [204, 403, 403, 403, 403, 403]),
    row("POST /notification-channels/{name}/test",       Ep::ChannelTest,           [200, 403, 403, 403, 403, 403]),
];

const fn using(field: &'static str, owner: &'static str) -> Ep {
    Ep::AppUpdateUsing { field, owner }
}

const fn creating(field: &'static str, owner: &'static str) -> Ep {
    Ep::AppCreateUsing { field, owner }
}

/// Every endpoint that names a registry, git credential or executor, with a
/// record of the application's own project (alpha) and of another (beta):
/// the other project's is refused to everyone, admins included, with the
/// answer an unknown name gets (422 on the field).
#[rustfmt::skip]
const CREDENTIAL_ROWS: &[Row] = &[
    //                                                                             admin dev  test ops  cross none
    row("PATCH /applications/web registry of alpha",     using("registry", "alpha"),        [200, 403, 403, 200, 404, 404]),
    row("PATCH /applications/web registry of beta",      using("registry", "beta"),         [422, 403, 403, 422, 404, 404]),
    row("PATCH /applications/web git credential of alpha", using("git_credential", "alpha"), [200, 403, 403, 200, 404, 404]),
    row("PATCH /applications/web git credential of beta", using("git_credential", "beta"),  [422, 403, 403, 422, 404, 404]),
    row("PATCH /applications/web executor of alpha",     using("executor", "alpha"),        [200, 403, 403, 200, 404, 404]),
    row("PATCH /applications/web executor of beta",      using("executor", "beta"),         [422, 403, 403, 422, 404, 404]),
    row("POST /applications registry of alpha",          creating("registry", "alpha"),     [201, 403, 403, 201, 422, 422]),
    row("POST /applications registry of beta",           creating("registry", "beta"),      [422, 403, 403, 422, 422, 422]),
    row("POST /applications git credential of alpha",    creating("git_credential", "alpha"), [201, 403, 403, 201, 422, 422]),
    row("POST /applications git credential of beta",     creating("git_credential", "beta"), [422, 403, 403, 422, 422, 422]),
    row("POST /applications executor of alpha",          creating("executor", "alpha"),     [201, 403, 403, 201, 422, 422]),
    row("POST /applications executor of beta",           creating("executor", "beta"),      [422, 403, 403, 422, 422, 422]),
];

#[rustfmt::skip]
const PROJECT_ROWS: &[Row] = &[
    //                                                                             admin dev  test ops  cross none
    row("POST /applications (project alpha)",            Ep::AppCreate,             [201, 403, 403, 201, 422, 422]),
    row("PATCH /applications/web",                       Ep::AppUpdate,             [200, 403, 403, 200, 404, 404]),
    row("DELETE /applications/{name}",                   Ep::AppDelete,             [204, 403, 403, 403, 403, 403]),
    row("PUT /applications/web/settings/fat",            Ep::SettingsPut,           [200, 403, 403, 200, 404, 404]),
    row("PUT .../web/environments/fat/rollout",          Ep::RolloutPut,            [200, 403, 403, 200, 404, 404]),
    row("POST /deploys/{canary in prd}/rollout/{action}", Ep::RolloutSteer,         [202, 403, 403, 202, 404, 404]),
    row("POST .../web/environments/fat/hold",            Ep::Hold,                  [201, 403, 201, 201, 404, 404]),
    row("DELETE .../hold?reason= (tina's hold)",         Ep::UnholdOthersWithReason,[200, 403, 403, 200, 404, 404]),
    row("DELETE .../hold (tina's hold, no reason)",      Ep::UnholdOthersWithoutReason,[422, 403, 422, 422, 404, 404]),
    row("POST /releases (application svc)",              Ep::ReleaseCreate,         [201, 201, 403, 403, 422, 422]),
    row("POST /applications/web/webhook",                Ep::WebhookCreate,         [201, 403, 403, 201, 404, 404]),
    row("PATCH /applications/web/webhook",               Ep::WebhookUpdate,         [200, 403, 403, 200, 404, 404]),
    row("POST /applications/web/webhook/rotate",         Ep::WebhookRotate,         [200, 403, 403, 200, 404, 404]),
    row("DELETE /applications/web/webhook",              Ep::WebhookDelete,         [204, 403, 403, 204, 404, 404]),
    row("POST /projects/alpha/webhook",                  Ep::ProjectWebhookCreate,  [201, 403, 403, 201, 404, 404]),
    row("PATCH /projects/alpha/webhook",                 Ep::ProjectWebhookUpdate,  [200, 403, 403, 200, 404, 404]),
    row("POST /projects/alpha/webhook/rotate",           Ep::ProjectWebhookRotate,  [200, 403, 403, 200, 404, 404]),
    row("DELETE /projects/alpha/webhook",                Ep::ProjectWebhookDelete,  [204, 403, 403, 204, 404, 404]),
    row("PUT /projects/alpha/subscriptions/{channel}",   Ep::SubscriptionPut,       [200, 403, 403, 200, 404, 404]),
    row("DELETE /projects/alpha/subscriptions/{channel}", Ep::SubscriptionDelete,   [204, 403, 403, 204, 404, 404]),
];

/// Actions by the engine (build and deploy results), and the ones that end a release.
#[rustfmt::skip]
const RELEASE_RESULT_ROWS: &[Row] = &[
    //                                                                                   admin dev  test ops  cross none
    row("start_build (created)",       act("start_build", None, CREATED),               [200, 200, 403, 403, 404, 404]),
    row("build_succeeded (building)",  act("build_succeeded", None, BUILDING),          [200, 403, 403, 403, 404, 404]),
    row("build_failed (building)",     act("build_failed", None, BUILDING),             [200, 403, 403, 403, 404, 404]),
    row("deploy_succeeded (deploying)",act("deploy_succeeded", None, DEPLOYING_FAT),    [200, 403, 403, 403, 404, 404]),
    row("deploy_failed (deploying)",   act("deploy_failed", None, DEPLOYING_FAT),       [200, 403, 403, 403, 404, 404]),
    row("close (built)",               act("close", None, BUILT),                       [200, 200, 200, 200, 404, 404]),
    row("abandon (built)",             act("abandon", None, BUILT),                     [200, 200, 200, 200, 404, 404]),
    row("abandon (deployed fat)",      act("abandon", None, DEPLOYED_FAT),              [200, 200, 200, 200, 404, 404]),
];

/// Moving a release along the lifecycle: fat lets developers deploy, uat does not.
#[rustfmt::skip]
const RELEASE_PROMOTION_ROWS: &[Row] = &[
    //                                                                                   admin dev  test ops  cross none
    row("promote fat (built)",         act("promote", Some("fat"), BUILT),              [200, 200, 200, 200, 404, 404]),
    row("deploy fat (promoted fat)",   act("deploy", Some("fat"), PROMOTED_FAT),        [200, 200, 403, 200, 404, 404]),
    row("pass (deployed fat)",         act("pass", None, DEPLOYED_FAT),                 [200, 403, 200, 200, 404, 404]),
    row("promote uat (passed fat)",    act("promote", Some("uat"), PASSED_FAT),         [200, 403, 200, 200, 404, 404]),
    row("deploy uat (promoted uat)",   act("deploy", Some("uat"), PROMOTED_UAT),        [200, 403, 403, 200, 404, 404]),
];

fn error_code_for(status: u16) -> Option<&'static str> {
    match status {
        401 => Some("unauthorized"),
        403 => Some("forbidden"),
        404 => Some("not_found"),
        422 => Some("validation"),
        _ => None,
    }
}

/// Runs every cell of `rows` and fails once, listing every wrong cell.
async fn run_matrix(app: &TestApp, rows: &[Row]) {
    let w = World::build(app).await;
    let mut wrong = Vec::new();
    let mut cells = 0;
    for row in rows {
        // Callers without valid credentials share one target while they are
        // refused (a refused call leaves it as it was, which is checked).
        let mut kept: Option<Req> = None;
        for who in Who::ALL {
            cells += 1;
            let expected = if who.authenticated() {
                row.expect[who.index()]
            } else {
                401
            };
            let req = match kept.take() {
                Some(r) => r,
                None => prepare(app, &w, row.ep, who).await,
            };
            let audit_before = request_audit_count(app).await;
            let rows_before = match req.table {
                Some((t, _)) => app.count(t).await,
                None => 0,
            };
            let probe_before = match &req.probe {
                Some(p) => Some(app.get(p, &app.admin).await),
                None => None,
            };

            let (status, body) = app
                .call(req.method.clone(), &req.path, w.token(who), req.body.clone())
                .await;

            let cell = format!("{} [{} {}] as {who:?}", row.label, req.method, req.path);
            if status.as_u16() != expected {
                wrong.push(format!("{cell}: expected {expected}, got {status}: {body}"));
            } else if let Some(code) = error_code_for(expected) {
                if body["code"] != code || !body["error"].is_string() {
                    wrong.push(format!("{cell}: expected an error body with code {code:?}, got {body}"));
                }
            }
            let audit_delta = request_audit_count(app).await - audit_before;
            let want_audit = if status.is_success() { 1 } else { 0 };
            if audit_delta != want_audit {
                wrong.push(format!(
                    "{cell} -> {status}: wrote {audit_delta} audit events, expected {want_audit}"
                ));
            }
            if let Some((t, delta)) = req.table {
                let got = app.count(t).await - rows_before;
                let want = if status.is_success() { delta } else { 0 };
                if got != want {
                    wrong.push(format!(
                        "{cell} -> {status}: {t} changed by {got} rows, expected {want}"
                    ));
                }
            }
            if let (Some(p), Some(before)) = (&req.probe, probe_before) {
                if !status.is_success() {
                    let after = app.get(p, &app.admin).await;
                    if after != before {
                        wrong.push(format!(
                            "{cell} -> {status} changed GET {p}: {} -> {}",
                            before.1, after.1
                        ));
                    }
                }
            }
            let last = Some(&who) == Who::ALL.last();
            if !who.authenticated() && status == StatusCode::UNAUTHORIZED && !last {
                kept = Some(req);
            } else if let Some(id) = &req.release {
                // Free the environments for the next cell (409 if already final).
                let _ = app.try_act(id, "abandon", &app.admin, json!({})).await;
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {cells} cells wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

both_backends!(matrix_accounts_and_admin_resources, |app| {
    run_matrix(app, ACCOUNT_AND_ADMIN_ROWS).await;
});

both_backends!(matrix_applications_holds_and_release_creation, |app| {
    run_matrix(app, PROJECT_ROWS).await;
});

both_backends!(matrix_credential_scoping, |app| {
    run_matrix(app, CREDENTIAL_ROWS).await;
});

both_backends!(matrix_release_results_and_endings, |app| {
    run_matrix(app, RELEASE_RESULT_ROWS).await;
});

both_backends!(matrix_release_promotion_and_deploy, |app| {
    run_matrix(app, RELEASE_PROMOTION_ROWS).await;
});

/// The matrix stays a matrix: each row names a distinct endpoint and case.
#[test]
fn matrix_rows_are_distinct() {
    let rows = ACCOUNT_AND_ADMIN_ROWS
        .iter()
        .chain(PROJECT_ROWS)
        .chain(CREDENTIAL_ROWS)
        .chain(RELEASE_RESULT_ROWS)
        .chain(RELEASE_PROMOTION_ROWS);
    let labels: Vec<&str> = rows.map(|r| r.label).collect();
    let unique: BTreeSet<&str> = labels.iter().copied().collect();
    assert_eq!(unique.len(), labels.len(), "duplicate rows: {labels:?}");
}

// ---------------------------------------------------------------------------
// Project isolation

both_backends!(other_projects_are_invisible, |app| {
    app.project_with_app("alpha", "web").await;
    app.project_with_app("beta", "api").await;
    let bea = app
        .user("bea", Some("beta"), &["developer", "tester", "operator"])
        .await;
    let nora = app.user("nora", None, &[]).await;
    let a_rel = app.built_release("web").await;
    app.deploy_to(&a_rel, "fat").await;
    let a_open = app.built_release("web").await;
    let b_rel = app.built_release("api").await;
    app.deploy_to(&b_rel, "fat").await;

    // GETs of alpha's records: 404, exactly as for records that do not exist.
    let audit_before = app.count("audit_events").await;
    let hidden: Vec<(String, &str)> = vec![
        ("/api/v1/projects/alpha".into(), "/api/v1/projects/nope"),
        ("/api/v1/projects/alpha/members".into(), "/api/v1/projects/nope/members"),
        ("/api/v1/applications/web".into(), "/api/v1/applications/nope"),
        (
            "/api/v1/applications/web/settings".into(),
            "/api/v1/applications/nope/settings",
        ),
        (format!("/api/v1/releases/{a_rel}"), "/api/v1/releases/r999999"),
        (
            format!("/api/v1/releases/{a_rel}/history"),
            "/api/v1/releases/r999999/history",
        ),
        (
            "/api/v1/applications?project=alpha".into(),
            "/api/v1/applications?project=nope",
        ),
        ("/api/v1/releases?project=alpha".into(), "/api/v1/releases?project=nope"),
        (
            "/api/v1/releases?application=web".into(),
            "/api/v1/releases?application=nope",
        ),
        ("/api/v1/board?application=web".into(), "/api/v1/board?application=nope"),
    ];
    for (path, missing) in hidden {
        for token in [&bea, &nora] {
            let (s, e) = app.get(&path, token).await;
            assert_eq!(s, StatusCode::NOT_FOUND, "GET {path}: {e}");
            assert_eq!(e["code"], "not_found", "GET {path}: {e}");
            let (s2, e2) = app.get(missing, token).await;
            assert_eq!(
                (s2, &e2["code"], &e2["field"]),
                (s, &e["code"], &e["field"]),
                "{path} vs {missing}: {e} / {e2}"
            );
        }
        let (s, _) = app.get(&path, &app.admin).await;
        assert_eq!(s, StatusCode::OK, "the admin sees {path}");
    }

    // Every action on alpha's releases: 404, and the release does not move.
    for (action, env) in [
        ("start_build", None),
        ("build_succeeded", None),
        ("build_failed", None),
        ("promote", Some("fat")),
        ("deploy", Some("fat")),
        ("deploy_succeeded", None),
        ("deploy_failed", None),
        ("pass", None),
        ("close", None),
        ("abandon", None),
    ] {
        for id in [&a_rel, &a_open] {
            let before = app.get(&format!("/api/v1/releases/{id}"), &app.admin).await.1;
            let (s, e) = app.try_act(id, action, &bea, act_body(action, env)).await;
            assert_eq!(s, StatusCode::NOT_FOUND, "{action} on {id}: {e}");
            assert_eq!(e["code"], "not_found");
            let after = app.get(&format!("/api/v1/releases/{id}"), &app.admin).await.1;
            assert_eq!(before, after);
        }
    }
    assert_eq!(
        app.count("audit_events").await,
        audit_before,
        "refused calls wrote audit events"
    );

    // Listings show beta only, to bea, and nothing at all to nora.
    let names = |v: &Value, key: &str| -> BTreeSet<String> {
        v.as_array()
            .unwrap_or_else(|| panic!("not a list: {v}"))
            .iter()
            .map(|x| x[key].as_str().unwrap().to_owned())
            .collect()
    };
    let set = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        names(&app.get("/api/v1/projects", &bea).await.1, "name"),
        set(&["beta"])
    );
    assert_eq!(
        names(&app.get("/api/v1/applications", &bea).await.1, "name"),
        set(&["api"])
    );
    let releases = app.get("/api/v1/releases", &bea).await.1;
    assert_eq!(names(&releases["items"], "id"), set(&[b_rel.as_str()]));
    for state in ["built", "deployed"] {
        let page = app.get(&format!("/api/v1/releases?state={state}"), &bea).await.1;
        assert!(
            page["items"].as_array().unwrap().iter().all(|r| r["project"] == "beta"),
            "{state}: {page}"
        );
    }
    let board = app.get("/api/v1/board", &bea).await.1;
    assert_eq!(names(&board, "application"), set(&["api"]));
    assert!(
        board
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["current_release"] != a_rel.as_str()),
        "{board}"
    );
    let me = app.get("/api/v1/me", &bea).await.1;
    assert_eq!(names(&me["memberships"], "project"), set(&["beta"]));

    for path in ["/api/v1/projects", "/api/v1/applications", "/api/v1/board"] {
        assert_eq!(app.get(path, &nora).await.1, json!([]), "{path}");
    }
    assert_eq!(app.get("/api/v1/releases", &nora).await.1["items"], json!([]));

    // And the admin sees both, so the checks above are not vacuous.
    assert_eq!(
        names(&app.get("/api/v1/projects", &app.admin).await.1, "name"),
        set(&["alpha", "beta"])
    );
    assert_eq!(
        names(&app.get("/api/v1/board", &app.admin).await.1, "application"),
        set(&["api", "web"])
    );
});

// ---------------------------------------------------------------------------
// Authentication required everywhere

/// Every route of the API. The test below also checks this list against the
/// OpenAPI document, so a new endpoint cannot slip past it.
const ENDPOINTS: &[(&str, &str)] = &[
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/logout"),
    ("POST", "/api/v1/auth/token"),
    ("GET", "/api/v1/me"),
    ("GET", "/api/v1/users"),
    ("POST", "/api/v1/users"),
    ("GET", "/api/v1/users/{username}"),
    ("PATCH", "/api/v1/users/{username}"),
    ("GET", "/api/v1/tokens"),
    ("POST", "/api/v1/tokens"),
    ("DELETE", "/api/v1/tokens/{id}"),
    ("GET", "/api/v1/clusters"),
    ("POST", "/api/v1/clusters"),
    ("GET", "/api/v1/clusters/{name}"),
    ("PATCH", "/api/v1/clusters/{name}"),
    ("DELETE", "/api/v1/clusters/{name}"),
    ("GET", "/api/v1/environments"),
    ("POST", "/api/v1/environments"),
    ("GET", "/api/v1/environments/{name}"),
    ("PATCH", "/api/v1/environments/{name}"),
    ("DELETE", "/api/v1/environments/{name}"),
    ("GET", "/api/v1/environments/{name}/namespaces"),
    ("PUT", "/api/v1/environments/{name}/namespaces/{project}"),
    ("DELETE", "/api/v1/environments/{name}/namespaces/{project}"),
    ("GET", "/api/v1/projects"),
    ("POST", "/api/v1/projects"),
    ("GET", "/api/v1/projects/{name}"),
    ("PATCH", "/api/v1/projects/{name}"),
    ("DELETE", "/api/v1/projects/{name}"),
    ("GET", "/api/v1/projects/{name}/members"),
    ("POST", "/api/v1/projects/{name}/members"),
    ("DELETE", "/api/v1/projects/{name}/members/{username}/{role}"),
    ("GET", "/api/v1/applications"),
    ("POST", "/api/v1/applications"),
    ("GET", "/api/v1/applications/{name}"),
    ("PATCH", "/api/v1/applications/{name}"),
    ("DELETE", "/api/v1/applications/{name}"),
    ("GET", "/api/v1/applications/{name}/settings"),
    ("PUT", "/api/v1/applications/{name}/settings/{env}"),
    ("POST", "/api/v1/applications/{name}/environments/{env}/hold"),
    ("DELETE", "/api/v1/applications/{name}/environments/{env}/hold"),
    ("GET", "/api/v1/releases"),
    ("POST", "/api/v1/releases"),
    ("GET", "/api/v1/releases/{id}"),
    ("GET", "/api/v1/releases/{id}/history"),
    ("POST", "/api/v1/releases/{id}/actions/{action}"),
    ("GET", "/api/v1/board"),
    ("GET", "/api/v1/audit"),
    ("GET", "/api/v1/jobs"),
    ("GET", "/api/v1/jobs/{id}"),
    ("POST", "/api/v1/jobs/selftest"),
    ("GET", "/api/v1/clusters/{name}/health"),
    ("POST", "/api/v1/releases/{id}/deploys"),
    ("GET", "/api/v1/deploys"),
    ("GET", "/api/v1/deploys/{id}"),
    ("GET", "/api/v1/deploys/{id}/events"),
    ("GET", "/api/v1/deploys/{id}/stream"),
    ("POST", "/api/v1/deploys/{id}/review"),
    ("POST", "/api/v1/deploys/{id}/rollout/{action}"),
    ("GET", "/api/v1/applications/{name}/environments/{env}/rollout"),
    ("PUT", "/api/v1/applications/{name}/environments/{env}/rollout"),
    ("GET", "/api/v1/clusters/{name}/prometheus"),
    ("PUT", "/api/v1/clusters/{name}/prometheus"),
    ("DELETE", "/api/v1/clusters/{name}/prometheus"),
    ("POST", "/api/v1/applications/{name}/environments/{env}/rollback"),
    ("GET", "/api/v1/applications/{name}/environments/{env}/drift"),
    ("POST", "/api/v1/applications/{name}/preview"),
    ("GET", "/api/v1/projects/{name}/templates"),
    ("PUT", "/api/v1/projects/{name}/templates"),
    ("GET", "/api/v1/projects/{name}/templates/versions"),
    ("GET", "/api/v1/projects/{name}/templates/versions/{version}"),
    ("POST", "/api/v1/releases/{id}/builds"),
    ("GET", "/api/v1/releases/{id}/builds"),
    ("GET", "/api/v1/builds"),
    ("GET", "/api/v1/builds/{id}"),
    ("GET", "/api/v1/builds/{id}/log"),
    ("GET", "/api/v1/builds/{id}/log.txt"),
    ("GET", "/api/v1/builds/{id}/stream"),
    ("POST", "/api/v1/builds/{id}/cancel"),
    ("POST", "/api/v1/builds/{id}/retry"),
    ("POST", "/api/v1/deploys/{id}/retry"),
    ("GET", "/api/v1/stacks"),
    ("PUT", "/api/v1/stacks/{name}"),
    ("DELETE", "/api/v1/stacks/{name}"),
    ("GET", "/api/v1/registries"),
    ("GET", "/api/v1/address-policy"),
    ("PUT", "/api/v1/address-policy"),
    ("PUT", "/api/v1/registries/{name}"),
    ("DELETE", "/api/v1/registries/{name}"),
    ("GET", "/api/v1/git-credentials"),
    ("PUT", "/api/v1/git-credentials/{name}"),
    ("DELETE", "/api/v1/git-credentials/{name}"),
    ("GET", "/api/v1/executors"),
    ("POST", "/api/v1/executors"),
    ("DELETE", "/api/v1/executors/{name}"),
    ("GET", "/api/v1/base-images"),
    ("POST", "/api/v1/base-images"),
    ("GET", "/api/v1/base-images/{name}"),
    ("DELETE", "/api/v1/base-images/{name}"),
    ("POST", "/api/v1/base-images/{name}/build"),
    ("POST", "/api/v1/base-images/{name}/rebuild-applications"),
    ("GET", "/api/v1/deploys/{id}/approvals"),
    ("POST", "/api/v1/deploys/{id}/approve"),
    ("POST", "/api/v1/deploys/{id}/reject"),
    ("GET", "/api/v1/environments/{name}/approval-policy"),
    ("PUT", "/api/v1/environments/{name}/approval-policy"),
    ("GET", "/api/v1/environments/{name}/schedule"),
    ("PUT", "/api/v1/environments/{name}/schedule"),
    ("GET", "/api/v1/applications/{name}/webhook"),
    ("POST", "/api/v1/applications/{name}/webhook"),
    ("PATCH", "/api/v1/applications/{name}/webhook"),
    ("DELETE", "/api/v1/applications/{name}/webhook"),
    ("POST", "/api/v1/applications/{name}/webhook/rotate"),
    ("POST", "/hooks/git/{app}/{id}"),
    ("GET", "/api/v1/projects/{name}/webhook"),
    ("POST", "/api/v1/projects/{name}/webhook"),
    ("PATCH", "/api/v1/projects/{name}/webhook"),
    ("DELETE", "/api/v1/projects/{name}/webhook"),
    ("POST", "/api/v1/projects/{name}/webhook/rotate"),
    ("POST", "/hooks/git-project/{project}/{id}"),
    ("DELETE", "/api/v1/users/{username}/sessions"),
    ("POST", "/api/v1/auth/cli-login"),
    ("POST", "/api/v1/auth/cli-login/poll"),
    ("GET", "/api/v1/ops-tools"),
    ("GET", "/api/v1/ops-tools/nginx-config"),
    ("PUT", "/api/v1/ops-tools/{cluster}/{name}"),
    ("DELETE", "/api/v1/ops-tools/{cluster}/{name}"),
    ("GET", "/auth/ops/check"),
    ("GET", "/api/v1/notification-channels"),
    ("GET", "/api/v1/notification-channels/{name}"),
    ("PUT", "/api/v1/notification-channels/{name}"),
    ("DELETE", "/api/v1/notification-channels/{name}"),
    ("POST", "/api/v1/notification-channels/{name}/test"),
    ("GET", "/api/v1/notification-channels/{name}/deliveries"),
    ("GET", "/api/v1/projects/{name}/subscriptions"),
    ("PUT", "/api/v1/projects/{name}/subscriptions/{channel}"),
    ("DELETE", "/api/v1/projects/{name}/subscriptions/{channel}"),
    ("GET", "/api/v1/applications/{name}/secrets"),
    ("PUT", "/api/v1/applications/{name}/secrets/{secret}"),
    ("DELETE", "/api/v1/applications/{name}/secrets/{secret}"),
    ("GET", "/api/v1/projects/{name}/secrets"),
    ("PUT", "/api/v1/projects/{name}/secrets/{secret}"),
    ("DELETE", "/api/v1/projects/{name}/secrets/{secret}"),
    ("GET", "/api/v1/directory/group-rules"),
    ("PUT", "/api/v1/directory/group-rules"),
];

/// The endpoints that work without credentials.
/// (A forge's webhook deliveries are signed, not logged in: see `webhooks`.)
const OPEN: &[&str] = &[
    "/api/v1/auth/login",
    "/api/v1/auth/token",
    "/hooks/git/{app}/{id}",
    "/hooks/git-project/{project}/{id}",
    // The command line's login request and its poll (a secret, not a login).
    "/api/v1/auth/cli-login",
    "/api/v1/auth/cli-login/poll",
    // nginx's auth_request: answers 401 to nobody logged in, by design.
    "/auth/ops/check",
];

/// A route template with its parameters filled in with records that exist.
fn concrete(template: &str, release: &str) -> String {
    let collection = template.split('/').nth(3).unwrap_or("");
    let name = match collection {
        "clusters" => "edge",
        "environments" => "fat",
        "projects" => "alpha",
        _ => "web",
    };
    let id = if collection == "releases" { release } else { "1" };
    template
        .replace("{username}", "dana")
        .replace("{role}", "developer")
        .replace("{env}", "fat")
        .replace("{project}", "alpha")
        .replace("{cluster}", "edge")
        .replace("{channel}", "ops")
        .replace("{secret}", "DB_PASSWORD")
        .replace("{action}", "promote")
        .replace("{name}", name)
        .replace("{id}", id)
}

both_backends!(every_endpoint_needs_valid_credentials, |app| {
    // The list above is every route the server documents, and no other.
    let (s, doc) = app.call(Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK);
    let mut documented = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let listed: BTreeSet<(String, String)> = ENDPOINTS.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(listed, documented, "the endpoint list and the OpenAPI document differ");

    app.project_with_app("alpha", "web").await;
    app.ok(
        Method::POST,
        "/api/v1/clusters",
        &app.admin,
        Some(json!({"name": "edge", "api_url": "https://10.0.0.9:6443"})),
    )
    .await;
    let dana = app
        .user("dana", Some("alpha"), &["developer", "tester", "operator"])
        .await;
    let release = app.built_release("web").await;

    // Credentials that must not work: revoked, expired, never issued, a
    // disabled user's, and a header that is not a bearer token.
    let t = app
        .post("/api/v1/tokens", &dana, json!({"name": "soon revoked"}))
        .await
        .1;
    let revoked = t["secret"].as_str().unwrap().to_owned();
    app.ok(
        Method::DELETE,
        &format!("/api/v1/tokens/{}", t["token"]["id"]),
        &dana,
        None,
    )
    .await;
    let t = app
        .post("/api/v1/tokens", &dana, json!({"name": "soon expired"}))
        .await
        .1;
    let expired = t["secret"].as_str().unwrap().to_owned();
    let mut c = app.store.conn().await.unwrap();
    sqlx::query("UPDATE api_tokens SET expires_at = $1 WHERE id = $2")
        .bind(1_i64)
        .bind(t["token"]["id"].as_i64().unwrap())
        .execute(&mut *c)
        .await
        .unwrap();
    drop(c);
    let disabled = app
        .user("dora", Some("alpha"), &["developer", "tester", "operator"])
        .await;
    app.ok(
        Method::PATCH,
        "/api/v1/users/dora",
        &app.admin,
        Some(json!({"disabled": true})),
    )
    .await;
    let headers: Vec<(&str, Option<String>)> = vec![
        ("no credentials", None),
        ("revoked token", Some(format!("Bearer {revoked}"))),
        ("expired token", Some(format!("Bearer {expired}"))),
        (
            "unknown token",
            Some("Bearer prism_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into()),
        ),
        ("disabled user's token", Some(format!("Bearer {disabled}"))),
        (
            "not a bearer token",
            Some(format!("Basic {}", "ZGFuYTp1c2VyLXBhc3N3b3JkLWZvci10ZXN0cw==")),
        ),
        ("empty bearer", Some("Bearer ".into())),
    ];

    let audit_before = request_audit_count(app).await;
    let mut wrong = Vec::new();
    for (method, template) in ENDPOINTS {
        if OPEN.contains(template) {
            continue;
        }
        let path = concrete(template, &release);
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        for (what, header) in &headers {
            let mut req = app.http.request(method.clone(), format!("{}{path}", app.base));
            if let Some(h) = header {
                req = req.header(AUTHORIZATION, h);
            }
            if matches!(method, Method::POST | Method::PUT | Method::PATCH) {
                req = req.json(&json!({}));
            }
            let resp = req.send().await.unwrap();
            let status = resp.status();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            let good_body = body["code"] == "unauthorized" && body["error"].as_str().is_some_and(|e| !e.is_empty());
            if status != StatusCode::UNAUTHORIZED || !good_body {
                wrong.push(format!("{method} {path} with {what}: {status} {body}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} calls were not refused with 401:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert_eq!(
        request_audit_count(app).await,
        audit_before,
        "refused calls wrote audit events"
    );

    // The open ones.
    for path in ["/healthz", "/metrics", "/api/openapi.json"] {
        let (s, b) = app.call(Method::GET, path, None, None).await;
        assert_eq!(s, StatusCode::OK, "{path}: {b}");
    }
    let (s, b) = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "dana", "password": PASSWORD})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = app
        .call(
            Method::POST,
            "/api/v1/auth/token",
            None,
            Some(json!({"username": "dana", "password": PASSWORD})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
});

// ---------------------------------------------------------------------------
// Browser sessions

struct Session {
    cookie: String,
    csrf: String,
}

async fn login(app: &TestApp, username: &str, password: &str) -> (Session, Vec<String>) {
    let resp = app
        .http
        .post(format!("{}/api/v1/auth/login", app.base))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let set_cookie: Vec<String> = resp
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let body: Value = resp.json().await.unwrap();
    let session = set_cookie
        .iter()
        .find(|c| c.starts_with("prism_session="))
        .unwrap_or_else(|| panic!("no session cookie: {set_cookie:?}"));
    let cookie = session.split(';').next().unwrap().to_owned();
    let attrs: Vec<String> = session
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    assert_eq!(body["user"]["username"], username);
    let csrf = body["csrf_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no csrf_token: {body}"))
        .to_owned();
    assert!(csrf.len() >= 32, "{csrf}");
    (Session { cookie, csrf }, attrs)
}

/// A request authenticated by the session cookie only.
async fn with_cookie(
    app: &TestApp,
    method: Method,
    path: &str,
    s: &Session,
    csrf: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = app
        .http
        .request(method, format!("{}{path}", app.base))
        .header(COOKIE, &s.cookie);
    if let Some(c) = csrf {
        req = req.header("X-CSRF-Token", c);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (
        status,
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        },
    )
}

both_backends!(session_cookie_changes_need_the_csrf_token, |app| {
    app.project_with_app("alpha", "web").await;
    app.user("dana", Some("alpha"), &["developer"]).await;
    let (s1, attrs) = login(app, "dana", PASSWORD).await;
    assert!(attrs.iter().any(|a| a == "httponly"), "{attrs:?}");
    assert!(attrs.iter().any(|a| a == "samesite=lax"), "{attrs:?}");
    assert!(attrs.iter().any(|a| a == "path=/"), "{attrs:?}");
    let (s2, _) = login(app, "dana", PASSWORD).await;
    assert_ne!(s1.csrf, s2.csrf);

    // Reads need no CSRF token.
    let (s, me) = with_cookie(app, Method::GET, "/api/v1/me", &s1, None, None).await;
    assert_eq!(s, StatusCode::OK, "{me}");
    assert_eq!(me["user"]["username"], "dana");
    assert_eq!(me["csrf_token"], s1.csrf.as_str());
    let (s, _) = with_cookie(app, Method::GET, "/api/v1/releases", &s1, None, None).await;
    assert_eq!(s, StatusCode::OK);

    // Changes without it, or with a wrong one (another session's), are refused and write nothing.
    let release = json!({"application": "web", "git_ref": "main", "change_note": "from the browser"});
    let audit = app.count("audit_events").await;
    let releases = app.count("releases").await;
    let tokens = app.count("api_tokens").await;
    let wrong = "x".repeat(s1.csrf.len());
    for csrf in [None, Some(""), Some(wrong.as_str()), Some(s2.csrf.as_str())] {
        let (s, e) = with_cookie(app, Method::POST, "/api/v1/releases", &s1, csrf, Some(release.clone())).await;
        assert_eq!(
            (s, &e["code"]),
            (StatusCode::FORBIDDEN, &json!("forbidden")),
            "csrf {csrf:?}: {e}"
        );
        let (s, _) = with_cookie(
            app,
            Method::POST,
            "/api/v1/tokens",
            &s1,
            csrf,
            Some(json!({"name": "x"})),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _) = with_cookie(
            app,
            Method::PATCH,
            "/api/v1/users/dana",
            &s1,
            csrf,
            Some(json!({"display_name": "x"})),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _) = with_cookie(app, Method::POST, "/api/v1/auth/logout", &s1, csrf, None).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
    assert_eq!(app.count("audit_events").await, audit);
    assert_eq!(app.count("releases").await, releases);
    assert_eq!(app.count("api_tokens").await, tokens);

    // With the right one they work.
    let (s, r) = with_cookie(
        app,
        Method::POST,
        "/api/v1/releases",
        &s1,
        Some(&s1.csrf),
        Some(release.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert_eq!(r["creator"], "dana");
    assert_eq!(app.count("audit_events").await, audit + 1);

    // Logout ends that session (and only that one).
    let resp = app
        .http
        .post(format!("{}/api/v1/auth/logout", app.base))
        .header(COOKIE, &s1.cookie)
        .header("X-CSRF-Token", &s1.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let cleared: Vec<&str> = resp
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        cleared
            .iter()
            .any(|c| c.starts_with("prism_session=") && c.to_ascii_lowercase().contains("max-age=0")),
        "logout clears the cookie: {cleared:?}"
    );
    let (s, e) = with_cookie(app, Method::GET, "/api/v1/me", &s1, None, None).await;
    assert_eq!(
        (s, &e["code"]),
        (StatusCode::UNAUTHORIZED, &json!("unauthorized")),
        "{e}"
    );
    let (s, _) = with_cookie(
        app,
        Method::POST,
        "/api/v1/releases",
        &s1,
        Some(&s1.csrf),
        Some(release.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = with_cookie(app, Method::GET, "/api/v1/me", &s2, None, None).await;
    assert_eq!(s, StatusCode::OK, "the other session lives on");

    // Disabling the user ends their sessions.
    app.ok(
        Method::PATCH,
        "/api/v1/users/dana",
        &app.admin,
        Some(json!({"disabled": true})),
    )
    .await;
    let (s, _) = with_cookie(app, Method::GET, "/api/v1/me", &s2, None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
});

// ---------------------------------------------------------------------------
// Login throttling (each backend gets its own server, so its own throttle)

async fn try_login(app: &TestApp, path: &str, username: &str, password: &str) -> (StatusCode, Value) {
    app.call(
        Method::POST,
        path,
        None,
        Some(json!({"username": username, "password": password})),
    )
    .await
}

both_backends!(logins_are_throttled_after_five_failures, |app| {
    app.user("alice", None, &[]).await;
    app.user("bob", None, &[]).await;
    let audit = app.count("audit_events").await;
    for i in 0..5 {
        let (s, e) = try_login(app, "/api/v1/auth/login", "alice", "not-her-password").await;
        assert_eq!(
            (s, &e["code"]),
            (StatusCode::UNAUTHORIZED, &json!("unauthorized")),
            "failure {i}: {e}"
        );
    }
    assert_eq!(app.count("audit_events").await, audit + 5, "each failure is audited");

    // Now even the right password is refused, for her and for anyone else from
    // this address (every test request comes from 127.0.0.1), on both login routes.
    let audit = app.count("audit_events").await;
    for (path, user, pw) in [
        ("/api/v1/auth/login", "alice", PASSWORD),
        ("/api/v1/auth/token", "alice", PASSWORD),
        ("/api/v1/auth/login", "bob", PASSWORD),
        ("/api/v1/auth/token", "bob", PASSWORD),
        ("/api/v1/auth/login", "admin", ADMIN_PASSWORD),
    ] {
        let (s, e) = try_login(app, path, user, pw).await;
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{path} as {user}: {e}");
        assert_eq!(e["code"], "throttled", "{e}");
        assert!(e["error"].is_string());
    }
    assert_eq!(
        app.count("audit_events").await,
        audit,
        "throttled attempts write nothing"
    );
    assert_eq!(app.count("sessions").await, 0);

    // Existing tokens are not affected, and the wait ends (1 s after five failures).
    let (s, _) = app.get("/api/v1/me", &app.admin).await;
    assert_eq!(s, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (s, e) = try_login(app, "/api/v1/auth/login", "bob", PASSWORD).await;
    assert_eq!(s, StatusCode::OK, "{e}");
    let (s, e) = try_login(app, "/api/v1/auth/login", "alice", PASSWORD).await;
    assert_eq!(s, StatusCode::OK, "{e}");
});

// ---------------------------------------------------------------------------
// Own password, last admin

both_backends!(users_change_their_own_password_only_with_the_current_one, |app| {
    let dana = app.user("dana", None, &[]).await;
    app.user("nora", None, &[]).await;
    let new = "dana-new-password-1";
    let audit = app.count("audit_events").await;
    for (path, body, status, field) in [
        ("/api/v1/users/dana", json!({"password": new}), 422, "current_password"),
        (
            "/api/v1/users/dana",
            json!({"password": new, "current_password": "wrong-password-1"}),
            422,
            "current_password",
        ),
        (
            "/api/v1/users/dana",
            json!({"password": "short", "current_password": PASSWORD}),
            422,
            "password",
        ),
        (
            "/api/v1/users/nora",
            json!({"password": new, "current_password": PASSWORD}),
            403,
            "",
        ),
        ("/api/v1/users/dana", json!({"disabled": false}), 403, ""),
    ] {
        let (s, e) = app.call(Method::PATCH, path, Some(&dana), Some(body.clone())).await;
        assert_eq!(s.as_u16(), status, "{body}: {e}");
        if !field.is_empty() {
            assert_eq!(e["field"], field, "{e}");
        }
    }
    assert_eq!(app.count("audit_events").await, audit, "refused changes write nothing");

    let (s, e) = app
        .call(
            Method::PATCH,
            "/api/v1/users/dana",
            Some(&dana),
            Some(json!({"password": new, "current_password": PASSWORD})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{e}");
    assert_eq!(app.count("audit_events").await, audit + 1);
    let (s, _) = try_login(app, "/api/v1/auth/token", "dana", PASSWORD).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "the old password is gone");
    let (s, _) = try_login(app, "/api/v1/auth/token", "dana", new).await;
    assert_eq!(s, StatusCode::CREATED);

    // An admin resets another user's password without knowing it.
    app.ok(
        Method::PATCH,
        "/api/v1/users/nora",
        &app.admin,
        Some(json!({"password": "nora-new-password"})),
    )
    .await;
    let (s, _) = try_login(app, "/api/v1/auth/token", "nora", "nora-new-password").await;
    assert_eq!(s, StatusCode::CREATED);
});

both_backends!(the_last_admin_cannot_be_demoted_or_disabled, |app| {
    let audit = app.count("audit_events").await;
    for body in [
        json!({"admin": false}),
        json!({"disabled": true}),
        json!({"admin": false, "disabled": true}),
    ] {
        let (s, e) = app
            .call(
                Method::PATCH,
                "/api/v1/users/admin",
                Some(&app.admin),
                Some(body.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT, "{body}: {e}");
        assert_eq!(e["code"], "conflict");
        assert_eq!(e["field"], "admin");
    }
    assert_eq!(app.count("audit_events").await, audit);
    let me = app.get("/api/v1/users/admin", &app.admin).await.1;
    assert_eq!(
        (me["is_admin"].as_bool(), me["disabled"].as_bool()),
        (Some(true), Some(false)),
        "{me}"
    );

    // With a second admin, one of them may step down; then the other is the last.
    app.ok(
        Method::POST,
        "/api/v1/users",
        &app.admin,
        Some(json!({"username": "root2", "password": PASSWORD, "admin": true})),
    )
    .await;
    let root2 = app.token_for("root2", PASSWORD).await;
    let (s, e) = app
        .call(
            Method::PATCH,
            "/api/v1/users/admin",
            Some(&root2),
            Some(json!({"admin": false})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{e}");
    let (s, e) = app
        .call(
            Method::PATCH,
            "/api/v1/users/root2",
            Some(&root2),
            Some(json!({"admin": false})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    let (s, _) = app.get("/api/v1/users", &app.admin).await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "the former admin's token no longer carries admin rights"
    );
});

async fn active_admins(app: &TestApp) -> i64 {
    let mut c = app.store.conn().await.unwrap();
    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM users WHERE is_admin = 1 AND disabled = 0")
        .fetch_one(&mut *c)
        .await
        .unwrap()
}

/// Two admins demote each other at the same moment: whichever comes second
/// must be refused (409, or 403 when the other demotion already took its
/// rights), so that one admin remains. Repeated, since it is a race.
async fn concurrent_demotions_keep_an_admin(app: &TestApp) {
    app.ok(
        Method::POST,
        "/api/v1/users",
        &app.admin,
        Some(json!({"username": "root2", "password": PASSWORD, "admin": true})),
    )
    .await;
    let root2 = app.token_for("root2", PASSWORD).await;
    for round in 0..20 {
        let mut c = app.store.conn().await.unwrap();
        sqlx::query("UPDATE users SET is_admin = 1 WHERE username IN ('admin', 'root2')")
            .execute(&mut *c)
            .await
            .unwrap();
        drop(c);
        let ((sa, ea), (sb, eb)) = tokio::join!(
            app.call(
                Method::PATCH,
                "/api/v1/users/admin",
                Some(&root2),
                Some(json!({"admin": false}))
            ),
            app.call(
                Method::PATCH,
                "/api/v1/users/root2",
                Some(&app.admin),
                Some(json!({"admin": false}))
            ),
        );
        let admins = active_admins(app).await;
        assert_eq!(
            admins, 1,
            "round {round}: {admins} admins left after {sa} {ea} / {sb} {eb}"
        );
        let ok = [sa, sb].iter().filter(|s| **s == StatusCode::OK).count();
        assert_eq!(ok, 1, "round {round}: {sa} {ea} / {sb} {eb}");
    }
}

mod two_admins_demoting_each_other_at_once_keep_one {
    use super::*;
    use crate::harness::Backend;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let app = TestApp::spawn(Backend::Sqlite).await;
        concurrent_demotions_keep_an_admin(&app).await;
        app.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let app = TestApp::spawn(Backend::Postgres).await;
        concurrent_demotions_keep_an_admin(&app).await;
        app.stop().await;
    }
}
