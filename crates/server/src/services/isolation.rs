//! Keeping projects apart on a shared cluster (issue 11 item 5), checked
//! while a deploy is planned, before any dry run or apply:
//!
//! - each project's namespace in an environment: the one an admin bound for
//!   it, else the environment's pattern filled in (`{project}-{environment}`);
//!   Prism creates a per-project namespace labelled with the project when its
//!   token may, and refuses one labelled for another project;
//! - an application's objects carry only its own ownership labels, and never
//!   land in another project's namespace (judged by every environment's
//!   patterns and bindings on the cluster, and the namespace's label);
//! - its pods name only Secrets, ConfigMaps and ServiceAccounts it owns: ones
//!   it renders itself, or ones labelled `prism.io/application: <app>` (what
//!   Prism stamps on what it applied for the app) or annotated
//!   `prism.io/applications: <app>[,<app>...]` by an admin; the namespace's
//!   `default` ServiceAccount is everyone's;
//! - it claims no Ingress host another application of the cluster serves,
//!   judged from Prism's store (what other applications last applied there)
//!   and, when the token may list them, from the cluster's Ingresses.

use std::collections::{BTreeMap, BTreeSet};

use prism_domain::NamespacePattern;
use prism_kube::{Cluster, KubeError, NamespaceState};
use prism_manifests::ownership::{ingress_hosts, references};
use prism_manifests::ObjectRef;
use prism_store::apps::Application;
use prism_store::environments::{self, Environment};
use prism_store::{projects, AnyConnection};

use super::deploy_plan::{DeployError, PlannedObject};

pub const PROJECT_LABEL: &str = "prism.io/project";
pub const APPLICATION_LABEL: &str = "prism.io/application";
pub const ENVIRONMENT_LABEL: &str = "prism.io/environment";
/// An admin's grant: a Secret/ConfigMap/ServiceAccount these applications may use.
pub const APPLICATIONS_ANNOTATION: &str = "prism.io/applications";

fn setup(m: impl Into<String>) -> DeployError {
    DeployError::Setup(m.into())
}

/// The environment's namespace pattern as stored (environments made before
/// patterns existed hold a plain name, which parses as a fixed namespace).
fn pattern(env: &Environment) -> Result<NamespacePattern, DeployError> {
    NamespacePattern::parse("namespace", &env.namespace).map_err(|e| setup(format!("environment {}: {e}", env.name)))
}

/// Where the project's objects go in the environment, and whether that
/// namespace is the project's own (bound, or from a `{project}` pattern).
pub async fn namespace_for(
    c: &mut AnyConnection,
    env: &Environment,
    project_id: i64,
    project: &str,
) -> Result<(String, bool), DeployError> {
    if let Some(ns) = environments::bound_namespace(c, env.id, project_id).await? {
        return Ok((ns, true));
    }
    let p = pattern(env)?;
    let ns = p
        .resolve(project, &env.name)
        .map_err(|e| setup(format!("environment {}: {}", env.name, e.message)))?;
    Ok((ns.as_str().to_owned(), p.per_project()))
}

/// Makes sure a project's own namespace exists and is the project's: created
/// (labelled as Prism's, for the project) when the token may; refused when
/// it carries another project's label. A fixed, shared namespace is the
/// admin's to make, as before.
pub async fn prepare_namespace(
    c: &mut AnyConnection,
    cluster: &Cluster,
    env: &Environment,
    app: &Application,
) -> Result<(), DeployError> {
    let (ns, own) = namespace_for(c, env, app.project_id, &app.project).await?;
    if !own {
        return Ok(());
    }
    let bound = environments::bound_namespace(c, env.id, app.project_id)
        .await?
        .is_some();
    let labels = BTreeMap::from([
        ("app.kubernetes.io/managed-by".to_owned(), "prism".to_owned()),
        (PROJECT_LABEL.to_owned(), app.project.clone()),
    ]);
    match cluster.ensure_namespace(&ns, &labels).await {
        Ok(NamespaceState::Created) => Ok(()),
        Ok(NamespaceState::Existing(l)) => match l.get(PROJECT_LABEL) {
            Some(p) if *p != app.project => Err(setup(format!(
                "namespace {ns} belongs to project {p} (label {PROJECT_LABEL}); project {} cannot deploy into it",
                app.project
            ))),
            _ => Ok(()),
        },
        // An admin bound this namespace for the project: trust the binding
        // even when the token may not read namespaces (a namespace-limited token).
        Err(KubeError::Forbidden(_)) if bound => Ok(()),
        Err(KubeError::Forbidden(m)) => Err(setup(format!(
            "namespace {ns} (project {}, environment {}) could not be checked or created: Prism's token for this cluster may not ({m}); \
             an admin creates namespace {ns} labelled {PROJECT_LABEL}={}, or binds an existing namespace for the project \
             (PUT /api/v1/environments/{}/namespaces/{})",
            app.project, env.name, app.project, env.name, app.project
        ))),
        Err(e) => Err(e.into()),
    }
}

