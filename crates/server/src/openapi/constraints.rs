//! The request rules the server checks, written into the document so that a
//! generated client or a schema-driven fuzzer knows them: name patterns and
//! lengths, the closed word lists, ranges. Each entry mirrors a validator
//! (named beside it); `scripts/api-fuzz.sh` sends values on both sides of
//! every rule here to the real server and fails on any disagreement, which is
//! what keeps this table and the validators the same. Rules no JSON Schema
//! can say (a reference to a record that must exist, an RRULE, fields that
//! are required together) stay the server's and are listed with their reason
//! in `schemathesis.toml`.

use serde_json::{json, Value};

/// `prism_domain::Name`: a DNS-1123 label.
fn name() -> Value {
    json!({"minLength": 1, "maxLength": 63, "pattern": "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"})
}

/// `prism_domain::username::validate_username`.
fn username() -> Value {
    json!({"minLength": 1, "maxLength": 64, "pattern": "^[a-z0-9][a-z0-9._-]*$"})
}

/// `prism_domain::app_secret::SecretName`.
fn secret_name() -> Value {
    json!({"minLength": 1, "maxLength": 253, "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"})
}

/// Text without whitespace or control characters (Unicode White_Space and
/// Cc, as Rust's `char::is_whitespace` and `char::is_control` read them), of
/// `min` to `max` characters.
fn no_space(min: u32, max: u32) -> Value {
    json!({
        "minLength": min,
        "maxLength": max,
        "pattern": "^[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*$",
    })
}

/// `ops::secret_text`: 1 to `max` characters without control characters.
fn printable(max: u32) -> Value {
    json!({"minLength": 1, "maxLength": max, "pattern": "^[^\\x00-\\x1f\\x7f-\\x9f]*$"})
}

/// Text with something other than whitespace in it, of at most `max`
/// characters (checked after trimming).
fn not_blank(max: u32) -> Value {
    json!({"maxLength": max, "pattern": "\\S"})
}

/// `prism_domain::ReleaseId`: `r` and a number.
fn release_id() -> Value {
    json!({"pattern": "^r[1-9][0-9]{0,17}$"})
}

fn words(list: &[&str]) -> Value {
    json!({"enum": list})
}

fn range(min: i64, max: i64) -> Value {
    json!({"minimum": min, "maximum": max})
}

