//! Release orders and their transition history.

use prism_domain::release::{Decision, SlotEffect};
use prism_domain::{ReleaseId, ReleaseState};
use serde::Serialize;
use sqlx::AnyConnection;

use crate::per_application::{self, bind_all, Arg};
use crate::{now_ms, Result, StoreError};

#[derive(Debug, Clone, Serialize)]
pub struct Release {
    /// The release id, e.g. `r42`; also the image tag.
    pub id: ReleaseId,
    pub application: String,
    pub project: String,
    pub git_ref: String,
    pub change_note: String,
    pub creator: String,
    /// created, building, built, build_failed, promoted, deploying, deployed,
    /// deploy_failed, passed, closed or abandoned.
    pub state: &'static str,
    /// The environment the state refers to (promoted/deploying/... in it).
    pub environment: Option<String>,
    pub commit_sha: Option<String>,
    pub image_ref: Option<String>,
    pub image_digest: Option<String>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(skip)]
    pub app_id: i64,
    #[serde(skip)]
    pub project_id: i64,
    #[serde(skip)]
    pub parsed_state: ReleaseState,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    app_id: i64,
    project_id: i64,
    application: String,
    project: String,
    git_ref: String,
    change_note: String,
    creator: String,
    state: String,
    env_id: Option<i64>,
    environment: Option<String>,
    commit_sha: Option<String>,
    image_ref: Option<String>,
    image_digest: Option<String>,
    version: i64,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<Row> for Release {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self> {
        let parsed_state = ReleaseState::from_parts(&r.state, r.env_id).ok_or_else(|| {
            StoreError::Corrupt(format!("release r{} has state {:?} env {:?}", r.id, r.state, r.env_id))
        })?;
        Ok(Self {
            id: ReleaseId::from_seq(r.id),
            application: r.application,
            project: r.project,
            git_ref: r.git_ref,
            change_note: r.change_note,
            creator: r.creator,
            state: parsed_state.kind(),
            environment: r.environment,
            commit_sha: r.commit_sha,
            image_ref: r.image_ref,
            image_digest: r.image_digest,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
            app_id: r.app_id,
            project_id: r.project_id,
            parsed_state,
        })
    }
}

const SELECT: &str = "SELECT r.id, r.app_id, a.project_id, a.name AS application, p.name AS project, r.git_ref, r.change_note, \
    u.username AS creator, r.state, r.env_id, e.name AS environment, r.commit_sha, r.image_ref, r.image_digest, r.version, \
    r.created_at, r.updated_at FROM releases r JOIN applications a ON a.id = r.app_id JOIN projects p ON p.id = a.project_id \
    JOIN users u ON u.id = r.creator_id LEFT JOIN environments e ON e.id = r.env_id";

pub async fn create(
    c: &mut AnyConnection,
    app_id: i64,
    git_ref: &str,
    change_note: &str,
    creator_id: i64,
) -> Result<Release> {
    let now = now_ms();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO releases (app_id, git_ref, change_note, creator_id, state, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'created', $5, $5) RETURNING id",
    )
    .bind(app_id)
    .bind(git_ref)
    .bind(change_note)
    .bind(creator_id)
    .bind(now)
    .fetch_one(&mut *c)
    .await?;
    get(c, ReleaseId::from_seq(id)).await
}

pub async fn get(c: &mut AnyConnection, id: ReleaseId) -> Result<Release> {
    let r: Row = sqlx::query_as(&format!("{SELECT} WHERE r.id = $1"))
        .bind(id.seq())
        .fetch_optional(c)
        .await?
        .ok_or_else(|| StoreError::not_found("release", id))?;
    r.try_into()
}

#[derive(Debug, Default, Clone)]
pub struct ReleaseFilter {
    /// Only releases in projects this user is a member of (None: all, for admins).
    pub visible_to: Option<i64>,
    pub app_id: Option<i64>,
    pub project_id: Option<i64>,
    pub state: Option<String>,
    /// Keyset cursor: only releases with a smaller id.
    pub before: Option<i64>,
    pub limit: i64,
    /// How the page is found; [`ListPlan::Auto`] unless a test compares them.
    pub plan: ListPlan,
}

