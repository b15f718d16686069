use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior};
use serde_saphyr::Options;

use crate::bounded::CappedWriter;
use crate::error::{ManifestError, Problem};
use crate::objects::{Rendered, RenderedObject};
use crate::templates::TemplateSet;
use crate::vars::RenderVars;

/// Execution budget per template: enough for any sensible manifest, small
/// enough that an endless loop stops at once.
pub const FUEL: u64 = 200_000;
/// The most one template may render to. Output is written through a writer
/// that refuses to cross it, so an oversized template never materialises.
pub const MAX_OUTPUT_BYTES: usize = 2 * 1024 * 1024;
/// The most all templates of a set may render to together.
pub const MAX_TOTAL_OUTPUT_BYTES: usize = 8 * 1024 * 1024;

fn problem(template: &str, line: Option<usize>, message: impl Into<String>) -> Problem {
    Problem {
        template: template.to_owned(),
        line,
        field: None,
        message: message.into(),
    }
}

impl TemplateSet {
    /// Compiles every template without rendering: syntax errors with their
    /// lines, for saving templates before any release uses them.
    pub fn check_syntax(&self) -> Result<(), ManifestError> {
        let mut env = Environment::new();
        let mut problems = vec![];
        for name in self.all_names() {
            let body = self.get(name).unwrap_or_default();
            if let Err(e) = env.add_template_owned(name.to_owned(), body.to_owned()) {
                problems.push(problem(name, e.line(), describe(&e)));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ManifestError::Render(problems))
        }
    }
}

/// Renders every entry-point template of `set` with `vars`, parses the YAML
/// and stamps Prism's ownership labels on every object. All problems across
/// all templates are reported together.
pub fn render(set: &TemplateSet, vars: &RenderVars) -> Result<Rendered, ManifestError> {
    let files: Arc<BTreeMap<String, String>> = Arc::new(
        set.all_names()
            .filter_map(|n| Some((n.to_owned(), set.get(n)?.to_owned())))
            .collect(),
    );
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_keep_trailing_newline(true);
    crate::bounded::install(&mut env);
    let loader_files = files.clone();
    // The only loader: names resolve within the project's own set, nowhere else.
    env.set_loader(move |name| Ok(loader_files.get(name).cloned()));

    let ctx = vars.context();
    let labels = vars.ownership_labels();
    let mut problems = vec![];
    let mut objects = vec![];
    let mut total = 0usize;
    for name in set.entry_points() {
        progress(name);
        let tmpl = match env.get_template(name) {
            Ok(t) => t,
            Err(e) => {
                problems.push(problem(name, e.line(), describe(&e)));
                continue;
            }
        };
        let limit = MAX_OUTPUT_BYTES.min(MAX_TOTAL_OUTPUT_BYTES - total);
        let mut w = CappedWriter::new(limit);
        let rendered = tmpl.render_captured_to(&ctx, &mut w);
        if w.exceeded {
            let message = if limit < MAX_OUTPUT_BYTES {
                format!("the templates together render to more than {MAX_TOTAL_OUTPUT_BYTES} bytes (the output limit of a set)")
            } else {
                format!("renders to more than {MAX_OUTPUT_BYTES} bytes (the output limit of a template)")
            };
            problems.push(problem(name, None, message));
            continue;
        }
        if let Err(e) = rendered {
            problems.push(render_problem(set, name, &e));
            continue;
        }
        total += w.buf.len();
        let out = match String::from_utf8(w.buf) {
            Ok(o) => o,
            Err(_) => {
                problems.push(problem(name, None, "renders to invalid UTF-8"));
                continue;
            }
        };
        match parse_yaml(&out) {
            Ok(docs) => {
                for (i, mut doc) in docs.into_iter().enumerate() {
                    if doc.is_null() {
                        continue;
                    }
                    if !doc.is_object() {
                        problems.push(problem(name, None, format!("document {} is not a mapping", i + 1)));
                        continue;
                    }
                    stamp_labels(&mut doc, &labels);
                    objects.push(RenderedObject {
                        template: name.to_owned(),
                        object: doc,
                    });
                }
            }
            Err(e) => problems.push(problem(name, e.0, format!("rendered YAML is invalid: {}", e.1))),
        }
    }
    if problems.is_empty() {
        Ok(Rendered { objects })
    } else {
        Err(ManifestError::Render(problems))
    }
}

/// Hook called before each entry point renders: a sandboxing parent learns
/// which template was rendering if the process running it dies.
static PROGRESS: std::sync::OnceLock<fn(&str)> = std::sync::OnceLock::new();

/// Installs the hook [`render`] calls with each template's name before
/// rendering it (once per process; later calls are ignored).
pub fn set_progress_hook(hook: fn(&str)) {
    let _ = PROGRESS.set(hook);
}

fn progress(name: &str) {
    if let Some(hook) = PROGRESS.get() {
        hook(name);
    }
}

/// The innermost template error: an error inside an included or imported
/// template is reported where it happened, not where it was included.
fn innermost(e: &minijinja::Error) -> &minijinja::Error {
    let mut cur = e;
    while let Some(inner) = std::error::Error::source(cur).and_then(|s| s.downcast_ref::<minijinja::Error>()) {
        cur = inner;
    }
    cur
}

fn render_problem(set: &TemplateSet, entry: &str, e: &minijinja::Error) -> Problem {
    let e = innermost(e);
    let template = e.name().unwrap_or(entry);
    let mut message = describe(e);
    if e.kind() == ErrorKind::UndefinedError {
        // The failing expression, cut from the source: names exactly what is undefined.
        let expr = e.range().and_then(|r| set.get(template).and_then(|src| src.get(r)));
        if let Some(expr) = expr {
            message = format!("undefined variable {}", expr.trim());
        }
    }
    problem(template, e.line(), message)
}

fn describe(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    }
}

/// Parses multi-document YAML the way kubectl does for the cases that
/// differ between YAML 1.1 and 1.2: `0644` is the octal 420.
fn parse_yaml(text: &str) -> Result<Vec<serde_json::Value>, (Option<usize>, String)> {
    let mut options = Options::default();
    options.legacy_octal_numbers = true;
    serde_saphyr::from_multiple_with_options::<serde_json::Value>(text, options).map_err(|e| {
        let msg = e.to_string();
        (line_of(&msg), msg.lines().next().unwrap_or("").to_owned())
    })
}

fn line_of(msg: &str) -> Option<usize> {
    let i = msg.find("line ")?;
    msg[i + 5..].split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

fn stamp_labels(doc: &mut serde_json::Value, labels: &BTreeMap<String, String>) {
    let Some(obj) = doc.as_object_mut() else { return };
    let meta = obj.entry("metadata").or_insert_with(|| serde_json::json!({}));
    let Some(meta) = meta.as_object_mut() else { return };
    let l = meta.entry("labels").or_insert_with(|| serde_json::json!({}));
    if l.is_null() {
        *l = serde_json::json!({});
    }
    if let Some(l) = l.as_object_mut() {
        for (k, v) in labels {
            l.insert(k.clone(), serde_json::Value::String(v.clone()));
        }
    }
}
