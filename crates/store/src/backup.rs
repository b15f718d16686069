//! Backups that move between engines: every table of the store, read in one
//! consistent snapshot, written as a portable archive (a gzipped tar of a
//! `manifest.json` and one JSON-lines file per table) that restores into an
//! empty SQLite or PostgreSQL store with ids, timestamps and sequences kept.
//!
//! The manifest names the Prism version and schema version and holds each
//! table's row count and the SHA-256 of its file; a restore checks them all
//! before it writes anything, refuses a store that is in use or a schema
//! newer than this binary knows, and writes everything in one transaction.
//!
//! Values are kept as the three kinds the schema uses on both engines:
//! integers, text and bytes (bytes as base64 in the archive).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Row};

use crate::{Backend, Result, Store, StoreError};

pub const FORMAT: &str = "prism-backup/1";

/// What an archive holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub prism_version: String,
    /// The newest migration applied to the store it came from.
    pub schema_version: i64,
    pub source_engine: String,
    pub created_at_ms: i64,
    /// In the order they must be restored (referenced tables first).
    pub tables: Vec<TableEntry>,
    /// The sealing key, encrypted with a passphrase, when the operator asked
    /// for it (opaque here: the server seals and opens it; the encryption
    /// authenticates it, so an edit is refused when it is opened).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealing_key: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableEntry {
    pub name: String,
    pub columns: Vec<String>,
    pub rows: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Text,
    Bytes,
}

fn kind_of(declared: &str) -> Kind {
    let t = declared.to_ascii_uppercase();
    if t.contains("INT") || t.contains("SERIAL") {
        Kind::Int
    } else if t.contains("BLOB") || t.contains("BYTEA") {
        Kind::Bytes
    } else {
        Kind::Text
    }
}

struct Table {
    name: String,
    columns: Vec<(String, Kind)>,
    /// Tables this one references.
    parents: BTreeSet<String>,
}

fn corrupt(m: impl Into<String>) -> StoreError {
    StoreError::Corrupt(m.into())
}

/// The store's tables (without sqlx's bookkeeping), referenced tables first.
async fn tables(c: &mut AnyConnection, backend: Backend) -> Result<Vec<Table>> {
    let names: Vec<String> =
        match backend {
            Backend::Sqlite => {
                sqlx::query_scalar(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
                 AND name <> '_sqlx_migrations' ORDER BY name",
                )
                .fetch_all(&mut *c)
                .await?
            }
            Backend::Postgres => sqlx::query_scalar(
                "SELECT CAST(table_name AS TEXT) FROM information_schema.tables WHERE table_schema = current_schema() \
                 AND table_type = 'BASE TABLE' AND table_name <> '_sqlx_migrations' ORDER BY table_name",
            )
            .fetch_all(&mut *c)
            .await?,
        };
    let mut out = Vec::new();
    for name in names {
        let (columns, parents) = match backend {
            Backend::Sqlite => {
                let cols: Vec<(String, String)> = sqlx::query_as(&format!(
                    "SELECT name, type FROM pragma_table_info('{name}') ORDER BY cid"
                ))
                .fetch_all(&mut *c)
                .await?;
                let parents: Vec<String> =
                    sqlx::query_scalar(&format!("SELECT \"table\" FROM pragma_foreign_key_list('{name}')"))
                        .fetch_all(&mut *c)
                        .await?;
                (cols, parents)
            }
            Backend::Postgres => {
                let cols: Vec<(String, String)> = sqlx::query_as(
                    "SELECT CAST(column_name AS TEXT), CAST(data_type AS TEXT) FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
                )
                .bind(&name)
                .fetch_all(&mut *c)
                .await?;
                let parents: Vec<String> = sqlx::query_scalar(
                    "SELECT CAST(ccu.table_name AS TEXT) FROM information_schema.table_constraints tc \
                     JOIN information_schema.constraint_column_usage ccu ON ccu.constraint_name = tc.constraint_name \
                     AND ccu.table_schema = tc.table_schema \
                     WHERE tc.constraint_type = 'FOREIGN KEY' AND tc.table_schema = current_schema() AND tc.table_name = $1",
                )
                .bind(&name)
                .fetch_all(&mut *c)
                .await?;
                (cols, parents)
            }
        };
        out.push(Table {
            name: name.clone(),
            columns: columns.into_iter().map(|(n, t)| (n, kind_of(&t))).collect(),
            parents: parents.into_iter().filter(|p| p != &name).collect(),
        });
    }
    order(out)
}

