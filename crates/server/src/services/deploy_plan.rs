//! Planning a deploy: render the templates for (application, environment,
//! release), validate the objects, then ask the cluster (server-side-apply
//! dry run) what would change, and which objects the previous deploy had
//! that this one drops (to be pruned).

use std::collections::BTreeSet;
use std::sync::Arc;

use prism_kube::{diff_objects, Cluster, ClusterConfig, KubeError, ObjectDiff};
use prism_manifests::{validate, ApiVersions, ObjectRef, RenderVars, TemplateSet, ValidationPolicy};
use prism_store::deploys::Deploy;
use prism_store::environments::Environment;
use prism_store::releases::Release;
use prism_store::{apps, clusters, deploys, environments, releases, template_sets, AnyConnection};
use serde::Serialize;

use crate::state::AppState;

/// Why a deploy step failed, said so an operator can act on it.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("{0}")]
    Setup(String),
    #[error("templates: {0}")]
    Manifests(#[from] prism_manifests::ManifestError),
    #[error(transparent)]
    Kube(#[from] KubeError),
    #[error(transparent)]
    Store(#[from] prism_store::StoreError),
}

/// The objects of a planned deploy, in apply order, and the diff.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub objects: Vec<PlannedObject>,
    pub prune: Vec<ObjectRef>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct PlannedObject {
    pub reference: ObjectRef,
    pub template: String,
    pub object: serde_json::Value,
}

/// The cluster behind an environment, from the client cache.
pub async fn cluster_for(
    state: &AppState,
    c: &mut AnyConnection,
    env: &Environment,
) -> Result<Arc<Cluster>, DeployError> {
    let id = env
        .cluster_id
        .ok_or_else(|| DeployError::Setup(format!("environment {} is not bound to a cluster", env.name)))?;
    cluster_client(state, clusters::get(c, id).await?).await
}

/// The client for a stored cluster, from the cache (rebuilt when the record
/// changed); the sealed token is opened only here.
pub async fn cluster_client(
    state: &AppState,
    cluster: prism_store::clusters::Cluster,
) -> Result<Arc<Cluster>, DeployError> {
    let id = cluster.id;
    let secrets = state.secrets.clone();
    let version = cluster.updated_at;
    let guard = super::address_policy::guard(&mut *state.store.conn().await?).await?;
    Ok(state
        .clusters
        .get(id, version, move || {
            let token = match &cluster.token_enc {
                Some(sealed) => Some(
                    String::from_utf8(secrets.open(sealed).map_err(|e| KubeError::Config(e.to_string()))?)
                        .map_err(|_| KubeError::Config("stored token is not text".into()))?,
                ),
                None => None,
            };
            Ok(ClusterConfig {
                api_url: cluster.api_url.clone(),
                ca_cert_pem: cluster.ca_cert.clone(),
                token,
                insecure_skip_tls_verify: cluster.insecure_skip_tls_verify != 0,
                guard,
            })
        })
        .await?)
}

/// The image to run: by digest whenever the digest is known.
fn image_of(rel: &Release) -> Result<String, DeployError> {
    let image = rel
        .image_ref
        .clone()
        .ok_or_else(|| DeployError::Setup(format!("release {} has no image yet", rel.id)))?;
    Ok(match (&rel.image_digest, image.contains('@')) {
        (Some(d), false) => {
            let repo = match image.rsplit_once(':') {
                Some((r, tag)) if !tag.contains('/') => r.to_owned(),
                _ => image.clone(),
            };
            format!("{repo}@{d}")
        }
        _ => image,
    })
}

/// Renders and validates the release's objects for the environment.
pub async fn render_for(
    c: &mut AnyConnection,
    rel: &Release,
    env: &Environment,
    api: ApiVersions,
    template_version: Option<i64>,
) -> Result<(i64, Vec<PlannedObject>), DeployError> {
    let app = apps::get(c, rel.app_id).await?;
    let set = match template_version {
        Some(v) => template_sets::get(c, app.project_id, v).await?,
        None => template_sets::current(c, app.project_id).await?,
    };
    let templates = TemplateSet::with_overrides(&set.files)?;
    Ok((set.version, render_with(c, rel, env, api, &templates).await?))
}

/// Renders and validates with a given template set (a preview of unsaved edits).
pub async fn render_with(
    c: &mut AnyConnection,
    rel: &Release,
    env: &Environment,
    api: ApiVersions,
    templates: &TemplateSet,
) -> Result<Vec<PlannedObject>, DeployError> {
    let app = apps::get(c, rel.app_id).await?;
    let settings = apps::env_settings(c, app.id)
        .await?
        .into_iter()
        .find(|s| s.environment == env.name)
        .ok_or_else(|| DeployError::Setup("no settings".into()))?;
    // The project's own namespace when the environment gives each one (issue 11 item 5).
    let (namespace, _) = super::isolation::namespace_for(c, env, app.project_id, &app.project).await?;
    let mut vars = RenderVars {
        project: app.project.clone(),
        application: app.name.clone(),
        environment: env.name.clone(),
        namespace: namespace.clone(),
        release: rel.id.to_string(),
        git_ref: rel.git_ref.clone(),
        commit_sha: rel.commit_sha.clone(),
        image: image_of(rel)?,
        image_digest: rel.image_digest.clone(),
        replicas: settings.replicas,
        cpu_request: settings.cpu_request,
        cpu_limit: settings.cpu_limit,
        memory_request: settings.memory_request,
        memory_limit: settings.memory_limit,
        env_vars: settings.env_vars,
        settings: app.template_settings.clone(),
        api,
        secrets: vec![],
    };
    // Secrets: references for the templates, and the Secret Prism renders itself (issue 19).
    let secrets = super::app_secrets::in_scope(c, &app, env, &namespace, &vars.ownership_labels()).await?;
    if let Some(clash) = secrets.refs.iter().find(|s| vars.env_vars.contains_key(&s.name)) {
        return Err(DeployError::Setup(format!(
            "{} is both a variable in the settings of {} and a secret: remove one of them",
            clash.name, env.name
        )));
    }
    vars.secrets = secrets.refs;
    let mut rendered = crate::render_sandbox::render(templates, &vars).await?;
    let policy = ValidationPolicy {
        namespace,
        allow_cluster_scoped: env.rules.allow_cluster_scoped,
        allow_other_namespaces: env.rules.allow_other_namespaces,
    };
    let refs = validate(&mut rendered, &policy)?;
    let mut objects: Vec<PlannedObject> = refs
        .into_iter()
        .zip(rendered.objects)
        .map(|(reference, o)| PlannedObject {
            reference,
            template: o.template,
            object: o.object,
        })
        .collect();
    // Prism fills in the data of the Secret that carries its label: a
    // template setting it could name (and so deliver) any sealed value.
    if let Some(o) = objects
        .iter()
        .find(|o| super::app_secrets::claims_prism_secret(&o.object))
    {
        return Err(DeployError::Setup(format!(
            "{}: {}: the label {} and the annotation {} are Prism's own; a template may not set them",
            o.template,
            o.reference,
            super::app_secrets::SECRET_LABEL,
            super::app_secrets::SEALED_ANNOTATION
        )));
    }
    if let Some(secret) = secrets.object {
        if objects.iter().any(|o| o.reference == secret.reference) {
            return Err(DeployError::Setup(format!(
                "{} is rendered by a template, but the name belongs to the Secret Prism makes for the application's secrets",
                secret.reference
            )));
        }
        objects.push(secret);
    }
    // Config before the workloads that read it; Deployments before autoscalers.
    objects.sort_by_key(|o| apply_rank(&o.reference.kind));
    Ok(objects)
}

fn apply_rank(kind: &str) -> u8 {
    match kind {
        "Namespace" | "CustomResourceDefinition" => 0,
        "ServiceAccount" | "Role" | "RoleBinding" | "ClusterRole" | "ClusterRoleBinding" => 1,
        "ConfigMap" | "Secret" | "PersistentVolumeClaim" => 2,
        "Service" => 3,
        "Deployment" | "StatefulSet" | "DaemonSet" | "Job" | "CronJob" => 4,
        _ => 5,
    }
}

/// Which HPA version the cluster serves (Kubernetes 1.20 has no autoscaling/v2).
pub async fn api_versions(cluster: &Cluster) -> Result<ApiVersions, DeployError> {
    for v in ["autoscaling/v2", "autoscaling/v2beta2", "autoscaling/v1"] {
        if cluster.serves(v).await? {
            return Ok(ApiVersions { hpa: v.into() });
        }
    }
    Ok(ApiVersions::default())
}

/// Plans `deploy`: renders (or, for a rollback, takes the manifests of the
/// deploy it returns to), diffs against the live objects with a dry run,
/// and lists what the previous successful deploy had that this one lacks.
pub async fn plan(
    state: &AppState,
    deploy: &Deploy,
    strategy: &prism_kube::progressive::strategy::Strategy,
) -> Result<(Option<i64>, Vec<PlannedObject>, serde_json::Value), DeployError> {
    let mut c = state.store.conn().await?;
    let env = environments::get(&mut c, deploy.env_id).await?;
    let rel = releases::get(&mut c, deploy.release).await?;
    let cluster = cluster_for(state, &mut c, &env).await?;
    let (template_version, objects) = match (deploy.kind, &deploy.manifests) {
        (prism_domain::DeployKind::Rollback, Some(m)) => (
            None,
            serde_json::from_value(m.clone()).map_err(|e| DeployError::Setup(format!("stored manifests: {e}")))?,
        ),
        _ => {
            let api = api_versions(&cluster).await?;
            let (v, o) = render_for(&mut c, &rel, &env, api, None).await?;
            (Some(v), o)
        }
    };
    // A canary or blue-green deploy plans what runs once it is done (blue-green's colour).
    // (A rollback's stored objects are shaped already.)
    let objects = match deploy.kind {
        prism_domain::DeployKind::Deploy => super::rollout_shape::shape(strategy, objects, &rel.id.to_string())?,
        prism_domain::DeployKind::Rollback => {
            if strategy.is_progressive() {
                super::rollout_shape::main_objects(strategy, &objects)?;
            }
            objects
        }
    };
    let app = apps::get(&mut c, deploy.app_id).await?;
    // References to existing Secrets, named plainly (issue 19): before the
    // isolation check, which would only say the pod names a foreign Secret.
    if deploy.kind != prism_domain::DeployKind::Rollback {
        let (namespace, _) = super::isolation::namespace_for(&mut c, &env, app.project_id, &app.project).await?;
        let chosen = super::app_secrets::effective_for(&mut c, &app, &env).await?;
        super::app_secrets::check_existing(&cluster, &namespace, &app, &super::app_secrets::existing(&chosen)).await?;
    }
    // Isolation between projects, before any dry run (issue 11 item 5).
    super::isolation::check(&mut c, &cluster, &env, &app, &objects).await?;
    super::isolation::prepare_namespace(&mut c, &cluster, &env, &app).await?;
    check_scopes(&cluster, &env, &objects).await?;
    check_ownership(&cluster, &objects).await?;
    let previous = deploys::last_succeeded(&mut c, deploy.app_id, deploy.env_id, deploy.id).await?;
    // The Secret's data only for the dry run; what is stored keeps none.
    let sendable = super::app_secrets::materialize(&mut c, &state.secrets, deploy.project_id, &objects).await?;
    drop(c);
    let mut diff = diff_against_cluster(&cluster, &sendable, previous.as_ref()).await?;
    super::app_secrets::annotate_diff(&mut diff, &objects, &stored_objects(previous.as_ref()));
    Ok((template_version, objects, diff))
}

/// The template validation knows the built-in cluster-scoped kinds; the
/// cluster knows them all (custom resources too). Asked before any dry run,
/// so a cluster-scoped object is refused unless the environment allows it.
async fn check_scopes(cluster: &Cluster, env: &Environment, objects: &[PlannedObject]) -> Result<(), DeployError> {
    if env.rules.allow_cluster_scoped {
        return Ok(());
    }
    for o in objects {
        if cluster
            .is_cluster_scoped(&o.reference.api_version, &o.reference.kind)
            .await?
        {
            return Err(DeployError::Setup(format!(
                "{} {} is cluster-scoped; environment {} does not allow cluster-scoped objects",
                o.reference.kind, o.reference.name, env.name
            )));
        }
    }
    Ok(())
}

fn label<'a>(o: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    o.pointer(&format!("/metadata/labels/{}", key.replace('/', "~1")))
        .and_then(|v| v.as_str())
}

/// Whether a live object is Prism's, for the same application and
/// environment as `desired` (whose ownership labels Prism stamped).
pub fn owned_like(live: &serde_json::Value, desired: &serde_json::Value) -> bool {
    label(live, "app.kubernetes.io/managed-by") == Some("prism")
        && label(live, "prism.io/application").is_some()
        && label(live, "prism.io/application") == label(desired, "prism.io/application")
        && label(live, "prism.io/environment") == label(desired, "prism.io/environment")
}

/// Refuses to apply over an object that exists but is not this application's
/// in this environment: another application's (or a hand-made) object with
/// the same name is never taken over, and so can never be pruned later.
pub async fn check_ownership(cluster: &Cluster, objects: &[PlannedObject]) -> Result<(), DeployError> {
    for o in objects {
        if let Some(live) = cluster.get(&o.reference).await? {
            if !owned_like(&live, &o.object) {
                let owner = label(&live, "prism.io/application")
                    .map(|a| format!("application {a}"))
                    .unwrap_or_else(|| "something other than Prism".into());
                return Err(DeployError::Setup(format!(
                    "{} already exists and belongs to {owner}; Prism will not take it over",
                    o.reference
                )));
            }
        }
    }
    Ok(())
}

/// The dry-run diff of `objects` against the cluster, plus prunes.
pub async fn diff_against_cluster(
    cluster: &Cluster,
    objects: &[PlannedObject],
    previous: Option<&Deploy>,
) -> Result<serde_json::Value, DeployError> {
    let mut entries = vec![];
    for o in objects {
        let live = cluster.get(&o.reference).await?;
        let desired = cluster.apply(&o.reference, &o.object, true).await?;
        entries.push(serde_json::json!({"object": o.reference, "diff": diff_objects(live.as_ref(), &desired)}));
    }
    for (r, _) in prune_candidates(cluster, objects, previous).await? {
        entries.push(serde_json::json!({"object": r, "diff": ObjectDiff::Prune}));
    }
    Ok(serde_json::Value::Array(entries))
}

/// The objects a deploy stored with its plan (none when it has no plan, or
/// an unreadable one).
pub fn stored_objects(d: Option<&Deploy>) -> Vec<PlannedObject> {
    d.and_then(|d| d.manifests.clone())
        .and_then(|m| serde_json::from_value(m).ok())
        .unwrap_or_default()
}

/// Objects the previous successful deploy applied that this one does not,
/// and that still carry Prism's ownership labels for this application and
/// environment in the cluster: nothing else is ever pruned.
pub async fn prune_candidates(
    cluster: &Cluster,
    objects: &[PlannedObject],
    previous: Option<&Deploy>,
) -> Result<Vec<(ObjectRef, Option<String>)>, DeployError> {
    let prev = stored_objects(previous);
    let keep: BTreeSet<(String, String, Option<String>)> = objects
        .iter()
        .map(|o| {
            (
                o.reference.kind.clone(),
                o.reference.name.clone(),
                o.reference.namespace.clone(),
            )
        })
        .collect();
    let mut out = vec![];
    for p in prev {
        let key = (
            p.reference.kind.clone(),
            p.reference.name.clone(),
            p.reference.namespace.clone(),
        );
        if keep.contains(&key) {
            continue;
        }
        if let Some(live) = cluster.get(&p.reference).await? {
            if owned_like(&live, &p.object) {
                // The uid pins the delete to exactly this object.
                let uid = live
                    .pointer("/metadata/uid")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned);
                out.push((p.reference, uid));
            }
        }
    }
    Ok(out)
}
