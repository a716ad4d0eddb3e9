//! Used-up rate-limit windows, shared between replicas: one that saw an account throttled
//! writes the window and its reset here; the others read what changed each second.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

use crate::store::entities::rate_limit_budget as row;
use crate::store::{Store, StoreError};

/// A window of an account that is used up until `reset_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExhaustedWindow {
    pub account_id: String,
    pub window: String,
    pub limit: Option<i64>,
    pub reset_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Store {
    /// Records (or moves) a used-up window.
    pub async fn put_exhausted_window(&self, w: ExhaustedWindow) -> Result<(), StoreError> {
        row::Entity::insert(row::ActiveModel {
            account_id: Set(w.account_id),
            window: Set(w.window),
            limit: Set(w.limit),
            reset_at: Set(crate::store::stored_time(w.reset_at)),
            updated_at: Set(crate::store::stored_time(w.updated_at)),
        })
        .on_conflict(
            OnConflict::columns([row::Column::AccountId, row::Column::Window])
                .update_columns([
                    row::Column::Limit,
                    row::Column::ResetAt,
                    row::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await
        .map_err(StoreError::db("record a used-up rate-limit window"))?;
        Ok(())
    }

    /// Windows written after `since` that are still used up.
    pub async fn exhausted_windows_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<ExhaustedWindow>, StoreError> {
        Ok(row::Entity::find()
            .filter(row::Column::UpdatedAt.gt(since))
            .filter(row::Column::ResetAt.gt(crate::store::now()))
            .all(&self.db)
            .await
            .map_err(StoreError::db("read used-up rate-limit windows"))?
            .into_iter()
            .map(|m| ExhaustedWindow {
                account_id: m.account_id,
                window: m.window,
                limit: m.limit,
                reset_at: m.reset_at,
                updated_at: m.updated_at,
            })
            .collect())
    }
}
