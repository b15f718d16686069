//! Manifest templates: Jinja syntax (minijinja), strict (an undefined
//! variable is an error naming it and its line), sandboxed (templates can
//! include only other templates of the same set; no file system, no network;
//! execution bounded by fuel, filters and output bounded in bytes before
//! anything is allocated), with a built-in default set so an application
//! needs no YAML at all. Rendered documents are parsed the way kubectl reads
//! them (YAML 1.1 octals) and validated before anything touches a cluster.

mod bounded;
mod error;
mod objects;
pub mod ownership;
mod render;
mod templates;
mod validate;
mod vars;

pub use bounded::{MAX_FORMAT_WIDTH, MAX_INDENT_WIDTH, MAX_JSON_INDENT, MAX_PRINTED_ITEMS};
pub use error::{ManifestError, Problem};
pub use objects::{ObjectRef, Rendered, RenderedObject};
pub use render::{render, set_progress_hook, FUEL, MAX_OUTPUT_BYTES, MAX_TOTAL_OUTPUT_BYTES};
pub use templates::{TemplateSet, BUILTIN_NAMES};
pub use validate::{validate, Scope, ValidationPolicy};
pub use vars::{ApiVersions, RenderVars, SecretRef, DEFAULT_SECRET_FILES_PATH};