/// How [`list`] finds a page of releases (the same page either way).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum ListPlan {
    /// For a member's or a project's releases: per application when they
    /// narrow to at most 100 applications and less than one in ten of
    /// all; else a
    /// scan that stops at the newest [`WINDOW`] releases (in the state asked
    /// for, below the cursor), which holds the whole page unless the
    /// caller's releases are rare among everyone's, and when it does not:
    /// the state's whole index range when at most [`STATE_SCAN_MAX`]
    /// releases are in it, else per application up to
    /// [`PER_APPLICATION_MAX`] applications, else an unbounded scan. Otherwise (one application, or an admin's list) by
    /// scanning, which then reads no more than the page from its index.
    #[default]
    Auto,
    /// Each candidate application's newest matching releases (at most a
    /// page each, from the `(app_id, state, id)` and `(app_id, id)`
    /// indexes), merged: the cost grows with the applications the caller
    /// may see, never with how many releases there are, whatever the state
    /// or cursor asked for. (Under `Auto`, SQLite first reads every
    /// matching release of those applications when there are at most
    /// 5,000; forced, it always merges ordered terms.)
    PerApplication,
    /// Newest first through every release (the primary key, or the
    /// `(state, id)` index), skipping what does not match: cheap when most
    /// releases match, a scan of the whole table when few or none do (a
    /// developer in one project of 500 asking for a state their
    /// applications are not in read all 1,000,000 releases: 0.6 s on
    /// SQLite, 1.4 s on PostgreSQL).
    Scan,
}

/// Up to this many candidate applications, a page is merged per application
/// (at most this many pages' worth of index entries: about 30 ms on
/// PostgreSQL for 1,000 applications, where the window takes 1-2 ms).
pub const PER_APPLICATION_MAX: usize = 1000;
/// How many of the newest releases [`ListPlan::Auto`] looks through first.
pub const WINDOW: i64 = 2000;

/// Newest first, one page. Keyset pagination keeps every page as fast as
/// the first; the page's ids are found first (from indexes only) and only
/// those releases are read whole.
pub async fn list(c: &mut AnyConnection, f: &ReleaseFilter) -> Result<Vec<Release>> {
    // One application's index range, or everyone's releases, already are
    // the page: nothing to narrow.
    let narrowed = f.app_id.is_none() && (f.visible_to.is_some() || f.project_id.is_some());
    let ids = match f.plan {
        ListPlan::Scan => return page_by_scan(c, f, false).await,
        _ if !narrowed => return page_by_scan(c, f, false).await,
        ListPlan::PerApplication => {
            let apps = per_application::candidates(c, f.visible_to, f.project_id, i64::MAX as usize).await?;
            ids_per_application(c, f, &apps, false).await?
        }
        ListPlan::Auto => {
            if let Some(few) = per_application::few_candidates(c, f.visible_to, f.project_id).await? {
                ids_per_application(c, f, &few, false).await?
            } else {
                let recent = page_by_scan(c, f, true).await?;
                // A full page, or a window that reached the first release: the page.
                if recent.len() as i64 >= f.limit || window_floor(c, f).await?.is_none() {
                    return Ok(recent);
                }
                // A state few releases are in at all (a queue on the
                // dashboard: failed builds, releases awaiting a tester):
                // its whole `(state, id)` range costs less than merging
                // every visible application's.
                if f.state.is_some() && at_most_in_state(c, f, STATE_SCAN_MAX).await? {
                    return page_by_scan(c, f, false).await;
                }
                let apps = per_application::candidates(c, f.visible_to, f.project_id, PER_APPLICATION_MAX + 1).await?;
                if apps.len() > PER_APPLICATION_MAX {
                    return page_by_scan(c, f, false).await;
                }
                ids_per_application(c, f, &apps, true).await?
            }
        }
    };
    let rows: Vec<Row> = per_application::rows_by_ids_key_first(c, SELECT, "releases r", &ids).await?;
    rows.into_iter().map(Release::try_from).collect()
}

/// The lowest id of the window: the newest [`WINDOW`] ids below the
/// cursor (ids come from one sequence, so this is about as many releases,
/// whatever their state); None when the window reaches the first release.
async fn window_floor(c: &mut AnyConnection, f: &ReleaseFilter) -> Result<Option<i64>> {
    let newest: Option<i64> = match f.before {
        Some(b) => sqlx::query_scalar("SELECT MAX(id) FROM releases WHERE id < $1").bind(b),
        None => sqlx::query_scalar("SELECT MAX(id) FROM releases"),
    }
    .fetch_one(c)
    .await?;
    Ok(newest.map(|n| n - WINDOW + 1).filter(|floor| *floor > 1))
}

