//! The notification delivery log's retention, as the store keeps it on
//! SQLite and PostgreSQL: `prune_deliveries` deletes finished deliveries
//! (delivered, or failed for good) last changed before the cut-off, with
//! their attempts; deliveries still queued or waiting for a retry stay
//! however old they are, and recent ones stay.

use prism_store::notifications::{self, AttemptRecord, ChannelFields, NewDelivery};
use prism_store::{now_ms, Store};
use prism_test_support::TestDb;

const DAY_MS: i64 = 86_400_000;

/// A delivery to `channel_id` whose attempts ended in `statuses` (in
/// order; none: still queued), last changed at `updated_at`; its id.
async fn delivery(store: &Store, channel_id: i64, uid: &str, statuses: &[&str], updated_at: i64) -> i64 {
    let mut tx = store.begin().await.unwrap();
    let id = notifications::create_delivery(
        &mut tx,
        NewDelivery {
            uid,
            channel_id,
            project: Some("shop"),
            event: "deploy_failed",
            lang: "en",
            notice: "{}",
        },
    )
    .await
    .unwrap();
    for (i, status) in statuses.iter().enumerate() {
        let attempt = i as i64 + 1;
        let delivered = *status == "delivered";
        let recorded = notifications::record_attempt(
            &mut tx,
            id,
            &AttemptRecord {
                attempt,
                at: updated_at,
                duration_ms: 12,
                delivered,
                response_code: Some(if delivered { 204 } else { 503 }),
                error: (!delivered).then_some("HTTP 503"),
                status,
                next_retry_at: (*status == "retrying").then_some(updated_at + 30_000),
            },
        )
        .await
        .unwrap();
        assert!(recorded, "attempt {attempt} of {uid}");
    }
    // When it last changed: as if it happened then.
    sqlx::query("UPDATE notification_deliveries SET created_at = $2, updated_at = $2 WHERE id = $1")
        .bind(id)
        .bind(updated_at)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    id
}

/// The uids of the deliveries left, in order.
async fn left(store: &Store) -> Vec<String> {
    let mut c = store.conn().await.unwrap();
    sqlx::query_scalar("SELECT uid FROM notification_deliveries ORDER BY id")
        .fetch_all(&mut *c)
        .await
        .unwrap()
}

async fn attempts_of(store: &Store, id: i64) -> i64 {
    let mut c = store.conn().await.unwrap();
    sqlx::query_scalar("SELECT COUNT(*) FROM notification_attempts WHERE delivery_id = $1")
        .bind(id)
        .fetch_one(&mut *c)
        .await
        .unwrap()
}

async fn retention(db: TestDb) {
    let store = Store::open(&db.url(), 4).await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let mut channels = vec![];
    for name in ["ops-hook", "team-chat"] {
        let ch = notifications::create_channel(
            &mut tx,
            name,
            ChannelFields {
                kind: "webhook",
                project_id: None,
                target: "https://hooks.example.com",
                settings: "{}",
                url_enc: Some(vec![1, 2, 3]),
                secret_enc: None,
                clear_secret: false,
                by: "admin",
            },
        )
        .await
        .unwrap();
        channels.push(ch.id);
    }
    tx.commit().await.unwrap();
    let (a, b) = (channels[0], channels[1]);

    let now = now_ms();
    let old = now - 31 * DAY_MS;
    let recent = now - DAY_MS;
    let old_delivered = delivery(&store, a, "old-delivered", &["retrying", "delivered"], old).await;
    let old_failed = delivery(&store, b, "old-failed", &["retrying", "retrying", "failed"], old).await;
    let old_queued = delivery(&store, a, "old-queued", &[], old).await;
    let old_retrying = delivery(&store, b, "old-retrying", &["retrying"], old).await;
    let recent_delivered = delivery(&store, a, "recent-delivered", &["delivered"], recent).await;
    let recent_failed = delivery(&store, b, "recent-failed", &["failed"], recent).await;
    assert_eq!(attempts_of(&store, old_delivered).await, 2);
    assert_eq!(attempts_of(&store, old_failed).await, 3);

    let cutoff = now - 30 * DAY_MS;
    let mut tx = store.begin().await.unwrap();
    let pruned = notifications::prune_deliveries(&mut tx, cutoff).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(pruned, 2, "the old delivered and the old failed one");
    assert_eq!(
        left(&store).await,
        ["old-queued", "old-retrying", "recent-delivered", "recent-failed"],
        "pending deliveries stay whatever their age, recent ones stay"
    );
    // Their attempts went with them; the others' are all there.
    assert_eq!(attempts_of(&store, old_delivered).await, 0);
    assert_eq!(attempts_of(&store, old_failed).await, 0);
    assert_eq!(attempts_of(&store, old_queued).await, 0);
    assert_eq!(attempts_of(&store, old_retrying).await, 1);
    assert_eq!(attempts_of(&store, recent_delivered).await, 1);
    assert_eq!(attempts_of(&store, recent_failed).await, 1);
    // The log as the API reads it still works, attempts included.
    let mut c = store.conn().await.unwrap();
    let log = notifications::deliveries_of(&mut c, b, 50).await.unwrap();
    let uids: Vec<&str> = log.iter().map(|d| d.uid.as_str()).collect();
    assert_eq!(uids, ["recent-failed", "old-retrying"]);
    assert_eq!(log[1].attempt_log.len(), 1);
    drop(c);

    // A second sweep finds nothing more; a later cut-off takes the recent
    // finished ones, never the pending ones.
    let mut c = store.conn().await.unwrap();
    assert_eq!(notifications::prune_deliveries(&mut c, cutoff).await.unwrap(), 0);
    assert_eq!(notifications::prune_deliveries(&mut c, now).await.unwrap(), 2);
    drop(c);
    assert_eq!(left(&store).await, ["old-queued", "old-retrying"]);
    store.close().await;
}

#[tokio::test]
async fn sqlite_prunes_old_finished_deliveries_with_their_attempts() {
    retention(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn postgres_prunes_old_finished_deliveries_with_their_attempts() {
    retention(TestDb::postgres().await).await;
}
