//! Where an admin made a Jenkins executor the server's default
//! (PRISM_BUILD_EXECUTOR), an application may not choose `local` (builds on
//! Prism's own machine): refused at save, naming the field, nothing written.
//! Through `prism serve` and the CLI.

use prism_test_support::ServerProcess as Server;
use serde_json::json;

#[test]
fn an_application_cannot_pick_the_local_executor_over_the_admins_default() {
    let s = Server::start_with("local-choice", &[("PRISM_BUILD_EXECUTOR", "ci")]);
    s.login_admin();
    s.run(&["project", "create", "shop"]).ok();
    let file = s.scratch.join("local.json");
    std::fs::write(&file, json!({"executor": "local"}).to_string()).unwrap();
    let file = file.to_str().unwrap();
    s.run(&[
        "app",
        "create",
        "web",
        "--project",
        "shop",
        "--git-url",
        "https://example.invalid/web.git",
        "--build-settings",
        file,
    ])
    .fails_with(1, "build_settings.executor");
    assert!(s.run(&["app", "show", "web"]).code != 0, "nothing was created");
    // Created without it, then edited to it: refused the same way, settings unchanged.
    s.run(&[
        "app",
        "create",
        "web",
        "--project",
        "shop",
        "--git-url",
        "https://example.invalid/web.git",
    ])
    .ok();
    s.run(&["app", "update", "web", "--build-settings", file])
        .fails_with(1, "build_settings.executor");
    let app = s.json(&["app", "show", "web"]);
    assert_eq!(app["build_settings"], json!({}), "{app}");
}
