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
        Ok(row)
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
        rows.pop().map(LinkedAccount::try_from).transpose()
    }
}