/// Referenced tables before the tables that reference them.
fn order(mut rest: Vec<Table>) -> Result<Vec<Table>> {
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    while !rest.is_empty() {
        let before = rest.len();
        let (ready, wait): (Vec<Table>, Vec<Table>) = rest
            .into_iter()
            .partition(|t| t.parents.iter().all(|p| done.contains(p)));
        for t in ready {
            done.insert(t.name.clone());
            out.push(t);
        }
        rest = wait;
        if rest.len() == before {
            return Err(corrupt(format!(
                "foreign keys form a cycle among {}",
                rest.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")
            )));
        }
    }
    Ok(out)
}

async fn schema_version(c: &mut AnyConnection) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success")
            .fetch_one(c)
            .await?,
    )
}

/// The newest migration this binary knows for `backend`.
pub fn known_schema_version(backend: Backend) -> i64 {
    let m = match backend {
        Backend::Sqlite => &crate::SQLITE_MIGRATIONS,
        Backend::Postgres => &crate::POSTGRES_MIGRATIONS,
    };
    m.iter().map(|m| m.version).max().unwrap_or(0)
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

fn cell(row: &sqlx::any::AnyRow, i: usize, kind: Kind) -> Result<Value> {
    Ok(match kind {
        Kind::Int => row
            .try_get::<Option<i64>, _>(i)?
            .map(Value::from)
            .unwrap_or(Value::Null),
        Kind::Text => row
            .try_get::<Option<String>, _>(i)?
            .map(Value::from)
            .unwrap_or(Value::Null),
        Kind::Bytes => row
            .try_get::<Option<Vec<u8>>, _>(i)?
            .map(|b| serde_json::json!({ "b64": B64.encode(b) }))
            .unwrap_or(Value::Null),
    })
}

/// Writes a backup of `store` to `out` (a gzipped tar) from one snapshot.
pub async fn export<W: Write>(store: &Store, out: W) -> Result<Manifest> {
    export_with_key(store, out, None).await
}

/// [`export`], with the passphrase-encrypted sealing key in the manifest.
pub async fn export_with_key<W: Write>(store: &Store, out: W, sealing_key: Option<Value>) -> Result<Manifest> {
    let mut conn = store.conn().await?;
    let c: &mut AnyConnection = &mut conn;
    match store.backend() {
        // A deferred read transaction: every SELECT below sees one snapshot (WAL).
        Backend::Sqlite => sqlx::query("BEGIN").execute(&mut *c).await?,
        Backend::Postgres => {
            sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .execute(&mut *c)
                .await?
        }
    };
    let result = export_in(store.backend(), c, out, sealing_key).await;
    let _ = sqlx::query("COMMIT").execute(&mut *c).await;
    result
}

async fn export_in<W: Write>(
    backend: Backend,
    c: &mut AnyConnection,
    out: W,
    sealing_key: Option<Value>,
) -> Result<Manifest> {
    let schema = schema_version(c).await?;
    let list = tables(c, backend).await?;
    let gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let mut entries = Vec::new();
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for t in &list {
        let cols: Vec<String> = t.columns.iter().map(|(n, _)| quote(n)).collect();
        let order_by = if t.columns.iter().any(|(n, _)| n == "id") {
            "ORDER BY id"
        } else {
            ""
        };
        let rows = sqlx::query(&format!(
            "SELECT {} FROM {} {order_by}",
            cols.join(", "),
            quote(&t.name)
        ))
        .fetch_all(&mut *c)
        .await?;
        let mut body = Vec::new();
        for row in &rows {
            let values = t
                .columns
                .iter()
                .enumerate()
                .map(|(i, (_, k))| cell(row, i, *k))
                .collect::<Result<Vec<_>>>()?;
            serde_json::to_writer(&mut body, &values).expect("JSON");
            body.push(b'\n');
        }
        entries.push(TableEntry {
            name: t.name.clone(),
            columns: t.columns.iter().map(|(n, _)| n.clone()).collect(),
            rows: rows.len() as u64,
            sha256: hex::encode(Sha256::digest(&body)),
        });
        files.push((format!("tables/{}.jsonl", t.name), body));
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        prism_version: env!("CARGO_PKG_VERSION").into(),
        schema_version: schema,
        source_engine: match backend {
            Backend::Sqlite => "sqlite".into(),
            Backend::Postgres => "postgres".into(),
        },
        created_at_ms: crate::now_ms(),
        tables: entries,
        sealing_key,
    };
    let io = |e: std::io::Error| corrupt(format!("writing the backup: {e}"));
    let mut add = |path: &str, data: &[u8]| -> std::io::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o600);
        h.set_mtime(0);
        h.set_cksum();
        tar.append_data(&mut h, path, data)
    };
    add("manifest.json", &serde_json::to_vec_pretty(&manifest).expect("JSON")).map_err(io)?;
    for (path, data) in &files {
        add(path, data).map_err(io)?;
    }
    tar.into_inner().map_err(io)?.finish().map_err(io)?;
    Ok(manifest)
}

