//! Idempotency keys: a keyed write claims its key before it reaches the vendor, then stores
//! its result; a retry with the same key gets that result back instead of a second write.

use chrono::Duration;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

use crate::store::entities::idempotency_key as row;
use crate::store::{Store, StoreError};

/// How long a key is remembered.
pub const IDEMPOTENCY_WINDOW_HOURS: i64 = 24;

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
        // An expired key is free again.
        row::Entity::delete_many()
            .filter(row::Column::EnvironmentId.eq(environment_id))
            .filter(row::Column::Key.eq(key))
            .filter(row::Column::CreatedAt.lt(now - Duration::hours(IDEMPOTENCY_WINDOW_HOURS)))
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