/// Up to this many releases in the state asked for (below the cursor), the
/// page is read from the `(state, id)` index whatever the caller may see:
/// at most this many index entries, each checked against the caller's
/// memberships (about 1-2 ms), where merging 1,000 applications' index
/// ranges takes 5-10 ms.
pub const STATE_SCAN_MAX: i64 = 2000;

/// Whether at most `cap` releases are in `f`'s state below its cursor
/// (counted from the `(state, id)` index, stopping after `cap + 1`).
async fn at_most_in_state(c: &mut AnyConnection, f: &ReleaseFilter, cap: i64) -> Result<bool> {
    let (conds, args) = state_and_cursor(f);
    let sql = format!(
        "SELECT COUNT(*) FROM (SELECT 1 FROM releases r WHERE 1 = 1{conds} LIMIT {}) x",
        cap + 1
    );
    let n: i64 = bind_all(sqlx::query_scalar::<_, i64>(&sql), &args).fetch_one(c).await?;
    Ok(n <= cap)
}

/// The conditions on `r` of state and cursor, with their parameters from `$1`.
fn state_and_cursor(f: &ReleaseFilter) -> (String, Vec<Arg<'_>>) {
    let mut conds = String::new();
    let mut args = vec![];
    if let Some(s) = f.state.as_deref() {
        args.push(Arg::Text(s));
        conds.push_str(&format!(" AND r.state = ${}", args.len()));
    }
    if let Some(b) = f.before {
        args.push(Arg::Int(b));
        conds.push_str(&format!(" AND r.id < ${}", args.len()));
    }
    (conds, args)
}

/// Up to this many matching releases of the candidate applications, SQLite
/// reads them all (in index order, no sort) and the page is taken from them:
/// about 1 ms for 500 applications with none matching, where 500 ordered
/// terms take about 18 ms.
const SQLITE_MATCHES_CAP: usize = 5000;

/// Every release of `apps` matching `conds`, if there are at most `cap`.
async fn sqlite_matches_up_to(
    c: &mut AnyConnection,
    conds: &str,
    args: &[Arg<'_>],
    apps: &[i64],
    cap: usize,
) -> Result<Option<Vec<i64>>> {
    // The application ids as one JSON array: SQLite binds each parameter by
    // looking its name up in a list, O(n²) for hundreds of them.
    let sql = format!(
        "SELECT r.id FROM releases r WHERE r.app_id IN (SELECT value FROM json_each(${})){conds} LIMIT {}",
        args.len() + 1,
        cap + 1
    );
    let all = bind_all(sqlx::query_scalar::<_, i64>(&sql), args)
        .bind(per_application::json_ids(apps))
        .fetch_all(&mut *c)
        .await?;
    Ok((all.len() <= cap).then_some(all))
}

/// The page's ids merged from each application's newest matching releases.
/// Application ids are bound like the rest, so one statement per number of
/// applications is prepared, not one per caller.
/// With `read_all_first` (after a window found the caller's releases rare),
/// SQLite first tries reading every matching release of those applications.
async fn ids_per_application(
    c: &mut AnyConnection,
    f: &ReleaseFilter,
    apps: &[i64],
    read_all_first: bool,
) -> Result<Vec<i64>> {
    let (conds, args) = state_and_cursor(f);
    if read_all_first && c.backend_name() != "PostgreSQL" {
        if let Some(mut all) = sqlite_matches_up_to(c, &conds, &args, apps, SQLITE_MATCHES_CAP).await? {
            all.sort_unstable_by(|a, b| b.cmp(a));
            all.truncate(f.limit.max(0) as usize);
            return Ok(all);
        }
    }
    per_application::newest_ids(c, "releases r", &conds, &args, apps, f.limit).await
}

/// The page newest first through every release (only the newest
/// [`WINDOW`] ids below the cursor when `windowed`), skipping what does not
/// match; its ids are found first, then only those releases are read whole.
/// Only the filters given become conditions: an `x IS NULL OR ...` form
/// would keep the planner from using the id range of the cursor.
async fn page_by_scan(c: &mut AnyConnection, f: &ReleaseFilter, windowed: bool) -> Result<Vec<Release>> {
    let (mut conds, mut args) = state_and_cursor(f);
    if windowed {
        let below = match f.before {
            Some(b) => {
                args.push(Arg::Int(b));
                format!(" WHERE x.id < ${}", args.len())
            }
            None => String::new(),
        };
        conds.push_str(&format!(
            " AND r.id > (SELECT COALESCE(MAX(x.id), 0) FROM releases x{below}) - {WINDOW}"
        ));
    }
    if let Some(u) = f.visible_to {
        args.push(Arg::Int(u));
        conds.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM memberships m WHERE m.project_id = a.project_id AND m.user_id = ${})",
            args.len()
        ));
    }
    if let Some(a) = f.app_id {
        args.push(Arg::Int(a));
        conds.push_str(&format!(" AND r.app_id = ${}", args.len()));
    }
    if let Some(p) = f.project_id {
        args.push(Arg::Int(p));
        conds.push_str(&format!(" AND a.project_id = ${}", args.len()));
    }
    let sql = format!(
        "{SELECT} WHERE r.id IN (SELECT r.id FROM releases r JOIN applications a ON a.id = r.app_id WHERE 1 = 1{conds} \
         ORDER BY r.id DESC LIMIT {}) ORDER BY r.id DESC",
        f.limit
    );
    let mut q = sqlx::query_as::<_, Row>(&sql);
    for a in args {
        q = match a {
            Arg::Int(i) => q.bind(i),
            Arg::Text(t) => q.bind(t),
        };
    }
    // A window, one application's releases, or everyone's newest first:
    // one plan serves every value of the parameters (the range is bounded,
    // or the `(app_id, state, id)` index or the primary key gives the
    // order), so it is made once per connection.
    let everyone = f.state.is_none() && f.visible_to.is_none() && f.project_id.is_none();
    let one_plan_serves = windowed || f.app_id.is_some() || everyone;
    let rows: Vec<Row> = if one_plan_serves && c.backend_name() == "PostgreSQL" {
        fetch_with_one_plan(c, q).await?
    } else {
        q.fetch_all(c).await?
    };
    rows.into_iter().map(Release::try_from).collect()
}

