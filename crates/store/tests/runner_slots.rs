//! A Kubernetes runner's concurrency limit (issue 10 item 6), as the store
//! keeps it on SQLite and PostgreSQL: builds take slots first come, first
//! served; a build over the limit waits with its place; a final state frees
//! the slot; a build that already holds one keeps it (a retried attempt);
//! and on PostgreSQL two instances taking the last slot at once get it once.

use prism_domain::{BuildEvent, BuildFailure, BuildState};
use prism_store::builds::{self, NewBuild, RunnerSlot};
use prism_store::credentials::{self, NewExecutor};
use prism_store::{apps, projects, releases, users, Store};
use prism_test_support::TestDb;

/// `n` queued builds (one release each) of one application; their ids.
async fn queued_builds(store: &Store, n: usize) -> Vec<i64> {
    let mut tx = store.begin().await.unwrap();
    let u = users::create(&mut tx, "dana", "", "hash", false).await.unwrap();
    let p = projects::create(&mut tx, "shop", "").await.unwrap();
    let json = serde_json::json!({});
    let a = apps::create(
        &mut tx,
        apps::NewApplication {
            project_id: p.id,
            name: "web",
            git_url: "https://g/w",
            build_settings: &json,
            template_settings: &json,
        },
    )
    .await
    .unwrap();
    credentials::create_executor(
        &mut tx,
        NewExecutor {
            name: "k8s",
            kind: "kubernetes",
            url: "",
            job: "",
            username: "",
            token_enc: vec![],
            settings: r#"{"cluster": "build", "namespace": "builds", "max_concurrent_builds": 2}"#,
        },
    )
    .await
    .unwrap();
    let mut ids = vec![];
    for _ in 0..n {
        let r = releases::create(&mut tx, a.id, "main", "note", u.id).await.unwrap();
        let b = builds::create(
            &mut tx,
            NewBuild {
                release: r.id,
                app_id: a.id,
                executor: "k8s",
                settings: &json,
                base_image_id: None,
                requested_by: "dana",
            },
        )
        .await
        .unwrap();
        ids.push(b.id);
    }
    tx.commit().await.unwrap();
    ids
}

async fn take(store: &Store, id: i64, limit: Option<i64>) -> RunnerSlot {
    let mut tx = store.begin().await.unwrap();
    let slot = builds::take_runner_slot(&mut tx, id, "k8s", limit).await.unwrap();
    tx.commit().await.unwrap();
    slot
}

async fn slots(db: TestDb) {
    let store = Store::open(&db.url(), 4).await.unwrap();
    let ids = queued_builds(&store, 4).await;
    let (b1, b2, b3, b4) = (ids[0], ids[1], ids[2], ids[3]);
    // The fourth asks first: no older build waits yet, so it gets a slot
    // (waiting is recorded only by builds that asked).
    assert_eq!(take(&store, b4, Some(2)).await, RunnerSlot::Taken);
    assert_eq!(take(&store, b1, Some(2)).await, RunnerSlot::Taken);
    // The limit is reached: b3 waits first in the runner's queue, then b2
    // (older) asks and is placed first.
    assert_eq!(
        take(&store, b3, Some(2)).await,
        RunnerSlot::Wait { in_use: 2, place: 1 }
    );
    assert_eq!(
        take(&store, b2, Some(2)).await,
        RunnerSlot::Wait { in_use: 2, place: 1 }
    );
    assert_eq!(
        take(&store, b3, Some(2)).await,
        RunnerSlot::Wait { in_use: 2, place: 2 }
    );
    // A holder asking again (a retried attempt) keeps its slot.
    assert_eq!(take(&store, b1, Some(2)).await, RunnerSlot::Taken);
    // b1 fails: its slot is free, and it goes to the oldest waiting build.
    let mut c = store.conn().await.unwrap();
    assert!(builds::step(&mut c, b1, BuildState::Queued, BuildEvent::Start)
        .await
        .unwrap());
    assert!(builds::finish_failed(&mut c, b1, BuildFailure::Build, "exit 1")
        .await
        .unwrap());
    drop(c);
    assert_eq!(
        take(&store, b3, Some(2)).await,
        RunnerSlot::Wait { in_use: 1, place: 2 }
    );
    assert_eq!(take(&store, b2, Some(2)).await, RunnerSlot::Taken);
    assert_eq!(
        take(&store, b3, Some(2)).await,
        RunnerSlot::Wait { in_use: 2, place: 1 }
    );
    // A raised limit (or none) lets it in.
    assert_eq!(take(&store, b3, None).await, RunnerSlot::Taken);
    store.close().await;
}

#[tokio::test]
async fn sqlite_runner_slots_are_first_come_first_served() {
    slots(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn postgres_runner_slots_are_first_come_first_served() {
    slots(TestDb::postgres().await).await;
}

/// Two instances (two pools on one PostgreSQL database) ask for the last
/// slot at the same moment, many times over: never more than the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_instances_never_take_more_slots_than_the_limit() {
    let db = TestDb::postgres().await;
    let one = Store::open(&db.url(), 4).await.unwrap();
    let two = Store::open(&db.url(), 4).await.unwrap();
    let ids = queued_builds(&one, 8).await;
    let mut tasks = vec![];
    for (i, id) in ids.iter().copied().enumerate() {
        let store = if i % 2 == 0 { one.clone() } else { two.clone() };
        tasks.push(tokio::spawn(async move { take(&store, id, Some(3)).await }));
    }
    let mut taken = 0;
    for t in tasks {
        if t.await.unwrap() == RunnerSlot::Taken {
            taken += 1;
        }
    }
    assert_eq!(taken, 3, "exactly the limit's worth of slots");
    one.close().await;
    two.close().await;
}
