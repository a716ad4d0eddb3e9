//! Idempotency keys: a keyed write claims its key before it reaches the vendor, then stores
//! its result; a retry with the same key gets that result back instead of a second write.

use chrono::Duration;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

use crate::store::entities::idempotency_key as row;
use crate::store::{Store, StoreError};

/// How long a key is remembered.
pub const IDEMPOTENCY_WINDOW_HOURS: i64 = 24;
/// A claim still pending after this was abandoned (its request was cancelled or its
/// process died: a write finishes within the upstream deadline): the key is free again.
pub const PENDING_CLAIM_MINUTES: i64 = 5;

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is new (or expired): the caller performs the write, then `complete`s it.
    Fresh,
    /// The same request already completed: its stored response.
    Done { response: String },
    /// The same key is being used right now by another request.
    InProgress,
    /// The key was used for a different operation or request body.
    Mismatch,
}

impl Store {
    /// Claims `key` for (`operation`, `request_hash`) in the environment.
    pub async fn claim_idempotency_key(
        &self,
        environment_id: &str,
        key: &str,
        operation: &str,
        request_hash: &str,
    ) -> Result<Claim, StoreError> {
        let now = crate::store::now();
        // An expired key, or an abandoned claim, is free again.
        row::Entity::delete_many()
            .filter(row::Column::EnvironmentId.eq(environment_id))
            .filter(row::Column::Key.eq(key))
            .filter(
                sea_orm::Condition::any()
                    .add(row::Column::CreatedAt.lt(now - Duration::hours(IDEMPOTENCY_WINDOW_HOURS)))
                    .add(
                        sea_orm::Condition::all()
                            .add(row::Column::State.eq("pending"))
                            .add(
                                row::Column::CreatedAt
                                    .lt(now - Duration::minutes(PENDING_CLAIM_MINUTES)),
                            ),
                    ),
            )
            .exec(&self.db)
            .await
            .map_err(StoreError::db("expire an idempotency key"))?;
        let inserted = row::Entity::insert(row::ActiveModel {
            environment_id: Set(environment_id.to_owned()),
            key: Set(key.to_owned()),
            operation: Set(operation.to_owned()),
            request_hash: Set(request_hash.to_owned()),
            state: Set("pending".to_owned()),
            response: Set(None),
            created_at: Set(now),
        })
        .exec_without_returning(&self.db)
        .await
        .map_err(StoreError::insert(
            "claim an idempotency key",
            "this idempotency key",
            "environment",
        ));
        match inserted {
            Ok(_) => return Ok(Claim::Fresh),
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
        let existing = row::Entity::find_by_id((environment_id.to_owned(), key.to_owned()))
            .one(&self.db)
            .await
            .map_err(StoreError::db("read an idempotency key"))?;
        Ok(match existing {
            None => Claim::InProgress,
            Some(r) if r.operation != operation || r.request_hash != request_hash => {
                Claim::Mismatch
            }
            Some(r) => match (r.state.as_str(), r.response) {
                ("done", Some(response)) => Claim::Done { response },
                _ => Claim::InProgress,
            },
        })
    }

    /// Stores the result of a claimed write.
    pub async fn complete_idempotency_key(
        &self,
        environment_id: &str,
        key: &str,
        response: &str,
    ) -> Result<(), StoreError> {
        row::Entity::update_many()
            .col_expr(row::Column::State, sea_orm::sea_query::Expr::value("done"))
            .col_expr(
                row::Column::Response,
                sea_orm::sea_query::Expr::value(response.to_owned()),
            )
            .filter(row::Column::EnvironmentId.eq(environment_id))
            .filter(row::Column::Key.eq(key))
            .exec(&self.db)
            .await
            .map_err(StoreError::db("store an idempotent result"))?;
        Ok(())
    }

    /// Every stored result, as (environment, key, response), for re-sealing under a new
    /// secret key.
    pub async fn list_idempotent_results(
        &self,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        Ok(row::Entity::find()
            .filter(row::Column::State.eq("done"))
            .all(&self.db)
            .await
            .map_err(StoreError::db("list idempotent results"))?
            .into_iter()
            .filter_map(|r| Some((r.environment_id, r.key, r.response?)))
            .collect())
    }

    /// Deletes what no one may ask for again: idempotency keys past their window, OAuth
    /// states past their expiry, account events older than `events_before`. Returns the
    /// rows deleted.
    pub async fn sweep_expired(
        &self,
        events_before: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, StoreError> {
        use crate::store::entities::{account_event, oauth_state};
        let now = crate::store::now();
        let keys = row::Entity::delete_many()
            .filter(row::Column::CreatedAt.lt(now - Duration::hours(IDEMPOTENCY_WINDOW_HOURS)))
            .exec(&self.db)
            .await
            .map_err(StoreError::db("sweep idempotency keys"))?
            .rows_affected;
        let states = oauth_state::Entity::delete_many()
            .filter(oauth_state::Column::ExpiresAt.lt(now))
            .exec(&self.db)
            .await
            .map_err(StoreError::db("sweep OAuth states"))?
            .rows_affected;
        let events = account_event::Entity::delete_many()
            .filter(account_event::Column::CreatedAt.lt(crate::store::stored_time(events_before)))
            .exec(&self.db)
            .await
            .map_err(StoreError::db("sweep account events"))?
            .rows_affected;
        Ok(keys + states + events)
    }

    /// Frees a claimed key whose write failed, so the caller can retry with it.
    pub async fn release_idempotency_key(
        &self,
        environment_id: &str,
        key: &str,
    ) -> Result<(), StoreError> {
        row::Entity::delete_many()
            .filter(row::Column::EnvironmentId.eq(environment_id))
            .filter(row::Column::Key.eq(key))
            .filter(row::Column::State.eq("pending"))
            .exec(&self.db)
            .await
            .map_err(StoreError::db("release an idempotency key"))?;
        Ok(())
    }
}
