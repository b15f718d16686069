//! `prism deploy approvals / approve / reject` and `prism env set-policy /
//! schedule` against a real `prism serve`: a 2-of-n policy, the requester
//! refused with the reason, two operators' approvals listed and counted.
//!
//! The deploy awaiting review is recorded in the store as the deploy job
//! records one (planning needs a cluster; the review does not): the release
//! is moved to deploying through the CLI first.

use prism_test_support::process::prism;
use prism_test_support::{ServerProcess as Server, TempDir};

const PASSWORD: &str = "governance-password-1";

/// A user with `role` in shop, logged in with a config dir of their own.
fn person(server: &Server, dirs: &TempDir, name: &str, role: &str) -> std::path::PathBuf {
    server
        .run_with_stdin(&["user", "create", name, "--password-stdin"], &format!("{PASSWORD}\n"))
        .ok();
    server.run(&["project", "grant", "shop", name, role]).ok();
    let dir = dirs.join(name);
    prism(
        &dir,
        &["login", &server.url, "--username", name, "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    )
    .ok();
    dir
}

/// Records a deploy of `release` to fat, requested by `requester`, awaiting review.
fn deploy_awaiting_review(server: &Server, release: &str, requester: &str) -> i64 {
    let url = server.db().url();
    let seq: i64 = release.trim_start_matches('r').parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let mut c = sqlx::AnyConnection::connect(&url).await.unwrap();
        let app: i64 = sqlx::query_scalar("SELECT id FROM applications WHERE name = 'web'")
            .fetch_one(&mut c)
            .await
            .unwrap();
        let env: i64 = sqlx::query_scalar("SELECT id FROM environments WHERE name = 'fat'")
            .fetch_one(&mut c)
            .await
            .unwrap();
        sqlx::query_scalar(
            "INSERT INTO deploys (release_id, app_id, env_id, kind, state, requested_by, manifests, diff, created_at, updated_at) \
             VALUES ($1, $2, $3, 'deploy', 'awaiting_review', $4, '[]', '[]', 1, 1) RETURNING id",
        )
        .bind(seq)
        .bind(app)
        .bind(env)
        .bind(requester)
        .fetch_one(&mut c)
        .await
        .unwrap()
    })
}

#[test]
fn approvals_are_listed_and_given_from_the_cli() {
    let server = Server::with_app("governance");
    let dirs = TempDir::new("governance-people");
    let rita = person(&server, &dirs, "rita", "operator");
    let ann = person(&server, &dirs, "ann", "operator");
    let bob = person(&server, &dirs, "bob", "operator");

    let set = server
        .run(&["env", "set-policy", "fat", "--required", "2", "--roles", "operator"])
        .ok();
    assert!(
        set.stdout.contains("Approvals needed") && set.stdout.contains('2'),
        "{set:#?}"
    );
    // Only admins set policies.
    prism(&ann, &["env", "set-policy", "fat", "--required", "0"], None).fails_with(1, "admin");

    let id = server.built_release_with(&[]);
    server.run(&["release", "promote", &id, "--env", "fat"]).ok();
    server.run(&["release", "deploy", &id, "--env", "fat"]).ok();
    let deploy = deploy_awaiting_review(&server, &id, "rita").to_string();

    let listed = prism(&ann, &["deploy", "approvals", &deploy], None).ok();
    assert!(listed.stdout.contains("May still approve"), "{listed:#?}");
    // The admin created the release, so (by default) may not approve its deploy.
    assert!(listed.stdout.contains("May still approve:  ann, bob\n"), "{listed:#?}");
    assert!(!listed.stdout.contains("rita,"), "the requester may not: {listed:#?}");

    prism(&rita, &["deploy", "approve", &deploy, "--comment", "mine"], None).fails_with(1, "you requested this deploy");
    let first = prism(&ann, &["deploy", "approve", &deploy, "--comment", "diff checked"], None).ok();
    assert!(first.stdout.contains("awaiting_review"), "{first:#?}");
    prism(&ann, &["deploy", "approve", &deploy], None).fails_with(1, "voted on this deploy already");

    let json = prism(&bob, &["deploy", "approvals", &deploy, "--output", "json"], None).json();
    assert_eq!(json["approvals"][0]["username"], "ann", "{json}");
    assert_eq!(json["approvals"][0]["comment"], "diff checked", "{json}");
    assert_eq!(json["you_may_vote"], true);

    let second = prism(&bob, &["deploy", "approve", &deploy, "--comment", "agreed"], None).ok();
    assert!(
        !second.stdout.contains("awaiting_review"),
        "two approvals meet the policy: {second:#?}"
    );
    let table = prism(&bob, &["deploy", "approvals", &deploy], None).ok();
    assert!(
        table.stdout.contains("ann") && table.stdout.contains("bob") && table.stdout.contains("agreed"),
        "{table:#?}"
    );

    let schedule = server.run(&["env", "schedule", "fat"]).ok();
    assert!(schedule.stdout.contains("open"), "{schedule:#?}");
    server.stop();
}