/// Runs `q` on PostgreSQL with its generic plan (made once per connection
/// and statement) instead of one planned for its values on every call.
/// PostgreSQL keeps planning a prepared statement anew while it estimates
/// that cheaper; for the page's eight-table join that was 0.75 ms of
/// planning for 0.4 ms of execution, on every page (EXPLAIN ANALYZE at a
/// million releases). Only for statements whose best plan does not depend
/// on the values: forced for every statement, a rare state's queue
/// (`state = $1`) got a plan made for a common one, and the dashboard
/// went from 32 to 112 ms. The setting lives in a transaction that is
/// rolled back, so it never outlives the statement, even in a caller's
/// transaction (a savepoint then) or when the request is cancelled.
async fn fetch_with_one_plan<'q>(
    c: &mut AnyConnection,
    q: sqlx::query::QueryAs<'q, sqlx::Any, Row, sqlx::any::AnyArguments<'q>>,
) -> Result<Vec<Row>> {
    use sqlx::{Connection, Executor};
    let mut tx = c.begin().await?;
    tx.execute("SET LOCAL plan_cache_mode = force_generic_plan").await?;
    let rows = q.fetch_all(&mut *tx).await?;
    tx.rollback().await?;
    Ok(rows)
}

/// Who moved a release, how, and the slot version the decision was based on.
pub struct Step<'a> {
    pub action: &'a str,
    pub slot_version: Option<i64>,
    pub actor_id: Option<i64>,
    pub actor: &'a str,
    pub note: &'a str,
}

