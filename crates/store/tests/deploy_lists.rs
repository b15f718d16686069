//! Deploy pages (issue 15 item 2): a member's or a project's page is merged
//! from each of their applications' newest deploys when they see few
//! applications, else read newest first from all deploys. Either way the
//! page must be exactly what a brute-force filter of every deploy gives, for
//! every mix of visibility, project, environment, state, cursor and page
//! size, on SQLite and PostgreSQL.

use prism_domain::DeployState;
use prism_store::deploys::{self, DeployFilter};
use prism_store::{environments, users, Store};
use prism_test_support::TestDb;

const PROJECTS: i64 = 12;
const APPS_PER_PROJECT: i64 = 10;
const DEPLOYS: i64 = 2400;

struct Seeded {
    /// (id, app id, env id, project id, state), oldest first.
    deploys: Vec<(i64, i64, i64, i64, &'static str)>,
    projects: Vec<i64>,
    envs: Vec<i64>,
    /// (user id, the projects they are a member of)
    users: Vec<(i64, Vec<i64>)>,
}

async fn seed(store: &Store) -> Seeded {
    let mut tx = store.begin().await.unwrap();
    let mut envs = vec![];
    for (name, position) in [("fat", 10), ("uat", 20), ("prd", 30)] {
        let env = environments::create(
            &mut tx,
            environments::NewEnvironment {
                name,
                position: Some(position),
                cluster_id: None,
                namespace: name,
                policy: &prism_domain::EnvPolicy::development(),
            },
        )
        .await
        .unwrap();
        envs.push(env.id);
    }
    let mut projects = vec![];
    let mut apps = vec![];
    for p in 0..PROJECTS {
        let project = prism_store::projects::create(&mut tx, &format!("team-{p}"), "")
            .await
            .unwrap();
        projects.push(project.id);
        for a in 0..APPS_PER_PROJECT {
            let app = prism_store::apps::create(
                &mut tx,
                prism_store::apps::NewApplication {
                    project_id: project.id,
                    name: &format!("app-{p}-{a}"),
                    git_url: "https://git.example/a.git",
                    build_settings: &serde_json::json!({}),
                    template_settings: &serde_json::json!({}),
                },
            )
            .await
            .unwrap();
            apps.push((app.id, project.id));
        }
    }
    // one: a member of one project (a tenth of the applications or less:
    // merged per application); most: of all but two (read newest first).
    let mut members = vec![];
    for (name, of) in [("one", vec![projects[3]]), ("most", projects[2..].to_vec())] {
        let u = users::create(&mut tx, name, "", "hash", false).await.unwrap();
        for p in &of {
            sqlx::query(
                "INSERT INTO memberships (project_id, user_id, role, created_at) VALUES ($1, $2, 'developer', 1)",
            )
            .bind(p)
            .bind(u.id)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        members.push((u.id, of));
    }
    let release: i64 = sqlx::query_scalar(
        "INSERT INTO releases (app_id, git_ref, change_note, creator_id, state, created_at, updated_at) \
         VALUES ($1, 'main', 'n', $2, 'built', 1, 1) RETURNING id",
    )
    .bind(apps[0].0)
    .bind(members[0].0)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    let mut rows = vec![];
    for i in 0..DEPLOYS {
        // Uneven: a few applications deploy most often.
        let (app, project) = if i % 4 == 0 {
            apps[(i % 5) as usize]
        } else {
            apps[((i * 37 + i / 11) % apps.len() as i64) as usize]
        };
        let env = envs[(i % 3) as usize];
        // One deploy in flight per application and environment, the newest
        // ones; the rest finished, `failed` rarely.
        let state = if i >= DEPLOYS - 3 {
            "awaiting_review"
        } else if i % 29 == 0 {
            "failed"
        } else {
            "succeeded"
        };
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO deploys (release_id, app_id, env_id, kind, state, requested_by, created_at, updated_at) \
             VALUES ($1, $2, $3, 'deploy', $4, 'x', 1, 1) RETURNING id",
        )
        .bind(release)
        .bind(app)
        .bind(env)
        .bind(state)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        rows.push((id, app, env, project, state));
    }
    tx.commit().await.unwrap();
    Seeded {
        deploys: rows,
        projects,
        envs,
        users: members,
    }
}

fn expected(s: &Seeded, f: &DeployFilter) -> Vec<i64> {
    let visible = f
        .visible_to
        .map(|u| &s.users.iter().find(|(id, _)| *id == u).unwrap().1);
    let mut ids: Vec<i64> = s
        .deploys
        .iter()
        .filter(|(id, _, env, project, state)| {
            visible.is_none_or(|v| v.contains(project))
                && f.project_id.is_none_or(|p| p == *project)
                && f.env_id.is_none_or(|e| e == *env)
                && f.state.is_none_or(|st| st.as_str() == *state)
                && f.before.is_none_or(|b| *id < b)
        })
        .map(|d| d.0)
        .collect();
    ids.sort_unstable_by(|a, b| b.cmp(a));
    ids.truncate(f.limit as usize);
    ids
}

async fn every_page_is_the_brute_force_page(db: TestDb) {
    let store = Store::open(&db.url(), 2).await.unwrap();
    let s = seed(&store).await;
    let mut c = store.conn().await.unwrap();
    let middle = s.deploys[(DEPLOYS / 2) as usize].0;
    let (mut checked, mut nonempty) = (0, 0);
    for visible_to in [None, Some(s.users[0].0), Some(s.users[1].0)] {
        for project_id in [None, Some(s.projects[3]), Some(s.projects[0])] {
            for env_id in [None, Some(s.envs[1])] {
                for state in [
                    None,
                    Some(DeployState::Succeeded),
                    Some(DeployState::Failed),
                    Some(DeployState::AwaitingReview),
                    Some(DeployState::Cancelled),
                ] {
                    for before in [None, Some(middle)] {
                        for limit in [1, 7, 50] {
                            let f = DeployFilter {
                                visible_to,
                                project_id,
                                env_id,
                                state,
                                before,
                                limit,
                                ..Default::default()
                            };
                            let want = expected(&s, &f);
                            nonempty += usize::from(!want.is_empty());
                            let full = deploys::list_filtered(&mut c, &f).await.unwrap();
                            let got: Vec<i64> = full.iter().map(|d| d.id).collect();
                            assert_eq!(got, want, "{f:?}");
                            // The statistics' slim read: the same deploys, the same outcomes.
                            let slim: Vec<_> = deploys::outcomes(&mut c, &f)
                                .await
                                .unwrap()
                                .into_iter()
                                .map(|o| (o.release, o.app_id, o.env_id, o.kind, o.state, o.finished_at))
                                .collect();
                            let whole: Vec<_> = full
                                .iter()
                                .map(|d| (d.release, d.app_id, d.env_id, d.kind, d.state, d.finished_at))
                                .collect();
                            assert_eq!(slim, whole, "outcomes {f:?}");
                            checked += 1;
                        }
                    }
                }
            }
        }
    }
    assert!(
        checked >= 500 && nonempty > 150,
        "{checked} pages, {nonempty} not empty"
    );
}

#[tokio::test]
async fn sqlite_deploy_pages_are_the_brute_force_pages() {
    every_page_is_the_brute_force_page(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn postgres_deploy_pages_are_the_brute_force_pages() {
    every_page_is_the_brute_force_page(TestDb::postgres().await).await;
}