fn label<'a>(o: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    o.pointer(&format!("/metadata/labels/{}", key.replace('/', "~1")))
        .and_then(|v| v.as_str())
}

fn annotation<'a>(o: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    o.pointer(&format!("/metadata/annotations/{}", key.replace('/', "~1")))
        .and_then(|v| v.as_str())
}

/// Whether a live Secret/ConfigMap/ServiceAccount is the application's.
pub fn owned_by(live: &serde_json::Value, app: &str) -> bool {
    label(live, APPLICATION_LABEL) == Some(app)
        || annotation(live, APPLICATIONS_ANNOTATION).is_some_and(|a| a.split(',').any(|x| x.trim() == app))
}

/// Every isolation check of a planned deploy (see the module comment);
/// all problems found are reported together.
pub async fn check(
    c: &mut AnyConnection,
    cluster: &Cluster,
    env: &Environment,
    app: &Application,
    objects: &[PlannedObject],
) -> Result<(), DeployError> {
    let mut problems = vec![];
    forged_labels(env, app, objects, &mut problems);
    other_projects_namespaces(c, cluster, env, app, objects, &mut problems).await?;
    if problems.is_empty() {
        foreign_references(cluster, app, objects, &mut problems).await?;
    }
    if problems.is_empty() {
        ingress_conflicts(c, cluster, env, app, objects, &mut problems).await?;
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(setup(problems.join("; ")))
    }
}

/// Prism judges ownership by its labels. Rendering already stamps the
/// application's and environment's over whatever a template wrote; checked
/// here too because `prism.io/project` is not stamped and a rollback reuses
/// stored manifests.
fn forged_labels(env: &Environment, app: &Application, objects: &[PlannedObject], problems: &mut Vec<String>) {
    for o in objects {
        for (key, own) in [
            (APPLICATION_LABEL, app.name.as_str()),
            (ENVIRONMENT_LABEL, env.name.as_str()),
            (PROJECT_LABEL, app.project.as_str()),
        ] {
            if let Some(v) = label(&o.object, key) {
                if v != own {
                    problems.push(format!(
                        "{}: {}: metadata.labels.{key} is {v:?}; application {} may label its objects only with its own {key} ({own:?})",
                        o.template, o.reference, app.name
                    ));
                }
            }
        }
    }
}

/// With `allow_other_namespaces`, an object may name another namespace,
/// but never one that belongs to another project.
async fn other_projects_namespaces(
    c: &mut AnyConnection,
    cluster: &Cluster,
    env: &Environment,
    app: &Application,
    objects: &[PlannedObject],
    problems: &mut Vec<String>,
) -> Result<(), DeployError> {
    let (home, _) = namespace_for(c, env, app.project_id, &app.project).await?;
    let elsewhere: BTreeSet<&str> = objects
        .iter()
        .filter_map(|o| o.reference.namespace.as_deref())
        .filter(|ns| *ns != home)
        .collect();
    if elsewhere.is_empty() {
        return Ok(());
    }
    // Every other project's own namespace in the environments on this
    // cluster (patterns and bindings), by name.
    let mut theirs = BTreeMap::new();
    let same_cluster: Vec<Environment> = environments::list(c)
        .await?
        .into_iter()
        .filter(|e| e.id == env.id || (e.cluster_id.is_some() && e.cluster_id == env.cluster_id))
        .collect();
    for p in projects::list_visible(c, None).await? {
        if p.id == app.project_id {
            continue;
        }
        for e in &same_cluster {
            if let Ok((ns, true)) = namespace_for(c, e, p.id, &p.name).await {
                theirs.insert(ns, p.name.clone());
            }
        }
    }
    for ns in elsewhere {
        let owner = match theirs.get(ns) {
            Some(p) => Some(p.clone()),
            None => match cluster.namespace_labels(ns).await {
                Ok(labels) => labels
                    .and_then(|l| l.get(PROJECT_LABEL).cloned())
                    .filter(|p| *p != app.project),
                // A token that may not read namespaces: the store's answer stands.
                Err(KubeError::Forbidden(_)) => None,
                Err(e) => return Err(e.into()),
            },
        };
        if let Some(p) = owner {
            for o in objects.iter().filter(|o| o.reference.namespace.as_deref() == Some(ns)) {
                problems.push(format!(
                    "{}: {}: metadata.namespace {ns:?} belongs to project {p}; application {} cannot create objects there",
                    o.template, o.reference, app.name
                ));
            }
        }
    }
    Ok(())
}

