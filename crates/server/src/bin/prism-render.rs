//! The manifest renderer child on its own (see `prism_server::render_sandbox`):
//! what `prism __render-manifests` runs, as a small binary for embedders and tests.

fn main() -> std::process::ExitCode {
    prism_server::render_sandbox::child_main()
}
