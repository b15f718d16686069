//! The query plans of the lists that grow with a company's history (issue 15
//! item 2): releases, deploys and builds pages, the board and the
//! statistics' build timings, checked with the databases' own EXPLAIN on
//! SQLite and PostgreSQL, for the statements the store really sends.
//!
//! How: every statement the store runs is caught from sqlx's own statement
//! log; on PostgreSQL the server's `auto_explain` (loaded on the test's
//! connection) sends the plan it really executed, with the real parameters,
//! back as a notice. On SQLite each statement caught is explained with
//! `EXPLAIN QUERY PLAN` (no statistics are gathered there, as in production,
//! where Prism never runs ANALYZE on SQLite). PostgreSQL's statistics are
//! gathered with ANALYZE, as autovacuum would.
//!
//! The rule checked: no statement reads a whole table that grows with
//! history (releases, deploys, builds) — no sequential scan, and no sort of
//! every row of such a table for a page — except where the plan is by
//! design a newest-first walk of the primary key that stops at the page
//! (the list of everything, for an administrator).

use std::collections::BTreeSet;
use std::sync::{Mutex, OnceLock};

use prism_store::deploys::{self, DeployFilter};
use prism_store::releases::{self, ListPlan, ReleaseFilter};
use prism_store::slots::{self, BoardScope};
use prism_store::{builds, environments, users, Store};
use prism_test_support::TestDb;
use sqlx::AnyConnection;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

const PROJECTS: i64 = 30;
const APPS_PER_PROJECT: i64 = 10;
const RELEASES: i64 = 30_000;
const DEPLOYS: i64 = 6_000;
const BUILDS: i64 = 6_000;

/// What sqlx logged: the statements it ran, and PostgreSQL's notices (auto_explain's plans).
#[derive(Default)]
struct Caught {
    statements: Vec<String>,
    notices: Vec<String>,
}

fn caught() -> &'static Mutex<Caught> {
    static CAUGHT: OnceLock<Mutex<Caught>> = OnceLock::new();
    CAUGHT.get_or_init(Default::default)
}

struct Catch;

#[derive(Default)]
struct Fields {
    summary: String,
    statement: String,
    message: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "summary" => self.summary = value.to_owned(),
            "db.statement" => self.statement = value.to_owned(),
            "message" => self.message = value.to_owned(),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for Catch {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let target = event.metadata().target();
        if target != "sqlx::query" && target != "sqlx::postgres::notice" {
            return;
        }
        let mut f = Fields::default();
        event.record(&mut f);
        let mut c = caught().lock().unwrap();
        if target == "sqlx::query" {
            // sqlx logs a short statement as its summary, a long one in db.statement.
            let sql = if f.statement.trim().is_empty() {
                f.summary
            } else {
                f.statement
            };
            c.statements.push(sql.trim().to_owned());
        } else {
            c.notices.push(f.message);
        }
    }
}

/// One test at a time: the catch is process-wide (SQLite runs statements on its own thread).
async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    static ONE: OnceLock<tokio::sync::Mutex<()>> = OnceLock::new();
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Catch)).unwrap();
    });
    ONE.get_or_init(Default::default).lock().await
}

struct Seeded {
    member_of_one: i64,
    member_of_many: i64,
    project: i64,
    app: i64,
    env: i64,
    middle_release: i64,
    middle_deploy: i64,
}

