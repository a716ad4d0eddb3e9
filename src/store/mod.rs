//! Persistence: the sea-orm entities of Tessera's tables and every query on them.
//!
//! This folder owns the database side of the gateway: opening the pool (SQLite as the
//! embedded default, PostgreSQL for production and several replicas), running the migrations
//! of the `migration` crate on start, and the typed operations on environments, API keys and
//! linked accounts. Callers get plain structs ([`Environment`], [`ApiKey`],
//! [`LinkedAccount`]) and a [`StoreError`]; the entities stay private.
//!
//! It does no HTTP and knows nothing of GraphQL, providers or OAuth. Secrets arrive already
//! transformed: API keys as hex SHA-256 hashes, credentials as ciphertext bytes. Nothing here
//! ever sees a plaintext key or token, and no error or `Debug` output prints credentials.
//!
//! Every value reaches the database as a bound parameter. Timestamps are truncated to
//! microseconds before they are written, which is what PostgreSQL keeps, so both backends
//! hand back exactly what was stored.

mod alerts;
mod api_keys;
mod connect;
mod endpoints;
mod entities;
mod environments;
mod error;
mod group_commit;
mod health;
mod idempotency;
mod linked_accounts;
mod oauth;
mod overrides;
mod rate_limit_budgets;
mod recent;
mod reconcile;
mod upstream_calls;
mod webhooks;

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::{DatabaseConnection, DbBackend};

pub use alerts::{
    Alert, CallTally, DeliveryTally, EventTally, LapsedSubscription, ListingObservation,
};
pub use api_keys::ApiKey;
pub use endpoints::{EndpointDelivery, WebhookEndpoint};
pub use environments::Environment;
pub use error::StoreError;
pub use health::{AccountHealth, ProbeResult};
pub use idempotency::{Claim, IDEMPOTENCY_WINDOW_HOURS};
pub use linked_accounts::{
    LINKED_ACCOUNT_STATUSES, LinkedAccount, LinkedAccountUpdate, NewLinkedAccount,
};
pub use oauth::{AccountEvent, OAuthApp, OAuthState, StateClaim, StateTake};
pub use overrides::{NewOverrideVersion, OverrideQuery, OverrideVersion};
pub use rate_limit_budgets::ExhaustedWindow;
pub use reconcile::{FeedToken, ReconcileState};
pub use upstream_calls::UpstreamCall;
pub use webhooks::{
    EventListener, EventQuery, InboxEvent, InboxItem, UnifiedEvent, WebhookDelivery,
    WebhookSubscription,
};

/// The database of the gateway. Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    /// Webhook deliveries share transactions (see `group_commit`).
    intake: std::sync::Arc<group_commit::GroupCommit>,
    /// Reads the hot paths may take up to a second old (see `recent`).
    recent: std::sync::Arc<RecentReads>,
}

/// The cached reads, each forgotten by the writes through this store that change it.
#[derive(Default)]
struct RecentReads {
    oauth_apps: recent::Recent<(), Vec<OAuthApp>>,
    /// (provider, routing key) -> account ids.
    webhook_keys: recent::Recent<(String, String), Vec<String>>,
    accounts: recent::Recent<String, Option<LinkedAccount>>,
    /// Key hash -> the non-revoked key (keys not found are not kept).
    api_keys: recent::Recent<String, ApiKey>,
}

tokio::task_local! {
    /// Where statements sent from the current task are counted, inside
    /// [`counting_statements`].
    static STATEMENTS: std::sync::Arc<std::sync::atomic::AtomicU64>;
}

/// Runs `work` and counts the statements it sends to the database (its own, not those of
/// other tasks running meanwhile): the cost of a job's tick is counted in statements, and
/// tests and benchmarks hold it fixed whatever the number of accounts.
pub async fn counting_statements<F: std::future::Future>(work: F) -> (F::Output, u64) {
    let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let out = STATEMENTS.scope(counter.clone(), work).await;
    (out, counter.load(std::sync::atomic::Ordering::Relaxed))
}

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Store {
    /// Connects and runs all pending migrations.
    ///
    /// `url` is `sqlite://path/to/file.db` (the parent directory and the file are created when
    /// missing, unless the URL says `mode=rw` or `mode=ro`), `sqlite::memory:`, or
    /// `postgres://...`. SQLite files use WAL and a busy timeout, so concurrent writers wait
    /// for each other instead of failing. On PostgreSQL, replicas starting together take turns
    /// to migrate.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let mut db = connect::connect(url).await?;
        db.set_metric_callback(|_| {
            let _ = STATEMENTS.try_with(|n| n.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        });
        Ok(Store {
            db,
            intake: Default::default(),
            recent: Default::default(),
        })
    }

    pub fn backend(&self) -> Backend {
        match self.db.get_database_backend() {
            DbBackend::Postgres => Backend::Postgres,
            // Only the SQLite and PostgreSQL drivers are compiled in.
            _ => Backend::Sqlite,
        }
    }

    /// Checks that the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db
            .ping()
            .await
            .map_err(StoreError::db("reach the database"))
    }

    /// Closes the pool for every clone of this store; later calls fail. For a clean shutdown,
    /// so that SQLite checkpoints its WAL and PostgreSQL sees its sessions end.
    pub async fn close(self) -> Result<(), StoreError> {
        self.db
            .close()
            .await
            .map_err(StoreError::db("close the database"))
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

/// The current time at the precision both backends keep.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// A caller's timestamp at the precision both backends keep.
fn stored_time(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// An id that sorts by creation time (UUIDv7: 48 bits of milliseconds, then 74 random),
/// for the rows written by the thousand (inbox, delivery log, events): each insert lands
/// at the end of the key's index, touching a page or two, where a random id touches one
/// page per row and rewrites each into the log.
pub fn new_ordered_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The columns a claimable job table has: its key, the column it is taken in order of, and
/// the claim token and deadline.
struct ClaimColumns<C> {
    id: C,
    order: C,
    claim: C,
    until: C,
}

/// Claims up to `limit` rows of `E` that match `free` (which must also say "not claimed, or
/// the claim ran out"), oldest by `order` first, until `until`. Returns the claim token the
/// rows now bear, or `None` when none was free. The same condition is in the update: of
/// two replicas racing for a row, one update matches it, and each reads back only rows
/// bearing its own token.
async fn claim_rows<E>(
    db: &DatabaseConnection,
    columns: ClaimColumns<E::Column>,
    free: impl Fn() -> sea_orm::Condition,
    limit: u64,
    until: DateTime<Utc>,
    operation: &'static str,
) -> Result<Option<String>, StoreError>
where
    E: sea_orm::EntityTrait,
{
    use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, QuerySelect};
    let ids: Vec<String> = E::find()
        .select_only()
        .column(columns.id)
        .filter(free())
        .order_by_asc(columns.order)
        .limit(limit)
        .into_tuple()
        .all(db)
        .await
        .map_err(StoreError::db(operation))?;
    if ids.is_empty() {
        return Ok(None);
    }
    let token = new_id();
    E::update_many()
        .col_expr(
            columns.claim,
            sea_orm::sea_query::Expr::value(token.clone()),
        )
        .col_expr(
            columns.until,
            sea_orm::sea_query::Expr::value(stored_time(until)),
        )
        .filter(columns.id.is_in(ids))
        .filter(free())
        .exec(db)
        .await
        .map_err(StoreError::db(operation))?;
    Ok(Some(token))
}

/// Stands in for secret bytes in `Debug` output.
pub(crate) struct Redacted(pub(crate) usize);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<redacted {} bytes>", self.0)
    }
}
