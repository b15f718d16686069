/// What can go wrong in the store. Handlers map these to HTTP statuses in one
/// place (the server's error module).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The record does not exist.
    #[error("{record} {key:?} not found")]
    NotFound { record: &'static str, key: String },
    /// A record with the same unique key exists already.
    #[error("{record} {key:?} already exists")]
    Duplicate {
        record: &'static str,
        field: &'static str,
        key: String,
    },
    /// The record changed between read and write (another request won).
    #[error("{0}")]
    Conflict(String),
    /// The record is still referenced by others and cannot be removed.
    #[error("{0}")]
    InUse(String),
    /// The store was configured wrongly.
    #[error("{0}")]
    Config(String),
    /// A row that cannot be read back (a bug or a hand edit).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The database was migrated by a newer Prism than this one.
    #[error("the database's schema is version {database}, newer than this Prism knows (version {binary}): run the Prism release that migrated it, or a newer one")]
    NewerSchema { database: i64, binary: i64 },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    pub fn not_found(record: &'static str, key: impl ToString) -> Self {
        Self::NotFound {
            record,
            key: key.to_string(),
        }
    }
}

/// Turns a unique-constraint violation into [`StoreError::Duplicate`].
pub(crate) fn unique<'a>(
    record: &'static str,
    field: &'static str,
    key: &'a str,
) -> impl FnOnce(sqlx::Error) -> StoreError + 'a {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Duplicate {
            record,
            field,
            key: key.to_owned(),
        },
        _ => StoreError::Database(e),
    }
}
