//! A page of the newest rows of a table that grows with history (releases,
//! deploys, builds) for the few applications a caller may see: each
//! application's newest matching rows, read from its `(app_id, ..., id)`
//! index, merged. What it costs grows with those applications and the page,
//! never with the length of the history (issue 15 item 2; the plans are
//! checked by `tests/query_plans.rs`). Walking the whole table newest first
//! and skipping what the caller may not see costs the whole table when the
//! caller's rows are rare.

use sqlx::AnyConnection;

use crate::Result;

/// A parameter of a dynamically built statement.
pub(crate) enum Arg<'a> {
    Int(i64),
    Text(&'a str),
}

pub(crate) fn bind_all<'q, O>(
    mut q: sqlx::query::QueryScalar<'q, sqlx::Any, O, sqlx::any::AnyArguments<'q>>,
    args: &[Arg<'q>],
) -> sqlx::query::QueryScalar<'q, sqlx::Any, O, sqlx::any::AnyArguments<'q>> {
    for a in args {
        q = match *a {
            Arg::Int(i) => q.bind(i),
            Arg::Text(t) => q.bind(t),
        };
    }
    q
}

/// `$first, $first+1, ...`, `n` of them.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The rows whose ids are `ids`, newest first: `select` is the statement up
/// to its WHERE (`SELECT ... FROM releases r`), `alias` the table's alias.
/// The ids are bound, not written in, so each connection prepares the
/// statement once: on SQLite as one JSON array (`json_each`), since SQLite
/// looks each bound parameter's name up in a list, which made binding the
/// 500-1,000 ids of the statistics page's reads cost O(n²) (5% of its
/// profile); on PostgreSQL one parameter each (its text then depends on the
/// page's size only).
pub(crate) async fn rows_by_ids<R>(c: &mut AnyConnection, select: &str, alias: &str, ids: &[i64]) -> Result<Vec<R>>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
{
    if ids.is_empty() {
        return Ok(vec![]);
    }
    if c.backend_name() != "PostgreSQL" {
        let sql = format!("{select} WHERE {alias}.id IN (SELECT value FROM json_each($1)) ORDER BY {alias}.id DESC");
        return Ok(sqlx::query_as::<_, R>(&sql).bind(json_ids(ids)).fetch_all(c).await?);
    }
    let sql = format!(
        "{select} WHERE {alias}.id IN ({}) ORDER BY {alias}.id DESC",
        placeholders(1, ids.len())
    );
    fetch_binding_ids(c, &sql, ids).await
}

/// Runs `sql`, whose parameters `$1..$n` are `ids`, one each.
async fn fetch_binding_ids<R>(c: &mut AnyConnection, sql: &str, ids: &[i64]) -> Result<Vec<R>>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
{
    let mut q = sqlx::query_as::<_, R>(sql);
    for id in ids {
        q = q.bind(*id);
    }
    Ok(q.fetch_all(c).await?)
}

/// [`rows_by_ids`] for a statement that joins a large table to the rows
/// of `from` (`releases r` joined to 5,000 applications): on PostgreSQL the
/// ids are found by the primary key alone first, so the joins follow them
/// row by row. With `id IN ($1, ...)` on the joined statement PostgreSQL
/// hashed the whole applications table for a page of 50 (1.75 ms against
/// 0.55 ms at 5,000 applications, EXPLAIN ANALYZE). Not for every table: on
/// a history table of a few thousand rows (deploys, builds) PostgreSQL then
/// scans it whole instead, which tests/query_plans.rs refuses.
pub(crate) async fn rows_by_ids_key_first<R>(
    c: &mut AnyConnection,
    select: &str,
    from: &str,
    ids: &[i64],
) -> Result<Vec<R>>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
{
    let (table, alias) = from.split_once(' ').unwrap_or((from, from));
    if ids.is_empty() || c.backend_name() != "PostgreSQL" {
        return rows_by_ids(c, select, alias, ids).await;
    }
    let sql = format!(
        "{select} WHERE {alias}.id IN (SELECT k.id FROM {table} k WHERE k.id IN ({})) ORDER BY {alias}.id DESC",
        placeholders(1, ids.len())
    );
    fetch_binding_ids(c, &sql, ids).await
}

/// `[1,2,3]`: ids as one JSON array, for SQLite's `json_each`.
pub(crate) fn json_ids(ids: &[i64]) -> String {
    serde_json::Value::from(ids).to_string()
}

