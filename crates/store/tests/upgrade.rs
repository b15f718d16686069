//! Upgrades (issue 18 item 5): a database made by the first released schema
//! opens under the current binary with every record readable, on SQLite and
//! PostgreSQL; a database newer than the binary is refused naming both
//! versions; and sealed columns are found by the schema's convention.
//! The fixture and its recipe: tests/fixtures/first-release/.

use std::path::{Path, PathBuf};

use prism_domain::{BuildFailure, BuildState, DeployFailure, DeployState, ReleaseId};
use prism_store::audit::AuditFilter;
use prism_store::releases::ReleaseFilter;
use prism_store::{apps, audit, builds, deploys, releases, sealed, users, Backend, Store, StoreError};
use prism_test_support::{TempDir, TestDb};
use sqlx::Executor;

/// The first release's migrations: 0001-0004.
const FIRST_RELEASE_SCHEMA: i64 = 4;

fn migrations_dir(backend: Backend) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
}

fn sqlite_url(url: &str) -> String {
    if url.starts_with("sqlite:") && !url.contains('?') {
        format!("{url}?mode=rwc")
    } else {
        url.to_owned()
    }
}

/// A database as the first release left it: its migrations only, then the seed.
async fn first_release_database(db: &TestDb, backend: Backend) {
    sqlx::any::install_default_drivers();
    let only_first = TempDir::new("first-release-migrations");
    for entry in std::fs::read_dir(migrations_dir(backend)).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let version: i64 = name[..4].parse().unwrap();
        if version <= FIRST_RELEASE_SCHEMA {
            std::fs::copy(&path, only_first.path().join(&name)).unwrap();
        }
    }
    let pool = sqlx::AnyPool::connect(&sqlite_url(&db.url())).await.unwrap();
    let migrator = sqlx::migrate::Migrator::new(only_first.path()).await.unwrap();
    assert_eq!(migrator.iter().count(), 4, "0001-0004");
    migrator.run(&pool).await.unwrap();
    let seed =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/first-release/seed.sql"))
            .unwrap();
    pool.execute(seed.as_str()).await.unwrap();
    pool.close().await;
}

async fn upgrades_with_every_record_readable(db: TestDb, backend: Backend) {
    first_release_database(&db, backend).await;
    let store = Store::open(&db.url(), 4).await.unwrap();
    let mut c = store.conn().await.unwrap();

    let names: Vec<String> = users::list(&mut c)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, ["admin", "dana", "olga"], "{backend:?}");
    assert_eq!(users::by_name(&mut c, "olga").await.unwrap().disabled, 1);
    let web = apps::by_name(&mut c, "shop-web").await.unwrap();
    assert_eq!(web.git_url, "https://git.example/shop/web.git");

    let all = releases::list(
        &mut c,
        &ReleaseFilter {
            limit: 10,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(all.len(), 3, "{backend:?}");
    let r1 = releases::get(&mut c, ReleaseId::from_seq(1)).await.unwrap();
    assert_eq!((r1.state, r1.environment.as_deref()), ("deployed", Some("fat")));
    assert_eq!(r1.creator, "dana");
    assert_eq!(r1.change_note, "First cut of the shop");
    let r2 = releases::get(&mut c, ReleaseId::from_seq(2)).await.unwrap();
    assert_eq!(r2.state, "build_failed");

    let ds = deploys::list(&mut c, Some(web.id), None, None, 10).await.unwrap();
    assert_eq!(ds.len(), 2, "{backend:?}");
    // A deploy that failed before failure kinds existed has none, and keeps its message.
    let failed = ds.iter().find(|d| d.state == DeployState::Failed).unwrap();
    assert_eq!(failed.failure_kind, None::<DeployFailure>);
    assert_eq!(
        failed.error.as_deref(),
        Some("rollout did not complete: 0 of 2 pods ready")
    );
    assert!(ds.iter().any(|d| d.state == DeployState::Succeeded));

    let bs = builds::for_release(&mut c, ReleaseId::from_seq(2)).await.unwrap();
    assert_eq!(bs.len(), 1);
    assert_eq!(bs[0].state, BuildState::Failed);
    assert_eq!(bs[0].failure_kind, Some(BuildFailure::Build));
    let log = builds::logs(&mut c, bs[0].id, 0, 100).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].line, "npm ERR! missing script: build");

    let events = audit::list(
        &mut c,
        &AuditFilter {
            limit: 10,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(events.len(), 2, "{backend:?}");
    assert!(events.iter().any(|e| e.action == "deploy.start" && e.actor == "dana"));
    drop(c);

    // New records get new ids, after the old ones (PostgreSQL's sequences were kept right).
    let mut tx = store.begin().await.unwrap();
    let fresh = releases::create(&mut tx, web.id, "main", "after the upgrade", 2)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(fresh.id, ReleaseId::from_seq(4), "{backend:?}");

    // The upgraded database is at this binary's schema: opening it again changes nothing.
    store.close().await;
    let again = Store::open(&db.url(), 2).await.unwrap();
    again.close().await;
}

#[tokio::test]
async fn a_first_release_sqlite_database_upgrades_with_every_record_readable() {
    upgrades_with_every_record_readable(TestDb::sqlite().await, Backend::Sqlite).await;
}

#[tokio::test]
async fn a_first_release_postgres_database_upgrades_with_every_record_readable() {
    upgrades_with_every_record_readable(TestDb::postgres().await, Backend::Postgres).await;
}

#[tokio::test]
async fn a_database_newer_than_the_binary_is_refused_naming_both_versions() {
    for db in [TestDb::sqlite().await, TestDb::postgres().await] {
        let store = Store::open(&db.url(), 2).await.unwrap();
        let known = prism_store::backup::known_schema_version(store.backend());
        let mut c = store.conn().await.unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time) \
             VALUES (9999, 'from the future', CURRENT_TIMESTAMP, TRUE, $1, 0)",
        )
        .bind(vec![0u8; 48])
        .execute(&mut *c)
        .await
        .unwrap();
        drop(c);
        store.close().await;
        let err = match Store::open(&db.url(), 2).await {
            Ok(_) => panic!("a newer schema was opened"),
            Err(e) => e,
        };
        assert!(
            matches!(err, StoreError::NewerSchema { database: 9999, binary } if binary == known),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains("9999") && message.contains(&known.to_string()),
            "{message}"
        );
    }
}

