//! The objects a canary or blue-green rollout applies, made from the
//! Deployment and Service a release renders (pure JSON transforms).
//!
//! Canary: the new version runs as `<app>-canary` with the labels the
//! Service selects plus `prism.io/track: canary`, beside the stable
//! Deployment; the Service spreads requests over the ready pods of both, so
//! the share of requests follows the share of ready pods only
//! approximately (no traffic router is involved).
//!
//! Blue-green: the new version runs as `<app>-<release>`, its pods labelled
//! with the release; the live Service's selector names the release it
//! serves, so switching (or switching back) is one apply of the Service.

use serde_json::{json, Value};

pub const TRACK_LABEL: &str = "prism.io/track";
pub const RELEASE_LABEL: &str = "prism.io/release";
pub const CANARY_SUFFIX: &str = "-canary";

/// How many of `total` replicas run the canary at `weight` percent: at least
/// one for any weight above 0, all of them at 100.
pub fn split(total: i32, weight: u8) -> (i32, i32) {
    let total = total.max(1);
    let w = i32::from(weight.min(100));
    let canary = if w == 0 {
        0
    } else {
        ((total * w + 99) / 100).clamp(1, total)
    };
    (total - canary, canary)
}

fn name_of(o: &Value) -> String {
    o["metadata"]["name"].as_str().unwrap_or_default().to_string()
}

fn clean(mut o: Value) -> Value {
    if let Some(m) = o["metadata"].as_object_mut() {
        for k in [
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
            "managedFields",
        ] {
            m.remove(k);
        }
    }
    if let Some(obj) = o.as_object_mut() {
        obj.remove("status");
    }
    o
}

fn add_label(o: &mut Value, path: &[&str], key: &str, value: &str) {
    let mut at = &mut *o;
    for p in path {
        if at.get(*p).is_none() {
            at[*p] = json!({});
        }
        at = &mut at[*p];
    }
    at[key] = json!(value);
}

/// The canary Deployment: the release's Deployment renamed, its own
/// selector narrowed to the canary track, `replicas` pods.
pub fn canary_deployment(rendered: &Value, replicas: i32) -> Value {
    let mut d = clean(rendered.clone());
    let name = format!("{}{CANARY_SUFFIX}", name_of(rendered));
    d["metadata"]["name"] = json!(name);
    add_label(&mut d, &["metadata", "labels"], TRACK_LABEL, "canary");
    add_label(&mut d, &["spec", "selector", "matchLabels"], TRACK_LABEL, "canary");
    add_label(
        &mut d,
        &["spec", "template", "metadata", "labels"],
        TRACK_LABEL,
        "canary",
    );
    d["spec"]["replicas"] = json!(replicas);
    d
}

/// The stable Deployment as it runs now, at `replicas` (only that field
/// changes while a canary runs).
pub fn scaled(live: &Value, replicas: i32) -> Value {
    let mut d = clean(live.clone());
    d["spec"]["replicas"] = json!(replicas);
    d
}

/// The blue-green Deployment for `release`: named after it, its selector
/// and pods carrying the release, so two colours never share pods.
pub fn color_deployment(rendered: &Value, release: &str) -> Value {
    let mut d = clean(rendered.clone());
    d["metadata"]["name"] = json!(format!("{}-{release}", name_of(rendered)));
    add_label(&mut d, &["spec", "selector", "matchLabels"], RELEASE_LABEL, release);
    add_label(
        &mut d,
        &["spec", "template", "metadata", "labels"],
        RELEASE_LABEL,
        release,
    );
    d
}

/// The live Service pointed at `release` (the switch, and the switch back).
pub fn service_for(rendered: &Value, release: &str) -> Value {
    let mut s = clean(rendered.clone());
    add_label(&mut s, &["spec", "selector"], RELEASE_LABEL, release);
    s
}

