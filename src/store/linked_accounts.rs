use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QueryTrait,
    sea_query::{Expr, ExprTrait},
};

use crate::store::entities::linked_account;
use crate::store::{Redacted, Store, StoreError, stored_time};

/// The states of a linked account's credentials, as stored in `status`.
pub const LINKED_ACCOUNT_STATUSES: [&str; 6] = [
    "ACTIVE",
    "REFRESHING",
    "NEEDS_REAUTH",
    "REVOKED",
    "ERROR",
    "DISABLED",
];

/// A linked account to create. `credentials` is ciphertext made by the caller.
#[derive(Clone)]
pub struct NewLinkedAccount {
    /// Chosen by the caller, because the credentials are encrypted with the id as
    /// associated data before the row exists.
    pub id: String,
    pub environment_id: String,
    pub provider: String,
    /// One of [`LINKED_ACCOUNT_STATUSES`].
    pub status: String,
    pub credentials: Vec<u8>,
    pub settings: serde_json::Value,
    pub expires_at: Option<DateTime<Utc>>,
}

/// One connected CRM org of an environment.
#[derive(Clone, PartialEq, Eq)]
pub struct LinkedAccount {
    pub id: String,
    pub environment_id: String,
    pub provider: String,
    pub status: String,
    pub status_reason: Option<String>,
    /// Ciphertext, exactly as the caller stored it.
    pub credentials: Vec<u8>,
    pub settings: serde_json::Value,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_refreshed_at: Option<DateTime<Utc>>,
    /// Bumped by every [`Store::update_linked_account_cas`]; starts at 0.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The fields a credentials refresh or a state change writes, all at once.
#[derive(Clone)]
pub struct LinkedAccountUpdate {
    /// One of [`LINKED_ACCOUNT_STATUSES`].
    pub status: String,
    pub status_reason: Option<String>,
    pub credentials: Vec<u8>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_refreshed_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for NewLinkedAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewLinkedAccount")
            .field("id", &self.id)
            .field("environment_id", &self.environment_id)
            .field("provider", &self.provider)
            .field("status", &self.status)
            .field("credentials", &Redacted(self.credentials.len()))
            .field("settings", &self.settings)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl std::fmt::Debug for LinkedAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkedAccount")
            .field("id", &self.id)
            .field("environment_id", &self.environment_id)
            .field("provider", &self.provider)
            .field("status", &self.status)
            .field("status_reason", &self.status_reason)
            .field("credentials", &Redacted(self.credentials.len()))
            .field("settings", &self.settings)
            .field("expires_at", &self.expires_at)
            .field("last_refreshed_at", &self.last_refreshed_at)
            .field("version", &self.version)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

impl std::fmt::Debug for LinkedAccountUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkedAccountUpdate")
            .field("status", &self.status)
            .field("status_reason", &self.status_reason)
            .field("credentials", &Redacted(self.credentials.len()))
            .field("expires_at", &self.expires_at)
            .field("last_refreshed_at", &self.last_refreshed_at)
            .finish()
    }
}

impl TryFrom<linked_account::Model> for LinkedAccount {
    type Error = StoreError;

    fn try_from(m: linked_account::Model) -> Result<Self, StoreError> {
        let settings = serde_json::from_str(&m.settings).map_err(|_| StoreError::Corrupt {
            what: format!("settings of linked account {}", m.id),
        })?;
        Ok(LinkedAccount {
            id: m.id,
            environment_id: m.environment_id,
            provider: m.provider,
            status: m.status,
            status_reason: m.status_reason,
            credentials: m.credentials,
            settings,
            expires_at: m.expires_at,
            last_refreshed_at: m.last_refreshed_at,
            version: m.version,
            created_at: m.created_at,
            updated_at: m.updated_at,
        })
    }
}

/// Statuses are checked here rather than by a CHECK constraint, which SQLite could not
/// widen later without rebuilding the table.
fn check_status(status: &str) -> Result<(), StoreError> {
    if LINKED_ACCOUNT_STATUSES.contains(&status) {
        Ok(())
    } else {
        Err(StoreError::Invalid {
            what: format!(
                "linked account status (expected one of {})",
                LINKED_ACCOUNT_STATUSES.join(", ")
            ),
        })
    }
}

