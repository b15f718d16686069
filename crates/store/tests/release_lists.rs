//! Release lists at scale (issue 15 item 2): a page of releases is found per
//! application when the filter narrows to few applications (each one's
//! newest matching releases from its index, merged), or by scanning newest
//! first otherwise. Both plans, and the automatic choice, must give exactly
//! the page a brute-force filter of every release gives, for every mix of
//! visibility, project, application, state, cursor and page size, on SQLite
//! and PostgreSQL; including states some users' applications are never in
//! (the case where scanning reads the whole table) and more applications
//! than SQLite merges in one statement.

use prism_store::releases::{self, ListPlan, ReleaseFilter};
use prism_store::{apps, projects, users, Store};
use prism_test_support::TestDb;

const PROJECTS: usize = 9;
const APPS_PER_PROJECT: usize = 50;
const RELEASES: usize = 3000;
const STATES: [&str; 4] = ["built", "created", "closed", "build_failed"];

struct Seeded {
    /// (id, app id, project id, state), oldest first.
    releases: Vec<(i64, i64, i64, &'static str)>,
    projects: Vec<i64>,
    apps: Vec<i64>,
    /// (user id, the projects they are a member of)
    users: Vec<(i64, Vec<i64>)>,
}

async fn seed(store: &Store) -> Seeded {
    let mut tx = store.begin().await.unwrap();
    let json = serde_json::json!({});
    let mut project_ids = vec![];
    let mut app_ids = vec![];
    let mut app_project = vec![];
    // PROJECTS projects of APPS_PER_PROJECT applications, and a tiny one of 3
    // (less than a tenth of all: merged per application at once).
    for p in 0..=PROJECTS {
        let project = projects::create(&mut tx, &format!("team-{p}"), "").await.unwrap();
        project_ids.push(project.id);
        let apps = if p == PROJECTS { 3 } else { APPS_PER_PROJECT };
        for a in 0..apps {
            let app = apps::create(
                &mut tx,
                apps::NewApplication {
                    project_id: project.id,
                    name: &format!("app-{p}-{a}"),
                    git_url: "https://git.example/a.git",
                    build_settings: &json,
                    template_settings: &json,
                },
            )
            .await
            .unwrap();
            app_ids.push(app.id);
            app_project.push(project.id);
        }
    }
    // one: a member of team-1, whose applications are never `built`;
    // some: four projects (200 applications); all: every project (453, more
    // than one SQLite merging statement takes); tiny: the tiny project.
    let mut members = vec![];
    for (name, projects) in [
        ("one", vec![project_ids[1]]),
        ("some", project_ids[2..6].to_vec()),
        ("all", project_ids.clone()),
        ("tiny", vec![project_ids[PROJECTS]]),
    ] {
        let u = users::create(&mut tx, name, "", "hash", false).await.unwrap();
        for p in &projects {
            sqlx::query(
                "INSERT INTO memberships (project_id, user_id, role, created_at) VALUES ($1, $2, 'developer', 1)",
            )
            .bind(p)
            .bind(u.id)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        members.push((u.id, projects));
    }
    let creator = members[0].0;
    let mut rows = vec![];
    for i in 0..RELEASES {
        // Uneven: a few applications release most often.
        let a = if i % 3 == 0 {
            i % 7
        } else {
            (i * 31 + i / 7) % app_ids.len()
        };
        let project = app_project[a];
        let mut state = STATES[(i * 13 + a) % STATES.len()];
        if project == project_ids[1] && state == "built" {
            state = "closed";
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO releases (app_id, git_ref, change_note, creator_id, state, created_at, updated_at) \
             VALUES ($1, 'main', 'n', $2, $3, 1, 1) RETURNING id",
        )
        .bind(app_ids[a])
        .bind(creator)
        .bind(state)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        rows.push((id, app_ids[a], project, state));
    }
    tx.commit().await.unwrap();
    Seeded {
        releases: rows,
        projects: project_ids,
        apps: app_ids,
        users: members,
    }
}

/// The page, found by filtering every release.
fn expected(s: &Seeded, f: &ReleaseFilter) -> Vec<i64> {
    let visible: Option<&Vec<i64>> = f
        .visible_to
        .map(|u| &s.users.iter().find(|(id, _)| *id == u).unwrap().1);
    let mut ids: Vec<i64> = s
        .releases
        .iter()
        .filter(|(id, app, project, state)| {
            visible.is_none_or(|v| v.contains(project))
                && f.app_id.is_none_or(|a| a == *app)
                && f.project_id.is_none_or(|p| p == *project)
                && f.state.as_deref().is_none_or(|st| st == *state)
                && f.before.is_none_or(|b| *id < b)
        })
        .map(|r| r.0)
        .collect();
    ids.sort_unstable_by(|a, b| b.cmp(a));
    ids.truncate(f.limit as usize);
    ids
}

async fn every_plan_gives_the_brute_force_page(db: TestDb) {
    let store = Store::open(&db.url(), 4).await.unwrap();
    let s = seed(&store).await;
    let mut c = store.conn().await.unwrap();
    let middle = s.releases[RELEASES / 2].0;
    let busy_app = s.apps[3];
    let quiet_app = s.apps[APPS_PER_PROJECT + 5];
    let mut checked = 0;
    let mut nonempty = 0;
    let users = s.users.iter().map(|u| Some(u.0));
    for visible_to in std::iter::once(None).chain(users) {
        for project_id in [
            None,
            Some(s.projects[0]),
            Some(s.projects[1]),
            Some(s.projects[PROJECTS]),
        ] {
            for app_id in [None, Some(busy_app), Some(quiet_app)] {
                for state in [
                    None,
                    Some("built"),
                    Some("created"),
                    Some("build_failed"),
                    Some("abandoned"),
                ] {
                    for before in [None, Some(middle)] {
                        for limit in [1, 7, 50] {
                            let mut f = ReleaseFilter {
                                visible_to,
                                app_id,
                                project_id,
                                state: state.map(str::to_owned),
                                before,
                                limit,
                                plan: ListPlan::Auto,
                            };
                            let want = expected(&s, &f);
                            nonempty += usize::from(!want.is_empty());
                            for plan in [ListPlan::Auto, ListPlan::PerApplication, ListPlan::Scan] {
                                f.plan = plan;
                                let got: Vec<i64> = releases::list(&mut c, &f)
                                    .await
                                    .unwrap()
                                    .iter()
                                    .map(|r| r.id.seq())
                                    .collect();
                                assert_eq!(got, want, "{f:?}");
                                checked += 1;
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(
        nonempty > 300,
        "the grid must mostly ask for pages that exist ({nonempty})"
    );
    assert!(checked > 4000);
    // One page after another with the per-application plan meets every
    // release the member of four projects may see once, newest first.
    let some = s.users[1].0;
    let mut seen = vec![];
    let mut before = None;
    loop {
        let f = ReleaseFilter {
            visible_to: Some(some),
            before,
            limit: 50,
            plan: ListPlan::PerApplication,
            ..Default::default()
        };
        let page = releases::list(&mut c, &f).await.unwrap();
        seen.extend(page.iter().map(|r| r.id.seq()));
        match page.last() {
            Some(last) if page.len() == 50 => before = Some(last.id.seq()),
            _ => break,
        }
    }
    let all = expected(
        &s,
        &ReleaseFilter {
            visible_to: Some(some),
            limit: RELEASES as i64,
            ..Default::default()
        },
    );
    assert_eq!(seen, all);
}

#[tokio::test]
async fn sqlite_release_pages_are_the_same_by_application_or_by_scan() {
    every_plan_gives_the_brute_force_page(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn postgres_release_pages_are_the_same_by_application_or_by_scan() {
    every_plan_gives_the_brute_force_page(TestDb::postgres().await).await;
}
