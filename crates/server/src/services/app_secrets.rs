//! Application secrets in a deploy (issue 19).
//!
//! For one application and environment, the secrets in scope (the most
//! specific per name: application and environment, application, project and
//! environment, project) become:
//! - one Kubernetes Secret that Prism renders itself, named after the
//!   versions it holds (`<app>-secrets-<hash>`), so a changed value is a new
//!   Secret and the Deployment that names it rolls its pods;
//! - references for the templates (`secrets`, `secret_env`, `secret_files`):
//!   a Secret name and key, never a value;
//! - references to Secrets that exist in the namespace already, checked at
//!   planning time (it exists, has the key, and is granted to the application).
//!
//! The Secret is stored with the deploy without its data: an annotation
//! names (secret id, version) per key, and [`materialize`] fills the data
//! from the sealed versions just before a dry run or an apply. So the
//! deploy's manifests, its diff, its events and the database hold no value;
//! a rollback re-applies the versions its deploy ran with.

use std::collections::BTreeMap;

use base64::Engine;
use prism_domain::app_secret::{effective, SecretScope};
use prism_kube::Cluster;
use prism_manifests::{ObjectRef, SecretRef};
use prism_store::app_secrets::{self, AppSecret};
use prism_store::apps::Application;
use prism_store::environments::Environment;
use prism_store::AnyConnection;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::deploy_plan::{DeployError, PlannedObject};
use super::isolation::owned_by;
use crate::secrets::SecretBox;

/// Marks the Secret Prism renders for an application's secrets.
pub const SECRET_LABEL: &str = "prism.io/secret";
pub const SECRET_LABEL_VALUE: &str = "application";
/// On that Secret: `{"NAME": [secret id, version], ...}`, what its data is made of.
pub const SEALED_ANNOTATION: &str = "prism.io/sealed-data";
/// The template name a deploy's objects show for the Secret Prism renders.
pub const TEMPLATE: &str = "(application secrets)";

/// An existing Secret's key an application references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Existing {
    pub name: String,
    pub secret: String,
    pub key: String,
}

/// What the secrets in scope give a deploy.
#[derive(Debug, Default)]
pub struct InScope {
    /// For the templates.
    pub refs: Vec<SecretRef>,
    /// The Secret Prism renders (without data), when any value is in scope.
    pub object: Option<PlannedObject>,
}

/// The secrets `app` gets in `env`: per name, the one of the most specific scope.
pub async fn effective_for(
    c: &mut AnyConnection,
    app: &Application,
    env: &Environment,
) -> Result<BTreeMap<String, AppSecret>, DeployError> {
    let all = app_secrets::for_application(c, app.project_id, app.id).await?;
    let candidates: Vec<(SecretScope, String, AppSecret)> = all
        .into_iter()
        .filter(|s| s.env_id.is_none() || s.env_id == Some(env.id))
        .map(|s| {
            (
                SecretScope::of(s.app_id.is_some(), s.env_id.is_some()),
                s.name.clone(),
                s,
            )
        })
        .collect();
    Ok(effective(&candidates))
}

/// The references to existing Secrets among `chosen`, to be checked.
pub fn existing(chosen: &BTreeMap<String, AppSecret>) -> Vec<Existing> {
    chosen
        .values()
        .filter_map(|s| match (s.source.as_str(), &s.ref_secret, &s.ref_key) {
            ("reference", Some(secret), Some(key)) => Some(Existing {
                name: s.name.clone(),
                secret: secret.clone(),
                key: key.clone(),
            }),
            _ => None,
        })
        .collect()
}

/// The secrets in scope for `app` in `env`, as [`InScope`].
pub async fn in_scope(
    c: &mut AnyConnection,
    app: &Application,
    env: &Environment,
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> Result<InScope, DeployError> {
    let chosen = effective_for(c, app, env).await?;
    let sealed: BTreeMap<&str, (i64, i64)> = chosen
        .values()
        .filter(|s| s.source == "value")
        .map(|s| (s.name.as_str(), (s.id, s.version)))
        .collect();
    let secret_name = format!("{}-secrets-{}", app.name, content_hash(&app.name, &env.name, &sealed));
    let mut out = InScope::default();
    for s in chosen.values() {
        match (s.source.as_str(), &s.ref_secret, &s.ref_key) {
            ("reference", Some(secret), Some(key)) => {
                out.refs.push(SecretRef {
                    name: s.name.clone(),
                    secret: secret.clone(),
                    key: key.clone(),
                    delivery: s.delivery.clone(),
                });
            }
            _ => out.refs.push(SecretRef {
                name: s.name.clone(),
                secret: secret_name.clone(),
                key: s.name.clone(),
                delivery: s.delivery.clone(),
            }),
        }
    }
    if !sealed.is_empty() {
        let mut labels = labels.clone();
        labels.insert(SECRET_LABEL.into(), SECRET_LABEL_VALUE.into());
        let annotation = serde_json::to_string(&sealed).expect("a map of pairs serialises");
        out.object = Some(PlannedObject {
            reference: ObjectRef {
                api_version: "v1".into(),
                kind: "Secret".into(),
                namespace: Some(namespace.to_owned()),
                name: secret_name.clone(),
            },
            template: TEMPLATE.into(),
            object: json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": secret_name,
                    "namespace": namespace,
                    "labels": labels,
                    "annotations": {SEALED_ANNOTATION: annotation},
                },
                "type": "Opaque",
            }),
        });
    }
    Ok(out)
}