/// Up to this many candidate applications, a page is merged per
/// application at once (at most this many pages' worth of index entries),
/// when they are also less than one in [`SMALL_SHARE`] of all applications:
/// a caller who sees most of them finds a page among the newest rows sooner.
pub const DIRECT: usize = 100;
pub const SMALL_SHARE: usize = 10;
/// Applications per merging statement on SQLite (at most 500 terms in one compound SELECT).
const SQLITE_CHUNK: usize = 400;
/// Applications per merging statement on PostgreSQL.
const POSTGRES_CHUNK: usize = 1001;

/// The applications a caller may see (`visible_to`: through their
/// memberships) within `project_id`, by id, `at_most` of them (a full list
/// means there may be more). Read from the memberships, so it costs what
/// the caller may see.
pub(crate) async fn candidates(
    c: &mut AnyConnection,
    visible_to: Option<i64>,
    project_id: Option<i64>,
    at_most: usize,
) -> Result<Vec<i64>> {
    let mut args = vec![];
    let mut sql = "SELECT a.id FROM applications a WHERE 1 = 1".to_owned();
    if let Some(u) = visible_to {
        args.push(Arg::Int(u));
        sql.push_str(&format!(
            " AND a.project_id IN (SELECT m.project_id FROM memberships m WHERE m.user_id = ${})",
            args.len()
        ));
    }
    if let Some(p) = project_id {
        args.push(Arg::Int(p));
        sql.push_str(&format!(" AND a.project_id = ${}", args.len()));
    }
    // No ORDER BY: the limit ends the read as soon as there are enough.
    sql.push_str(&format!(" LIMIT {at_most}"));
    Ok(bind_all(sqlx::query_scalar::<_, i64>(&sql), &args).fetch_all(c).await?)
}

/// The candidates when merging per application is the cheaper plan: at
/// most [`DIRECT`] of them and less than a tenth of all applications (a
/// page merged per application costs at most that many pages' worth; a walk
/// of the newest rows finds a page of someone who sees most applications
/// in about one page's worth).
pub(crate) async fn few_candidates(
    c: &mut AnyConnection,
    visible_to: Option<i64>,
    project_id: Option<i64>,
) -> Result<Option<Vec<i64>>> {
    let few = candidates(c, visible_to, project_id, DIRECT + 1).await?;
    if few.len() > DIRECT {
        return Ok(None);
    }
    let enough = few.len() * SMALL_SHARE + 1;
    let counted: i64 = sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM (SELECT 1 FROM applications LIMIT {enough}) x"
    ))
    .fetch_one(c)
    .await?;
    Ok((counted as usize >= enough).then_some(few))
}

/// The ids of the newest `limit` rows of `from` (a table and its alias,
/// e.g. `deploys d`) among those of `apps` matching `conds` (` AND ...`
/// conditions on the alias, parameters `$1..` = `args`), newest first.
/// Application ids are bound like the rest, so one statement per number of
/// applications is prepared, not one per caller.
pub(crate) async fn newest_ids(
    c: &mut AnyConnection,
    from: &str,
    conds: &str,
    args: &[Arg<'_>],
    apps: &[i64],
    limit: i64,
) -> Result<Vec<i64>> {
    let alias = from.rsplit(' ').next().unwrap_or(from);
    let mut ids: Vec<i64> = vec![];
    let postgres = c.backend_name() == "PostgreSQL";
    for chunk in apps.chunks(if postgres { POSTGRES_CHUNK } else { SQLITE_CHUNK }) {
        let sql = if postgres {
            // One statement: a lateral index range per application.
            let values: Vec<String> = (0..chunk.len())
                .map(|i| format!("(CAST(${} AS BIGINT))", args.len() + 1 + i))
                .collect();
            format!(
                "SELECT x.id FROM (VALUES {}) AS k(app) CROSS JOIN LATERAL \
                 (SELECT {alias}.id FROM {from} WHERE {alias}.app_id = k.app{conds} ORDER BY {alias}.id DESC LIMIT {limit}) x \
                 ORDER BY x.id DESC LIMIT {limit}",
                values.join(", ")
            )
        } else {
            // SQLite has no LATERAL: one ordered, limited term per application.
            let terms: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let app = args.len() + 1 + i;
                    format!(
                        "SELECT id FROM (SELECT {alias}.id FROM {from} WHERE {alias}.app_id = ${app}{conds} \
                         ORDER BY {alias}.id DESC LIMIT {limit})"
                    )
                })
                .collect();
            format!("{} ORDER BY 1 DESC LIMIT {limit}", terms.join(" UNION ALL "))
        };
        let mut q = bind_all(sqlx::query_scalar::<_, i64>(&sql), args);
        for a in chunk {
            q = q.bind(*a);
        }
        ids.extend(q.fetch_all(&mut *c).await?);
    }
    ids.sort_unstable_by(|a, b| b.cmp(a));
    ids.truncate(limit.max(0) as usize);
    Ok(ids)
}
