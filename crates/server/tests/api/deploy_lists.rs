//! Deploy lists filter in the query, not in the page read back (issue 15
//! item 2). Before, `GET /api/v1/deploys` read the latest `limit` deploys of
//! every project and dropped those the caller could not see, so a developer
//! whose project had not deployed since others deployed a page's worth got
//! an empty list; the dashboard's "awaiting review" read the latest 200 and
//! lost older ones; a project's statistics filtered the latest 1,000. Lists
//! now page by id (`before`, a `Link` header to the next page) and filter by
//! project, state, application, environment and release in the query.

use reqwest::StatusCode;
use serde_json::Value;

use crate::both_backends;
use crate::harness::TestApp;

/// One page: the deploy ids and the `Link` header.
async fn page(app: &TestApp, token: &str, query: &str) -> (Vec<i64>, Option<String>) {
    let resp = app
        .http
        .get(format!("{}/api/v1/deploys{query}", app.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{query}");
    let link = resp.headers().get("link").map(|l| l.to_str().unwrap().to_owned());
    let list: Vec<Value> = resp.json().await.unwrap();
    (list.iter().map(|d| d["id"].as_i64().unwrap()).collect(), link)
}

/// Inserts a deploy of `app`'s only release into `env` in `state`; its id.
async fn insert_deploy(app: &TestApp, application: &str, env: &str, state: &str) -> i64 {
    let mut c = app.store.conn().await.unwrap();
    sqlx::query_scalar(
        "INSERT INTO deploys (release_id, app_id, env_id, kind, state, requested_by, created_at, updated_at) \
         SELECT r.id, a.id, e.id, 'deploy', $3, 'admin', 1, 1 FROM applications a JOIN releases r ON r.app_id = a.id \
         JOIN environments e ON e.name = $2 WHERE a.name = $1 RETURNING id",
    )
    .bind(application)
    .bind(env)
    .bind(state)
    .fetch_one(&mut *c)
    .await
    .unwrap()
}

both_backends!(deploy_lists_filter_in_the_query_and_page_by_id, |app| {
    app.project_with_app("shop", "web").await;
    app.project_with_app("bank", "ledger").await;
    let dana = app.user("dana", Some("shop"), &["developer"]).await;
    app.user("olga", Some("shop"), &["operator"]).await;
    app.built_release("web").await;
    app.built_release("ledger").await;
    // shop's deploy waits for review while bank deploys 230 times after it.
    let waiting = insert_deploy(app, "web", "uat", "awaiting_review").await;
    let mut ledger = vec![];
    for _ in 0..230 {
        ledger.push(insert_deploy(app, "ledger", "fat", "succeeded").await);
    }

    let (ids, link) = page(app, &dana, "?limit=50").await;
    assert_eq!(ids, [waiting], "dana sees her project's deploy, not an empty page");
    assert_eq!(link, None, "a short page is the last");

    // The admin pages through every deploy, newest first, each once.
    let mut all = vec![];
    let mut query = "?limit=100".to_owned();
    let mut pages = 0;
    loop {
        let (ids, link) = page(app, &app.admin, &query).await;
        pages += 1;
        if pages == 1 {
            assert_eq!(
                link.as_deref(),
                Some(format!("</api/v1/deploys?limit=100&before={}>; rel=\"next\"", ids[99]).as_str())
            );
        }
        all.extend(ids);
        let Some(link) = link else { break };
        query = link["</api/v1/deploys".len()..link.find('>').unwrap()].to_owned();
        assert!(pages < 5, "paging does not end: {query}");
    }
    let mut expected: Vec<i64> = ledger.clone();
    expected.push(waiting);
    expected.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(all, expected, "every deploy once, newest first, over {pages} pages");

    let (ids, _) = page(app, &app.admin, "?state=awaiting_review").await;
    assert_eq!(ids, [waiting]);
    let (ids, _) = page(app, &app.admin, "?project=shop").await;
    assert_eq!(ids, [waiting]);
    let (ids, link) = page(app, &app.admin, "?project=bank&limit=5").await;
    assert_eq!(ids, ledger.iter().rev().take(5).copied().collect::<Vec<_>>());
    assert_eq!(
        link.as_deref(),
        Some(format!("</api/v1/deploys?project=bank&limit=5&before={}>; rel=\"next\"", ids[4]).as_str()),
        "the next page keeps the filters"
    );
    let (ids, _) = page(
        app,
        &app.admin,
        &format!("?application=ledger&environment=fat&limit=3&before={}", ledger[10]),
    )
    .await;
    assert_eq!(ids, [ledger[9], ledger[8], ledger[7]]);

    // Bad input names its field; another project's name is not found for dana.
    for (query, field) in [
        ("?state=bogus", "state"),
        ("?limit=0", "limit"),
        ("?limit=501", "limit"),
    ] {
        let (s, e) = app.get(&format!("/api/v1/deploys{query}"), &dana).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {e}");
        assert_eq!(e["field"], field, "{query}: {e}");
    }
    let (s, _) = app.get("/api/v1/deploys?project=bank", &dana).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The operator's dashboard lists the deploy awaiting review, older than the latest 200.
    let (s, html) = app.web_page("olga", "/").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        html.contains(&format!("href=\"/deploys/{waiting}\"")),
        "the dashboard shows deploy {waiting} awaiting review"
    );
});
