use std::path::PathBuf;

use sea_orm::{DbErr, RuntimeErr, SqlErr};

/// What can go wrong in the store.
///
/// No variant carries a row value, a bound parameter or a database URL, so an error can be
/// logged or summarised to a client as it is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed or refused the statement. `detail` is the driver's summary with
    /// values left out (see `describe`); the driver error itself is not kept as a source,
    /// because some of its messages quote the values that were bound.
    #[error("database error while trying to {operation}: {detail}")]
    Database {
        operation: &'static str,
        detail: String,
    },
    /// A unique value is taken (an environment name, an API key hash).
    #[error("{what} already exists")]
    Conflict { what: String },
    /// A row refers to another that does not exist (e.g. an API key for an unknown environment).
    #[error("{what} does not exist")]
    NotFound { what: String },
    /// The caller passed a value the store refuses to write.
    #[error("invalid {what}")]
    Invalid { what: String },
    /// A stored value cannot be read back (e.g. settings that are not JSON).
    #[error("stored {what} is corrupt")]
    Corrupt { what: String },
    /// The database URL cannot be used.
    #[error("unusable database URL: {what}")]
    Config { what: String },
    /// The directory of the SQLite file cannot be created.
    #[error("cannot create directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// Wraps a driver error for `operation`, which reads after "while trying to".
    pub(crate) fn db(operation: &'static str) -> impl FnOnce(DbErr) -> StoreError {
        move |err| StoreError::Database {
            operation,
            detail: describe(&err),
        }
    }

    /// Like [`StoreError::db`] for inserts, where a unique violation is the caller's conflict
    /// and a foreign-key violation names a missing parent.
    pub(crate) fn insert(
        operation: &'static str,
        conflict: &'static str,
        missing: &'static str,
    ) -> impl FnOnce(DbErr) -> StoreError {
        move |err| match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => StoreError::Conflict {
                what: conflict.to_owned(),
            },
            Some(SqlErr::ForeignKeyConstraintViolation(_)) => StoreError::NotFound {
                what: missing.to_owned(),
            },
            _ => StoreError::db(operation)(err),
        }
    }
}

/// A summary of a driver error that never quotes a bound value or the connection URL.
fn describe(err: &DbErr) -> String {
    match err {
        DbErr::Conn(rt) | DbErr::Exec(rt) | DbErr::Query(rt) => match rt {
            RuntimeErr::SqlxError(e) => describe_sqlx(e),
            // sea-orm's own messages here quote the connection URL, password included.
            RuntimeErr::Internal(_) => "the database driver refused the connection settings".into(),
        },
        DbErr::ConnectionAcquire(e) => e.to_string(),
        // Migration bookkeeping errors name migrations, never data.
        DbErr::Migration(m) | DbErr::Custom(m) => m.clone(),
        DbErr::Type(_) | DbErr::Json(_) | DbErr::TryIntoErr { .. } => {
            "a column holds a value of an unexpected type".into()
        }
        DbErr::RecordNotFound(_) => "the row was not found".into(),
        other => {
            // The remaining variants are fixed texts without values.
            let text = other.to_string();
            text.chars().take(200).collect()
        }
    }
}

fn describe_sqlx(err: &sea_orm::sqlx::Error) -> String {
    use sea_orm::sqlx::Error;
    match err {
        Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            // SQLSTATE class 22 (data exception) messages quote the offending input.
            if code.starts_with("22") {
                format!("data exception (code {code})")
            } else {
                // PostgreSQL keeps the values of a constraint violation in DETAIL, which
                // `message()` leaves out; SQLite names only tables and columns.
                format!("{} (code {code})", db.message())
            }
        }
        Error::Configuration(_) => "invalid connection settings".into(),
        Error::ColumnDecode { index, .. } => format!("cannot decode column {index}"),
        Error::Decode(_) => "cannot decode a value".into(),
        Error::Encode(_) => "cannot encode a value".into(),
        Error::Io(e) => format!("i/o error: {e}"),
        Error::Tls(e) => format!("tls error: {e}"),
        other => other.to_string(),
    }
}

/// The contract code a caller sees for a store failure: a taken unique value is the caller's
/// to fix; everything else is the gateway's.
impl crate::error::HasCode for StoreError {
    fn code(&self) -> crate::error::ErrorCode {
        match self {
            StoreError::Conflict { .. } => crate::error::ErrorCode::BadUserInput,
            _ => crate::error::ErrorCode::Internal,
        }
    }
}
