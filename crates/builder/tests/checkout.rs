use prism_test_support::git as common;

use common::{Fixture, GitDaemon, HttpGit};
use prism_builder::{checkout, CheckoutError, Credentials};

fn version(dest: &std::path::Path) -> String {
    std::fs::read_to_string(dest.join("VERSION")).unwrap().trim().to_owned()
}

/// Branch, annotated tag, lightweight tag, full ref name and full sha, against one url.
async fn check_refs(fx: &Fixture, url: &str, creds: Option<&Credentials>) {
    let cases: Vec<(&str, &str, &str)> = vec![
        ("main", &fx.c2, "2"),
        ("feature", &fx.c3, "feature"),
        ("refs/heads/main", &fx.c2, "2"),
        ("v1", &fx.c1, "1"),
        ("refs/tags/v1", &fx.c1, "1"),
        ("light", &fx.c3, "feature"),
        (&fx.c1, &fx.c1, "1"),
        (&fx.c3, &fx.c3, "feature"),
    ];
    for (git_ref, sha, content) in cases {
        let dest = tempfile::tempdir().unwrap();
        let got = checkout(url, git_ref, dest.path(), creds)
            .await
            .unwrap_or_else(|e| panic!("checkout {git_ref} from {url}: {e}"));
        assert_eq!(got.as_str(), sha, "ref {git_ref}");
        assert_eq!(version(dest.path()), content, "ref {git_ref}");
    }
}

#[tokio::test]
async fn git_protocol_branch_tag_sha() {
    let fx = Fixture::new();
    let daemon = GitDaemon::start(fx.base()).await;
    check_refs(&fx, &daemon.url("app.git"), None).await;
}

#[tokio::test]
async fn http_branch_tag_sha_without_auth() {
    let fx = Fixture::new();
    let http = HttpGit::start(fx.base(), None).await;
    check_refs(&fx, &http.url("app.git"), None).await;
}

#[tokio::test]
async fn http_basic_auth() {
    let fx = Fixture::new();
    let http = HttpGit::start(fx.base(), Some(("alice", "s3cret-pass"))).await;
    let url = http.url("app.git");
    check_refs(&fx, &url, Some(&Credentials::new("alice", "s3cret-pass"))).await;

    let dest = tempfile::tempdir().unwrap();
    let err = checkout(&url, "main", dest.path(), Some(&Credentials::new("alice", "wrong")))
        .await
        .unwrap_err();
    assert!(matches!(err, CheckoutError::AuthRefused { .. }), "{err:?}");
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(msg.contains("authentication refused") && msg.contains(&url), "{msg}");
    assert!(!msg.contains("wrong") && !msg.contains("s3cret"), "{msg}");

    let dest = tempfile::tempdir().unwrap();
    let err = checkout(&url, "main", dest.path(), None).await.unwrap_err();
    assert!(matches!(err, CheckoutError::AuthRefused { .. }), "{err:?}");
}

#[tokio::test]
async fn missing_ref_is_named() {
    let fx = Fixture::new();
    let daemon = GitDaemon::start(fx.base()).await;
    let http = HttpGit::start(fx.base(), None).await;
    for url in [daemon.url("app.git"), http.url("app.git")] {
        for missing in [
            "no-such-branch",
            "refs/tags/v9",
            "0123456789abcdef0123456789abcdef01234567",
        ] {
            let dest = tempfile::tempdir().unwrap();
            let err = checkout(&url, missing, dest.path(), None).await.unwrap_err();
            match &err {
                CheckoutError::RefNotFound { git_ref, .. } => assert_eq!(git_ref, missing),
                other => panic!("{url} {missing}: {other:?}"),
            }
            eprintln!("{err}");
            assert!(err.to_string().contains(missing), "{err}");
        }
    }
}

#[tokio::test]
async fn unreachable_and_missing_repository() {
    let fx = Fixture::new();
    let port = common::free_port();
    let dest = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{port}/app.git");
    let err = checkout(&url, "main", dest.path(), None).await.unwrap_err();
    assert!(matches!(err, CheckoutError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains(&url));

    let dest = tempfile::tempdir().unwrap();
    let url = format!("git://127.0.0.1:{port}/app.git");
    let err = checkout(&url, "main", dest.path(), None).await.unwrap_err();
    assert!(matches!(err, CheckoutError::Unreachable { .. }), "{err:?}");

    let daemon = GitDaemon::start(fx.base()).await;
    let dest = tempfile::tempdir().unwrap();
    let err = checkout(&daemon.url("nope.git"), "main", dest.path(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            CheckoutError::RepositoryNotFound { .. } | CheckoutError::Unreachable { .. }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn option_injection_is_refused() {
    let fx = Fixture::new();
    let daemon = GitDaemon::start(fx.base()).await;
    let http = HttpGit::start(fx.base(), None).await;
    let pwned = std::path::Path::new("/tmp/pwned");
    let _ = std::fs::remove_file(pwned);
    for url in [daemon.url("app.git"), http.url("app.git")] {
        for evil in [
            "--upload-pack=touch /tmp/pwned",
            "-c",
            "main:refs/heads/evil",
            "+main:x",
            "main\n--upload-pack=x",
        ] {
            let dest = tempfile::tempdir().unwrap();
            let err = checkout(&url, evil, dest.path(), None).await.unwrap_err();
            assert!(matches!(err, CheckoutError::InvalidRef { .. }), "{evil:?}: {err:?}");
        }
    }
    for evil_url in [
        "--upload-pack=touch /tmp/pwned",
        "ext::sh -c touch% /tmp/pwned",
        "file:///tmp",
    ] {
        let dest = tempfile::tempdir().unwrap();
        let err = checkout(evil_url, "main", dest.path(), None).await.unwrap_err();
        assert!(matches!(err, CheckoutError::InvalidUrl { .. }), "{evil_url:?}: {err:?}");
    }
    assert!(!pwned.exists(), "/tmp/pwned was created");
}

#[tokio::test]
async fn destination_must_be_empty() {
    let fx = Fixture::new();
    let daemon = GitDaemon::start(fx.base()).await;
    let dest = tempfile::tempdir().unwrap();
    std::fs::write(dest.path().join("x"), "x").unwrap();
    let err = checkout(&daemon.url("app.git"), "main", dest.path(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, CheckoutError::DestinationNotEmpty { .. }), "{err:?}");
    // A destination that does not exist yet is created.
    let dest = tempfile::tempdir().unwrap();
    let sub = dest.path().join("a/b");
    let sha = checkout(&daemon.url("app.git"), "main", &sub, None).await.unwrap();
    assert_eq!(sha.as_str(), fx.c2);
}
