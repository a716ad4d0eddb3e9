//! Opening the pool and bringing the schema up to date.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, RuntimeErr,
    SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
};

use crate::store::{Backend, StoreError};

/// How long a SQLite writer waits for the lock held by another connection or process before
/// failing with "database is locked".
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections of the file-backed SQLite pool: WAL lets readers run beside the one writer.
const SQLITE_POOL_SIZE: u32 = 4;
/// Key of the PostgreSQL advisory lock that serialises migrations across replicas starting at
/// once ("tessera" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x0074_6573_7365_7261;

pub(crate) async fn connect(url: &str) -> Result<DatabaseConnection, StoreError> {
    match scheme(url)? {
        Backend::Sqlite => connect_sqlite(url).await,
        Backend::Postgres => connect_postgres(url).await,
    }
}

fn scheme(url: &str) -> Result<Backend, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Backend::Postgres)
    } else {
        Err(StoreError::Config {
            what: "expected a sqlite: or postgres:// URL".into(),
        })
    }
}

async fn connect_postgres(url: &str) -> Result<DatabaseConnection, StoreError> {
    let mut options = ConnectOptions::new(url);
    options
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        // Pinging on every checkout costs a round trip per query; only stale ones need it.
        .test_before_acquire_if_idle_for(Duration::from_secs(30))
        // sqlx logs every statement at INFO otherwise.
        .sqlx_logging(false);
    let db = Database::connect(options).await.map_err(|err| {
        if is_url_error(&err) {
            // Described without the URL: it may hold a password.
            StoreError::Config {
                what: "cannot parse the PostgreSQL URL".into(),
            }
        } else {
            StoreError::db("connect to PostgreSQL")(err)
        }
    })?;

    const OPERATION: &str = "run database migrations";
    let txn = db.begin().await.map_err(StoreError::db(OPERATION))?;
    // Replicas that start together would otherwise race to create the same tables; the lock
    // is released with the transaction, and the others then find nothing pending. Each
    // migration runs in a savepoint of this transaction.
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_advisory_xact_lock($1)",
        [MIGRATION_LOCK_KEY.into()],
    ))
    .await
    .map_err(StoreError::db(OPERATION))?;
    Migrator::up(&txn, None)
        .await
        .map_err(StoreError::db(OPERATION))?;
    txn.commit().await.map_err(StoreError::db(OPERATION))?;
    Ok(db)
}

fn is_url_error(err: &DbErr) -> bool {
    match err {
        DbErr::Conn(RuntimeErr::Internal(_)) => true,
        DbErr::Conn(RuntimeErr::SqlxError(e)) => {
            matches!(**e, sea_orm::sqlx::Error::Configuration(_))
        }
        _ => false,
    }
}

async fn connect_sqlite(url: &str) -> Result<DatabaseConnection, StoreError> {
    let target = SqliteTarget::parse(url)?;
    let Some(file) = &target.file else {
        // Every connection to `:memory:` is its own database unless they share a cache, and
        // the database dies with its last connection: one connection, kept forever. Nothing
        // else can reach it, so it migrates without the precautions below.
        let db = open_sqlite(url, &target, 1, true).await?;
        migrate_sqlite(&db).await?;
        return Ok(db);
    };
    create_parent_dir(file).await?;

    // Migrations get a connection of their own, with foreign keys off: SQLite cannot turn
    // them off inside a transaction, and a later migration that rebuilds a table (SQLite's
    // way to alter one) would otherwise cascade the drop of the old table to its children.
    let single = open_sqlite(url, &target, 1, false).await?;
    let migrated = migrate_sqlite(&single).await;
    let closed = single
        .close()
        .await
        .map_err(StoreError::db("close the migration connection"));
    migrated?;
    closed?;

    open_sqlite(url, &target, SQLITE_POOL_SIZE, true).await
}