impl Store {
    /// Creates an account at version 0. An unknown environment is [`StoreError::NotFound`].
    pub async fn insert_linked_account(
        &self,
        new: NewLinkedAccount,
    ) -> Result<LinkedAccount, StoreError> {
        check_status(&new.status)?;
        let now = crate::store::now();
        let row = LinkedAccount {
            id: new.id,
            environment_id: new.environment_id,
            provider: new.provider,
            status: new.status,
            status_reason: None,
            credentials: new.credentials,
            settings: new.settings,
            expires_at: new.expires_at.map(stored_time),
            last_refreshed_at: None,
            version: 0,
            created_at: now,
            updated_at: now,
        };
        linked_account::Entity::insert(linked_account::ActiveModel {
            id: Set(row.id.clone()),
            environment_id: Set(row.environment_id.clone()),
            provider: Set(row.provider.clone()),
            status: Set(row.status.clone()),
            status_reason: Set(None),
            credentials: Set(row.credentials.clone()),
            settings: Set(row.settings.to_string()),
            expires_at: Set(row.expires_at),
            last_refreshed_at: Set(None),
            version: Set(0),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_without_returning(&self.db)
        .await
        .map_err(StoreError::insert(
            "create a linked account",
            "a linked account with this id",
            "environment",
        ))?;
        self.recent.accounts.forget(&row.id);
        Ok(row)
    }

    /// As [`Self::get_linked_account`], possibly up to a second old (the intake's read on
    /// every delivery; a change written through this store is seen at once).
    pub async fn recent_linked_account(
        &self,
        id: &str,
    ) -> Result<Option<LinkedAccount>, StoreError> {
        self.recent
            .accounts
            .read_through(id.to_owned(), self.get_linked_account(id))
            .await
    }

    pub async fn get_linked_account(&self, id: &str) -> Result<Option<LinkedAccount>, StoreError> {
        linked_account::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await
            .map_err(StoreError::db("read a linked account"))?
            .map(LinkedAccount::try_from)
            .transpose()
    }

    /// The accounts with these ids (those that exist), in one query.
    pub async fn get_linked_accounts(
        &self,
        ids: &[String],
    ) -> Result<Vec<LinkedAccount>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(ids.len());
        // A statement has a bound on its parameters.
        for chunk in ids.chunks(500) {
            let rows = linked_account::Entity::find()
                .filter(linked_account::Column::Id.is_in(chunk.iter().cloned()))
                .all(&self.db)
                .await
                .map_err(StoreError::db("read linked accounts"))?;
            for row in rows {
                out.push(LinkedAccount::try_from(row)?);
            }
        }
        Ok(out)
    }

    /// The accounts of one environment, or of every environment when None (admin); newest
    /// first by `created_at`, then by id.
    pub async fn list_linked_accounts(
        &self,
        environment_id: Option<&str>,
    ) -> Result<Vec<LinkedAccount>, StoreError> {
        linked_account::Entity::find()
            .apply_if(environment_id, |query, env| {
                query.filter(linked_account::Column::EnvironmentId.eq(env))
            })
            .order_by_desc(linked_account::Column::CreatedAt)
            .order_by_desc(linked_account::Column::Id)
            .all(&self.db)
            .await
            .map_err(StoreError::db("list linked accounts"))?
            .into_iter()
            .map(LinkedAccount::try_from)
            .collect()
    }

    /// Deletes the account and everything kept about it: its secrets (the row), overrides,
    /// request log, budgets, health, probes, alerts, drift observations, watcher state,
    /// webhook keys, subscriptions, inbox, delivery log, events (and their pending
    /// deliveries to the customer's endpoints), reconciliation state, started
    /// re-authorizations. One transaction; every table by hand, so it holds on SQLite
    /// files opened without foreign-key enforcement too. False when there was no such
    /// account.
    pub async fn delete_linked_account(&self, id: &str) -> Result<bool, StoreError> {
        use crate::store::entities::{
            account_event, account_health, alert, endpoint_delivery, listing_observation,
            oauth_state, override_version, probe_result, rate_limit_budget, reconcile_state,
            unified_event, upstream_call, watch_state, webhook_account_key, webhook_delivery,
            webhook_inbox, webhook_subscription,
        };
        use sea_orm::{QuerySelect, TransactionTrait};
        let op = "delete a linked account";
        let txn = self.db.begin().await.map_err(StoreError::db(op))?;
        let account = id.to_owned();
        let events = unified_event::Entity::find()
            .select_only()
            .column(unified_event::Column::Id)
            .filter(unified_event::Column::AccountId.eq(id))
            .into_tuple::<String>()
            .all(&txn)
            .await
            .map_err(StoreError::db(op))?;
        // A statement has a bound on its parameters.
        for chunk in events.chunks(500) {
            endpoint_delivery::Entity::delete_many()
                .filter(endpoint_delivery::Column::EventId.is_in(chunk.iter().cloned()))
                .exec(&txn)
                .await
                .map_err(StoreError::db(op))?;
        }
        macro_rules! purge {
            ($($entity:ident . $column:ident),* $(,)?) => {$(
                $entity::Entity::delete_many()
                    .filter($entity::Column::$column.eq(account.clone()))
                    .exec(&txn)
                    .await
                    .map_err(StoreError::db(op))?;
            )*};
        }
        purge!(
            unified_event.AccountId,
            webhook_inbox.AccountId,
            webhook_delivery.AccountId,
            webhook_subscription.AccountId,
            webhook_account_key.AccountId,
            reconcile_state.AccountId,
            account_event.AccountId,
            account_health.AccountId,
            probe_result.AccountId,
            alert.AccountId,
            listing_observation.AccountId,
            upstream_call.AccountId,
            rate_limit_budget.AccountId,
            override_version.AccountId,
            oauth_state.AccountId,
            watch_state.Key,
        );
        let deleted = linked_account::Entity::delete_by_id(account.clone())
            .exec(&txn)
            .await
            .map_err(StoreError::db(op))?;
        txn.commit().await.map_err(StoreError::db(op))?;
        self.recent.accounts.forget(&account);
        self.recent.webhook_keys.forget_all();
        if self.db.get_database_backend() == sea_orm::DatabaseBackend::Sqlite {
            // The deleted pages (zeroed by `secure_delete`) move into the file and the WAL,
            // which still holds their earlier images, is emptied. Best effort: a busy
            // checkpoint leaves them to the next one.
            use sea_orm::ConnectionTrait;
            if let Err(e) = self
                .db
                .execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
                .await
            {
                tracing::warn!(error = %e, "cannot checkpoint the SQLite file after deleting an account");
            }
        }
        Ok(deleted.rows_affected == 1)
    }

    /// Compare-and-swap on `version`: writes the update and `version + 1` only if the stored
    /// version is still `expected_version`, and returns the row as written. None when another
    /// writer got there first (or the account is gone): re-read and decide again.
    ///
    /// One `UPDATE ... WHERE version = ? RETURNING *` statement, so the check and the write
    /// are atomic on both backends without a transaction or a row lock.
    pub async fn update_linked_account_cas(
        &self,
        id: &str,
        expected_version: i64,
        update: LinkedAccountUpdate,
    ) -> Result<Option<LinkedAccount>, StoreError> {
        self.write_linked_account_cas(id, expected_version, update, None)
            .await
    }

    /// As [`Self::update_linked_account_cas`], replacing the settings too: a
    /// re-authorization brings the token response's values (`instanceUrl`, ...).
    pub async fn reauthorize_linked_account_cas(
        &self,
        id: &str,
        expected_version: i64,
        update: LinkedAccountUpdate,
        settings: &serde_json::Value,
    ) -> Result<Option<LinkedAccount>, StoreError> {
        self.write_linked_account_cas(id, expected_version, update, Some(settings))
            .await
    }

    async fn write_linked_account_cas(
        &self,
        id: &str,
        expected_version: i64,
        update: LinkedAccountUpdate,
        settings: Option<&serde_json::Value>,
    ) -> Result<Option<LinkedAccount>, StoreError> {
        check_status(&update.status)?;
        use linked_account::Column;
        let mut query = linked_account::Entity::update_many()
            .col_expr(Column::Status, Expr::value(update.status))
            .col_expr(Column::StatusReason, Expr::value(update.status_reason))
            .col_expr(Column::Credentials, Expr::value(update.credentials))
            .col_expr(
                Column::ExpiresAt,
                Expr::value(update.expires_at.map(stored_time)),
            )
            .col_expr(
                Column::LastRefreshedAt,
                Expr::value(update.last_refreshed_at.map(stored_time)),
            )
            .col_expr(Column::Version, Expr::col(Column::Version).add(1))
            .col_expr(Column::UpdatedAt, Expr::value(crate::store::now()))
            .apply_if(settings, |q, s| {
                q.col_expr(Column::Settings, Expr::value(s.to_string()))
            })
            .filter(Column::Id.eq(id))
            .filter(Column::Version.eq(expected_version))
            .into_query();
        query.returning_all();
        let statement = self.db.get_database_backend().build(&query);
        // `all` rather than `one`: it steps the statement to completion on every driver.
        let mut rows = linked_account::Entity::find()
            .from_raw_sql(statement)
            .all(&self.db)
            .await
            .map_err(StoreError::db("update a linked account"))?;
        // Forgotten whether or not the swap won (a lost swap means another write did), and
        // after the write: a read that raced it cannot store what it replaced.
        self.recent.accounts.forget(&id.to_owned());
        rows.pop().map(LinkedAccount::try_from).transpose()
    }
}
