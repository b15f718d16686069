//! Every error status an operation can answer, added to the document from
//! what the operation's own description says it takes: the HTTP edge refuses
//! the same things the same way for every operation (an unreadable body is
//! 400, a body of another type 415, a body over the limit 413, a field that
//! breaks a rule 422, a missing or unknown credential 401, a role that may not
//! 403, a record named in the path that does not exist 404), so the rules here
//! follow the extractors in `json.rs`, `routes/query.rs` and `auth/caller.rs`
//! and the one mapping of operation errors in `error.rs`. The few statuses
//! only some operations give (429, 502, 503) are listed by operation.
//! `scripts/api-fuzz.sh` checks the result against the running server.

use serde_json::{json, Map, Value};

/// Operations (`METHOD path`) throttled per address and account
/// (`OpError::Throttled`).
const THROTTLED: &[&str] = &[
    "POST /api/v1/auth/login",
    "POST /api/v1/auth/token",
    "POST /api/v1/auth/cli-login",
    "POST /api/v1/auth/cli-login/poll",
];

/// Operations that ask a cluster or the company's directory while the caller
/// waits, and answer 502 when it cannot be reached (`OpError::Upstream`).
const UPSTREAM: &[&str] = &[
    "POST /api/v1/auth/login",
    "POST /api/v1/auth/token",
    "GET /api/v1/applications/{name}/environments/{env}/drift",
    "POST /api/v1/applications/{name}/preview",
];

/// Adds the error responses to every operation of `doc` (an OpenAPI 3
/// document as JSON) that does not document that status already.
pub fn add(doc: &mut Value) {
    super::for_each_operation(doc, |key, method, _, op| {
        let statuses = statuses(key, method, op);
        let responses = op
            .as_object_mut()
            .expect("an operation is an object")
            .entry("responses")
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .expect("responses is an object");
        for (status, why) in statuses {
            responses
                .entry(status.to_string())
                .or_insert_with(|| error_response(&why));
        }
    });
}

/// The error statuses one operation can give, each with the reasons.
fn statuses(key: &str, method: &str, op: &Value) -> Vec<(u16, String)> {
    let params = op["parameters"].as_array().cloned().unwrap_or_default();
    let in_path = params.iter().any(|p| p["in"] == "path");
    let in_query = params.iter().any(|p| p["in"] == "query");
    let has_body = op.get("requestBody").is_some();
    let secured = is_secured(op);
    let mut out: Vec<(u16, Vec<&str>)> = Vec::new();
    let mut say = |status: u16, why: &'static str| match out.iter_mut().find(|(s, _)| *s == status) {
        Some((_, whys)) => whys.push(why),
        None => out.push((status, vec![why])),
    };
    if has_body {
        say(
            400,
            "`malformed_json` / `bad_body`: the body is not one JSON document or could not be read",
        );
        say(413, "`too_large`: the body is larger than the server's limit");
        say(
            415,
            "`unsupported_media_type`: the body is not sent as `application/json`",
        );
        say(
            422,
            "`validation`: a field is missing, of the wrong type or breaks a rule; `field` names it",
        );
    }
    if in_query {
        say(
            400,
            "`validation`: a query parameter could not be read; `field` names it",
        );
        say(
            404,
            "`not_found`: a record a query filter names does not exist (or the caller may not see it)",
        );
        say(422, "`validation`: a query parameter is out of range; `field` names it");
    }
    if in_path {
        say(
            404,
            "`not_found`: a record named in the path does not exist (or the caller may not see it)",
        );
        say(
            422,
            "`validation`: a value in the path is not well-formed; `field` names it",
        );
    }
    if secured {
        say(
            401,
            "`unauthorized`: no session or API token, or one that has expired or was revoked",
        );
        say(403, "`forbidden`: the caller's role does not allow this operation");
    }
    if method != "get" && secured {
        say(409, "`conflict` (or a more specific code): the change conflicts with the current state, e.g. a duplicate, a record in use or a concurrent change");
    }
    if THROTTLED.contains(&key) {
        say(
            429,
            "`throttled`: too many attempts from this address or for this account; retry later",
        );
    }
    if UPSTREAM.contains(&key) {
        say(
            502,
            "`cluster` / `upstream`: a cluster or service Prism relies on could not be reached or refused",
        );
    }
    say(
        500,
        "`internal`: an unexpected failure; the server log has the details (never returned with them)",
    );
    out.into_iter()
        .map(|(status, whys)| (status, whys.join("; ")))
        .collect()
}

/// An operation is secured unless it declares an empty security requirement
/// (`security(())`), as the public login and webhook endpoints do.
fn is_secured(op: &Value) -> bool {
    match op.get("security").and_then(Value::as_array) {
        None => true,
        Some(reqs) => !reqs.iter().any(|r| r.as_object().is_some_and(Map::is_empty)),
    }
}

fn error_response(why: &str) -> Value {
    json!({
        "description": why,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_with_a_path_and_a_body_documents_every_edge_refusal() {
        let mut doc = json!({"paths": {"/x/{name}": {"put": {
            "operationId": "put_x",
            "parameters": [{"name": "name", "in": "path"}],
            "requestBody": {"content": {}},
            "responses": {"200": {"description": "ok"}, "404": {"description": "kept"}},
        }}}});
        add(&mut doc);
        let r = &doc["paths"]["/x/{name}"]["put"]["responses"];
        for s in ["200", "400", "401", "403", "404", "409", "413", "415", "422", "500"] {
            assert!(r.get(s).is_some(), "{s} missing: {r}");
        }
        assert_eq!(
            r["404"]["description"], "kept",
            "an operation's own answer is not replaced"
        );
        assert!(r.get("429").is_none() && r.get("502").is_none());
        assert_eq!(
            r["415"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorBody"
        );
    }

    #[test]
    fn a_public_read_documents_no_credential_errors() {
        let mut doc = json!({"paths": {"/p": {"get": {"operationId": "p", "security": [{}], "responses": {}}}}});
        add(&mut doc);
        let r = doc["paths"]["/p"]["get"]["responses"].as_object().unwrap();
        assert_eq!(r.keys().collect::<Vec<_>>(), ["500"]);
    }
}
