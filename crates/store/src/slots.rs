//! Application x environment slots: what runs where, what is on its way in,
//! and holds placed by testers.

use prism_domain::release::{Hold, SlotView};
use prism_domain::{ReleaseId, ReleaseState};
use serde::Serialize;
use sqlx::AnyConnection;

use crate::{now_ms, Result, StoreError};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SlotRow {
    pub app_id: i64,
    pub env_id: i64,
    pub current_release_id: Option<i64>,
    pub incoming_release_id: Option<i64>,
    pub incoming_state: Option<String>,
    pub incoming_env: Option<i64>,
    pub hold_release_id: Option<i64>,
    pub hold_user: Option<String>,
    pub hold_since: Option<i64>,
    pub hold_note: Option<String>,
    pub hold_expires_at: Option<i64>,
    pub version: i64,
}

impl SlotRow {
    pub fn view(&self) -> SlotView {
        // A hold past its expiry no longer holds, even before the sweep ends it.
        let expired = self.hold_expires_at.is_some_and(|t| t <= crate::now_ms());
        SlotView {
            hold: self.hold_release_id.filter(|_| !expired).map(|r| Hold {
                release: ReleaseId::from_seq(r),
                holder: self.hold_user.clone().unwrap_or_default(),
            }),
            incoming: self.incoming_release_id.and_then(|r| {
                let st = ReleaseState::from_parts(self.incoming_state.as_deref()?, self.incoming_env)?;
                Some((ReleaseId::from_seq(r), st))
            }),
        }
    }
}

/// Creates the slot row if it does not exist yet.
pub async fn ensure(c: &mut AnyConnection, app_id: i64, env_id: i64) -> Result<()> {
    sqlx::query("INSERT INTO slots (app_id, env_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(app_id)
        .bind(env_id)
        .execute(c)
        .await?;
    Ok(())
}

pub async fn get(c: &mut AnyConnection, app_id: i64, env_id: i64) -> Result<SlotRow> {
    ensure(&mut *c, app_id, env_id).await?;
    sqlx::query_as(
        "SELECT s.app_id, s.env_id, s.current_release_id, s.incoming_release_id, ir.state AS incoming_state, ir.env_id AS incoming_env, \
         s.hold_release_id, s.hold_user, s.hold_since, s.hold_note, s.hold_expires_at, s.version \
         FROM slots s LEFT JOIN releases ir ON ir.id = s.incoming_release_id WHERE s.app_id = $1 AND s.env_id = $2",
    )
    .bind(app_id)
    .bind(env_id)
    .fetch_optional(c)
    .await?
    .ok_or_else(|| StoreError::not_found("slot", format!("{app_id}/{env_id}")))
}

pub async fn hold(
    c: &mut AnyConnection,
    app_id: i64,
    env_id: i64,
    release: i64,
    user: &str,
    note: &str,
    expires_at: Option<i64>,
) -> Result<()> {
    let n = sqlx::query(
        "UPDATE slots SET hold_release_id = $3, hold_user = $4, hold_since = $5, hold_note = $6, hold_expires_at = $7, version = version + 1 \
         WHERE app_id = $1 AND env_id = $2 AND hold_release_id IS NULL",
    )
    .bind(app_id)
    .bind(env_id)
    .bind(release)
    .bind(user)
    .bind(now_ms())
    .bind(note)
    .bind(expires_at)
    .execute(c)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(StoreError::Conflict("the environment is already held".into()));
    }
    Ok(())
}

