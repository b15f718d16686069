//! Templates that ask for huge results are refused before anything large is
//! allocated, with a problem naming the template and the limit (issue 11,
//! item 1). Before the bounds, the first case aborted the test process with
//! "memory allocation of 100000000000000 bytes failed".

use std::collections::BTreeMap;

use prism_manifests::{render, ApiVersions, ManifestError, RenderVars, TemplateSet};

fn vars() -> RenderVars {
    RenderVars {
        project: "shop".into(),
        application: "web".into(),
        environment: "fat".into(),
        namespace: "shop-fat".into(),
        release: "r7".into(),
        git_ref: "main".into(),
        commit_sha: None,
        image: "127.0.0.1:5000/web:r7".into(),
        image_digest: None,
        replicas: 1,
        cpu_request: "250m".into(),
        cpu_limit: "1".into(),
        memory_request: "256Mi".into(),
        memory_limit: "512Mi".into(),
        env_vars: BTreeMap::new(),
        settings: serde_json::json!({}),
        api: ApiVersions::default(),
        secrets: vec![],
    }
}

/// Renders `body` as `x.yaml` and returns the message of its one problem.
fn refused(body: &str) -> String {
    let set = TemplateSet::with_overrides(&BTreeMap::from([("x.yaml".to_owned(), body.to_owned())])).unwrap();
    match render(&set, &vars()) {
        Err(ManifestError::Render(ps)) => {
            let p = ps.iter().find(|p| p.template == "x.yaml").expect("a problem in x.yaml");
            p.message.clone()
        }
        other => panic!("expected a render error for {body:?}, got {other:?}"),
    }
}

#[test]
fn tojson_with_a_huge_indent_is_refused_naming_the_limit() {
    let m = refused("{{ 1|tojson(indent=100000000000000) }}");
    assert!(m.contains("indent 100000000000000 is past the limit of 16"), "{m}");
    let m = refused("{{ 1|tojson(100000000000000) }}");
    assert!(m.contains("past the limit of 16"), "{m}");
}

#[test]
fn a_large_string_printed_in_a_loop_stops_at_the_output_limit() {
    let m = refused(r#"{% set s = "x" * 100000000 %}{% for i in range(300) %}{{ s }}{% endfor %}"#);
    assert!(m.contains("more than 2097152 bytes (the output limit"), "{m}");
    let m = refused(r#"{% for i in range(100000) %}{{ "y" * 1000 }}{% endfor %}"#);
    assert!(m.contains("more than 2097152 bytes (the output limit"), "{m}");
}

#[test]
fn size_multiplying_filters_are_checked_before_allocating() {
    let m = refused(r#"{{ ("a\n" * 1000000)|indent(1000) }}"#);
    assert!(m.contains("indent would be larger than 2097152 bytes"), "{m}");
    let m = refused(r#"{{ "a"|indent(100000000000) }}"#);
    assert!(
        m.contains("indent: width 100000000000 is past the limit of 1024"),
        "{m}"
    );
    let m = refused(r#"{{ ("x" * 1000000)|replace("x", "y" * 1000) }}"#);
    assert!(m.contains("replace would be larger than 2097152 bytes"), "{m}");
    let m = refused(r#"{{ (["x" * 1000000] * 1000)|join(",") }}"#);
    assert!(m.contains("join would be larger than 2097152 bytes"), "{m}");
    let m = refused(r#"{{ "%999999999999s"|format("a") }}"#);
    assert!(
        m.contains("format: width 999999999999 is past the limit of 4096"),
        "{m}"
    );
    let m = refused(r#"{{ [1, 2] * 1000000000000 }}"#);
    assert!(m.contains("more than 10000 items"), "{m}");
    let m = refused(r#"{{ "%.99999999d"|format(1) }}"#);
    assert!(m.contains("past the limit of 4096"), "{m}");
}

#[test]
fn all_templates_together_are_bounded_too() {
    let line = format!("# {}\n", "z".repeat(1000));
    let mut files = BTreeMap::new();
    for i in 0..6 {
        files.insert(
            format!("f{i}.yaml"),
            format!("{{% for i in range(1900) %}}{line}{{% endfor %}}"),
        );
    }
    let set = TemplateSet::with_overrides(&files).unwrap();
    let Err(ManifestError::Render(ps)) = render(&set, &vars()) else {
        panic!("expected the total limit")
    };
    assert!(
        ps.iter()
            .any(|p| p.message.contains("together render to more than 8388608 bytes")),
        "{ps:?}"
    );
}

#[test]
fn the_bounded_filters_still_do_their_job() {
    let set = TemplateSet::with_overrides(&BTreeMap::from([(
        "x.yaml".to_owned(),
        concat!(
            "a: {{ {'k': [1, 2]}|tojson }}\n",
            "b: {{ {'k': 1}|tojson(indent=2)|replace('\\n', '') }}\n",
            "c: |\n  {{ 'one\\ntwo'|indent(2) }}\n",
            "d: {{ ['p', 'q']|join('-') }}\n",
            "e: '{{ '%05d'|format(42) }}'\n",
            "f: {{ 'hello'|replace('l', 'L') }}\n",
        )
        .to_owned(),
    )]))
    .unwrap();
    let r = render(&set, &vars()).unwrap();
    let o = &r.objects.iter().find(|o| o.template == "x.yaml").unwrap().object;
    assert_eq!(o["a"], serde_json::json!({"k": [1, 2]}));
    assert_eq!(o["b"], serde_json::json!({"k": 1}));
    assert_eq!(o["c"], "one\ntwo\n");
    assert_eq!(o["d"], "p-q");
    assert_eq!(o["e"], "00042");
    assert_eq!(o["f"], "heLLo");
}
