//! A deploy's live log resumes after the last event id the reader saw
//! (`Last-Event-ID`, issue 15 item 1): an event with a smaller id must never
//! become visible after one with a larger id. On PostgreSQL two
//! transactions writing events of one deploy (the deploy job and a person's
//! approval, say) could take ids in one order and commit in the other; a
//! reader between the two commits then saw the newer event only, and
//! resuming after it skipped the older one for good.

use prism_store::{deploys, Store};
use prism_test_support::TestDb;

async fn one_deploy(store: &Store) -> i64 {
    let mut tx = store.begin().await.unwrap();
    for sql in [
        "INSERT INTO environments (name, position, namespace, deploy_roles, requires_review, requires_previous, created_at) \
         VALUES ('fat', 10, 'fat', '[]', 0, 0, 1)",
        "INSERT INTO projects (name, description, created_at) VALUES ('shop', '', 1)",
        "INSERT INTO applications (project_id, name, git_url, created_at, updated_at) \
         SELECT id, 'web', 'https://git.example/web.git', 1, 1 FROM projects",
        "INSERT INTO users (username, password_hash, created_at) VALUES ('dev', 'x', 1)",
        "INSERT INTO releases (app_id, git_ref, change_note, creator_id, state, created_at, updated_at) \
         SELECT a.id, 'main', 'n', u.id, 'built', 1, 1 FROM applications a, users u",
        "INSERT INTO deploys (release_id, app_id, env_id, kind, state, requested_by, created_at, updated_at) \
         SELECT r.id, r.app_id, e.id, 'deploy', 'watching', 'dev', 1, 1 FROM releases r, environments e",
    ] {
        sqlx::query(sql).execute(&mut *tx).await.unwrap_or_else(|e| panic!("{e}: {sql}"));
    }
    let id = sqlx::query_scalar("SELECT id FROM deploys")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    id
}

async fn steps(store: &Store, deploy: i64, after: i64) -> Vec<(i64, String)> {
    let mut c = store.conn().await.unwrap();
    deploys::events(&mut c, deploy, after)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.id, e.step))
        .collect()
}

#[tokio::test]
async fn postgres_deploy_events_become_visible_in_id_order() {
    let db = TestDb::postgres().await;
    let store = Store::open(&db.url(), 4).await.unwrap();
    let deploy = one_deploy(&store).await;

    // The first writer's event is written, not yet committed.
    let mut first = store.begin().await.unwrap();
    deploys::event(&mut first, deploy, "first", "", serde_json::json!({}))
        .await
        .unwrap();
    // A second writer, on its own connection, writes and commits.
    let second = tokio::spawn({
        let store = store.clone();
        async move {
            let mut c = store.conn().await.unwrap();
            deploys::event(&mut c, deploy, "second", "", serde_json::json!({}))
                .await
                .unwrap();
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    // A reader now: whatever it sees must come before all it cannot see yet.
    let early = steps(&store, deploy, 0).await;
    first.commit().await.unwrap();
    second.await.unwrap();
    let all = steps(&store, deploy, 0).await;
    let names: Vec<&str> = all.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(names, ["first", "second"], "{all:?}");
    assert_eq!(
        early,
        all[..early.len()],
        "a reader saw {early:?} before the rest of {all:?}"
    );
    // Resuming after what the early reader saw misses nothing.
    let after = early.last().map_or(0, |(id, _)| *id);
    let resumed = steps(&store, deploy, after).await;
    assert_eq!([early, resumed].concat(), all);
}

#[tokio::test]
async fn an_event_of_a_deploy_that_does_not_exist_is_refused() {
    for db in [TestDb::sqlite().await, TestDb::postgres().await] {
        let store = Store::open(&db.url(), 2).await.unwrap();
        let mut c = store.conn().await.unwrap();
        let err = deploys::event(&mut c, 4242, "x", "", serde_json::json!({})).await;
        assert!(err.is_err(), "{}", db.url());
    }
}