/// Reads an archive fully and checks it: format, every table's checksum
/// and row count. Nothing is written.
pub fn read_archive<R: Read>(input: R) -> Result<(Manifest, BTreeMap<String, Vec<u8>>)> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(input));
    let mut manifest: Option<Manifest> = None;
    let mut files = BTreeMap::new();
    let entries = tar
        .entries()
        .map_err(|e| corrupt(format!("not a Prism backup archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| corrupt(format!("the archive is damaged: {e}")))?;
        let path = entry
            .path()
            .map_err(|e| corrupt(format!("the archive is damaged: {e}")))?
            .to_string_lossy()
            .into_owned();
        let mut data = Vec::new();
        entry
            .read_to_end(&mut data)
            .map_err(|e| corrupt(format!("the archive is damaged or truncated: {e}")))?;
        if path == "manifest.json" {
            manifest = Some(serde_json::from_slice(&data).map_err(|e| corrupt(format!("manifest.json: {e}")))?);
        } else if let Some(name) = path.strip_prefix("tables/").and_then(|p| p.strip_suffix(".jsonl")) {
            files.insert(name.to_string(), data);
        }
    }
    let manifest = manifest.ok_or_else(|| corrupt("the archive has no manifest.json"))?;
    if manifest.format != FORMAT {
        return Err(corrupt(format!("unknown backup format {:?}", manifest.format)));
    }
    for t in &manifest.tables {
        let data = files
            .get(&t.name)
            .ok_or_else(|| corrupt(format!("table {} is missing from the archive", t.name)))?;
        if hex::encode(Sha256::digest(data)) != t.sha256 {
            return Err(corrupt(format!(
                "table {}: checksum mismatch (the archive was changed or damaged)",
                t.name
            )));
        }
        let lines = data.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count() as u64;
        if lines != t.rows {
            return Err(corrupt(format!(
                "table {}: {lines} rows, the manifest says {}",
                t.name, t.rows
            )));
        }
    }
    Ok((manifest, files))
}

/// Restores an archive into `store`, which must be unused (no user yet:
/// a store Prism has served always has its first admin). One transaction:
/// all of it or nothing.
pub async fn import<R: Read>(store: &Store, input: R) -> Result<Manifest> {
    let (manifest, files) = read_archive(input)?;
    let known = known_schema_version(store.backend());
    if manifest.schema_version > known {
        return Err(StoreError::Config(format!(
            "the backup's schema version {} is newer than this Prism knows ({known}); restore it with a newer Prism",
            manifest.schema_version
        )));
    }
    let mut tx = store.begin().await?;
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(&mut *tx)
        .await?;
    if users > 0 {
        return Err(StoreError::Conflict(
            "the target store is in use (it has users); restore into an empty data dir or database".into(),
        ));
    }
    let here = tables(&mut tx, store.backend()).await?;
    let here_names: BTreeSet<&str> = here.iter().map(|t| t.name.as_str()).collect();
    for t in &manifest.tables {
        if !here_names.contains(t.name.as_str()) {
            return Err(StoreError::Config(format!(
                "the backup has table {} that this store does not (schema {} vs {known})",
                t.name, manifest.schema_version
            )));
        }
    }
    // Rows the migrations seeded (stack presets ...) make way for the backup's.
    for t in here.iter().rev() {
        sqlx::query(&format!("DELETE FROM {}", quote(&t.name)))
            .execute(&mut *tx)
            .await?;
    }
    let kinds: BTreeMap<&str, &Table> = here.iter().map(|t| (t.name.as_str(), t)).collect();
    for entry in &manifest.tables {
        let table = kinds[entry.name.as_str()];
        let kind_of_col: BTreeMap<&str, Kind> = table.columns.iter().map(|(n, k)| (n.as_str(), *k)).collect();
        let mut col_kinds = Vec::new();
        for col in &entry.columns {
            let k = kind_of_col.get(col.as_str()).ok_or_else(|| {
                StoreError::Config(format!("the backup's column {}.{col} does not exist here", entry.name))
            })?;
            col_kinds.push(*k);
        }
        let placeholders: Vec<String> = (1..=entry.columns.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({})",
            quote(&entry.name),
            entry.columns.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", "),
            placeholders.join(", ")
        );
        for line in files[&entry.name].split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let values: Vec<Value> =
                serde_json::from_slice(line).map_err(|e| corrupt(format!("table {}: {e}", entry.name)))?;
            if values.len() != col_kinds.len() {
                return Err(corrupt(format!(
                    "table {}: a row has {} values",
                    entry.name,
                    values.len()
                )));
            }
            let mut q = sqlx::query(&sql);
            for (v, k) in values.into_iter().zip(&col_kinds) {
                q = match (k, v) {
                    (Kind::Int, Value::Null) => q.bind(None::<i64>),
                    (Kind::Text, Value::Null) => q.bind(None::<String>),
                    (Kind::Bytes, Value::Null) => q.bind(None::<Vec<u8>>),
                    (Kind::Int, Value::Number(n)) => q.bind(n.as_i64().ok_or_else(|| corrupt("not an integer"))?),
                    (Kind::Text, Value::String(s)) => q.bind(s),
                    (Kind::Bytes, Value::Object(o)) => {
                        let b64 = o
                            .get("b64")
                            .and_then(Value::as_str)
                            .ok_or_else(|| corrupt("bytes without b64"))?;
                        q.bind(B64.decode(b64).map_err(|e| corrupt(format!("bytes: {e}")))?)
                    }
                    (k, v) => return Err(corrupt(format!("table {}: {v} is not a {k:?}", entry.name))),
                };
            }
            q.execute(&mut *tx).await?;
        }
    }
    if store.backend() == Backend::Postgres {
        // New records continue after the restored ids.
        for t in &here {
            if t.columns.iter().any(|(n, _)| n == "id") {
                sqlx::query(&format!(
                    "SELECT setval(pg_get_serial_sequence('{0}', 'id'), COALESCE((SELECT MAX(id) FROM {1}), 0) + 1, false) \
                     WHERE pg_get_serial_sequence('{0}', 'id') IS NOT NULL",
                    t.name,
                    quote(&t.name)
                ))
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    tx.commit().await?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str, parents: &[&str]) -> Table {
        Table {
            name: name.into(),
            columns: vec![],
            parents: parents.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn referenced_tables_come_first_and_cycles_are_refused() {
        let o = order(vec![
            t("deploys", &["releases", "apps"]),
            t("apps", &["projects"]),
            t("projects", &[]),
            t("releases", &["apps"]),
        ])
        .unwrap();
        let names: Vec<&str> = o.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["projects", "apps", "releases", "deploys"]);
        assert!(order(vec![t("a", &["b"]), t("b", &["a"])]).is_err());
    }

    #[test]
    fn declared_types_map_to_three_kinds() {
        assert_eq!(kind_of("BIGINT"), Kind::Int);
        assert_eq!(kind_of("integer"), Kind::Int);
        assert_eq!(kind_of("bigint"), Kind::Int);
        assert_eq!(kind_of("BYTEA"), Kind::Bytes);
        assert_eq!(kind_of("bytea"), Kind::Bytes);
        assert_eq!(kind_of("BLOB"), Kind::Bytes);
        assert_eq!(kind_of("text"), Kind::Text);
    }
}
