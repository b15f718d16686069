use std::collections::BTreeMap;

use prism_manifests::{render, validate, ApiVersions, RenderVars, TemplateSet, ValidationPolicy};

fn vars() -> RenderVars {
    RenderVars {
        project: "shop".into(),
        application: "web".into(),
        environment: "fat".into(),
        namespace: "shop-fat".into(),
        release: "r7".into(),
        git_ref: "main".into(),
        commit_sha: Some("abc1234".into()),
        image: format!("127.0.0.1:5000/web@sha256:{}", "a".repeat(64)),
        image_digest: Some(format!("sha256:{}", "a".repeat(64))),
        replicas: 3,
        cpu_request: "250m".into(),
        cpu_limit: "1".into(),
        memory_request: "256Mi".into(),
        memory_limit: "512Mi".into(),
        env_vars: BTreeMap::from([("JAVA_OPTS".into(), "-Xmx256m".into())]),
        settings: serde_json::json!({"health_path": "/healthz", "ingress_host": "web.fat.example"}),
        api: ApiVersions::default(),
        secrets: vec![],
    }
}

#[test]
fn builtin_set_renders_a_valid_deployment_service_and_ingress() {
    let mut r = render(&TemplateSet::builtin(), &vars()).unwrap();
    let refs = validate(
        &mut r,
        &ValidationPolicy {
            namespace: "shop-fat".into(),
            allow_cluster_scoped: false,
            allow_other_namespaces: false,
        },
    )
    .unwrap();
    let kinds: Vec<String> = refs.iter().map(|r| format!("{}/{}", r.kind, r.name)).collect();
    assert_eq!(kinds, ["Deployment/web", "Ingress/web", "Service/web"]);
    let d = &r.objects[0].object;
    assert_eq!(d["spec"]["replicas"], 3);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        vars().image.as_str()
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"],
        "512Mi"
    );
    assert_eq!(d["metadata"]["labels"]["app.kubernetes.io/managed-by"], "prism");
    assert_eq!(d["metadata"]["labels"]["prism.io/release"], "r7");
    assert_eq!(d["spec"]["selector"]["matchLabels"]["prism.io/environment"], "fat");
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["env"][0]["name"],
        "JAVA_OPTS"
    );
}

#[test]
fn yaml_1_1_octals_read_as_kubectl_reads_them() {
    let t = BTreeMap::from([(
        "cm.yaml".to_string(),
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nspec:\n  defaultMode: 0644\n  other: 0o755\n  plain: 644\n"
            .to_string(),
    )]);
    let r = render(&TemplateSet::with_overrides(&t).unwrap(), &vars()).unwrap();
    let o = &r.objects.iter().find(|o| o.template == "cm.yaml").unwrap().object;
    assert_eq!(o["spec"]["defaultMode"], 420);
    assert_eq!(o["spec"]["other"], 493);
    assert_eq!(o["spec"]["plain"], 644);
}
