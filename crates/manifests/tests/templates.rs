//! Templates end to end: bad templates (syntax, strictness, sandbox, fuel,
//! YAML, validation, names and sizes) each fail with a precise Problem, and
//! the features a project relies on (overrides, partials, optional settings,
//! built-in ConfigMap/HPA, namespaces, ownership labels, determinism) work.

use std::collections::BTreeMap;

use prism_manifests::{
    render, validate, ApiVersions, ManifestError, ObjectRef, Problem, RenderVars, Rendered, TemplateSet,
    ValidationPolicy, BUILTIN_NAMES,
};
use serde_json::json;

// ---------------------------------------------------------------- fixtures

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
        settings: json!({"health_path": "/healthz", "ingress_host": "web.fat.example"}),
        api: ApiVersions::default(),
        secrets: vec![],
    }
}

fn policy() -> ValidationPolicy {
    ValidationPolicy {
        namespace: "shop-fat".into(),
        allow_cluster_scoped: false,
        allow_other_namespaces: false,
    }
}

fn overrides(templates: &[(&str, &str)]) -> BTreeMap<String, String> {
    templates.iter().map(|(n, b)| (n.to_string(), b.to_string())).collect()
}

/// The whole pipeline a deploy runs: set, render, validate.
fn pipeline(
    templates: &BTreeMap<String, String>,
    vars: &RenderVars,
    policy: &ValidationPolicy,
) -> Result<(Rendered, Vec<ObjectRef>), ManifestError> {
    let set = TemplateSet::with_overrides(templates)?;
    let mut rendered = render(&set, vars)?;
    let refs = validate(&mut rendered, policy)?;
    Ok((rendered, refs))
}

fn ok_pipeline(templates: &[(&str, &str)], vars: &RenderVars, policy: &ValidationPolicy) -> (Rendered, Vec<ObjectRef>) {
    match pipeline(&overrides(templates), vars, policy) {
        Ok(r) => r,
        Err(e) => panic!("expected success, got {e:?}"),
    }
}

fn render_err(templates: &[(&str, &str)], vars: &RenderVars) -> Vec<Problem> {
    let set = TemplateSet::with_overrides(&overrides(templates)).expect("template set");
    match render(&set, vars) {
        Err(ManifestError::Render(ps)) => ps,
        other => panic!("expected a Render error, got {other:?}"),
    }
}

fn kinds(refs: &[ObjectRef]) -> Vec<String> {
    refs.iter().map(|r| format!("{}/{}", r.kind, r.name)).collect()
}

fn object<'a>(r: &'a Rendered, kind: &str, name: &str) -> &'a serde_json::Value {
    r.objects
        .iter()
        .map(|o| &o.object)
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind}/{name} in {}", r.to_yaml()))
}

/// A Deployment override (named `deployment.yaml`, so it replaces the
/// built-in) whose only container has the given flow-mapping resources.
fn deployment_with(requests: &str, limits: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{{{ app.name }}}}
spec:
  selector:
    matchLabels: {{{{ selector_labels | tojson }}}}
  template:
    metadata:
      labels: {{{{ labels | tojson }}}}
    spec:
      containers:
        - name: web
          image: {{{{ image.ref | tojson }}}}
          resources:
            requests: {requests}
            limits: {limits}
"
    )
}

// ------------------------------------------------------ bad-template table

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Render,
    Invalid,
    BadTemplate,
}

#[derive(Debug, Clone, Copy)]
enum Line {
    /// The problem must carry exactly this 1-based line.
    At(usize),
    /// No line (validation and size problems have none).
    Absent,
    /// Either, when the engine may stop for more than one reason.
    Any,
}