/// All pending migrations in one IMMEDIATE transaction: another process starting on the same
/// file waits for the write lock, then finds nothing pending, and a failure leaves the schema
/// as it was.
async fn migrate_sqlite(db: &DatabaseConnection) -> Result<(), StoreError> {
    const OPERATION: &str = "run database migrations";
    let txn = db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        })
        .await
        .map_err(StoreError::db(OPERATION))?;
    Migrator::up(&txn, None)
        .await
        .map_err(StoreError::db(OPERATION))?;
    // Foreign keys may be off on this connection (see `connect_sqlite`); check by hand what
    // they would have refused before committing.
    let violations = txn
        .query_all_raw(Statement::from_string(
            DbBackend::Sqlite,
            "PRAGMA foreign_key_check",
        ))
        .await
        .map_err(StoreError::db(OPERATION))?;
    if !violations.is_empty() {
        return Err(StoreError::Database {
            operation: OPERATION,
            detail: format!(
                "the migrated schema leaves {} rows with a dangling foreign key",
                violations.len()
            ),
        });
    }
    txn.commit().await.map_err(StoreError::db(OPERATION))
}

async fn open_sqlite(
    url: &str,
    target: &SqliteTarget,
    pool_size: u32,
    foreign_keys: bool,
) -> Result<DatabaseConnection, StoreError> {
    let in_memory = target.file.is_none();
    let create = target.create_if_missing;
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(pool_size)
        .acquire_timeout(SQLITE_BUSY_TIMEOUT + Duration::from_secs(5))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(move |opts| {
            // `secure_delete`: a deleted linked account's sealed credentials are zeroed in
            // the file, not left in its free pages. `temp_store`: the statement journal of
            // a multi-row insert (a webhook delivery's 100 events) stays in memory instead
            // of spilling to a temporary file inside the write lock.
            let opts = opts
                .foreign_keys(foreign_keys)
                .busy_timeout(SQLITE_BUSY_TIMEOUT)
                .pragma("secure_delete", "ON")
                .pragma("temp_store", "MEMORY");
            let opts = if create {
                opts.create_if_missing(true)
            } else {
                opts
            };
            if in_memory {
                opts
            } else {
                // WAL: readers never block the writer and the writer never blocks readers.
                // `synchronous` stays FULL: a rotated refresh token must survive a power cut,
                // because the vendor already forgot the previous one.
                opts.journal_mode(SqliteJournalMode::Wal)
            }
        });
    if in_memory {
        options
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None);
    }
    // Switching a new file to WAL takes an exclusive lock that SQLite's busy handler does
    // not wait for, so two processes opening one fresh file can see "database is locked".
    // The other opener finishes within milliseconds: retry a few times before giving up.
    let mut attempt = 0;
    loop {
        match Database::connect(options.clone()).await {
            Ok(db) => return Ok(db),
            Err(e) if attempt < 20 && e.to_string().contains("database is locked") => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(25 * attempt)).await;
            }
            Err(e) => return Err(StoreError::db("open the SQLite database")(e)),
        }
    }
}

async fn create_parent_dir(file: &Path) -> Result<(), StoreError> {
    let Some(parent) = file.parent() else {
        return Ok(());
    };
    if parent.as_os_str().is_empty() {
        return Ok(());
    }
    tokio::fs::create_dir_all(parent)
        .await
        .map_err(|source| StoreError::CreateDir {
            path: parent.to_path_buf(),
            source,
        })
}

/// What a `sqlite:` URL points at, as sqlx will read it.
struct SqliteTarget {
    /// None for an in-memory database.
    file: Option<std::path::PathBuf>,
    /// True when the URL does not say `mode=`: a bare `sqlite://path.db` creates the file,
    /// as the embedded default promises, while `mode=rw` or `mode=ro` keep their meaning.
    create_if_missing: bool,
}

impl SqliteTarget {
    fn parse(url: &str) -> Result<SqliteTarget, StoreError> {
        // A SQLite URL holds no password, so sqlx's reason can be shown.
        let parsed = SqliteConnectOptions::from_str(url).map_err(|e| StoreError::Config {
            what: format!("cannot parse the SQLite URL: {e}"),
        })?;
        let (location, query) = url.split_once('?').unwrap_or((url, ""));
        let mode = query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == "mode")
            .map(|(_, value)| value);
        let location = location
            .trim_start_matches("sqlite:")
            .trim_start_matches("//");
        let in_memory = mode == Some("memory") || location == ":memory:" || location.is_empty();
        Ok(SqliteTarget {
            file: (!in_memory).then(|| parsed.get_filename().to_path_buf()),
            create_if_missing: mode.is_none(),
        })
    }
}