/// Projects of applications with a long history, bulk-inserted; a member
/// of one project and one of most projects.
async fn seed(store: &Store) -> Seeded {
    let mut tx = store.begin().await.unwrap();
    for (name, position) in [("fat", 10), ("uat", 20), ("prd", 30)] {
        environments::create(
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
    }
    users::create(&mut tx, "one", "", "hash", false).await.unwrap();
    users::create(&mut tx, "many", "", "hash", false).await.unwrap();
    let statements: [String; 7] = [
        (format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {PROJECTS}) \
             INSERT INTO projects (name, description, created_at) SELECT 'team-' || i, '', 1 FROM n"
        )),
        (format!(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {} - 1) \
             INSERT INTO applications (project_id, name, git_url, build_settings, template_settings, created_at, updated_at) \
             SELECT (SELECT MIN(id) FROM projects) + i / {APPS_PER_PROJECT}, 'app-' || i, 'https://git.example/a.git', '{{}}', '{{}}', 1, 1 FROM n",
            PROJECTS * APPS_PER_PROJECT
        )),
        ("INSERT INTO memberships (project_id, user_id, role, created_at) \
             SELECT MIN(p.id), (SELECT id FROM users WHERE username = 'one'), 'developer', 1 FROM projects p".into()),
        ("INSERT INTO memberships (project_id, user_id, role, created_at) \
             SELECT p.id, (SELECT id FROM users WHERE username = 'many'), 'developer', 1 FROM projects p \
             WHERE p.id > (SELECT MIN(id) + 2 FROM projects)".into()),
        // Releases spread over every application; `closed` is rare (1 in 100).
        (format!(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {RELEASES} - 1) \
             INSERT INTO releases (app_id, git_ref, change_note, creator_id, state, created_at, updated_at) \
             SELECT (SELECT MIN(id) FROM applications) + (i * 31) % {}, 'main', 'n', (SELECT MIN(id) FROM users), \
             CASE WHEN i % 100 = 0 THEN 'closed' WHEN i % 3 = 0 THEN 'built' ELSE 'created' END, i, i FROM n",
            PROJECTS * APPS_PER_PROJECT
        )),
        (format!(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {DEPLOYS} - 1) \
             INSERT INTO deploys (release_id, app_id, env_id, kind, state, requested_by, created_at, updated_at) \
             SELECT r.id, r.app_id, (SELECT MIN(id) FROM environments), 'deploy', \
             CASE WHEN n.i BETWEEN 1 AND 40 THEN 'awaiting_review' ELSE 'succeeded' END, 'x', n.i, n.i \
             FROM n JOIN releases r ON r.id = (SELECT MIN(id) FROM releases) + n.i * 5"
        )),
        (format!(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {BUILDS} - 1) \
             INSERT INTO builds (release_id, app_id, state, executor, settings, requested_by, created_at, started_at, finished_at, updated_at) \
             SELECT r.id, r.app_id, 'succeeded', 'local', '{{}}', 'x', n.i, n.i, n.i + 5, n.i \
             FROM n JOIN releases r ON r.id = (SELECT MIN(id) FROM releases) + n.i * 5"
        )),
    ];
    for sql in statements {
        sqlx::query(&sql)
            .execute(&mut *tx)
            .await
            .unwrap_or_else(|e| panic!("{e}: {sql}"));
    }
    let mut scalar = async |sql: &str| -> i64 { sqlx::query_scalar(sql).fetch_one(&mut *tx).await.unwrap() };
    let s = Seeded {
        member_of_one: scalar("SELECT id FROM users WHERE username = 'one'").await,
        member_of_many: scalar("SELECT id FROM users WHERE username = 'many'").await,
        project: scalar("SELECT MAX(id) FROM projects").await,
        app: scalar("SELECT MIN(id) + 7 FROM applications").await,
        env: scalar("SELECT MIN(id) FROM environments").await,
        middle_release: scalar("SELECT MIN(id) + 15000 FROM releases").await,
        middle_deploy: scalar("SELECT MIN(id) + 3000 FROM deploys").await,
    };
    tx.commit().await.unwrap();
    s
}

