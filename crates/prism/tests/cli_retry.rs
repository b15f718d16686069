//! `prism deploy retry` and `prism build retry` reach the retry endpoints
//! (the retry itself, after a quarantine, is exercised in crash_deploy.rs).

use prism_test_support::ServerProcess as Server;

#[test]
fn retry_commands_name_what_they_could_not_find() {
    let server = Server::start("cli-retry");
    server.login_admin();
    server.run(&["deploy", "retry", "4242"]).fails_with(1, "4242");
    server.run(&["build", "retry", "4343"]).fails_with(1, "4343");
    let help = server.run(&["deploy", "retry", "--help"]).ok().stdout;
    assert!(help.contains("--no-follow"), "{help}");
}