/// Applies a judged transition: the release moves only if nobody moved it
/// since it was read (`version`), and the slot it enters only if nobody
/// changed that slot since (`slot_version`). Either miss is a conflict, and
/// the caller's transaction rolls back whole.
pub async fn apply(c: &mut AnyConnection, release: &Release, decision: &Decision, step: &Step<'_>) -> Result<()> {
    let Step {
        action,
        slot_version,
        actor_id,
        actor,
        note,
    } = *step;
    let now = now_ms();
    let id = release.id.seq();
    let n = sqlx::query("UPDATE releases SET state = $2, env_id = $3, version = version + 1, updated_at = $4 WHERE id = $1 AND version = $5")
        .bind(id)
        .bind(decision.next.kind())
        .bind(decision.next.env())
        .bind(now)
        .bind(release.version)
        .execute(&mut *c)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(StoreError::Conflict(format!(
            "release {} was changed by another request; reload and retry",
            release.id
        )));
    }
    for effect in &decision.effects {
        let (sql, env, check) = match *effect {
            SlotEffect::SetIncoming(e) => ("UPDATE slots SET incoming_release_id = $3, version = version + 1 WHERE app_id = $1 AND env_id = $2", e, true),
            SlotEffect::ClearIncoming(e) => (
                "UPDATE slots SET incoming_release_id = NULL, version = version + 1 WHERE app_id = $1 AND env_id = $2 AND incoming_release_id = $3",
                e,
                false,
            ),
            SlotEffect::SetCurrent(e) => (
                "UPDATE slots SET current_release_id = $3, incoming_release_id = CASE WHEN incoming_release_id = $3 THEN NULL ELSE incoming_release_id END, \
                 version = version + 1 WHERE app_id = $1 AND env_id = $2",
                e,
                false,
            ),
            SlotEffect::ClearHold(e) => (
                "UPDATE slots SET hold_release_id = NULL, hold_user = NULL, hold_since = NULL, hold_note = NULL, hold_expires_at = NULL, \
                 version = version + 1 WHERE app_id = $1 AND env_id = $2 AND $3 = $3",
                e,
                false,
            ),
        };
        crate::slots::ensure(&mut *c, release.app_id, env).await?;
        let checked_sql = format!("{sql} AND version = $4");
        let q = if check {
            let v = slot_version.ok_or_else(|| StoreError::Conflict("slot version missing".into()))?;
            sqlx::query(&checked_sql)
                .bind(release.app_id)
                .bind(env)
                .bind(id)
                .bind(v)
        } else {
            sqlx::query(sql).bind(release.app_id).bind(env).bind(id)
        };
        let n = q.execute(&mut *c).await?.rows_affected();
        if check && n == 0 {
            return Err(StoreError::Conflict(
                "the environment was changed by another request; reload and retry".into(),
            ));
        }
    }
    sqlx::query(
        "INSERT INTO release_transitions (release_id, action, from_state, from_env_id, to_state, to_env_id, actor_id, actor, note, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(id)
    .bind(action)
    .bind(release.parsed_state.kind())
    .bind(release.parsed_state.env())
    .bind(decision.next.kind())
    .bind(decision.next.env())
    .bind(actor_id)
    .bind(actor)
    .bind(note)
    .bind(now)
    .execute(c)
    .await?;
    Ok(())
}

pub struct BuildInfo<'a> {
    pub commit_sha: Option<&'a str>,
    pub image_ref: Option<&'a str>,
    pub image_digest: Option<&'a str>,
}

pub async fn set_build_info(c: &mut AnyConnection, id: ReleaseId, info: BuildInfo<'_>) -> Result<()> {
    sqlx::query(
        "UPDATE releases SET commit_sha = COALESCE($2, commit_sha), image_ref = COALESCE($3, image_ref), \
         image_digest = COALESCE($4, image_digest), updated_at = $5 WHERE id = $1",
    )
    .bind(id.seq())
    .bind(info.commit_sha)
    .bind(info.image_ref)
    .bind(info.image_digest)
    .bind(now_ms())
    .execute(c)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Transition {
    pub action: String,
    pub from_state: String,
    pub from_environment: Option<String>,
    pub to_state: String,
    pub to_environment: Option<String>,
    pub actor: String,
    pub note: String,
    pub at: i64,
}

pub async fn history(c: &mut AnyConnection, id: ReleaseId) -> Result<Vec<Transition>> {
    Ok(sqlx::query_as(
        "SELECT t.action, t.from_state, fe.name AS from_environment, t.to_state, te.name AS to_environment, t.actor, t.note, t.at \
         FROM release_transitions t LEFT JOIN environments fe ON fe.id = t.from_env_id LEFT JOIN environments te ON te.id = t.to_env_id \
         WHERE t.release_id = $1 ORDER BY t.id",
    )
    .bind(id.seq())
    .fetch_all(c)
    .await?)
}

/// Release counts by state, for metrics.
pub async fn count_by_state(c: &mut AnyConnection) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as("SELECT state, COUNT(*) FROM releases GROUP BY state")
        .fetch_all(c)
        .await?)
}
