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
    let name = &objects[deployment].reference.name;
    // An autoscaler would fight a canary's split, and would go on scaling
    // the old name after a blue-green switch.
    let hpa = objects.iter().any(|o| {
        o.reference.kind == "HorizontalPodAutoscaler"
            && o.object.pointer("/spec/scaleTargetRef/name").and_then(|n| n.as_str()) == Some(name.as_str())
    });
    if hpa {
        return Err(DeployError::Setup(format!(
            "rollout: a {} rollout cannot work with a HorizontalPodAutoscaler on Deployment {name}; roll out with `rolling`, or render no autoscaler",
            strategy.name()
        )));
    }
    if matches!(strategy, Strategy::Canary { .. })
        && objects[deployment]
            .object
            .pointer("/spec/replicas")
            .and_then(|r| r.as_i64())
            .is_none()
    {
        return Err(DeployError::Setup(format!(
            "rollout: a canary splits Deployment {name}'s spec.replicas, which the template leaves out"
        )));
    }
    let pods = objects[deployment]
        .object
        .pointer("/spec/template/metadata/labels")
        .cloned()
        .unwrap_or_default();
    let mut services: Vec<usize> = (0..objects.len())
        .filter(|i| objects[*i].reference.kind == "Service" && selects(&objects[*i].object, &pods))
        .collect();
    // A planned blue-green deploy also has the preview Service made from the live one.
    let names: Vec<String> = services.iter().map(|i| objects[*i].reference.name.clone()).collect();
    services.retain(|i| {
        let n = &objects[*i].reference.name;
        !names.iter().any(|other| *n == format!("{other}-preview"))
    });
    let service = match (strategy, &services[..]) {
        (Strategy::BlueGreen { .. }, [one]) => Some(*one),
        (Strategy::BlueGreen { .. }, found) => {
            return Err(DeployError::Setup(format!(
            "rollout: a blue-green rollout switches the one Service selecting the Deployment's pods; {} select them",
            found.len()
        )))
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use prism_manifests::ObjectRef;
    use serde_json::json;

    fn obj(kind: &str, name: &str, object: serde_json::Value) -> PlannedObject {
        PlannedObject {
            reference: ObjectRef {
                api_version: if kind == "Deployment" { "apps/v1" } else { "v1" }.into(),
                kind: kind.into(),
                namespace: Some("shop".into()),
                name: name.into(),
            },
            template: format!("{name}.yaml"),
            object,
        }
    }

    fn web() -> Vec<PlannedObject> {
        let labels = json!({"prism.io/application": "web", "prism.io/environment": "prd", "prism.io/release": "r9"});
        vec![
            obj(
                "Deployment",
                "web",
                json!({"metadata": {"name": "web"}, "spec": {"replicas": 3, "selector": {"matchLabels": {"prism.io/application": "web"}}, "template": {"metadata": {"labels": labels}}}}),
            ),
            obj(
                "Service",
                "web",
                json!({"metadata": {"name": "web"}, "spec": {"clusterIP": "10.0.0.1", "selector": {"prism.io/application": "web", "prism.io/environment": "prd"}}}),
            ),
            obj(
                "Service",
                "metrics",
                json!({"metadata": {"name": "metrics"}, "spec": {"selector": {"app": "other"}}}),
            ),
        ]
    }

    fn blue_green(preview: bool) -> Strategy {
        Strategy::BlueGreen {
            preview,
            gates: vec![],
            manual: false,
            scale_down_delay_seconds: 60,
        }
    }

    #[test]
    fn blue_green_plans_the_colour_and_the_pinned_service_and_finds_them_again() {
        let shaped = shape(&blue_green(true), web(), "r9").unwrap();
        let names: Vec<&str> = shaped.iter().map(|o| o.reference.name.as_str()).collect();
        assert_eq!(names, ["web-r9", "web", "metrics", "web-preview"]);
        assert_eq!(shaped[1].object["spec"]["selector"]["prism.io/release"], "r9");
        // The stored plan is read again at apply time and by the rollout.
        let m = main_objects(&blue_green(true), &shaped).unwrap();
        assert_eq!((m.deployment, m.service), (0, Some(1)));
        // A canary plans the rendered objects unchanged.
        let canary = Strategy::Canary { steps: vec![] };
        let same = shape(&canary, web(), "r9").unwrap();
        assert_eq!(same[0].reference.name, "web");
    }

    #[test]
    fn templates_a_strategy_cannot_work_with_fail_the_plan_with_the_reason() {
        let mut two = web();
        two.push(two[0].clone());
        let e = shape(&Strategy::Canary { steps: vec![] }, two, "r9").err().unwrap();
        assert!(e.to_string().contains("exactly one Deployment"), "{e}");
        let no_service: Vec<PlannedObject> = web()
            .into_iter()
            .filter(|o| o.reference.name != "web" || o.reference.kind == "Deployment")
            .collect();
        let e = shape(&blue_green(false), no_service, "r9").err().unwrap();
        assert!(e.to_string().contains("0 select them"), "{e}");
        let mut scaled = web();
        scaled.push(obj(
            "HorizontalPodAutoscaler",
            "web",
            json!({"spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}}}),
        ));
        let e = shape(&blue_green(false), scaled, "r9").err().unwrap();
        assert!(e.to_string().contains("HorizontalPodAutoscaler"), "{e}");
        let mut unsized_web = web();
        unsized_web[0].object["spec"]
            .as_object_mut()
            .unwrap()
            .remove("replicas");
        let e = shape(&Strategy::Canary { steps: vec![] }, unsized_web, "r9")
            .err()
            .unwrap();
        assert!(e.to_string().contains("spec.replicas"), "{e}");
        // Rolling plans anything.
        assert_eq!(shape(&Strategy::Rolling, vec![], "r9").unwrap().len(), 0);
    }
}
