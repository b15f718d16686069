//! Operation ids made from the method and the path, so that each is unique
//! in the document (utoipa names an operation after its handler function,
//! and `list`, `get`, `create`, `start` ... exist in many modules), stable,
//! and readable in a generated client: `GET /api/v1/clusters/{name}` is
//! `get_clusters_by_name`.

use serde_json::Value;

pub fn assign(doc: &mut Value) {
    super::for_each_operation(doc, |_, method, path, op| {
        op["operationId"] = Value::String(operation_id(method, path));
    });
}

fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_owned();
    let rest = path.strip_prefix("/api/v1").unwrap_or(path);
    for segment in rest.split('/').filter(|s| !s.is_empty()) {
        id.push('_');
        match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(param) => {
                id.push_str("by_");
                id.push_str(param);
            }
            None => id.extend(segment.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })),
        }
    }
    id
}

#[cfg(test)]
mod tests {
    use super::operation_id;
    use std::collections::BTreeSet;

    /// The served document: ids unique, every parameter said to be in the
    /// path is in the path's template (query structs once appeared as
    /// required path parameters), every operation documents 500 with the
    /// error body.
    #[test]
    fn the_document_is_consistent() {
        let mut doc = super::super::document();
        let mut ids = BTreeSet::new();
        super::super::for_each_operation(&mut doc, |key, _, path, op| {
            let id = op["operationId"].as_str().unwrap().to_owned();
            assert!(ids.insert(id.clone()), "{id} twice");
            for p in op["parameters"].as_array().into_iter().flatten() {
                if p["in"] == "path" {
                    let name = p["name"].as_str().unwrap();
                    assert!(
                        path.contains(&format!("{{{name}}}")),
                        "{key}: {name} is not in the path"
                    );
                }
            }
            assert_eq!(
                op["responses"]["500"]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorBody",
                "{key}"
            );
        });
        assert!(ids.len() > 100);
    }

    #[test]
    fn ids_follow_method_and_path() {
        assert_eq!(operation_id("get", "/api/v1/clusters"), "get_clusters");
        assert_eq!(operation_id("get", "/api/v1/clusters/{name}"), "get_clusters_by_name");
        assert_eq!(
            operation_id("get", "/api/v1/builds/{id}/log.txt"),
            "get_builds_by_id_log_txt"
        );
        assert_eq!(
            operation_id("post", "/hooks/git-project/{project}/{id}"),
            "post_hooks_git_project_by_project_by_id"
        );
    }
}
