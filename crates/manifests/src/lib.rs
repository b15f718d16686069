//! Manifest templates: Jinja syntax (minijinja), strict (an undefined
//! variable is an error naming it and its line), sandboxed (templates can
//! include only other templates of the same set; no file system, no network;
//! execution bounded by fuel), with a built-in default set so an application
//! needs no YAML at all. Rendered documents are parsed the way kubectl reads
//! them (YAML 1.1 octals) and validated before anything touches a cluster.

mod error;
mod objects;
mod render;
mod templates;
mod validate;
mod vars;

pub use error::{ManifestError, Problem};
pub use objects::{ObjectRef, Rendered, RenderedObject};
pub use render::render;
pub use templates::{TemplateSet, BUILTIN_NAMES};
pub use validate::{validate, Scope, ValidationPolicy};
pub use vars::{ApiVersions, RenderVars};