#[tokio::test]
async fn sealed_columns_are_found_by_convention_and_resealed_all_or_nothing() {
    for db in [TestDb::sqlite().await, TestDb::postgres().await] {
        let store = Store::open(&db.url(), 2).await.unwrap();
        let backend = store.backend();
        let mut c = store.conn().await.unwrap();
        let cols = sealed::columns(&mut c, backend).await.unwrap();
        let named: Vec<String> = cols.iter().map(|c| format!("{}.{}", c.table, c.column)).collect();
        for expected in [
            "clusters.token_enc",
            "executors.token_enc",
            "git_credentials.password_enc",
            "registries.password_enc",
        ] {
            assert!(named.contains(&expected.to_owned()), "{backend:?}: {named:?}");
        }
        let now = 1_764_000_000_000i64;
        for (name, value) in [("one", b"AAAA".to_vec()), ("two", b"BBBB".to_vec())] {
            sqlx::query(
                "INSERT INTO git_credentials (name, username, password_enc, created_at, updated_at) VALUES ($1, 'u', $2, $3, $3)",
            )
            .bind(name)
            .bind(value)
            .bind(now)
            .execute(&mut *c)
            .await
            .unwrap();
        }
        drop(c);
        let counted = sealed::count(&store, |v| v == b"AAAA").await.unwrap();
        assert_eq!((counted.total, counted.unopenable), (2, 1), "{backend:?}");

        // A value that cannot be re-sealed aborts the whole change: nothing is written.
        let refused = sealed::reseal_all(&store, |v| {
            if v == b"BBBB" {
                Err("cannot open")
            } else {
                Ok(v.iter().map(|b| b + 1).collect())
            }
        })
        .await
        .unwrap_err();
        assert!(
            refused.to_string().contains("git_credentials.password_enc"),
            "{refused}"
        );
        let unchanged = sealed::count(&store, |v| v == b"AAAA" || v == b"BBBB").await.unwrap();
        assert_eq!(unchanged.unopenable, 0, "{backend:?}: nothing half-written");

        let n = sealed::reseal_all(&store, |v| Ok::<_, String>(v.iter().map(|b| b + 1).collect()))
            .await
            .unwrap();
        assert_eq!(n, 2);
        let after = sealed::count(&store, |v| v == b"BBBB" || v == b"CCCC").await.unwrap();
        assert_eq!((after.total, after.unopenable), (2, 0), "{backend:?}");
        store.close().await;
    }
}