/// Pods may name only the Secrets, ConfigMaps and ServiceAccounts the
/// application owns.
async fn foreign_references(
    cluster: &Cluster,
    app: &Application,
    objects: &[PlannedObject],
    problems: &mut Vec<String>,
) -> Result<(), DeployError> {
    let rendered: BTreeSet<(&str, Option<&str>, &str)> = objects
        .iter()
        .map(|o| {
            (
                o.reference.kind.as_str(),
                o.reference.namespace.as_deref(),
                o.reference.name.as_str(),
            )
        })
        .collect();
    for o in objects {
        for r in references(&o.reference, &o.template, &o.object) {
            if rendered.contains(&(r.kind, r.namespace.as_deref(), r.name.as_str())) {
                continue;
            }
            if r.kind == "ServiceAccount" && r.name == "default" {
                continue;
            }
            let target = ObjectRef {
                api_version: "v1".into(),
                kind: r.kind.into(),
                namespace: r.namespace.clone(),
                name: r.name.clone(),
            };
            let ns = r.namespace.as_deref().unwrap_or_default();
            match cluster.get(&target).await? {
                Some(live) if owned_by(&live, &app.name) => {}
                Some(_) => problems.push(format!(
                    "{}: {}: {}: {} {:?} is not owned by application {}",
                    r.template, r.from, r.field, r.kind, r.name, app.name
                )),
                None => problems.push(format!(
                    "{}: {}: {}: {} {:?} does not exist in namespace {ns} and is not rendered by application {}",
                    r.template, r.from, r.field, r.kind, r.name, app.name
                )),
            }
        }
    }
    Ok(())
}

/// An Ingress host another application of the cluster already serves is refused.
async fn ingress_conflicts(
    c: &mut AnyConnection,
    cluster: &Cluster,
    env: &Environment,
    app: &Application,
    objects: &[PlannedObject],
    problems: &mut Vec<String>,
) -> Result<(), DeployError> {
    let mut ours: BTreeMap<String, &PlannedObject> = BTreeMap::new();
    for o in objects {
        for h in ingress_hosts(&o.object) {
            ours.insert(h, o);
        }
    }
    if ours.is_empty() {
        return Ok(());
    }
    let mut taken: BTreeMap<String, String> = BTreeMap::new();
    if let Some(cluster_id) = env.cluster_id {
        for other in environments::applied_on_cluster(c, cluster_id, app.id).await? {
            let planned: Vec<PlannedObject> = serde_json::from_value(other.manifests).unwrap_or_default();
            for p in planned {
                for h in ingress_hosts(&p.object) {
                    taken.entry(h).or_insert_with(|| {
                        format!(
                            "application {} (environment {}, {})",
                            other.application, other.environment, p.reference
                        )
                    });
                }
            }
        }
    }
    match cluster.list_ingresses().await {
        Ok(live) => {
            for i in live {
                if label(&i, APPLICATION_LABEL) == Some(app.name.as_str()) {
                    continue;
                }
                let name = i.pointer("/metadata/name").and_then(|v| v.as_str()).unwrap_or("?");
                let ns = i.pointer("/metadata/namespace").and_then(|v| v.as_str()).unwrap_or("?");
                let who = match label(&i, APPLICATION_LABEL) {
                    Some(a) => format!("application {a} (Ingress/{name} -n {ns})"),
                    None => format!("Ingress/{name} -n {ns}, not deployed by Prism"),
                };
                let mut i = i;
                i["kind"] = "Ingress".into();
                for h in ingress_hosts(&i) {
                    taken.entry(h).or_insert_with(|| who.clone());
                }
            }
        }
        // A token that may not list Ingresses cluster-wide: the store's answer stands.
        Err(KubeError::Forbidden(_)) => {}
        Err(e) => return Err(e.into()),
    }
    for (host, o) in ours {
        if let Some(who) = taken.get(&host) {
            problems.push(format!(
                "{}: {}: Ingress host {host:?} is already served by {who}",
                o.template, o.reference
            ));
        }
    }
    Ok(())
}