/// A preview Service (`<svc>-preview`) that reaches only `release`, for
/// checks before any user traffic does.
pub fn preview_service(rendered: &Value, release: &str) -> Value {
    let mut s = service_for(rendered, release);
    s["metadata"]["name"] = json!(format!("{}-preview", name_of(rendered)));
    if let Some(spec) = s["spec"].as_object_mut() {
        // A ClusterIP of its own; never a copy of the live one's address.
        spec.remove("clusterIP");
        spec.remove("clusterIPs");
    }
    s
}

/// The release a live Service serves, if blue-green pinned it.
pub fn served_release(service: &Value) -> Option<String> {
    service["spec"]["selector"][RELEASE_LABEL].as_str().map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop-prd", "labels": {"prism.io/application": "web"}, "resourceVersion": "7"},
            "spec": {
                "replicas": 10,
                "selector": {"matchLabels": {"prism.io/application": "web", "prism.io/environment": "prd"}},
                "template": {"metadata": {"labels": {"prism.io/application": "web", "prism.io/environment": "prd", "prism.io/release": "r8"}},
                             "spec": {"containers": [{"name": "web", "image": "reg/shop/web@sha256:8"}]}}
            },
            "status": {"replicas": 10}
        })
    }

    fn service() -> Value {
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "web", "namespace": "shop-prd"},
               "spec": {"clusterIP": "10.96.0.10", "selector": {"prism.io/application": "web", "prism.io/environment": "prd"},
                        "ports": [{"port": 80, "targetPort": 8080}]}})
    }

    #[test]
    fn splits_keep_the_total_and_give_the_canary_at_least_one() {
        assert_eq!(split(10, 10), (9, 1));
        assert_eq!(split(10, 25), (7, 3));
        assert_eq!(split(10, 50), (5, 5));
        assert_eq!(split(10, 100), (0, 10));
        assert_eq!(split(3, 10), (2, 1));
        assert_eq!(split(1, 10), (0, 1));
        assert_eq!(split(4, 0), (4, 0));
        for total in 1..30 {
            for w in 0..=100u8 {
                let (s, c) = split(total, w);
                assert_eq!(s + c, total);
                assert!(c >= i32::from(w > 0));
            }
        }
    }

    #[test]
    fn the_canary_is_selected_by_the_service_but_not_by_the_stable_deployment() {
        let c = canary_deployment(&deployment(), 2);
        assert_eq!(c["metadata"]["name"], "web-canary");
        assert_eq!(c["spec"]["replicas"], 2);
        let pod = &c["spec"]["template"]["metadata"]["labels"];
        // The Service's selector matches the canary's pods ...
        for (k, v) in service()["spec"]["selector"].as_object().unwrap() {
            assert_eq!(&pod[k], v, "{k}");
        }
        assert_eq!(pod[TRACK_LABEL], "canary");
        // ... and the canary's own selector does not match the stable pods.
        assert_eq!(c["spec"]["selector"]["matchLabels"][TRACK_LABEL], "canary");
        assert!(c.get("status").is_none() && c["metadata"].get("resourceVersion").is_none());
        assert_eq!(scaled(&deployment(), 7)["spec"]["replicas"], 7);
    }

    #[test]
    fn blue_green_pins_pods_and_service_to_a_release() {
        let d = color_deployment(&deployment(), "r9");
        assert_eq!(d["metadata"]["name"], "web-r9");
        assert_eq!(d["spec"]["selector"]["matchLabels"][RELEASE_LABEL], "r9");
        assert_eq!(d["spec"]["template"]["metadata"]["labels"][RELEASE_LABEL], "r9");
        let live = service_for(&service(), "r9");
        assert_eq!(served_release(&live).as_deref(), Some("r9"));
        assert_eq!(served_release(&service_for(&live, "r8")).as_deref(), Some("r8"));
        let preview = preview_service(&service(), "r9");
        assert_eq!(preview["metadata"]["name"], "web-preview");
        assert!(preview["spec"].get("clusterIP").is_none());
        assert_eq!(served_release(&preview).as_deref(), Some("r9"));
        assert_eq!(served_release(&service()), None);
    }
}
