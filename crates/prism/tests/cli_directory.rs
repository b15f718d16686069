//! `prism directory rules ...` against a real `prism serve`: an admin adds a
//! project rule and an admin rule, lists them (table and JSON, in the API's
//! field names), is refused a rule naming a project that does not exist
//! (the field at fault named), removes one, replaces them all from a file
//! (a malformed file changes nothing); a user who is not an admin is
//! refused. Editing the rules needs no directory: no LDAP server here.

use prism_test_support::process::prism;
use prism_test_support::{ServerProcess as Server, TempDir};
use serde_json::{json, Value};

const PASSWORD: &str = "directory-cli-password-1";

/// The rules as the server has them, through the CLI's JSON output.
fn rules(server: &Server) -> Value {
    let v = server.json(&["directory", "rules"]);
    v["rules"].clone()
}

#[test]
fn group_rules_are_listed_added_removed_and_set_from_the_cli() {
    let server = Server::with_app("cli-directory");
    let dirs = TempDir::new("cli-directory-people");

    // None yet.
    let empty = server.run(&["directory", "rules"]).ok();
    assert!(empty.stdout.contains("No group rules"), "{empty:#?}");
    assert_eq!(rules(&server), json!([]));

    // A role in a project, and admin.
    let added = server
        .run(&[
            "directory",
            "rules",
            "add",
            "--group",
            "shop-dev",
            "--project",
            "shop",
            "--role",
            "developer",
        ])
        .ok();
    assert!(
        added.stdout.contains("shop-dev") && added.stdout.contains("developer in shop"),
        "{added:#?}"
    );
    let admin = server
        .run(&["directory", "rules", "add", "--group", "platform", "--admin"])
        .ok();
    assert!(
        admin.stdout.contains("platform") && admin.stdout.contains("admin"),
        "{admin:#?}"
    );
    // The same rule again changes nothing.
    let again = server
        .run(&["directory", "rules", "add", "--group", "Platform", "--admin"])
        .ok();
    assert!(again.stdout.contains("already"), "{again:#?}");

    let list = server.run(&["directory", "rules", "list"]).ok();
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{list:#?}");
    assert!(lines[0].contains("GROUP") && lines[0].contains("PROJECT") && lines[0].contains("ROLE"));
    assert!(
        lines[1].contains("shop-dev") && lines[1].contains("shop") && lines[1].contains("developer"),
        "{list:#?}"
    );
    assert!(lines[2].contains("platform") && lines[2].contains("admin"), "{list:#?}");
    let listed = rules(&server);
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
    assert_eq!(listed[0]["group"], "shop-dev", "{listed}");
    assert_eq!(listed[0]["project"], "shop", "{listed}");
    assert_eq!(listed[0]["role"], "developer", "{listed}");
    assert_eq!(listed[0]["admin"], false, "{listed}");
    assert_eq!(listed[1]["group"], "platform", "{listed}");
    assert_eq!(listed[1]["admin"], true, "{listed}");
    assert_eq!(listed[1]["project"], Value::Null, "{listed}");

    // A project that does not exist: refused, naming the rule's field; nothing changes.
    server
        .run(&[
            "directory",
            "rules",
            "add",
            "--group",
            "blog-qa",
            "--project",
            "blog",
            "--role",
            "tester",
        ])
        .fails_with(1, "(field: rules[2].project)");
    // A rule that grants nothing is a usage error, before asking the server.
    server
        .run(&["directory", "rules", "add", "--group", "x", "--project", "shop"])
        .fails_with(2, "--role");
    assert_eq!(rules(&server), listed);

    // Removing: only what matches; nothing matching fails and says so.
    server
        .run(&[
            "directory",
            "rules",
            "remove",
            "--group",
            "shop-dev",
            "--project",
            "shop",
            "--role",
            "tester",
        ])
        .fails_with(1, "no group rule for shop-dev granting tester in shop");
    server
        .run(&["directory", "rules", "remove", "--group", "nobody"])
        .fails_with(1, "nothing removed");
    assert_eq!(rules(&server), listed);
    let removed = server
        .run(&["directory", "rules", "remove", "--group", "PLATFORM", "--admin"])
        .ok();
    assert!(
        removed.stdout.contains("Removed 1 rule") && removed.stdout.contains("1 rule(s) left"),
        "{removed:#?}"
    );
    let after = rules(&server);
    assert_eq!(after, json!([listed[0].clone()]), "{after}");

    // Replacing them all from a file in the API's format.
    let file = server.scratch.join("rules.json");
    std::fs::write(
        &file,
        r#"{"rules": [{"group": "shop-ops", "project": "shop", "role": "operator"},
                      {"group": "shop-qa", "project": "shop", "role": "tester"},
                      {"group": "admins", "admin": true}]}"#,
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let set = server.run(&["directory", "rules", "set", "--file", path]).ok();
    assert!(
        set.stdout.contains("Set 3 group rule(s)") && set.stdout.contains("shop-ops") && set.stdout.contains("admins"),
        "{set:#?}"
    );
    let replaced = rules(&server);
    assert_eq!(replaced.as_array().map(Vec::len), Some(3), "{replaced}");
    assert_eq!(replaced[0]["role"], "operator", "{replaced}");
    assert_eq!(replaced[2]["admin"], true, "{replaced}");

    // A malformed file: a clear error, nothing sent, nothing changed.
    std::fs::write(
        &file,
        r#"{"rules": [{"group": "g", "project": "shop", "role": "tester"},"#,
    )
    .unwrap();
    server
        .run(&["directory", "rules", "set", "--file", path])
        .fails_with(2, "is not JSON");
    std::fs::write(&file, r#"[{"group": "g", "admin": true}]"#).unwrap();
    server
        .run(&["directory", "rules", "set", "--file", path])
        .fails_with(2, r#"should hold {"rules": [...]}"#);
    // JSON the server refuses: the field at fault named, nothing changed.
    std::fs::write(
        &file,
        r#"{"rules": [{"group": "g", "project": "shop", "role": "tester"}, {"group": "h", "project": "shop", "role": "boss"}]}"#,
    )
    .unwrap();
    server
        .run(&["directory", "rules", "set", "--file", path])
        .fails_with(1, "rules[1].role");
    std::fs::write(&file, r#"{"rules": [{"group": "g", "project": "shop"}]}"#).unwrap();
    server
        .run(&["directory", "rules", "set", "--file", path])
        .fails_with(1, "(field: rules[0])");
    server
        .run(&["directory", "rules", "set", "--file", "/nonexistent/rules.json"])
        .fails_with(2, "cannot read");
    assert_eq!(rules(&server), replaced);

    // Someone who is not an admin (an operator of shop) may neither read nor change them.
    server
        .run_with_stdin(
            &["user", "create", "olga", "--password-stdin"],
            &format!("{PASSWORD}\n"),
        )
        .ok();
    server.run(&["project", "grant", "shop", "olga", "operator"]).ok();
    let olga = dirs.join("olga");
    prism(
        &olga,
        &["login", &server.url, "--username", "olga", "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    )
    .ok();
    prism(&olga, &["directory", "rules"], None).fails_with(1, "admin");
    prism(
        &olga,
        &["directory", "rules", "add", "--group", "olgas", "--admin"],
        None,
    )
    .fails_with(1, "admin");
    prism(&olga, &["directory", "rules", "remove", "--group", "admins"], None).fails_with(1, "admin");
    std::fs::write(&file, r#"{"rules": [{"group": "olgas", "admin": true}]}"#).unwrap();
    prism(&olga, &["directory", "rules", "set", "--file", path], None).fails_with(1, "admin");
    assert_eq!(rules(&server), replaced);
    server.stop();
}
