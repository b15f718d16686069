//! `prism admin rotate-key` (issue 18 item 6): every stored secret is
//! re-sealed under a new key, none opens with the old key alone, and the
//! server starts on it; a wrong or missing key at start is a clear error
//! that counts the secrets it cannot open (never a fresh key that silently
//! loses them); with PRISM_SECRET_KEY the rotation needs the previous key
//! named, as the README's order for several instances says.

use std::path::Path;

use prism_server::secrets::SecretBox;
use prism_test_support::process::clean_command;
use prism_test_support::{ServerProcess, TestDb};
use sqlx::Connection;

fn rotate(db: &TestDb, env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = clean_command();
    cmd.args(["admin", "rotate-key", "--data-dir"]).arg(db.dir());
    if let Some(url) = db.server_url() {
        cmd.arg("--database-url").arg(url);
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("prism admin rotate-key")
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn key_file(dir: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(name))
        .ok()
        .map(|s| s.trim().to_owned())
}

/// Every sealed value in the store, read directly.
fn sealed_values(db: &TestDb) -> Vec<Vec<u8>> {
    let url = match db.server_url() {
        Some(u) => u,
        None => format!("{}?mode=ro", db.url()),
    };
    prism_test_support::db::block_on(async move {
        sqlx::any::install_default_drivers();
        let mut c = sqlx::AnyConnection::connect(&url).await.unwrap();
        let mut out: Vec<Vec<u8>> =
            sqlx::query_scalar("SELECT password_enc FROM registries WHERE password_enc IS NOT NULL")
                .fetch_all(&mut c)
                .await
                .unwrap();
        out.extend(
            sqlx::query_scalar::<_, Vec<u8>>("SELECT password_enc FROM git_credentials")
                .fetch_all(&mut c)
                .await
                .unwrap(),
        );
        c.close().await.unwrap();
        out
    })
}

fn opened(key: &str, values: &[Vec<u8>]) -> Vec<String> {
    let b = SecretBox::from_base64(key).unwrap();
    values
        .iter()
        .filter_map(|v| b.open(v).ok())
        .map(|p| String::from_utf8(p).unwrap())
        .collect()
}

#[test]
fn rotate_key_reseals_everything_and_a_wrong_or_missing_key_is_refused_at_start() {
    let mut server = ServerProcess::start("rotate-key");
    server.login_admin();
    server
        .run_with_stdin(
            &[
                "registry",
                "put",
                "main",
                "--host",
                "registry.example",
                "--username",
                "ci",
                "--password-stdin",
            ],
            "registry-pass-1\n",
        )
        .ok();
    server
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
    let dir = server.data_dir().to_path_buf();
    let old_key = key_file(&dir, "secret.key").expect("the server made its key");
    let mut expected = vec!["registry-pass-1".to_owned(), "git-pass-1".to_owned()];
    expected.sort();

    // While the server runs on the data dir, rotating is refused (it holds the old key).
    let busy = rotate(server.db(), &[]);
    assert!(!busy.status.success(), "{}", text(&busy));
    assert!(text(&busy).contains("in use"), "{}", text(&busy));

    server.pause();
    let out = rotate(server.db(), &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("re-sealed 2 stored secrets"), "{}", text(&out));
    let new_key = key_file(&dir, "secret.key").unwrap();
    assert_ne!(new_key, old_key);
    assert_eq!(key_file(&dir, "secret.key.retired").as_deref(), Some(old_key.as_str()));
    assert!(key_file(&dir, "secret.key.next").is_none());

    let values = sealed_values(server.db());
    assert_eq!(values.len(), 2);
    let mut with_new = opened(&new_key, &values);
    with_new.sort();
    assert_eq!(with_new, expected, "every credential opens with the new key");
    assert!(
        opened(&old_key, &values).is_empty(),
        "none opens with the old key alone"
    );

    server.resume(&[]).expect("the server starts on the rotated store");
    server.run(&["registry", "list"]).ok();

    // The old key at start: refused, counting what it cannot open.
    server.pause();
    let log = server
        .resume(&[("PRISM_SECRET_KEY", old_key.as_str())])
        .expect_err("a wrong key must not start");
    assert!(log.contains("2 of the 2 stored secrets cannot be opened"), "{log}");

    // A missing key file: refused, and no fresh key is made in its place.
    std::fs::rename(dir.join("secret.key"), dir.join("kept-apart.key")).unwrap();
    let log = server.resume(&[]).expect_err("a missing key must not start");
    assert!(
        log.contains("secret.key is missing") && log.contains("2 sealed secrets"),
        "{log}"
    );
    assert!(
        key_file(&dir, "secret.key").is_none(),
        "no new key replaced the lost one"
    );
    std::fs::rename(dir.join("kept-apart.key"), dir.join("secret.key")).unwrap();

    // With PRISM_SECRET_KEY: the previous key must be named.
    let env_key = SecretBox::generate_key();
    let out = rotate(server.db(), &[("PRISM_SECRET_KEY", env_key.as_str())]);
    assert!(!out.status.success());
    assert!(text(&out).contains("PRISM_SECRET_KEY_PREVIOUS"), "{}", text(&out));
    let out = rotate(
        server.db(),
        &[
            ("PRISM_SECRET_KEY", env_key.as_str()),
            ("PRISM_SECRET_KEY_PREVIOUS", new_key.as_str()),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let values = sealed_values(server.db());
    let mut with_env = opened(&env_key, &values);
    with_env.sort();
    assert_eq!(with_env, expected);
    assert!(opened(&new_key, &values).is_empty());
    server
        .resume(&[("PRISM_SECRET_KEY", env_key.as_str())])
        .expect("the server starts with the rotated PRISM_SECRET_KEY");
    server.stop();
}