pub async fn release_hold(c: &mut AnyConnection, app_id: i64, env_id: i64, expected_release: i64) -> Result<()> {
    let n = sqlx::query(
        "UPDATE slots SET hold_release_id = NULL, hold_user = NULL, hold_since = NULL, hold_note = NULL, hold_expires_at = NULL, \
         version = version + 1 WHERE app_id = $1 AND env_id = $2 AND hold_release_id = $3",
    )
    .bind(app_id)
    .bind(env_id)
    .bind(expected_release)
    .execute(c)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(StoreError::Conflict(
            "the hold changed meanwhile; reload and retry".into(),
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ExpiredHold {
    pub app_id: i64,
    pub env_id: i64,
    pub hold_user: Option<String>,
    pub hold_release_id: Option<i64>,
}

/// Ends every hold whose expiry has passed; returns the holds ended.
pub async fn expire_holds(c: &mut AnyConnection) -> Result<Vec<ExpiredHold>> {
    let now = now_ms();
    let expired: Vec<ExpiredHold> = sqlx::query_as(
        "SELECT app_id, env_id, hold_user, hold_release_id FROM slots WHERE hold_expires_at IS NOT NULL AND hold_expires_at <= $1",
    )
    .bind(now)
    .fetch_all(&mut *c)
    .await?;
    for h in &expired {
        sqlx::query(
            "UPDATE slots SET hold_release_id = NULL, hold_user = NULL, hold_since = NULL, hold_note = NULL, hold_expires_at = NULL, \
             version = version + 1 WHERE app_id = $1 AND env_id = $2 AND hold_expires_at <= $3",
        )
        .bind(h.app_id)
        .bind(h.env_id)
        .bind(now)
        .execute(&mut *c)
        .await?;
    }
    Ok(expired)
}

/// One cell of the applications x environments board.
#[derive(Debug, Clone, Serialize)]
pub struct BoardCell {
    pub application: String,
    pub environment: String,
    pub current_release: Option<String>,
    pub incoming_release: Option<String>,
    pub incoming_state: Option<String>,
    pub held_by: Option<String>,
    pub hold_release: Option<String>,
    pub hold_since: Option<i64>,
    pub hold_note: Option<String>,
    pub hold_expires_at: Option<i64>,
}

/// Which applications' rows of the board to read.
#[derive(Debug, Clone, Copy)]
pub enum BoardScope<'a> {
    /// One application's row.
    Application(i64),
    /// Up to `limit` applications by name, those after `after` (keyset
    /// paging: every page costs what the first does, whatever the total).
    Page { after: Option<&'a str>, limit: i64 },
}

type CellRow = (
    String,
    String,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<i64>,
);

const CELL_COLUMNS: &str = "a.name, e.name, s.current_release_id, s.incoming_release_id, ir.state, s.hold_user, \
     s.hold_release_id, s.hold_since, s.hold_note, s.hold_expires_at";

fn cells(rows: Vec<CellRow>) -> Vec<BoardCell> {
    let rid = |r: Option<i64>| r.map(|r| ReleaseId::from_seq(r).to_string());
    rows.into_iter()
        .map(
            |(application, environment, cur, inc, inc_state, holder, hold_rel, since, note, exp)| BoardCell {
                application,
                environment,
                current_release: rid(cur),
                incoming_release: rid(inc),
                incoming_state: inc_state,
                held_by: holder,
                hold_release: rid(hold_rel),
                hold_since: since,
                hold_note: note,
                hold_expires_at: exp,
            },
        )
        .collect()
}

/// The board (every environment's cell) for the applications of `scope`
/// that the user may see (`visible_to`; `None`: all), by application name.
pub async fn board(c: &mut AnyConnection, visible_to: Option<i64>, scope: BoardScope<'_>) -> Result<Vec<BoardCell>> {
    let (app_id, after, limit) = match scope {
        BoardScope::Application(id) => (Some(id), None, 1),
        BoardScope::Page { after, limit } => (None, after, limit),
    };
    // The page of applications first (by the unique name index), then their cells.
    let rows: Vec<CellRow> = sqlx::query_as(&format!(
        "SELECT {CELL_COLUMNS} FROM \
         (SELECT a.id, a.name FROM applications a \
          WHERE (CAST($1 AS BIGINT) IS NULL OR EXISTS (SELECT 1 FROM memberships m WHERE m.project_id = a.project_id AND m.user_id = $1)) \
          AND (CAST($2 AS BIGINT) IS NULL OR a.id = $2) AND (CAST($3 AS TEXT) IS NULL OR a.name > $3) \
          ORDER BY a.name LIMIT $4) a \
         CROSS JOIN environments e LEFT JOIN slots s ON s.app_id = a.id AND s.env_id = e.id \
         LEFT JOIN releases ir ON ir.id = s.incoming_release_id \
         ORDER BY a.name, e.position, e.id"
    ))
    .bind(visible_to)
    .bind(app_id)
    .bind(after)
    .bind(limit)
    .fetch_all(c)
    .await?;
    Ok(cells(rows))
}

/// Every held cell the user may see (the dashboard lists them all, whatever
/// page of the board it shows): only slots with a hold are read.
pub async fn held(c: &mut AnyConnection, visible_to: Option<i64>) -> Result<Vec<BoardCell>> {
    let rows: Vec<CellRow> = sqlx::query_as(&format!(
        "SELECT {CELL_COLUMNS} FROM slots s JOIN applications a ON a.id = s.app_id JOIN environments e ON e.id = s.env_id \
         LEFT JOIN releases ir ON ir.id = s.incoming_release_id \
         WHERE s.hold_user IS NOT NULL \
         AND (CAST($1 AS BIGINT) IS NULL OR EXISTS (SELECT 1 FROM memberships m WHERE m.project_id = a.project_id AND m.user_id = $1)) \
         ORDER BY a.name, e.position, e.id"
    ))
    .bind(visible_to)
    .fetch_all(c)
    .await?;
    Ok(cells(rows))
}

/// How many applications the user may see.
pub async fn visible_applications(c: &mut AnyConnection, visible_to: Option<i64>) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM applications a WHERE CAST($1 AS BIGINT) IS NULL \
         OR EXISTS (SELECT 1 FROM memberships m WHERE m.project_id = a.project_id AND m.user_id = $1)",
    )
    .bind(visible_to)
    .fetch_one(c)
    .await?)
}

/// Records `release` as what runs in the environment (after a rollback).
pub async fn set_current(c: &mut AnyConnection, app_id: i64, env_id: i64, release: i64) -> Result<()> {
    ensure(&mut *c, app_id, env_id).await?;
    sqlx::query("UPDATE slots SET current_release_id = $3, version = version + 1 WHERE app_id = $1 AND env_id = $2")
        .bind(app_id)
        .bind(env_id)
        .bind(release)
        .execute(c)
        .await?;
    Ok(())
}
