//! Every value sealed with Prism's key, found by the schema's convention
//! rather than a hand list: a sealed column's name ends in `_enc` and its
//! table has an integer `id` key. Key rotation re-seals them all, and the
//! start-up check counts those the configured key cannot open, so a sealed
//! column added by a later migration is covered without anyone remembering.

use sqlx::AnyConnection;

use crate::{Backend, Result, Store, StoreError};

/// One sealed column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedColumn {
    pub table: String,
    pub column: String,
}

/// The sealed columns of the store's schema, in a stable order.
pub async fn columns(c: &mut AnyConnection, backend: Backend) -> Result<Vec<SealedColumn>> {
    let pairs: Vec<(String, String)> = match backend {
        Backend::Sqlite => {
            sqlx::query_as(
                "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p \
                 WHERE m.type = 'table' AND p.name LIKE '%\\_enc' ESCAPE '\\' ORDER BY m.name, p.name",
            )
            .fetch_all(&mut *c)
            .await?
        }
        Backend::Postgres => {
            sqlx::query_as(
                "SELECT CAST(table_name AS TEXT), CAST(column_name AS TEXT) FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND column_name LIKE '%\\_enc' \
                 ORDER BY table_name, column_name",
            )
            .fetch_all(&mut *c)
            .await?
        }
    };
    Ok(pairs
        .into_iter()
        .map(|(table, column)| SealedColumn { table, column })
        .collect())
}

/// How many sealed values there are, and how many of them `opens` refuses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SealedCount {
    pub total: usize,
    pub unopenable: usize,
}

/// Counts the stored sealed values and those `opens` cannot open.
pub async fn count(store: &Store, opens: impl Fn(&[u8]) -> bool) -> Result<SealedCount> {
    let mut c = store.conn().await?;
    let mut out = SealedCount::default();
    for col in columns(&mut c, store.backend()).await? {
        let values: Vec<Vec<u8>> = sqlx::query_scalar(&format!(
            "SELECT {c} FROM {t} WHERE {c} IS NOT NULL",
            c = col.column,
            t = col.table
        ))
        .fetch_all(&mut *c)
        .await?;
        out.total += values.len();
        out.unopenable += values.iter().filter(|v| !opens(v)).count();
    }
    Ok(out)
}

/// Replaces every sealed value with `reseal(value)` in one transaction: all
/// or nothing. Returns how many values were re-sealed. The first value
/// `reseal` refuses aborts the whole change, naming its table and row.
pub async fn reseal_all<E: std::fmt::Display>(
    store: &Store,
    reseal: impl Fn(&[u8]) -> std::result::Result<Vec<u8>, E>,
) -> Result<usize> {
    let mut tx = store.begin().await?;
    let mut done = 0;
    for col in columns(&mut tx, store.backend()).await? {
        let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(&format!(
            "SELECT id, {c} FROM {t} WHERE {c} IS NOT NULL ORDER BY id",
            c = col.column,
            t = col.table
        ))
        .fetch_all(&mut *tx)
        .await?;
        for (id, value) in rows {
            let fresh = reseal(&value).map_err(|e| {
                StoreError::Conflict(format!(
                    "{}.{} of row {id} cannot be re-sealed: {e}",
                    col.table, col.column
                ))
            })?;
            sqlx::query(&format!(
                "UPDATE {t} SET {c} = $1 WHERE id = $2",
                c = col.column,
                t = col.table
            ))
            .bind(fresh)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            done += 1;
        }
    }
    tx.commit().await?;
    Ok(done)
}
