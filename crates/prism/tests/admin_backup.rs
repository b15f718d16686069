//! `prism admin backup` beside a running server and `prism admin restore`
//! into an empty data dir, then a server on the restored store serves the
//! same records (issue 18 item 3; the store-level round trip between
//! engines is crates/store/tests/backup.rs).

use prism_test_support::process::clean_command;
use prism_test_support::{Backend, ServerProcess, TempDir, TestDb};

fn admin(args: &[&str], db: &TestDb) -> std::process::Output {
    let mut cmd = clean_command();
    cmd.arg("admin").args(args).arg("--data-dir").arg(db.dir());
    if let Some(url) = db.server_url() {
        cmd.arg("--database-url").arg(url);
    }
    cmd.output().expect("prism admin")
}

#[test]
fn a_backup_taken_while_serving_restores_into_an_empty_store_that_serves_the_same() {
    let source = ServerProcess::start("backup-source");
    source.login_admin();
    source.run(&["project", "create", "shop"]).ok();
    source.run(&["project", "create", "blog"]).ok();
    let before = source.json(&["project", "list"]);

    let files = TempDir::new("backup-files");
    let archive = files.path().join("prism.backup");
    let out = admin(&["backup", "--to", archive.to_str().unwrap()], source.db());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(archive.is_file());
    assert!(!files.path().join("prism.partial").exists(), "no partial file is left");
    assert!(stdout.contains("sealing key is NOT in the backup"), "{stdout}");

    // Restore into a fresh SQLite data dir, then serve it.
    let target = TestDb::start_blocking(Backend::Sqlite);
    let out = admin(&["restore", "--from", archive.to_str().unwrap()], &target);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // A second restore into the now used store is refused, nothing written.
    let again = admin(&["restore", "--from", archive.to_str().unwrap()], &target);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("in use"), "{:?}", again);

    let restored = ServerProcess::start_on(target, "backup-target", &[]);
    restored.login_admin();
    let after = restored.json(&["project", "list"]);
    assert_eq!(after, before, "the restored server lists the same projects");

    // A truncated archive is refused before anything is written.
    let cut = files.path().join("cut.backup");
    let bytes = std::fs::read(&archive).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let empty = TestDb::start_blocking(Backend::Sqlite);
    let out = admin(&["restore", "--from", cut.to_str().unwrap()], &empty);
    assert!(!out.status.success());
}