/// Request body properties: (component schema, property path with `[]` for
/// an array's items, rule).
fn body_rules() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        ("CreateApplication", "name", name()),
        ("CreateApplication", "project", name()),
        ("CreateCluster", "name", name()),
        ("CreateEnvironment", "name", name()),
        ("CreateEnvironment", "cluster", name()),
        ("UpdateEnvironment", "cluster", name()),
        ("CreateProject", "name", name()),
        ("CreateBase", "name", name()),
        ("CreateExecutor", "name", name()),
        // ops::executors: the kinds an admin may register.
        ("CreateExecutor", "kind", words(&["jenkins", "kubernetes"])),
        ("CreateRelease", "application", name()),
        // prism_domain::GitRef: its length; the rest of `git check-ref-format`
        // is beyond a regular expression.
        ("CreateRelease", "git_ref", no_space(1, 255)),
        ("StartDeploy", "environment", name()),
        ("PreviewRequest", "environment", name()),
        ("PreviewRequest", "release", release_id()),
        ("Grant", "username", username()),
        // prism_domain::Role
        ("Grant", "role", words(&["developer", "tester", "operator"])),
        ("CreateUser", "username", username()),
        // ops::users: the password policy.
        ("CreateUser", "password", json!({"minLength": 10, "maxLength": 1024})),
        ("UpdateUser", "password", json!({"minLength": 10, "maxLength": 1024})),
        // ops::users::display_name
        (
            "CreateUser",
            "display_name",
            json!({"maxLength": 200, "pattern": "^[^\\x00-\\x1f\\x7f-\\x9f]*$"}),
        ),
        (
            "UpdateUser",
            "display_name",
            json!({"maxLength": 200, "pattern": "^[^\\x00-\\x1f\\x7f-\\x9f]*$"}),
        ),
        // ops::deploys::review
        ("Review", "decision", words(&["approve", "reject"])),
        // ops::notifications::language
        ("TestMessage", "language", words(&["en", "zh-CN"])),
        ("PutSubscription", "language", words(&["en", "zh-CN"])),
        // ops::ops_tools: the kinds of tool.
        (
            "PutTool",
            "kind",
            words(&["prometheus", "grafana", "dashboard", "headlamp", "other"]),
        ),
        // ops::webhooks::check_secret
        ("CreateWebhook", "secret", no_space(16, 512)),
        ("RotateWebhook", "secret", no_space(16, 512)),
        // prism_domain::ReleaseRules::validate
        ("ReleaseRules", "branches", json!({"maxItems": 50})),
        ("ReleaseRules", "tags", json!({"maxItems": 50})),
        ("ReleaseRules", "branches[]", no_space(1, 200)),
        ("ReleaseRules", "tags[]", no_space(1, 200)),
        // ops::releases::create
        ("CreateRelease", "change_note", not_blank(10_000)),
        // ops::tokens::expiry and token_name
        ("CreateToken", "expires_in_days", range(1, 365)),
        ("TokenLoginRequest", "expires_in_days", range(1, 365)),
        (
            "CreateToken",
            "name",
            json!({"maxLength": 100, "pattern": "^(?=.*\\S)[^\\x00-\\x1f\\x7f-\\x9f]*$"}),
        ),
        (
            "TokenLoginRequest",
            "name",
            json!({"maxLength": 100, "pattern": "^(?=.*\\S)[^\\x00-\\x1f\\x7f-\\x9f]*$"}),
        ),
        (
            "StartCliLogin",
            "name",
            json!({"maxLength": 100, "pattern": "^(?=.*\\S)[^\\x00-\\x1f\\x7f-\\x9f]*$"}),
        ),
        // ops::base_images: tier 1 (public base) or 2 (runtime base).
        ("CreateBase", "tier", json!({"enum": [1, 2]})),
        // ops::jobs::selftest
        ("SelfTest", "duration_ms", range(0, 600_000)),
        // ops::secret_text, per field
        ("PutGitCredential", "username", printable(256)),
        ("PutGitCredential", "password", printable(16 * 1024)),
        ("PutRegistry", "username", printable(256)),
        ("PutRegistry", "password", printable(16 * 1024)),
        ("CreateExecutor", "username", printable(256)),
        ("CreateExecutor", "token", printable(4096)),
        ("PutChannel", "secret", printable(4096)),
        // ops::applications::put_settings
        ("PutSettings", "replicas", range(0, 1000)),
        ("BindNamespace", "namespace", name()),
        // prism_domain::GroupRule::validate
        (
            "GroupRule",
            "group",
            json!({"minLength": 1, "maxLength": 512, "pattern": "\\S"}),
        ),
        // ops::clusters / ops::rollouts: only http(s) URLs.
        ("PrometheusRequest", "url", json!({"pattern": "^https?://"})),
    ]
}

/// Path and query parameters: (`METHOD path`, or `*` for every operation,
/// parameter name, rule).
fn param_rules() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        ("*", "secret", secret_name()),
        ("*", "username", username()),
        ("*", "role", words(&["developer", "tester", "operator"])),
        // prism_kube::progressive::Command
        (
            "POST /api/v1/deploys/{id}/rollout/{action}",
            "action",
            words(&["promote", "pause", "resume", "abort"]),
        ),
        ("GET /api/v1/jobs/{id}", "id", json!({"type": "integer", "minimum": 1})),
        (
            "GET /api/v1/projects/{name}/templates/versions/{version}",
            "version",
            json!({"type": "integer", "minimum": 0}),
        ),
        // The list limits: refused outside their range, never clamped.
        ("GET /api/v1/audit", "limit", range(1, 1000)),
        ("GET /api/v1/jobs", "limit", range(1, 1000)),
        ("GET /api/v1/builds/{id}/log", "limit", range(1, 10_000)),
        ("*", "limit", range(1, 500)),
        // ops::builds::list, ops::releases::list: the state filters.
        (
            "GET /api/v1/builds",
            "state",
            json!({"enum": prism_domain::BuildState::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>()}),
        ),
        (
            "GET /api/v1/releases",
            "state",
            json!({"enum": prism_domain::ReleaseState::KINDS}),
        ),
        (
            "GET /api/v1/deploys",
            "state",
            json!({"enum": prism_domain::DeployState::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>()}),
        ),
        ("GET /api/v1/deploys", "release", release_id()),
        // live_events::resume_after: the id of the last event received (the
        // query parameter's empty value is no id, as for EventSource).
        (
            "*",
            "Last-Event-ID",
            json!({"type": "integer", "minimum": 0, "maximum": i64::MAX}),
        ),
        ("*", "last_event_id", json!({"pattern": "^[0-9]{0,18}$"})),
        // ops::releases::list: the cursor is a release id.
        ("GET /api/v1/releases", "before", release_id()),
        // ops::ops_tools::nginx_config
        (
            "*",
            "prism",
            json!({"minLength": 1, "pattern": "^[A-Za-z0-9.:\\[\\]-]+$"}),
        ),
        (
            "*",
            "listen",
            json!({"minLength": 1, "pattern": "^[A-Za-z0-9.:\\[\\]-]+$"}),
        ),
    ]
}

