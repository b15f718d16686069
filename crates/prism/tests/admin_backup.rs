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

fn admin_with_stdin(args: &[&str], db: &TestDb, stdin: &str) -> std::process::Output {
    use std::io::Write;
    let mut cmd = clean_command();
    cmd.arg("admin").args(args).arg("--data-dir").arg(db.dir());
    if let Some(url) = db.server_url() {
        cmd.arg("--database-url").arg(url);
    }
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// Issue 18 item 3: the key only with a passphrase; a wrong passphrase
/// writes nothing; the restored server opens every stored credential.
#[test]
fn the_sealing_key_travels_only_encrypted_with_a_passphrase() {
    let source = ServerProcess::start("backup-key-source");
    source.login_admin();
    source
        .run_with_stdin(
            &[
                "git-credential",
                "put",
                "gitea",
                "--username",
                "bot",
                "--host",
                "git.example:3000",
            ],
            "git-pass-1\n",
        )
        .ok();
    let key = std::fs::read_to_string(source.data_dir().join("secret.key")).unwrap();
    let files = TempDir::new("backup-key-files");
    let archive = files.path().join("prism.backup");
    let to = archive.to_str().unwrap();

    let short = admin_with_stdin(&["backup", "--to", to, "--include-key"], source.db(), "short\n");
    assert!(!short.status.success());
    assert!(
        String::from_utf8_lossy(&short.stderr).contains("at least 12"),
        "{short:?}"
    );
    assert!(!archive.exists(), "nothing written");

    let out = admin_with_stdin(
        &["backup", "--to", to, "--include-key"],
        source.db(),
        "correct horse battery\n",
    );
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("IS in the backup"),
        "{out:?}"
    );
    let raw = std::fs::read(&archive).unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&raw[..]), &mut text).ok();
    assert!(!text.contains(key.trim()), "the key is not in the archive in the clear");

    // A wrong passphrase: refused, nothing restored (a right one then still finds an empty store).
    let target = TestDb::start_blocking(Backend::Sqlite);
    let wrong = admin_with_stdin(
        &["restore", "--from", to, "--with-key"],
        &target,
        "wrong horse battery\n",
    );
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("wrong passphrase"),
        "{wrong:?}"
    );
    assert!(!target.dir().join("secret.key").exists());
    let right = admin_with_stdin(
        &["restore", "--from", to, "--with-key"],
        &target,
        "correct horse battery\n",
    );
    assert!(right.status.success(), "{right:?}");
    assert_eq!(
        std::fs::read_to_string(target.dir().join("secret.key")).unwrap().trim(),
        key.trim()
    );
    // The restored server starts: its key opens every stored credential (checked at start).
    let restored = ServerProcess::start_on(target, "backup-key-target", &[]);
    restored.login_admin();
    let creds = restored.json(&["git-credential", "list"]);
    assert_eq!(creds[0]["name"], "gitea", "{creds}");
}
