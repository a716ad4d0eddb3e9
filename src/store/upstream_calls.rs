//! The request log: upstream call attempts, written in batches by a background writer and
//! read newest first per linked account.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::store::entities::upstream_call as row;
use crate::store::{Store, StoreError};

/// One logged attempt. The path never includes the query string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamCall {
    pub id: i32,
    pub account_id: String,
    pub provider: String,
    pub method: String,
    pub path: String,
    pub status: Option<i32>,
    pub latency_ms: i32,
    pub rate_limit: Option<i64>,
    pub rate_remaining: Option<i64>,
    pub rate_reset: Option<i64>,
    pub error_class: Option<String>,
    pub retry: i32,
    pub created_at: DateTime<Utc>,
}

impl From<row::Model> for UpstreamCall {
    fn from(m: row::Model) -> Self {
        UpstreamCall {
            id: m.id,
            account_id: m.account_id,
            provider: m.provider,
            method: m.method,
            path: m.path,
            status: m.status,
            latency_ms: m.latency_ms,
            rate_limit: m.rate_limit,
            rate_remaining: m.rate_remaining,
            rate_reset: m.rate_reset,
            error_class: m.error_class,
            retry: m.retry,
            created_at: m.created_at,
        }
    }
}

impl Store {
    /// Appends attempts (their `id` is ignored). A row of an account deleted meanwhile
    /// fails its foreign key and with it the whole batch, every other tenant's entries
    /// included: then the batch is written again without the accounts that are gone. The
    /// common case costs one statement.
    pub async fn insert_upstream_calls(&self, calls: Vec<UpstreamCall>) -> Result<(), StoreError> {
        if calls.is_empty() {
            return Ok(());
        }
        if self.write_upstream_calls(&calls).await.is_ok() {
            return Ok(());
        }
        let mut ids: Vec<String> = calls.iter().map(|c| c.account_id.clone()).collect();
        ids.sort();
        ids.dedup();
        let live: std::collections::HashSet<String> = self
            .get_linked_accounts(&ids)
            .await?
            .into_iter()
            .map(|a| a.id)
            .collect();
        let calls: Vec<UpstreamCall> = calls
            .into_iter()
            .filter(|c| live.contains(&c.account_id))
            .collect();
        if calls.is_empty() {
            return Ok(());
        }
        self.write_upstream_calls(&calls).await
    }

    async fn write_upstream_calls(&self, calls: &[UpstreamCall]) -> Result<(), StoreError> {
        let rows = calls.iter().cloned().map(|c| row::ActiveModel {
            account_id: Set(c.account_id),
            provider: Set(c.provider),
            method: Set(c.method),
            path: Set(c.path),
            status: Set(c.status),
            latency_ms: Set(c.latency_ms),
            rate_limit: Set(c.rate_limit),
            rate_remaining: Set(c.rate_remaining),
            rate_reset: Set(c.rate_reset),
            error_class: Set(c.error_class),
            retry: Set(c.retry),
            created_at: Set(crate::store::stored_time(c.created_at)),
            ..Default::default()
        });
        row::Entity::insert_many(rows)
            .exec_without_returning(&self.db)
            .await
            .map_err(StoreError::db("write the request log"))?;
        Ok(())
    }

    /// An account's newest attempts first, optionally only those with `status`.
    pub async fn list_upstream_calls(
        &self,
        account_id: &str,
        status: Option<i32>,
        limit: u64,
    ) -> Result<Vec<UpstreamCall>, StoreError> {
        let mut q = row::Entity::find().filter(row::Column::AccountId.eq(account_id));
        if let Some(s) = status {
            q = q.filter(row::Column::Status.eq(s));
        }
        Ok(q.order_by_desc(row::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(StoreError::db("read the request log"))?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Deletes attempts older than `before`; returns how many.
    pub async fn sweep_upstream_calls(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(row::Entity::delete_many()
            .filter(row::Column::CreatedAt.lt(before))
            .exec(&self.db)
            .await
            .map_err(StoreError::db("sweep the request log"))?
            .rows_affected)
    }
}
