//! What a canary or blue-green deploy plans: the release's one Deployment
//! (and, for blue-green, the one Service selecting its pods), checked at
//! plan time so that a template the strategy cannot work with fails the
//! plan with the reason instead of half-way through the rollout.
//!
//! Canary plans the rendered objects unchanged (its end state is exactly a
//! rolling deploy's); the canary Deployment exists only while it runs.
//! Blue-green plans the Deployment under the release's name and the live
//! Service pinned to the release (and a preview Service when asked): what
//! runs once it is done, so the next deploy prunes this one's colour.

use prism_kube::progressive::shape;
use prism_kube::progressive::strategy::Strategy;

use super::deploy_plan::{DeployError, PlannedObject};

/// Indexes of the Deployment that rolls out and of the Service selecting it.
pub struct Main {
    pub deployment: usize,
    pub service: Option<usize>,
}

fn selects(service: &serde_json::Value, pod_labels: &serde_json::Value) -> bool {
    match service.pointer("/spec/selector").and_then(|s| s.as_object()) {
        Some(sel) if !sel.is_empty() => sel.iter().all(|(k, v)| pod_labels.get(k) == Some(v)),
        _ => false,
    }
}

/// The Deployment and its Service; an error names what the strategy needs.
pub fn main_objects(strategy: &Strategy, objects: &[PlannedObject]) -> Result<Main, DeployError> {
    let deployments: Vec<usize> = (0..objects.len())
        .filter(|i| objects[*i].reference.kind == "Deployment")
        .collect();
    let [deployment] = deployments[..] else {
        return Err(DeployError::Setup(format!(
            "rollout: a {} rollout needs exactly one Deployment among the release's objects; it has {}",
            strategy.name(),
            deployments.len()
        )));
    };
    let pods = objects[deployment]
        .object
        .pointer("/spec/template/metadata/labels")
        .cloned()
        .unwrap_or_default();
    let services: Vec<usize> = (0..objects.len())
        .filter(|i| objects[*i].reference.kind == "Service" && selects(&objects[*i].object, &pods))
        .collect();
    let service = match (strategy, &services[..]) {
        (Strategy::BlueGreen { .. }, [one]) => Some(*one),
        (Strategy::BlueGreen { .. }, found) => return Err(DeployError::Setup(format!(
            "rollout: a blue-green rollout switches the one Service selecting the Deployment's pods; {} select them",
            found.len()
        ))),
        (_, found) => found.first().copied(),
    };
    Ok(Main { deployment, service })
}

/// The objects a deploy with `strategy` plans for release `release` (`r9`).
pub fn shape(
    strategy: &Strategy,
    mut objects: Vec<PlannedObject>,
    release: &str,
) -> Result<Vec<PlannedObject>, DeployError> {
    let Strategy::BlueGreen { preview, .. } = strategy else {
        if strategy.is_progressive() {
            main_objects(strategy, &objects)?;
        }
        return Ok(objects);
    };
    let main = main_objects(strategy, &objects)?;
    let svc = main.service.expect("blue-green has its service");
    let rendered_svc = objects[svc].object.clone();
    let d = &mut objects[main.deployment];
    d.object = shape::color_deployment(&d.object, release);
    d.reference.name = d.object["metadata"]["name"].as_str().unwrap_or_default().to_owned();
    objects[svc].object = shape::service_for(&rendered_svc, release);
    if *preview {
        let p = shape::preview_service(&rendered_svc, release);
        let mut reference = objects[svc].reference.clone();
        reference.name = p["metadata"]["name"].as_str().unwrap_or_default().to_owned();
        objects.push(PlannedObject {
            reference,
            template: objects[svc].template.clone(),
            object: p,
        });
    }
    Ok(objects)
}
