//! Bulk-seeds the store with projects, applications, a bench user who is a
//! developer in every project, and N releases, in a few set-based statements.

use prism_store::{Backend, Store};
use serde_json::json;

use crate::server::{Server, ADMIN_PASSWORD};

pub struct Fixture {
    /// A developer in every project.
    pub token: String,
    pub bench_user_id: i64,
    /// A developer in the first project only (a tenth of a per cent of the
    /// releases, all `built`).
    pub one: (String, i64),
    /// A developer in every tenth project, whose applications' releases are
    /// all `closed`: asking for `built` ones finds none among the newest.
    pub tenth: (String, i64),
    pub some_app_id: i64,
    pub some_app: String,
    pub middle_release: i64,
}

/// Creates the bench's PostgreSQL database (the SQL lives in prism-test-support).
pub async fn create_pg_database(pg: &str, db: &str) -> anyhow::Result<()> {
    Ok(prism_test_support::db::create_pg_database(pg, db).await?)
}

/// Drops it again; a failure only leaves a database the test script removes.
pub async fn drop_pg_database(pg: &str, db: &str) {
    if let Err(e) = prism_test_support::db::drop_pg_database(pg, db).await {
        eprintln!("could not drop {db}: {e}");
    }
}

async fn api(
    server: &Server,
    token: Option<&str>,
    path: &str,
    body: serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let mut req = reqwest::Client::new()
        .post(format!("{}{path}", server.base))
        .json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await?;
    anyhow::ensure!(resp.status().is_success(), "{path}: {}", resp.text().await?);
    Ok(resp.json().await?)
}

pub async fn seed(store: &Store, server: &Server, releases: i64, applications: i64) -> anyhow::Result<Fixture> {
    let admin = api(
        server,
        None,
        "/api/v1/auth/token",
        json!({"username": "admin", "password": ADMIN_PASSWORD}),
    )
    .await?["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    api(
        server,
        Some(&admin),
        "/api/v1/users",
        json!({"username": "bench", "password": "bench-user-password"}),
    )
    .await?;
    for user in ["one", "tenth"] {
        api(
            server,
            Some(&admin),
            "/api/v1/users",
            json!({"username": user, "password": "bench-user-password"}),
        )
        .await?;
    }
    let projects = (applications / 10).max(1);
    for p in 0..projects {
        let name = format!("team-{p}");
        api(server, Some(&admin), "/api/v1/projects", json!({"name": name})).await?;
        let mut members = vec!["bench"];
        if p == 0 {
            members.push("one");
        }
        if p % 10 == 9 {
            members.push("tenth");
        }
        for user in members {
            api(
                server,
                Some(&admin),
                &format!("/api/v1/projects/{name}/members"),
                json!({"username": user, "role": "developer"}),
            )
            .await?;
        }
    }
    let login = |user: &'static str| async move {
        anyhow::Ok(
            api(
                server,
                None,
                "/api/v1/auth/token",
                json!({"username": user, "password": "bench-user-password"}),
            )
            .await?["secret"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    };
    let token = api(
        server,
        None,
        "/api/v1/auth/token",
        json!({"username": "bench", "password": "bench-user-password"}),
    )
    .await?["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut tx = store.begin().await?;
    let series = |n: i64| match store.backend() {
        Backend::Postgres => format!("(SELECT generate_series(1, {n}) AS i) AS n"),
        Backend::Sqlite => format!(
            "(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) SELECT i FROM s) AS n"
        ),
    };
    let now = prism_store::now_ms();
    sqlx::query(&format!(
        "INSERT INTO applications (project_id, name, git_url, created_at, updated_at) \
         SELECT (SELECT id FROM projects WHERE name = 'team-' || CAST((n.i - 1) % {projects} AS TEXT)), 'app-' || CAST(n.i AS TEXT), 'https://git.example/app.git', {now}, {now} FROM {}",
        series(applications)
    ))
    .execute(&mut *tx)
    .await?;
    let first_app: i64 = sqlx::query_scalar("SELECT MIN(id) FROM applications")
        .fetch_one(&mut *tx)
        .await?;
    let bench_user_id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE username = 'bench'")
        .fetch_one(&mut *tx)
        .await?;
    sqlx::query(&format!(
        "INSERT INTO releases (app_id, git_ref, change_note, creator_id, state, created_at, updated_at) \
         SELECT {first_app} + (n.i - 1) % {applications}, 'main', 'seeded release ' || CAST(n.i AS TEXT), {bench_user_id}, \
         CASE WHEN n.i % 10 = 0 THEN 'closed' ELSE 'built' END, {now} + n.i, {now} + n.i FROM {}",
        series(releases)
    ))
    .execute(&mut *tx)
    .await?;
    // A deploy for every 20th release (50,000 at a million), to the three
    // environments in turn, and a build for each of those releases.
    let envs: Vec<i64> = sqlx::query_scalar("SELECT id FROM environments ORDER BY position, id LIMIT 3")
        .fetch_all(&mut *tx)
        .await?;
    let first_release: i64 = sqlx::query_scalar("SELECT MIN(id) FROM releases")
        .fetch_one(&mut *tx)
        .await?;
    if let [e0, e1, e2] = envs[..] {
        let every = releases / 20;
        sqlx::query(&format!(
            "INSERT INTO deploys (release_id, app_id, env_id, kind, state, requested_by, created_at, updated_at, finished_at) \
             SELECT r.id, r.app_id, CASE n.i % 3 WHEN 0 THEN {e0} WHEN 1 THEN {e1} ELSE {e2} END, 'deploy', \
             CASE WHEN n.i % 17 = 0 THEN 'failed' ELSE 'succeeded' END, 'bench', {now} + n.i, {now} + n.i, {now} + n.i + 30000 \
             FROM {} JOIN releases r ON r.id = {first_release} + (n.i - 1) * 20",
            series(every)
        ))
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "INSERT INTO builds (release_id, app_id, state, executor, settings, requested_by, created_at, started_at, finished_at, updated_at) \
             SELECT r.id, r.app_id, CASE WHEN n.i % 13 = 0 THEN 'failed' ELSE 'succeeded' END, 'local', '{{}}', 'bench', \
             {now} + n.i, {now} + n.i, {now} + n.i + 60000, {now} + n.i \
             FROM {} JOIN releases r ON r.id = {first_release} + (n.i - 1) * 20",
            series(every)
        ))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    if store.backend() == Backend::Postgres {
        sqlx::query("ANALYZE").execute(&mut *store.conn().await?).await?;
    }
    let max: i64 = sqlx::query_scalar("SELECT MAX(id) FROM releases")
        .fetch_one(&mut *store.conn().await?)
        .await?;
    let user_id = |name: &'static str| {
        let store = store.clone();
        async move {
            anyhow::Ok(
                sqlx::query_scalar::<_, i64>("SELECT id FROM users WHERE username = $1")
                    .bind(name)
                    .fetch_one(&mut *store.conn().await?)
                    .await?,
            )
        }
    };
    Ok(Fixture {
        token,
        bench_user_id,
        one: (login("one").await?, user_id("one").await?),
        tenth: (login("tenth").await?, user_id("tenth").await?),
        some_app_id: first_app,
        some_app: "app-1".into(),
        middle_release: max / 2,
    })
}