/// A name part that changes with any secret's version, and says nothing of
/// the values (it is computed from ids and versions only).
fn content_hash(app: &str, env: &str, sealed: &BTreeMap<&str, (i64, i64)>) -> String {
    let mut h = Sha256::new();
    h.update(app.as_bytes());
    h.update([0]);
    h.update(env.as_bytes());
    for (name, (id, version)) in sealed {
        h.update(format!("\0{name}={id}:{version}").as_bytes());
    }
    hex::encode(h.finalize())[..10].to_owned()
}

fn is_managed(o: &Value) -> bool {
    o.get("kind").and_then(Value::as_str) == Some("Secret")
        && o.pointer(&format!("/metadata/labels/{}", SECRET_LABEL.replace('/', "~1")))
            .and_then(Value::as_str)
            == Some(SECRET_LABEL_VALUE)
}

/// Whether a planned object is the Secret Prism renders for application secrets.
pub fn is_managed_secret(o: &PlannedObject) -> bool {
    is_managed(&o.object)
}

/// The (secret id, version) per name the Secret among `objects` holds.
pub fn versions(objects: &[PlannedObject]) -> BTreeMap<String, (i64, i64)> {
    objects
        .iter()
        .filter(|o| is_managed(&o.object))
        .filter_map(|o| {
            o.object
                .pointer(&format!(
                    "/metadata/annotations/{}",
                    SEALED_ANNOTATION.replace('/', "~1")
                ))
                .and_then(Value::as_str)
        })
        .filter_map(|a| serde_json::from_str::<BTreeMap<String, (i64, i64)>>(a).ok())
        .next()
        .unwrap_or_default()
}

/// Whether a rendered object sets Prism's own secret label or annotation:
/// a template that could would make Prism fill in values it names.
pub fn claims_prism_secret(o: &Value) -> bool {
    let has = |path: &str, key: &str| o.pointer(&format!("{path}/{}", key.replace('/', "~1"))).is_some();
    has("/metadata/labels", SECRET_LABEL) || has("/metadata/annotations", SEALED_ANNOTATION)
}

/// The objects with the Secret's data filled in from the sealed versions
/// its annotation names, of `project_id`'s secrets only: only for sending
/// to the cluster, never stored.
pub async fn materialize(
    c: &mut AnyConnection,
    secrets: &SecretBox,
    project_id: i64,
    objects: &[PlannedObject],
) -> Result<Vec<PlannedObject>, DeployError> {
    let mut out = objects.to_vec();
    for o in out.iter_mut().filter(|o| is_managed(&o.object)) {
        let mut data = serde_json::Map::new();
        for (name, (id, version)) in versions(std::slice::from_ref(o)) {
            let sealed = app_secrets::sealed_value(c, project_id, id, version)
                .await?
                .ok_or_else(|| {
                    DeployError::Setup(format!(
                        "secret {name}: version {version} is no longer kept; set the secret again and deploy"
                    ))
                })?;
            let value = secrets.open(&sealed).map_err(|_| {
                DeployError::Setup(format!(
                    "secret {name}: version {version} cannot be opened with the configured key"
                ))
            })?;
            data.insert(
                name,
                Value::String(base64::engine::general_purpose::STANDARD.encode(value)),
            );
        }
        o.object["data"] = Value::Object(data);
    }
    Ok(out)
}

