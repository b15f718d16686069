//! The board pages by application name (issue 15 item 2): `limit`
//! applications per page, `after` the previous page's last, a `Link` header
//! naming the next page while one may follow, only the applications the
//! caller may see, and a limit out of range refused naming the field.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::both_backends;
use crate::harness::TestApp;

/// One page: the distinct applications in order, the number of cells, the `Link` header.
async fn page(app: &TestApp, token: &str, query: &str) -> (Vec<String>, usize, Option<String>) {
    let resp = app
        .http
        .get(format!("{}/api/v1/board{query}", app.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{query}");
    let link = resp.headers().get("link").map(|l| l.to_str().unwrap().to_owned());
    let cells: Vec<Value> = resp.json().await.unwrap();
    let mut apps: Vec<String> = cells
        .iter()
        .map(|c| c["application"].as_str().unwrap().to_owned())
        .collect();
    apps.dedup();
    (apps, cells.len(), link)
}

both_backends!(the_board_pages_by_application_name, |app| {
    app.project_with_app("shop", "web-c").await;
    for name in ["web-a", "web-e", "web-b", "web-d"] {
        app.ok(
            Method::POST,
            "/api/v1/applications",
            &app.admin,
            Some(json!({"project": "shop", "name": name, "git_url": "https://git.example/w.git"})),
        )
        .await;
    }
    app.project_with_app("bank", "ledger").await;
    let dana = app.user("dana", Some("shop"), &["developer"]).await;
    let envs = app.get("/api/v1/environments", &app.admin).await.1;
    let n_envs = envs.as_array().unwrap().len();

    let (apps, cells, link) = page(app, &dana, "?limit=2").await;
    assert_eq!(apps, ["web-a", "web-b"]);
    assert_eq!(cells, 2 * n_envs, "every environment's cell of each application");
    assert_eq!(
        link.as_deref(),
        Some("</api/v1/board?after=web-b&limit=2>; rel=\"next\"")
    );
    let (apps, _, link) = page(app, &dana, "?after=web-b&limit=2").await;
    assert_eq!(apps, ["web-c", "web-d"]);
    assert!(link.unwrap().contains("after=web-d"));
    let (apps, _, link) = page(app, &dana, "?after=web-d&limit=2").await;
    assert_eq!(apps, ["web-e"], "bank's ledger is not dana's to see");
    assert_eq!(link, None, "a short page is the last");

    // The admin sees every project's applications; the default page holds them all here.
    let (apps, _, link) = page(app, &app.admin, "").await;
    assert_eq!(apps, ["ledger", "web-a", "web-b", "web-c", "web-d", "web-e"]);
    assert_eq!(link, None);
    // One application's row, as before.
    let (apps, _, _) = page(app, &dana, "?application=web-d").await;
    assert_eq!(apps, ["web-d"]);

    for bad in ["?limit=0", "?limit=501", "?limit=-3"] {
        let (s, e) = app.get(&format!("/api/v1/board{bad}"), &dana).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {e}");
        assert_eq!(e["field"], "limit", "{bad}: {e}");
    }
});
