//! The server's layers, checked on the source tree: the REST API (`routes`)
//! and the console (`web`) are adapters over the use cases (`ops`) and never
//! call each other; the use cases and the services they share know nothing
//! of HTTP (no axum, no status codes).

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