#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Every one of these substrings is in the message.
    Msg(&'static [&'static str]),
    /// At least one of these substrings is in the message.
    MsgAnyOf(&'static [&'static str]),
    /// The problem names exactly this field.
    Field(&'static str),
    /// The problem names a field containing this text.
    FieldContains(&'static str),
}

#[derive(Debug)]
struct Case {
    desc: &'static str,
    templates: BTreeMap<String, String>,
    kind: Kind,
    template: &'static str,
    line: Line,
    expect: Expect,
}

fn case(
    desc: &'static str,
    templates: &[(&str, &str)],
    kind: Kind,
    template: &'static str,
    line: Line,
    expect: Expect,
) -> Case {
    Case {
        desc,
        templates: overrides(templates),
        kind,
        template,
        line,
        expect,
    }
}

/// Text that must never reach a Problem: the sandbox loads nothing from disk.
const FILE_CONTENTS: &[&str] = &["root:x:0:0", "root:*:0:0", "localhost"];

fn check(c: &Case) -> Result<(), String> {
    let err = match pipeline(&c.templates, &vars(), &policy()) {
        Ok((r, _)) => return Err(format!("expected an error, rendered:\n{}", r.to_yaml())),
        Err(e) => e,
    };
    let kind = match &err {
        ManifestError::Render(_) => Kind::Render,
        ManifestError::Invalid(_) => Kind::Invalid,
        ManifestError::BadTemplate(_) => Kind::BadTemplate,
    };
    if kind != c.kind {
        return Err(format!("expected {:?}, got {err:?}", c.kind));
    }
    let ps = err.problems();
    let [p] = ps else {
        return Err(format!("expected exactly one problem, got {ps:?}"));
    };
    if p.template != c.template {
        return Err(format!("expected template {:?}, got {p:?}", c.template));
    }
    match c.line {
        Line::At(n) if p.line != Some(n) => return Err(format!("expected line {n}, got {p:?}")),
        Line::Absent if p.line.is_some() => return Err(format!("expected no line, got {p:?}")),
        _ => {}
    }
    match c.expect {
        Expect::Msg(subs) => {
            if let Some(s) = subs.iter().find(|s| !p.message.contains(**s)) {
                return Err(format!("expected {s:?} in the message, got {p:?}"));
            }
        }
        Expect::MsgAnyOf(subs) => {
            if !subs.iter().any(|s| p.message.contains(s)) {
                return Err(format!("expected one of {subs:?} in the message, got {p:?}"));
            }
        }
        Expect::Field(f) => {
            if p.field.as_deref() != Some(f) {
                return Err(format!("expected field {f:?}, got {p:?}"));
            }
        }
        Expect::FieldContains(f) => {
            if !p.field.as_deref().is_some_and(|x| x.contains(f)) {
                return Err(format!("expected a field containing {f:?}, got {p:?}"));
            }
        }
    }
    let shown = err.to_string();
    if !shown.contains(c.template) {
        return Err(format!("the error text {shown:?} does not name {:?}", c.template));
    }
    if let Some(leak) = FILE_CONTENTS.iter().find(|l| shown.contains(**l)) {
        return Err(format!("the error text leaks file contents ({leak:?}): {shown:?}"));
    }
    Ok(())
}

fn bad_cases() -> Vec<Case> {
    use Expect::*;
    use Kind::*;
    use Line::*;
    const T: &str = "t.yaml";
    let mut cases = vec![
        // --- Jinja syntax
        case(
            "unclosed block tag",
            &[(T, "a: 1\n{% if x %}\nb: 2\n")],
            Render,
            T,
            At(2),
            Msg(&["syntax error", "expected end of block"]),
        ),
        case(
            "unknown tag",
            &[(T, "a: 1\n{% frobnicate %}\n")],
            Render,
            T,
            At(2),
            Msg(&["syntax error", "frobnicate"]),
        ),
        case(
            "stray end tag",
            &[(T, "a: 1\n{% endfor %}\n")],
            Render,
            T,
            At(2),
            Msg(&["syntax error", "endfor"]),
        ),
        case(
            "unclosed string",
            &[(T, "a: 1\nb: {{ \"abc }}")],
            Render,
            T,
            At(2),
            Msg(&["syntax error", "string"]),
        ),
        case(
            "unclosed variable block",
            &[(T, "a: 1\nb: {{ app.name \n")],
            Render,
            T,
            At(2),
            Msg(&["syntax error", "variable block"]),
        ),
        case(
            "bad filter name",
            &[(T, "a: 1\nb: {{ app.name | nosuchfilter }}\n")],
            Render,
            T,
            At(2),
            Msg(&["nosuchfilter"]),
        ),
        // --- strict undefined
        case(
            "undefined variable on line 3",
            &[(T, "a: 1\nb: 2\nc: {{ foo }}\n")],
            Render,
            T,
            At(3),
            Msg(&["undefined", "foo"]),
        ),
        case(
            "undefined nested attribute of settings",
            &[(T, "a: 1\nb: {{ settings.nope }}\n")],
            Render,
            T,
            At(2),
            Msg(&["undefined", "settings.nope"]),
        ),
        case(
            "undefined attribute of an undefined variable",
            &[(T, "a: {{ foo.bar }}\n")],
            Render,
            T,
            At(1),
            Msg(&["undefined", "foo"]),
        ),
        case(
            "for loop over an undefined sequence",
            &[(T, "a: 1\n{% for x in settings.items %}\n- {{ x }}\n{% endfor %}\n")],
            Render,
            T,
            At(2),
            Msg(&["undefined", "settings.items"]),
        ),
        case(
            "undefined variable inside a for loop body",
            &[(T, "a: 1\n{% for x in [1, 2] %}\nb{{ x }}: {{ y }}\n{% endfor %}\n")],
            Render,
            T,
            At(3),
            Msg(&["undefined", "y"]),
        ),
        // --- sandbox: only templates of the set can be loaded
        case(
            "include escaping upwards",
            &[(T, "a: 1\n{% include \"../../etc/passwd\" %}\n")],
            Render,
            T,
            At(2),
            Msg(&["not found", "../../etc/passwd"]),
        ),
        case(
            "include of an absolute path",
            &[(T, "a: 1\n{% include \"/etc/passwd\" %}\n")],
            Render,
            T,
            At(2),
            Msg(&["not found", "/etc/passwd"]),
        ),
        case(
            "include of a template not in the set",
            &[(T, "a: 1\n{% include \"missing.yaml\" %}\n")],
            Render,
            T,
            At(2),
            Msg(&["not found", "missing.yaml"]),
        ),
        case(
            "import of an absolute path",
            &[(T, "{% import \"/etc/passwd\" as p %}\na: 1\n")],
            Render,
            T,
            At(1),
            Msg(&["not found", "/etc/passwd"]),
        ),
        case(
            "from-import of a host file",
            &[(T, "{% from \"/etc/hosts\" import x %}\na: 1\n")],
            Render,
            T,
            At(1),
            Msg(&["not found", "/etc/hosts"]),
        ),
        case(
            "extends escaping upwards",
            &[(T, "{% extends \"../../etc/passwd\" %}\n")],
            Render,
            T,
            At(1),
            Msg(&["not found", "../../etc/passwd"]),
        ),
        // --- bounded execution
        case(
            "nested huge loops exhaust the fuel",
            &[(T, "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}\n")],
            Render,
            T,
            At(1),
            Msg(&["fuel"]),
        ),
        case(
            "a range too large to build",
            &[(T, "{% for i in range(100000000) %}x{% endfor %}\n")],
            Render,
            T,
            At(1),
            MsgAnyOf(&["too many elements", "fuel"]),
        ),
        case(
            "deep recursion through a recursive macro",
            &[(T, "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}\na: {{ f(0) }}\n")],
            Render,
            T,
            Any,
            MsgAnyOf(&["recursion limit", "fuel"]),
        ),
        case(
            "deep recursion through a recursive loop",
            &[(T, "{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}\n")],
            Render,
            T,
            Any,
            MsgAnyOf(&["recursion limit", "fuel"]),
        ),
        case(
            "a template including itself",
            &[(T, "a: 1\n{% include \"t.yaml\" %}\n")],
            Render,
            T,
            Any,
            MsgAnyOf(&["recursion", "include", "fuel"]),
        ),
        case(
            "output over 2 MiB in one expression",
            &[(T, "a: {{ \"x\" * 3000000 }}\n")],
            Render,
            T,
            Absent,
            Msg(&["more than 2097152 bytes"]),
        ),
        case(
            "output over 2 MiB from a loop (size limit or fuel)",
            &[(T, "{% for i in range(1000) %}{{ \"x\" * 5000 }}\n{% endfor %}")],
            Render,
            T,
            Any,
            MsgAnyOf(&["more than 2097152 bytes", "fuel"]),
        ),
        // --- YAML after rendering (lines are lines of the rendered text)
        case(
            "bad indentation",
            &[(T, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n   bad: 1\n")],
            Render,
            T,
            At(5),
            Msg(&["rendered YAML is invalid"]),
        ),
        case(
            "a tab used for indentation",
            &[(T, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n\tname: x\n")],
            Render,
            T,
            At(4),
            Msg(&["rendered YAML is invalid", "tab"]),
        ),
        case(
            "a document that is a list",
            &[(T, "- apiVersion: v1\n- kind: ConfigMap\n")],
            Render,
            T,
            Absent,
            Msg(&["document 1", "not a mapping"]),
        ),
        case(
            "a second document that is a scalar",
            &[(T, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\njust a string\n")],
            Render,
            T,
            Absent,
            Msg(&["document 2", "not a mapping"]),
        ),
        // --- validation of the objects
        case(
            "missing apiVersion",
            &[(T, "kind: ConfigMap\nmetadata: {name: x}\n")],
            Invalid,
            T,
            Absent,
            Field("apiVersion"),
        ),
        case(
            "missing kind",
            &[(T, "apiVersion: v1\nmetadata: {name: x}\n")],
            Invalid,
            T,
            Absent,
            Field("kind"),
        ),
        case(
            "missing metadata.name",
            &[(T, "apiVersion: v1\nkind: ConfigMap\nmetadata: {labels: {a: b}}\n")],
            Invalid,
            T,
            Absent,
            Field("metadata.name"),
        ),
        case(
            "name with uppercase letters",
            &[(T, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Web}\n")],
            Invalid,
            T,
            Absent,
            Field("metadata.name"),
        ),
        case(
            "name with an underscore",
            &[(T, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: my_cm}\n")],
            Invalid,
            T,
            Absent,
            Field("metadata.name"),
        ),
        case(
            "object in another namespace",
            &[(T, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: kube-system}\n")],
            Invalid,
            T,
            Absent,
            Field("metadata.namespace"),
        ),
        case(
            "cluster-scoped Namespace",
            &[(T, "apiVersion: v1\nkind: Namespace\nmetadata: {name: evil}\n")],
            Invalid,
            T,
            Absent,
            Field("kind"),
        ),
        case(
            "cluster-scoped ClusterRole",
            &[(
                T,
                "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: admin2}\nrules: []\n",
            )],
            Invalid,
            T,
            Absent,
            Field("kind"),
        ),
        case(
            "cluster-scoped ClusterRoleBinding",
            &[(
                T,
                "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: me-admin}\n\
                 roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\n",
            )],
            Invalid,
            T,
            Absent,
            Field("kind"),
        ),
        case(
            "cluster-scoped CustomResourceDefinition",
            &[(
                T,
                "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widgets.example.com}\n",
            )],
            Invalid,
            T,
            Absent,
            Field("kind"),
        ),
        case(
            "the same object twice in one template",
            &[(
                T,
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
            )],
            Invalid,
            T,
            Absent,
            Msg(&["ConfigMap x", "twice"]),
        ),
        case(
            "the built-in Deployment again from deployment.yml",
            &[(
                "deployment.yml",
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: '{{ app.name }}'}\n",
            )],
            Invalid,
            "deployment.yml",
            Absent,
            Msg(&["Deployment web", "twice"]),
        ),
        case(
            "bad cpu quantity in a Deployment container",
            &[("deployment.yaml", &deployment_with("{cpu: lots, memory: 256Mi}", "{cpu: '1', memory: 512Mi}"))],
            Invalid,
            "deployment.yaml",
            Absent,
            FieldContains("resources"),
        ),
        case(
            "bad memory quantity in a Deployment container",
            &[("deployment.yaml", &deployment_with("{cpu: 250m, memory: 256MB}", "{cpu: '1', memory: 512Mi}"))],
            Invalid,
            "deployment.yaml",
            Absent,
            FieldContains("resources.requests.memory"),
        ),
        case(
            "cpu limit below the request",
            &[("deployment.yaml", &deployment_with("{cpu: '2', memory: 256Mi}", "{cpu: 500m, memory: 512Mi}"))],
            Invalid,
            "deployment.yaml",
            Absent,
            FieldContains("resources.limits.cpu"),
        ),
        case(
            "memory limit below the request (mixed units)",
            &[("deployment.yaml", &deployment_with("{cpu: 250m, memory: 1Gi}", "{cpu: '1', memory: 1000Mi}"))],
            Invalid,
            "deployment.yaml",
            Absent,
            FieldContains("resources.limits.memory"),
        ),
        // --- template names and sizes
        case(
            "name escaping upwards",
            &[("../x.yaml", "a: 1\n")],
            BadTemplate,
            "../x.yaml",
            Absent,
            Field("name"),
        ),
        case(
            "name with a directory",
            &[("a/b.yaml", "a: 1\n")],
            BadTemplate,
            "a/b.yaml",
            Absent,
            Field("name"),
        ),
        case(
            "hidden name",
            &[(".hidden.yaml", "a: 1\n")],
            BadTemplate,
            ".hidden.yaml",
            Absent,
            Field("name"),
        ),
        case("empty name", &[("", "a: 1\n")], BadTemplate, "", Absent, Field("name")),
        case(
            "name with a foreign extension",
            &[("deploy.sh", "rm -rf /\n")],
            BadTemplate,
            "deploy.sh",
            Absent,
            Field("name"),
        ),
    ];
    let many: Vec<(String, String)> = (0..101)
        .map(|i| {
            (
                format!("cm{i}.yaml"),
                format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm{i}}}\n"),
            )
        })
        .collect();
    cases.push(Case {
        desc: "more than 100 templates",
        templates: many.into_iter().collect(),
        kind: Kind::BadTemplate,
        template: "*",
        line: Line::Absent,
        expect: Expect::Msg(&["at most 100 templates"]),
    });
    let huge = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: big}}\n# {}\n",
        "x".repeat(256 * 1024)
    );
    cases.push(case(
        "a template over 256 KiB",
        &[("big.yaml", &huge)],
        Kind::BadTemplate,
        "big.yaml",
        Line::Absent,
        Expect::Msg(&["larger than 262144 bytes"]),
    ));
    cases
}

#[test]
fn bad_templates_fail_with_precise_problems() {
    let cases = bad_cases();
    assert!(cases.len() >= 25, "only {} cases", cases.len());
    let mut descs: Vec<&str> = cases.iter().map(|c| c.desc).collect();
    descs.sort_unstable();
    descs.dedup();
    assert_eq!(descs.len(), cases.len(), "case descriptions must be distinct");
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| check(c).err().map(|e| format!("- {}: {e}", c.desc)))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn every_problem_is_reported_not_only_the_first() {
    // Two templates that fail to render: two Problems, one per template.
    let ps = render_err(
        &[
            ("a.yaml", "a: {{ foo }}\n"),
            ("b.yaml", "b: 1\n{% frobnicate %}\n"),
            ("c.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fine}\n"),
        ],
        &vars(),
    );
    assert_eq!(ps.len(), 2, "{ps:?}");
    assert_eq!((ps[0].template.as_str(), ps[0].line), ("a.yaml", Some(1)));
    assert!(ps[0].message.contains("foo"), "{ps:?}");
    assert_eq!((ps[1].template.as_str(), ps[1].line), ("b.yaml", Some(2)));
    assert!(ps[1].message.contains("frobnicate"), "{ps:?}");

    // Two templates with invalid objects: two Problems from validation.
    let err = pipeline(
        &overrides(&[
            (
                "a.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad_Name}\n",
            ),
            ("b.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: evil}\n"),
        ]),
        &vars(),
        &policy(),
    )
    .unwrap_err();
    let ManifestError::Invalid(ps) = &err else {
        panic!("expected Invalid, got {err:?}")
    };
    let got: Vec<(&str, Option<&str>)> = ps.iter().map(|p| (p.template.as_str(), p.field.as_deref())).collect();
    assert_eq!(got, [("a.yaml", Some("metadata.name")), ("b.yaml", Some("kind"))]);
}

// ---------------------------------------------------------- positive cases

#[test]
fn a_project_deployment_replaces_the_builtin() {
    let custom = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ app.name }}
  annotations: {source: project}
spec:
  replicas: {{ replicas * 2 }}
  selector: {matchLabels: {{ selector_labels | tojson }}}
  template:
    metadata: {labels: {{ labels | tojson }}}
    spec:
      containers:
        - {name: main, image: {{ image.ref | tojson }}}
";
    let (r, refs) = ok_pipeline(&[("deployment.yaml", custom)], &vars(), &policy());
    assert_eq!(kinds(&refs), ["Deployment/web", "Ingress/web", "Service/web"]);
    let deployments: Vec<_> = r.objects.iter().filter(|o| o.object["kind"] == "Deployment").collect();
    assert_eq!(deployments.len(), 1);
    let d = &deployments[0];
    assert_eq!(d.template, "deployment.yaml");
    assert_eq!(d.object["metadata"]["annotations"]["source"], "project");
    assert_eq!(d.object["spec"]["replicas"], 6);
    assert_eq!(d.object["spec"]["template"]["spec"]["containers"][0]["name"], "main");
    // The built-in's extras are gone with it.
    assert!(d.object["spec"].get("revisionHistoryLimit").is_none());
}

#[test]
fn an_empty_override_removes_a_builtin() {
    let set = TemplateSet::with_overrides(&overrides(&[("service.yaml", ""), ("ingress.yaml", "  \n\t\n")])).unwrap();
    assert!(set.get("service.yaml").is_none());
    assert!(set.get("ingress.yaml").is_none());
    assert!(set.get("deployment.yaml").is_some());
    let (_, refs) = ok_pipeline(
        &[("service.yaml", ""), ("ingress.yaml", "  \n\t\n")],
        &vars(),
        &policy(),
    );
    assert_eq!(kinds(&refs), ["Deployment/web"]);
    // Every built-in can go: an application may bring all of its own YAML.
    let none: Vec<(&str, &str)> = BUILTIN_NAMES.iter().map(|n| (*n, "")).collect();
    let (r, refs) = ok_pipeline(&none, &vars(), &policy());
    assert!(refs.is_empty() && r.objects.is_empty(), "{}", r.to_yaml());
}

#[test]
fn a_helpers_partial_provides_macros_and_is_not_rendered_itself() {
    // If `_helpers.yaml` were rendered on its own, this top-level mapping
    // would become an object without apiVersion/kind and fail validation.
    let helpers = "{% macro fullname(suffix) %}{{ suffix }}-cfg{% endmacro %}
{% macro kv(k, v) %}{{ k }}: {{ v | tojson }}{% endmacro %}
not: an object
";
    let cm = "{% import \"_helpers.yaml\" as h %}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ h.fullname(app.name) }}
data:
  {{ h.kv(\"release\", release.id) }}
";
    let (r, refs) = ok_pipeline(&[("_helpers.yaml", helpers), ("cm.yaml", cm)], &vars(), &policy());
    assert!(kinds(&refs).contains(&"ConfigMap/web-cfg".to_string()), "{refs:?}");
    assert!(
        r.objects.iter().all(|o| !o.template.starts_with('_')),
        "{}",
        r.to_yaml()
    );
    assert_eq!(object(&r, "ConfigMap", "web-cfg")["data"]["release"], "r7");
    assert_eq!(r.objects.len(), 4, "{}", r.to_yaml());
}

#[test]
fn an_included_partial_in_the_set_renders_in_place() {
    let part = "  tier: {{ (settings.tier if settings.tier is defined else \"backend\") | tojson }}\n  app: {{ app.name | tojson }}\n";
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: parts}\ndata:\n{% include \"_part.yaml\" %}";
    let (r, _) = ok_pipeline(&[("_part.yaml", part), ("cm.yaml", cm)], &vars(), &policy());
    let o = object(&r, "ConfigMap", "parts");
    assert_eq!(o["data"], json!({"tier": "backend", "app": "web"}));
    assert!(r.objects.iter().all(|o| o.template != "_part.yaml"));
}

#[test]
fn is_defined_guards_optional_settings_under_strict_mode() {
    let t = "apiVersion: v1
kind: ConfigMap
metadata: {name: opts}
data:
  level: {{ (settings.log_level if settings.log_level is defined else \"info\") | tojson }}
{%- if settings.extra is defined and settings.extra.flag is defined %}
  flag: {{ settings.extra.flag | tojson }}
{%- endif %}
";
    let mut v = vars();
    v.settings = json!({});
    let (r, refs) = ok_pipeline(&[("opts.yaml", t)], &v, &policy());
    assert_eq!(object(&r, "ConfigMap", "opts")["data"], json!({"level": "info"}));
    // Without health_path or ingress_host the built-ins drop probes and the Ingress.
    assert_eq!(kinds(&refs), ["Deployment/web", "ConfigMap/opts", "Service/web"]);
    let c = &object(&r, "Deployment", "web")["spec"]["template"]["spec"]["containers"][0];
    assert!(
        c.get("readinessProbe").is_none() && c.get("livenessProbe").is_none(),
        "{c}"
    );

    v.settings = json!({"log_level": "debug", "extra": {"flag": "on"}, "health_path": "/ready"});
    let (r, _) = ok_pipeline(&[("opts.yaml", t)], &v, &policy());
    assert_eq!(
        object(&r, "ConfigMap", "opts")["data"],
        json!({"level": "debug", "flag": "on"})
    );
    let c = &object(&r, "Deployment", "web")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/ready");
}

#[test]
fn builtin_configmap_renders_when_settings_config_is_set() {
    let (r, _) = ok_pipeline(&[], &vars(), &policy());
    assert!(r.objects.iter().all(|o| o.object["kind"] != "ConfigMap"));

    let mut v = vars();
    v.settings = json!({"config": {
        "LOG_LEVEL": "debug",
        "PORT": "8080",
        "ENABLED": "true",
        "MODE": "0644",
        "NOTHING": "null",
        "QUOTE": "it's \"quoted\" <b>&</b>",
    }});
    let (r, refs) = ok_pipeline(&[], &v, &policy());
    assert!(kinds(&refs).contains(&"ConfigMap/web-config".to_string()), "{refs:?}");
    let data = &object(&r, "ConfigMap", "web-config")["data"];
    assert_eq!(
        data,
        &json!({
            "LOG_LEVEL": "debug",
            "PORT": "8080",
            "ENABLED": "true",
            "MODE": "0644",
            "NOTHING": "null",
            "QUOTE": "it's \"quoted\" <b>&</b>",
        })
    );
    assert!(data.as_object().unwrap().values().all(|v| v.is_string()), "{data}");
}

#[test]
fn builtin_hpa_follows_the_cluster_api_version() {
    let mut v = vars();
    v.settings = json!({"autoscale": {"max_replicas": 10, "cpu_percent": 60}});

    v.api.hpa = "autoscaling/v1".into();
    let (r, refs) = ok_pipeline(&[], &v, &policy());
    let hpa_ref = refs
        .iter()
        .find(|r| r.kind == "HorizontalPodAutoscaler")
        .expect("an HPA");
    assert_eq!(hpa_ref.api_version, "autoscaling/v1");
    let spec = &object(&r, "HorizontalPodAutoscaler", "web")["spec"];
    assert_eq!(spec["targetCPUUtilizationPercentage"], 60);
    assert!(spec.get("metrics").is_none(), "{spec}");
    assert_eq!(spec["minReplicas"], 3);
    assert_eq!(spec["maxReplicas"], 10);
    assert_eq!(
        spec["scaleTargetRef"],
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"})
    );

    v.api.hpa = "autoscaling/v2beta2".into();
    let (r, _) = ok_pipeline(&[], &v, &policy());
    let hpa = object(&r, "HorizontalPodAutoscaler", "web");
    assert_eq!(hpa["apiVersion"], "autoscaling/v2beta2");
    assert!(hpa["spec"].get("targetCPUUtilizationPercentage").is_none());
    assert_eq!(hpa["spec"]["metrics"][0]["resource"]["name"], "cpu");
    assert_eq!(
        hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        60
    );

    // Without settings.autoscale there is no HPA.
    let (_, refs) = ok_pipeline(&[], &vars(), &policy());
    assert!(refs.iter().all(|r| r.kind != "HorizontalPodAutoscaler"));
}

#[test]
fn a_missing_namespace_is_filled_in() {
    let t = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n\
             apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b, namespace: shop-fat}\n";
    let (r, refs) = ok_pipeline(&[("cms.yaml", t)], &vars(), &policy());
    for name in ["a", "b"] {
        assert_eq!(object(&r, "ConfigMap", name)["metadata"]["namespace"], "shop-fat");
        let rf = refs.iter().find(|r| r.name == name).unwrap();
        assert_eq!(rf.namespace.as_deref(), Some("shop-fat"));
    }
}

#[test]
fn policy_flags_let_other_namespaces_and_cluster_scoped_kinds_through() {
    let other = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shared, namespace: shop-common}\n";
    let mut p = policy();
    p.allow_other_namespaces = true;
    let (r, refs) = ok_pipeline(&[("other.yaml", other)], &vars(), &p);
    let rf = refs.iter().find(|r| r.name == "shared").unwrap();
    assert_eq!(rf.namespace.as_deref(), Some("shop-common"));
    assert_eq!(
        object(&r, "ConfigMap", "shared")["metadata"]["namespace"],
        "shop-common"
    );
    // The other flag does not imply this one.
    p.allow_cluster_scoped = false;
    let ns = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop-extra}\n";
    assert!(matches!(
        pipeline(&overrides(&[("ns.yaml", ns)]), &vars(), &p),
        Err(ManifestError::Invalid(_))
    ));

    let cluster = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop-extra}\n---\n\
                   apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: shop-reader}\nrules: []\n";
    let mut p = policy();
    p.allow_cluster_scoped = true;
    let (r, refs) = ok_pipeline(&[("cluster.yaml", cluster)], &vars(), &p);
    for (kind, name) in [("Namespace", "shop-extra"), ("ClusterRole", "shop-reader")] {
        let rf = refs.iter().find(|r| r.kind == kind).unwrap();
        assert_eq!((rf.name.as_str(), rf.namespace.as_deref()), (name, None));
        // No namespace is stamped on a cluster-scoped object.
        assert!(object(&r, kind, name)["metadata"].get("namespace").is_none());
    }
    // And it does not imply other namespaces.
    assert!(matches!(
        pipeline(&overrides(&[("other.yaml", other)]), &vars(), &p),
        Err(ManifestError::Invalid(_))
    ));
}

#[test]
fn ownership_labels_are_on_every_object_and_win_conflicts() {
    let t = "apiVersion: v1
kind: ConfigMap
metadata:
  name: mine
  labels:
    team: payments
    prism.io/application: someone-else
    prism.io/environment: prod
    prism.io/release: r0
    app.kubernetes.io/managed-by: helm
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: nulls
  labels:
---
apiVersion: v1
kind: Secret
metadata: {name: bare}
";
    let mut v = vars();
    v.settings = json!({"ingress_host": "web.fat.example", "config": {"A": "1"}, "autoscale": {"max_replicas": 4}});
    let (r, _) = ok_pipeline(&[("mine.yaml", t)], &v, &policy());
    assert_eq!(r.objects.len(), 8, "{}", r.to_yaml());
    for o in &r.objects {
        let l = &o.object["metadata"]["labels"];
        assert_eq!(l["prism.io/application"], "web", "{}: {l}", o.template);
        assert_eq!(l["prism.io/environment"], "fat", "{}: {l}", o.template);
        assert_eq!(l["prism.io/release"], "r7", "{}: {l}", o.template);
        assert_eq!(l["app.kubernetes.io/managed-by"], "prism", "{}: {l}", o.template);
    }
    // The template's own labels that do not conflict survive.
    assert_eq!(
        object(&r, "ConfigMap", "mine")["metadata"]["labels"]["team"],
        "payments"
    );
}

#[test]
fn rendering_is_deterministic() {
    let t = "apiVersion: v1
kind: ConfigMap
metadata: {name: det}
data:
{%- for k, v in settings.config | items %}
  {{ k }}: {{ v | tojson }}
{%- endfor %}
  envs: {{ env_vars | tojson | tojson }}
";
    let mut v = vars();
    v.env_vars = (0..20)
        .map(|i| (format!("VAR_{}", (i * 7) % 20), format!("v{i}")))
        .collect();
    v.settings = json!({
        "config": {"zeta": "1", "alpha": "2", "mid": "3", "beta": "4"},
        "autoscale": {"max_replicas": 5},
        "ingress_host": "web.fat.example",
        "health_path": "/healthz",
    });
    let templates = overrides(&[("det.yaml", t)]);
    let once = pipeline(&templates, &v, &policy()).unwrap();
    let twice = pipeline(&templates, &v.clone(), &policy()).unwrap();
    assert_eq!(once.0.to_yaml(), twice.0.to_yaml());
    assert_eq!(once.1, twice.1);
    // A fresh set built from the same map is no different.
    let set = TemplateSet::with_overrides(&templates).unwrap();
    assert_eq!(render(&set, &v).unwrap().to_yaml(), render(&set, &v).unwrap().to_yaml());
}

// ------------------------------------------------- found by these tests, fixed since

#[test]
fn undefined_message_names_only_the_failing_variable() {
    let ps = render_err(
        &[(
            "t.yaml",
            "{% if settings.debug is defined %}debug: true{% endif %}\na: {{ foo }}\n",
        )],
        &vars(),
    );
    assert_eq!(ps.len(), 1);
    assert_eq!(ps[0].line, Some(2));
    assert_eq!(ps[0].message, "undefined variable foo");

    let ps = render_err(
        &[("t.yaml", "{% if false %}{{ bar }}{% endif %}\na: {{ foo }}\n")],
        &vars(),
    );
    assert_eq!(ps[0].message, "undefined variable foo");
}

#[test]
fn undefined_attribute_of_a_loop_variable_is_named() {
    let mut v = vars();
    v.settings = json!({"ports": [{"name": "http", "number": 80}]});
    let loop_t = "a: 1\n{% for p in settings.ports %}\n{{ p.name }}: {{ p.nmae }}\n{% endfor %}\n";
    let ps = render_err(&[("t.yaml", loop_t)], &v);
    assert_eq!(ps[0].line, Some(3));
    assert!(ps[0].message.contains("nmae"), "{ps:?}");

    let guarded = format!("{{% if settings.debug is defined %}}debug: true{{% endif %}}\n{loop_t}");
    let ps = render_err(&[("t.yaml", &guarded)], &v);
    assert!(
        !ps[0].message.contains("settings.debug"),
        "blames the wrong variable: {ps:?}"
    );
    assert!(ps[0].message.contains("nmae"), "{ps:?}");
}

#[test]
fn undefined_variable_in_an_included_partial_is_named_with_its_line() {
    let ps = render_err(
        &[
            ("t.yaml", "a: 1\n{% include \"_p.yaml\" %}\n"),
            ("_p.yaml", "b: 2\nc: {{ zork }}\n"),
        ],
        &vars(),
    );
    assert_eq!(ps.len(), 1);
    assert_eq!((ps[0].template.as_str(), ps[0].line), ("_p.yaml", Some(2)), "{ps:?}");
    assert!(ps[0].message.contains("zork"), "{ps:?}");
}

#[test]

fn undefined_variable_in_an_imported_macro_is_named() {
    let ps = render_err(
        &[
            ("t.yaml", "{% import \"_h.yaml\" as h %}\na: {{ h.m() }}\n"),
            ("_h.yaml", "{% macro m() %}\n{{ zork }}{% endmacro %}"),
        ],
        &vars(),
    );
    assert_eq!((ps[0].template.as_str(), ps[0].line), ("_h.yaml", Some(2)), "{ps:?}");
    assert!(ps[0].message.contains("zork"), "{ps:?}");
}

#[test]
fn builtin_templates_work_for_every_valid_application_name() {
    for name in ["true", "null", "on", "y", "no", "123", "0644", "1e3", "0x1f"] {
        let mut v = vars();
        v.application = name.into();
        let refs = match pipeline(&BTreeMap::new(), &v, &policy()) {
            Ok((_, refs)) => refs,
            Err(e) => panic!("application {name:?}: {e}"),
        };
        assert!(refs.iter().all(|r| r.name == name), "{name}: {refs:?}");
    }
}

#[test]
fn builtin_configmap_data_values_are_strings() {
    let mut v = vars();
    v.settings = json!({"config": {"PORT": 8080, "DEBUG": true, "RATIO": 1.5}});
    let (r, _) = ok_pipeline(&[], &v, &policy());
    let data = &object(&r, "ConfigMap", "web-config")["data"];
    assert_eq!(data, &json!({"PORT": "8080", "DEBUG": "true", "RATIO": "1.5"}));
}

#[test]
fn non_mapping_labels_do_not_escape_ownership_labels() {
    for labels in ["oops", "[a, b]", "42"] {
        let t = format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels: {labels}\n");
        match pipeline(&overrides(&[("x.yaml", &t)]), &vars(), &policy()) {
            Err(_) => {}
            Ok((r, _)) => {
                let l = &object(&r, "ConfigMap", "x")["metadata"]["labels"];
                assert_eq!(
                    l["prism.io/application"], "web",
                    "labels {labels}: object accepted without them: {l}"
                );
            }
        }
    }
}

#[test]
fn resource_problems_name_the_field_from_the_object_root() {
    let t = deployment_with("{cpu: '2', memory: 256Mi}", "{cpu: 500m, memory: 512Mi}");
    let err = pipeline(&overrides(&[("deployment.yaml", &t)]), &vars(), &policy()).unwrap_err();
    assert_eq!(
        err.problems()[0].field.as_deref(),
        Some("spec.template.spec.containers[0].resources.limits.cpu")
    );
}

#[test]
fn builtin_deployment_references_secrets_and_never_holds_a_value() {
    let mut v = vars();
    let s = |name: &str, secret: &str, key: &str, delivery: &str| prism_manifests::SecretRef {
        name: name.into(),
        secret: secret.into(),
        key: key.into(),
        delivery: delivery.into(),
    };
    v.secrets = vec![
        s("DB_PASSWORD", "web-secrets-0123456789", "DB_PASSWORD", "env"),
        s("API_KEY", "vault-api", "key", "env"),
        s("TLS_KEY", "web-secrets-0123456789", "TLS_KEY", "file"),
    ];
    let (rendered, _) = ok_pipeline(&[], &v, &policy());
    let d = &rendered
        .objects
        .iter()
        .find(|o| o.object["kind"] == "Deployment")
        .unwrap()
        .object;
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        c["env"],
        json!([
            {"name": "JAVA_OPTS", "value": "-Xmx256m"},
            {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "web-secrets-0123456789", "key": "DB_PASSWORD"}}},
            {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "vault-api", "key": "key"}}},
        ])
    );
    assert_eq!(
        c["volumeMounts"],
        json!([{"name": "prism-secrets", "mountPath": prism_manifests::DEFAULT_SECRET_FILES_PATH, "readOnly": true}])
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["volumes"],
        json!([{"name": "prism-secrets", "projected": {"sources": [
            {"secret": {"name": "web-secrets-0123456789", "items": [{"key": "TLS_KEY", "path": "TLS_KEY"}]}}
        ]}}])
    );
    // Without secrets or variables: an empty list, no volumes.
    let mut v = vars();
    v.env_vars.clear();
    let (rendered, _) = ok_pipeline(&[], &v, &policy());
    let d = &rendered
        .objects
        .iter()
        .find(|o| o.object["kind"] == "Deployment")
        .unwrap()
        .object;
    assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["env"], json!([]));
    assert!(d["spec"]["template"]["spec"].get("volumes").is_none());
}