async fn plans_of(db: TestDb) {
    let _one = exclusive().await;
    let store = Store::open(&db.url(), 2).await.unwrap();
    let s = seed(&store).await;
    let pg = db.url().starts_with("postgres");
    let mut c = store.conn().await.unwrap();
    if pg {
        for set in [
            "ANALYZE",
            "LOAD 'auto_explain'",
            "SET auto_explain.log_min_duration = 0",
            "SET auto_explain.log_level = 'notice'",
            "SET auto_explain.log_format = 'text'",
        ] {
            sqlx::query(set).execute(&mut *c).await.unwrap();
        }
    }
    let release_page = |f: ReleaseFilter| ReleaseFilter { limit: 50, ..f };
    let release_calls: Vec<(&str, ReleaseFilter)> = vec![
        (
            "releases: everything (administrator)",
            release_page(ReleaseFilter::default()),
        ),
        (
            "releases: everything, a middle page",
            release_page(ReleaseFilter {
                before: Some(s.middle_release),
                ..Default::default()
            }),
        ),
        (
            "releases: everything in a rare state",
            release_page(ReleaseFilter {
                state: Some("closed".into()),
                ..Default::default()
            }),
        ),
        (
            "releases: a member of one project",
            release_page(ReleaseFilter {
                visible_to: Some(s.member_of_one),
                ..Default::default()
            }),
        ),
        (
            "releases: a member of one project, rare state",
            release_page(ReleaseFilter {
                visible_to: Some(s.member_of_one),
                state: Some("closed".into()),
                ..Default::default()
            }),
        ),
        (
            "releases: a member of most projects",
            release_page(ReleaseFilter {
                visible_to: Some(s.member_of_many),
                ..Default::default()
            }),
        ),
        (
            "releases: a member of most projects, a state none is in",
            release_page(ReleaseFilter {
                visible_to: Some(s.member_of_many),
                state: Some("abandoned".into()),
                before: Some(s.middle_release),
                ..Default::default()
            }),
        ),
        (
            "releases: one project",
            release_page(ReleaseFilter {
                project_id: Some(s.project),
                ..Default::default()
            }),
        ),
        (
            "releases: one application, a middle page",
            release_page(ReleaseFilter {
                app_id: Some(s.app),
                before: Some(s.middle_release),
                ..Default::default()
            }),
        ),
        (
            "releases: one application by the per-application plan",
            release_page(ReleaseFilter {
                visible_to: Some(s.member_of_many),
                plan: ListPlan::PerApplication,
                ..Default::default()
            }),
        ),
    ];
    let deploy_page = |f: DeployFilter| DeployFilter { limit: 50, ..f };
    let deploy_calls: Vec<(&str, DeployFilter)> = vec![
        ("deploys: everything", deploy_page(DeployFilter::default())),
        (
            "deploys: awaiting review (dashboard)",
            deploy_page(DeployFilter {
                state: Some(prism_domain::DeployState::AwaitingReview),
                ..Default::default()
            }),
        ),
        (
            "deploys: one application in one environment",
            deploy_page(DeployFilter {
                app_id: Some(s.app),
                env_id: Some(s.env),
                ..Default::default()
            }),
        ),
        (
            "deploys: a member of one project",
            deploy_page(DeployFilter {
                visible_to: Some(s.member_of_one),
                ..Default::default()
            }),
        ),
        (
            "deploys: a member of one project, awaiting review (dashboard)",
            deploy_page(DeployFilter {
                visible_to: Some(s.member_of_one),
                state: Some(prism_domain::DeployState::AwaitingReview),
                ..Default::default()
            }),
        ),
        (
            "deploys: one project's (statistics)",
            deploy_page(DeployFilter {
                project_id: Some(s.project),
                ..Default::default()
            }),
        ),
        (
            "deploys: a middle page",
            deploy_page(DeployFilter {
                before: Some(s.middle_deploy),
                ..Default::default()
            }),
        ),
    ];
    let mut report = vec![];
    for (name, f) in &release_calls {
        let plans = explained(&mut c, pg, async |c| {
            releases::list(c, f).await.unwrap();
        })
        .await;
        if name.ends_with("a state none is in") {
            // Few releases in that state at all: read from the state's
            // index range, not merged over each of the ~270 applications
            // the member sees (what the dashboard's queues did).
            let merged: Vec<&String> = plans
                .iter()
                .map(|(sql, _)| sql)
                .filter(|sql| sql.contains("UNION ALL") || sql.contains("LATERAL") || sql.contains("app_id IN ("))
                .collect();
            assert!(merged.is_empty(), "{name}: merged per application: {merged:?}");
        }
        report.push((name.to_string(), plans));
    }
    for (name, f) in &deploy_calls {
        let plans = explained(&mut c, pg, async |c| {
            deploys::list_filtered(c, f).await.unwrap();
        })
        .await;
        report.push((name.to_string(), plans));
    }
    let plans = explained(&mut c, pg, async |c| {
        builds::recent_timings(c, s.project, 50).await.unwrap();
    })
    .await;
    report.push(("statistics: a project's build timings".into(), plans));
    let plans = explained(&mut c, pg, async |c| {
        slots::board(c, Some(s.member_of_many), BoardScope::Page { after: None, limit: 50 })
            .await
            .unwrap();
    })
    .await;
    report.push(("board: a member's first page".into(), plans));
    let mut wrong = vec![];
    for (name, plans) in &report {
        assert!(!plans.is_empty(), "{name}: no statement caught");
        // Only an administrator's list of everything may walk a whole table
        // newest first: it stops at the page, since every row matches.
        let walk_allowed = name.ends_with("everything (administrator)") || *name == "deploys: everything";
        for (sql, plan) in plans {
            let problems = if pg {
                // Deploys waiting for a person are few by nature: PostgreSQL
                // reads them all (from the state index) and sorts them.
                let few_by_nature = name.starts_with("deploys: awaiting review");
                postgres_problems(plan)
                    .into_iter()
                    .filter(|p| !(few_by_nature && p.contains("state = 'awaiting_review'")))
                    .collect()
            } else {
                sqlite_problems(sql, plan, walk_allowed)
            };
            for p in problems {
                wrong.push(format!("{name}: {p}\n  statement: {sql}\n  plan:\n{plan}"));
            }
            // A window's page and one application's are planned once per
            // connection (planning the page's joins cost more than running
            // them): a generic plan's conditions name the parameters, a
            // plan made for the values names those.
            let one_plan = sql.contains(&format!(" - {}", releases::WINDOW)) || sql.contains("AND r.app_id = $");
            let for_values = [
                ("r.state = $", "state = $"),
                ("r.id < $", "id < $"),
                ("m.user_id = $", "user_id = $"),
                ("r.app_id = $", "app_id = $"),
            ]
            .iter()
            .any(|(in_sql, in_plan)| sql.contains(in_sql) && !plan.contains(in_plan));
            if pg && one_plan && for_values {
                wrong.push(format!(
                    "{name}: planned for its values, not once\n  statement: {sql}\n  plan:\n{plan}"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

const HISTORY: [&str; 3] = ["releases", "deploys", "builds"];

/// The aliases the statement gives the history tables (`releases r` -> `r`).
fn history_aliases(sql: &str) -> Vec<String> {
    let words: Vec<&str> = sql
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    let mut aliases = vec![];
    for (i, w) in words.iter().enumerate() {
        if HISTORY.contains(w) {
            aliases.push(w.to_string());
            let next = words.get(i + 1).copied().unwrap_or("");
            let keyword = [
                "WHERE", "JOIN", "ON", "ORDER", "LIMIT", "GROUP", "LEFT", "AS", "SET", "VALUES",
            ]
            .iter()
            .any(|k| k.eq_ignore_ascii_case(next));
            if !next.is_empty() && !keyword {
                aliases.push(next.to_owned());
            }
        }
    }
    aliases
}

/// SQLite's plan is a tree of (id, parent, detail) rows, flattened here as
/// "id parent detail". Wrong: a full SCAN of a history table (unless the
/// walk is allowed), or a temporary B-tree sorting the rows of a history
/// table read at the same level (sorting every matching row for a page).
fn sqlite_problems(sql: &str, plan: &str, walk_allowed: bool) -> Vec<String> {
    let aliases = history_aliases(sql);
    let nodes: Vec<(i64, i64, &str)> = plan
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ' ');
            Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?, parts.next()?))
        })
        .collect();
    // A lookup by primary key (the rows of a page, one by one) reads one row.
    let reads_history = |detail: &str| {
        let mut w = detail.split(' ');
        matches!(w.next(), Some("SCAN" | "SEARCH"))
            && w.next().is_some_and(|t| aliases.iter().any(|a| a == t))
            && !detail.contains("(rowid=?)")
    };
    let mut problems = vec![];
    for (id, parent, detail) in &nodes {
        if detail.starts_with("SCAN ") && reads_history(detail) && !walk_allowed {
            problems.push(format!("reads a whole history table ({detail})"));
        }
        if detail.starts_with("USE TEMP B-TREE") {
            let sorted: Vec<&str> = nodes
                .iter()
                .filter(|(other, p, d)| other != id && p == parent && reads_history(d))
                .map(|n| n.2)
                .collect();
            if !sorted.is_empty() {
                problems.push(format!("sorts every matching row of {sorted:?} ({detail})"));
            }
        }
    }
    problems
}

/// PostgreSQL's text plan: nodes are the first line and the lines with
/// `->`, nested by indentation. Wrong: a sequential scan of a history
/// table, or a Sort above a read of a history table with no Limit between
/// them (every matching row sorted for a page), unless that read is of one
/// application's rows.
fn postgres_problems(plan: &str) -> Vec<String> {
    // (indentation, the node's line, its detail lines such as Index Cond)
    let mut nodes: Vec<(usize, &str, String)> = vec![];
    for (i, l) in plan.lines().enumerate() {
        match l.find("->") {
            Some(at) => nodes.push((at, l[at + 2..].trim(), String::new())),
            None if i == 0 => nodes.push((0, l.trim(), String::new())),
            None => {
                if let Some(last) = nodes.last_mut() {
                    last.2.push_str(l.trim());
                    last.2.push('\n');
                }
            }
        }
    }
    // A lookup by primary key (the rows of a page, by their ids) reads what it is given.
    let reads_history = |text: &str, details: &str| {
        HISTORY
            .iter()
            .any(|t| text.contains(&format!(" on {t} ")) || text.ends_with(&format!(" on {t}")))
            && text.contains("Scan")
            && !(text.contains("_pkey") && details.contains("Index Cond: (id = "))
    };
    let mut problems = vec![];
    for (i, (indent, text, _)) in nodes.iter().enumerate() {
        if text.starts_with("Seq Scan") && reads_history(text, "") {
            problems.push(format!("reads a whole history table ({text})"));
        }
        if text.starts_with("Sort") || text.starts_with("Incremental Sort") {
            // The subtree: the following nodes indented further. A read of
            // history in it must have a Limit on its way up to this Sort.
            let mut limits: Vec<usize> = vec![];
            for (child_indent, child, details) in nodes[i + 1..].iter().take_while(|(ci, _, _)| ci > indent) {
                limits.retain(|l| l < child_indent);
                if child.starts_with("Limit") {
                    limits.push(*child_indent);
                }
                // One application's rows (the per-application merge's top
                // rows of each) may be sorted: PostgreSQL does so when an
                // application has few, and they grow with its history only.
                let one_application = details.contains("app_id = ");
                // The window (the newest WINDOW ids below the cursor: the
                // index range starts at its floor) holds at most WINDOW
                // rows whatever the history; its one plan for every cursor
                // may sort it when PostgreSQL expects few rows in it.
                let window = details.contains(&format!(" - {})", releases::WINDOW));
                if reads_history(child, details) && limits.is_empty() && !one_application && !window {
                    problems.push(format!("sorts every matching row of: {child}\n{details}"));
                }
            }
        }
    }
    problems
}

/// Runs `call`, returns each statement it sent that reads a table that
/// grows with history, with the plan the database chose for it.
async fn explained(
    c: &mut AnyConnection,
    pg: bool,
    call: impl AsyncFnOnce(&mut AnyConnection),
) -> Vec<(String, String)> {
    *caught().lock().unwrap() = Caught::default();
    call(c).await;
    let Caught { statements, notices } = std::mem::take(&mut *caught().lock().unwrap());
    let grows = |sql: &str| ["releases", "deploys", "builds"].iter().any(|t| sql.contains(t));
    if pg {
        notices
            .into_iter()
            .filter(|n| n.contains("Query Text:") && grows(n))
            .map(|n| {
                // "duration: ... plan:", "Query Text: <statement>", then the plan.
                let lines: Vec<&str> = n.lines().collect();
                let at = lines.iter().position(|l| l.starts_with("Query Text:")).unwrap_or(0);
                (lines[at].to_owned(), lines[at + 1..].join("\n"))
            })
            .collect()
    } else {
        let mut out = vec![];
        let unique: BTreeSet<String> = statements.into_iter().filter(|s| grows(s)).collect();
        for sql in unique {
            let rows: Vec<(i64, i64, i64, String)> = sqlx::query_as(&format!("EXPLAIN QUERY PLAN {sql}"))
                .fetch_all(&mut *c)
                .await
                .unwrap_or_else(|e| panic!("explaining {sql}: {e}"));
            let plan = rows
                .into_iter()
                .map(|(id, parent, _, detail)| format!("{id} {parent} {detail}"))
                .collect::<Vec<_>>()
                .join("\n");
            out.push((sql, plan));
        }
        out
    }
}

#[tokio::test]
async fn sqlite_list_plans_never_read_a_whole_history_table() {
    plans_of(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn postgres_list_plans_never_read_a_whole_history_table() {
    plans_of(TestDb::postgres().await).await;
}

/// A statement PostgreSQL expects to be costly (here a cross join of two
/// history tables, estimated in the millions of rows though they are empty)
/// runs without JIT compilation on the store's connections: compiling cost
/// 1.5 ms a call, and 23 ms on a connection's first, for statements that
/// read a page by index in a few milliseconds.
#[tokio::test]
async fn postgres_statements_are_never_jit_compiled() {
    let db = TestDb::postgres().await;
    let store = Store::open(&db.url(), 1).await.unwrap();
    let mut c = store.conn().await.unwrap();
    let plan: Vec<String> = sqlx::query_scalar(
        "EXPLAIN (ANALYZE, COSTS ON) SELECT COUNT(*) FROM releases a CROSS JOIN releases b CROSS JOIN deploys d",
    )
    .fetch_all(&mut *c)
    .await
    .unwrap();
    let plan = plan.join("\n");
    let estimate: f64 = plan
        .split("cost=")
        .nth(1)
        .and_then(|c| c.split("..").nth(1))
        .and_then(|c| c.split(' ').next())
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no cost in the plan:\n{plan}"));
    assert!(
        estimate > 100_000.0,
        "the statement must cost more than jit_above_cost: {plan}"
    );
    assert!(!plan.contains("JIT:"), "compiled with JIT:\n{plan}");
}