/// Every reference to an existing Secret must name one that exists in the
/// namespace, has the key, and is granted to the application; all missing
/// ones are named together.
pub async fn check_existing(
    cluster: &Cluster,
    namespace: &str,
    app: &Application,
    existing: &[Existing],
) -> Result<(), DeployError> {
    let mut problems = vec![];
    for e in existing {
        let r = ObjectRef {
            api_version: "v1".into(),
            kind: "Secret".into(),
            namespace: Some(namespace.to_owned()),
            name: e.secret.clone(),
        };
        match cluster.get(&r).await? {
            None => problems.push(format!(
                "secret {}: Secret {:?} does not exist in namespace {namespace}",
                e.name, e.secret
            )),
            Some(live) if !owned_by(&live, &app.name) => problems.push(format!(
                "secret {}: Secret {:?} in namespace {namespace} is not granted to application {} \
                 (annotate it prism.io/applications={})",
                e.name, e.secret, app.name, app.name
            )),
            Some(live) => {
                let has = ["data", "stringData"]
                    .iter()
                    .any(|f| live.get(*f).and_then(|d| d.get(&e.key)).is_some());
                if !has {
                    problems.push(format!(
                        "secret {}: Secret {:?} in namespace {namespace} has no key {:?}",
                        e.name, e.secret, e.key
                    ));
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(DeployError::Setup(problems.join("; ")))
    }
}

/// What a review shows of the secrets: per name, added, changed (version
/// a -> b) or removed against the previous successful deploy; never a value.
pub fn review_changes(before: &BTreeMap<String, (i64, i64)>, after: &BTreeMap<String, (i64, i64)>) -> Vec<Value> {
    let mut out = vec![];
    let show = |v: &(i64, i64)| Value::String(format!("version {}", v.1));
    for (name, now) in after {
        match before.get(name) {
            None => out.push(json!({"path": format!("secrets.{name}"), "before": null, "after": show(now), "category": "secret"})),
            // Another record (a more or less specific scope) took over the name.
            Some(was) if was.0 != now.0 => out.push(json!({"path": format!("secrets.{name}"), "before": show(was),
                "after": format!("version {} (set in another scope)", now.1), "category": "secret"})),
            Some(was) if was != now => out.push(json!({"path": format!("secrets.{name}"), "before": show(was), "after": show(now), "category": "secret"})),
            Some(_) => {}
        }
    }
    for (name, was) in before {
        if !after.contains_key(name) {
            out.push(
                json!({"path": format!("secrets.{name}"), "before": show(was), "after": null, "category": "secret"}),
            );
        }
    }
    out
}

/// Replaces the diff entry of the Secret Prism renders with the secrets'
/// version changes (the cluster's view of it is a new object, or nothing).
pub fn annotate_diff(diff: &mut Value, objects: &[PlannedObject], previous: &[PlannedObject]) {
    let changes = review_changes(&versions(previous), &versions(objects));
    let Some(managed) = objects.iter().find(|o| is_managed(&o.object)) else {
        return;
    };
    for e in diff.as_array_mut().into_iter().flatten() {
        if e["object"]["kind"] == "Secret" && e["object"]["name"] == managed.reference.name.as_str() {
            let action = e["diff"]["action"].as_str().unwrap_or("update").to_owned();
            let action = if action == "unchanged" && !changes.is_empty() {
                "update".to_owned()
            } else {
                action
            };
            e["diff"] = json!({"action": action, "changes": changes});
        }
    }
}

/// The Secrets Prism rendered for this application and environment earlier
/// that the current deploy no longer names: deleted once its rollout is
/// complete (the pods of the old ReplicaSet read them until then).
pub async fn stale(
    cluster: &Cluster,
    namespace: &str,
    app: &str,
    env: &str,
    objects: &[PlannedObject],
) -> Result<Vec<ObjectRef>, DeployError> {
    let current: Vec<&str> = objects
        .iter()
        .filter(|o| is_managed(&o.object))
        .map(|o| o.reference.name.as_str())
        .collect();
    let labelled = cluster
        .list_labelled(
            &[("v1".into(), "Secret".into())],
            namespace,
            &[
                (SECRET_LABEL.into(), SECRET_LABEL_VALUE.into()),
                ("prism.io/application".into(), app.into()),
                ("prism.io/environment".into(), env.into()),
            ],
        )
        .await?;
    Ok(labelled
        .into_iter()
        .filter(|r| !current.contains(&r.name.as_str()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_changes_with_any_version_and_only_then() {
        let a = BTreeMap::from([("A", (1, 1)), ("B", (2, 3))]);
        let b = BTreeMap::from([("A", (1, 2)), ("B", (2, 3))]);
        assert_eq!(content_hash("web", "uat", &a), content_hash("web", "uat", &a.clone()));
        assert_ne!(content_hash("web", "uat", &a), content_hash("web", "uat", &b));
        assert_ne!(content_hash("web", "uat", &a), content_hash("web", "prd", &a));
        assert_eq!(content_hash("web", "uat", &a).len(), 10);
    }

    #[test]
    fn a_template_may_not_claim_prisms_secret_label_or_annotation() {
        assert!(claims_prism_secret(
            &json!({"metadata": {"labels": {SECRET_LABEL: "application"}}})
        ));
        assert!(claims_prism_secret(
            &json!({"metadata": {"annotations": {SEALED_ANNOTATION: "{}"}}})
        ));
        assert!(!claims_prism_secret(
            &json!({"metadata": {"labels": {"prism.io/application": "web"}}})
        ));
    }

    #[test]
    fn review_changes_name_versions_only() {
        let before = BTreeMap::from([
            ("A".to_string(), (1, 3)),
            ("B".to_string(), (2, 1)),
            ("C".to_string(), (4, 1)),
        ]);
        let after = BTreeMap::from([
            ("A".to_string(), (1, 4)),
            ("B".to_string(), (2, 1)),
            ("D".to_string(), (5, 1)),
            ("E".to_string(), (7, 1)),
        ]);
        let before = {
            let mut b = before;
            b.insert("E".to_string(), (6, 2));
            b
        };
        let c = review_changes(&before, &after);
        assert_eq!(
            c,
            vec![
                json!({"path": "secrets.A", "before": "version 3", "after": "version 4", "category": "secret"}),
                json!({"path": "secrets.D", "before": null, "after": "version 1", "category": "secret"}),
                json!({"path": "secrets.E", "before": "version 2", "after": "version 1 (set in another scope)", "category": "secret"}),
                json!({"path": "secrets.C", "before": "version 1", "after": null, "category": "secret"}),
            ]
        );
    }
}
