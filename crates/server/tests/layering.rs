//! The server's layers, checked on the source tree: the REST API (`routes`)
//! and the console (`web`) are adapters over the use cases (`ops`) and never
//! call each other; the use cases and the services they share know nothing
//! of HTTP (no axum, no status codes). And what goes over the wire is
//! prism-api's: not the store's rows, not copies in the CLI.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    assert!(!out.is_empty(), "no Rust files under {}", dir.display());
    out.sort();
    out
}

/// Every `file:line` under `src/<layer>` whose text contains one of `needles`.
fn offenders(layer: &str, needles: &[&str]) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = vec![];
    for file in rust_files(&src.join(layer)) {
        let text = std::fs::read_to_string(&file).expect("readable source");
        for (n, line) in text.lines().enumerate() {
            if let Some(needle) = needles.iter().find(|needle| line.contains(*needle)) {
                let rel = file.strip_prefix(&src).unwrap_or(&file).display();
                out.push(format!("src/{rel}:{}: `{needle}` in {line:?}", n + 1));
            }
        }
    }
    out
}

#[test]
fn the_console_does_not_call_the_rest_handlers() {
    let found = offenders("web", &["crate::routes", "routes::"]);
    assert!(
        found.is_empty(),
        "the console must call `crate::ops`, not the REST handlers:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_rest_handlers_do_not_call_the_console() {
    let found = offenders("routes", &["crate::web", "web::"]);
    assert!(
        found.is_empty(),
        "the REST handlers must not use the console:\n{}",
        found.join("\n")
    );
}

#[test]
fn use_cases_and_services_know_nothing_of_http() {
    for layer in ["ops", "services"] {
        let found = offenders(layer, &["axum", "StatusCode"]);
        assert!(
            found.is_empty(),
            "`{layer}` must not depend on HTTP; status codes are decided at the edge (crate::error, crate::web::error):\n{}",
            found.join("\n")
        );
    }
}

/// A crate's manifest, read from the workspace (`crates/<name>/Cargo.toml`).
fn manifest(krate: &str) -> toml::Table {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(krate)
        .join("Cargo.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.parse().unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn dependencies(krate: &str) -> Vec<String> {
    let m = manifest(krate);
    ["dependencies", "dev-dependencies"]
        .iter()
        .filter_map(|section| m.get(*section).and_then(toml::Value::as_table))
        .flat_map(|t| t.keys().cloned())
        .collect()
}

/// `pub struct`/`pub enum` names declared in the Rust files under `dir`.
fn declared_types(dir: &Path) -> Vec<(String, String)> {
    let mut out = vec![];
    for file in rust_files(dir) {
        let text = std::fs::read_to_string(&file).expect("readable source");
        for line in text.lines() {
            let line = line
                .trim_start()
                .trim_start_matches("pub ")
                .trim_start_matches("pub(crate) ");
            if let Some(rest) = line.strip_prefix("struct ").or_else(|| line.strip_prefix("enum ")) {
                let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                out.push((name, file.display().to_string()));
            }
        }
    }
    out
}

#[test]
fn the_api_types_know_nothing_of_storage_or_http() {
    let found: Vec<String> = dependencies("api")
        .into_iter()
        .filter(|d| ["prism-store", "prism-server", "axum", "sqlx"].contains(&d.as_str()))
        .collect();
    assert!(
        found.is_empty(),
        "prism-api is what goes over the wire, shared with the CLI; it must not depend on {found:?}"
    );
}

/// Store rows are not API types: the server converts them (crates/server/src/wire).
#[test]
fn store_rows_are_not_api_types() {
    let store = Path::new(env!("CARGO_MANIFEST_DIR")).join("../store/src");
    let found: Vec<String> = rust_files(&store)
        .into_iter()
        .filter(|file| {
            std::fs::read_to_string(file)
                .expect("readable source")
                .contains("ToSchema")
        })
        .map(|file| file.display().to_string())
        .collect();
    assert!(
        found.is_empty(),
        "an API type belongs in prism-api, converted from the row in crates/server/src/wire:\n{}",
        found.join("\n")
    );
    assert!(
        !dependencies("store").iter().any(|d| d == "utoipa"),
        "prism-store documents no API (no utoipa): its rows are converted in crates/server/src/wire"
    );
}

/// The CLI reads answers into prism-api's types, never into copies of its own.
#[test]
fn the_cli_declares_no_copy_of_an_api_type() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let api: Vec<String> = declared_types(&root.join("api/src"))
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let copies: Vec<String> = declared_types(&root.join("cli/src"))
        .into_iter()
        .filter(|(name, _)| api.contains(name))
        .map(|(name, file)| format!("{file}: {name}"))
        .collect();
    assert!(
        copies.is_empty(),
        "use the prism-api type instead of declaring it again in the CLI:\n{}",
        copies.join("\n")
    );
}