/// Operations whose body may be left out entirely (`OptionalJson`).
const OPTIONAL_BODY: &[&str] = &[
    "POST /api/v1/auth/cli-login",
    "POST /api/v1/releases/{id}/actions/{action}",
];

pub fn apply(doc: &mut Value) {
    if let Some(schemas) = doc.pointer_mut("/components/schemas") {
        for (component, path, rule) in body_rules() {
            let target = schemas
                .get_mut(component)
                .and_then(|s| property(s, path))
                .unwrap_or_else(|| panic!("no property {component}.{path} in the document"));
            merge(target, &rule);
        }
    }
    let params = param_rules();
    super::for_each_operation(doc, |key, _, _, op| {
        if OPTIONAL_BODY.contains(&key) {
            if let Some(body) = op.get_mut("requestBody") {
                body["required"] = Value::Bool(false);
            }
        }
        for p in op
            .get_mut("parameters")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            let pname = p["name"].as_str().unwrap_or("").to_owned();
            let rule = params
                .iter()
                .find(|(at, n, _)| *at == key && *n == pname)
                .or_else(|| params.iter().find(|(at, n, _)| *at == "*" && *n == pname));
            if let (Some((_, _, rule)), Some(schema)) = (rule, p.get_mut("schema")) {
                merge(schema, rule);
            }
            // A header is absent or has a value: it cannot carry a JSON null.
            if p["in"] == "header" {
                if let Some(types) = p.pointer("/schema/type").and_then(Value::as_array).cloned() {
                    let kept: Vec<Value> = types.into_iter().filter(|t| t != "null").collect();
                    if kept.len() == 1 {
                        p["schema"]["type"] = kept[0].clone();
                    }
                }
            }
        }
    });
}

/// The schema of `path` (`a.b[]`) inside an object schema.
fn property<'a>(schema: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    let mut at = schema;
    for part in path.split('.') {
        let (key, items) = match part.strip_suffix("[]") {
            Some(k) => (k, true),
            None => (part, false),
        };
        at = at.get_mut("properties")?.get_mut(key)?;
        if items {
            at = at.get_mut("items")?;
        }
    }
    Some(at)
}

/// Adds a rule's keywords to a schema. A word list on a nullable property
/// keeps `null` allowed.
fn merge(schema: &mut Value, rule: &Value) {
    let nullable = schema["type"].as_array().is_some_and(|t| t.iter().any(|v| v == "null"));
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    for (k, v) in rule.as_object().expect("a rule is an object") {
        let mut v = v.clone();
        if k == "enum" && nullable {
            v.as_array_mut().expect("enum is a list").push(Value::Null);
        }
        if k == "type" && nullable {
            v = json!([v, "null"]);
        }
        obj.insert(k.clone(), v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every rule names a property that exists: a renamed field fails here
    /// instead of losing its rule silently.
    #[test]
    fn every_rule_finds_its_property() {
        let doc = super::super::document();
        for (component, path, _) in body_rules() {
            let mut d = doc.clone();
            let schema = d.pointer_mut(&format!("/components/schemas/{component}")).unwrap();
            assert!(property(schema, path).is_some(), "{component}.{path}");
        }
        assert_eq!(
            doc["components"]["schemas"]["Grant"]["properties"]["role"]["enum"][0],
            "developer"
        );
    }

    #[test]
    fn a_word_list_on_a_nullable_property_keeps_null() {
        let mut s = json!({"type": ["string", "null"]});
        merge(&mut s, &words(&["en"]));
        assert_eq!(s["enum"], json!(["en", null]));
    }
}
