//! A read through the API never waits for the store's write lock: an API
//! token's "last used" time is written at most once a minute, and only then
//! is a write statement sent. Before, every request with a token sent an
//! UPDATE (changing no row within the minute), and on SQLite a statement
//! that may write takes the database's write lock even when it changes
//! nothing: every API read queued behind every write, and a write
//! transaction held for longer than the busy timeout (10 s; a large import,
//! a backup) made every API read fail with "database is locked".

use std::time::Duration;

use reqwest::StatusCode;

use crate::both_backends;

both_backends!(an_api_read_does_not_wait_for_a_write_in_progress, |app| {
    app.project_with_app("shop", "web").await;
    let dana = app.user("dana", Some("shop"), &["developer"]).await;
    // The first use of the token records it (a write, with nothing else writing).
    let (s, _) = app.get("/api/v1/board", &dana).await;
    assert_eq!(s, StatusCode::OK);

    // Another writer holds the store's write lock (on SQLite: BEGIN IMMEDIATE).
    let mut tx = app.store.begin().await.unwrap();
    sqlx::query("UPDATE applications SET git_url = git_url WHERE name = 'web'")
        .execute(&mut *tx)
        .await
        .unwrap();
    let reader = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    for path in ["/api/v1/board", "/api/v1/releases", "/api/v1/applications"] {
        let resp = reader
            .get(format!("{}{path}", app.base))
            .bearer_auth(&dana)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path} while a write is in progress: {e}"));
        assert_eq!(resp.status(), StatusCode::OK, "GET {path}");
    }
    drop(tx);
});
