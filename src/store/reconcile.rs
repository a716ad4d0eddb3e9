//! Reconciliation watermarks: how far each (account, resource) has been polled for
//! changes (a vendor time, and the vendor's change-feed token where it has one), claimed by
//! one replica at a time.

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use crate::store::entities::reconcile_state as row;
use crate::store::{Store, StoreError};

/// One (account, resource) to poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileState {
    pub account_id: String,
    pub resource: String,
    /// Changes at or before this vendor time have been looked at.
    pub watermark: DateTime<Utc>,
    pub next_run_at: DateTime<Utc>,
    /// The vendor's change-feed token: what changed since the last pass (none before the
    /// first full listing, or after the vendor refused it as expired).
    pub sync_token: Option<FeedToken>,
}

/// A change feed's token and the request it was taken with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedToken {
    /// The vendor's token, as it sent it.
    pub token: String,
    /// A digest of the request that made it: vendors refuse a token with other parameters.
    pub request: String,
}

impl From<row::Model> for ReconcileState {
    fn from(m: row::Model) -> Self {
        ReconcileState {
            account_id: m.account_id,
            resource: m.resource,
            watermark: m.watermark,
            next_run_at: m.next_run_at,
            sync_token: match (m.sync_token, m.sync_request) {
                (Some(token), Some(request)) => Some(FeedToken { token, request }),
                _ => None,
            },
        }
    }
}

impl Store {
    /// Starts polling (account, resource) from `watermark`, unless it already is.
    pub async fn ensure_reconcile_state(
        &self,
        account_id: &str,
        resource: &str,
        watermark: DateTime<Utc>,
        next_run_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        row::Entity::insert(row::ActiveModel {
            account_id: Set(account_id.to_owned()),
            resource: Set(resource.to_owned()),
            watermark: Set(crate::store::stored_time(watermark)),
            next_run_at: Set(crate::store::stored_time(next_run_at)),
            claim: Set(None),
            claimed_until: Set(None),
            sync_token: Set(None),
            sync_request: Set(None),
        })
        .on_conflict(
            OnConflict::columns([row::Column::AccountId, row::Column::Resource])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await
        .map_err(StoreError::db("start reconciliation"))?;
        Ok(())
    }

    /// Claims up to `limit` due (account, resource) pairs for `lease`, with the claim
    /// [`Store::save_reconcile_state`] needs. `account_id` limits it to one account.
    pub async fn claim_due_reconciles(
        &self,
        account_id: Option<&str>,
        limit: u64,
        lease: Duration,
    ) -> Result<Vec<(ReconcileState, String)>, StoreError> {
        let op = "claim reconciliation";
        let now = crate::store::now();
        let free = || {
            let mut c = Condition::all().add(row::Column::NextRunAt.lte(now)).add(
                Condition::any()
                    .add(row::Column::ClaimedUntil.is_null())
                    .add(row::Column::ClaimedUntil.lt(now)),
            );
            if let Some(a) = account_id {
                c = c.add(row::Column::AccountId.eq(a));
            }
            c
        };
        let keys: Vec<(String, String)> = row::Entity::find()
            .select_only()
            .column(row::Column::AccountId)
            .column(row::Column::Resource)
            .filter(free())
            .order_by_asc(row::Column::NextRunAt)
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(StoreError::db(op))?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let token = crate::store::new_id();
        let mut any = Condition::any();
        for (a, r) in &keys {
            any = any.add(
                Condition::all()
                    .add(row::Column::AccountId.eq(a.as_str()))
                    .add(row::Column::Resource.eq(r.as_str())),
            );
        }
        row::Entity::update_many()
            .col_expr(row::Column::Claim, Expr::value(token.clone()))
            .col_expr(
                row::Column::ClaimedUntil,
                Expr::value(crate::store::stored_time(now + lease)),
            )
            .filter(any)
            .filter(free())
            .exec(&self.db)
            .await
            .map_err(StoreError::db(op))?;
        let rows = row::Entity::find()
            .filter(row::Column::Claim.eq(token.clone()))
            .all(&self.db)
            .await
            .map_err(StoreError::db(op))?;
        Ok(rows
            .into_iter()
            .map(|m| (m.into(), token.clone()))
            .collect())
    }

    /// Moves the watermark (and stores the feed token) and schedules the next run; frees
    /// the claim.
    pub async fn save_reconcile_state(
        &self,
        s: &ReconcileState,
        claim: &str,
    ) -> Result<bool, StoreError> {
        let updated = row::Entity::update_many()
            .col_expr(
                row::Column::Watermark,
                Expr::value(crate::store::stored_time(s.watermark)),
            )
            .col_expr(
                row::Column::NextRunAt,
                Expr::value(crate::store::stored_time(s.next_run_at)),
            )
            .col_expr(
                row::Column::SyncToken,
                Expr::value(s.sync_token.as_ref().map(|t| t.token.clone())),
            )
            .col_expr(
                row::Column::SyncRequest,
                Expr::value(s.sync_token.as_ref().map(|t| t.request.clone())),
            )
            .col_expr(row::Column::Claim, Expr::value(Option::<String>::None))
            .col_expr(
                row::Column::ClaimedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(row::Column::AccountId.eq(s.account_id.as_str()))
            .filter(row::Column::Resource.eq(s.resource.as_str()))
            .filter(row::Column::Claim.eq(claim))
            .exec(&self.db)
            .await
            .map_err(StoreError::db("save reconciliation"))?;
        Ok(updated.rows_affected == 1)
    }

    /// Makes every (account, resource) of the account due now (a vendor said it missed
    /// deliveries).
    pub async fn reconcile_now(&self, account_id: &str) -> Result<(), StoreError> {
        row::Entity::update_many()
            .col_expr(row::Column::NextRunAt, Expr::value(crate::store::now()))
            .filter(row::Column::AccountId.eq(account_id))
            .exec(&self.db)
            .await
            .map_err(StoreError::db("schedule reconciliation"))?;
        Ok(())
    }

    /// Whether a webhook already brought a change of this record at or after `since`
    /// (stored as an event, or still waiting in the inbox of the account).
    pub async fn webhook_saw_change(
        &self,
        account_id: &str,
        resource: &str,
        remote_id: &str,
        since: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        use crate::store::entities::unified_event;
        use sea_orm::PaginatorTrait;
        let n = unified_event::Entity::find()
            .filter(unified_event::Column::AccountId.eq(account_id))
            .filter(unified_event::Column::Resource.eq(resource))
            .filter(unified_event::Column::RemoteId.eq(remote_id))
            .filter(unified_event::Column::Source.eq("WEBHOOK"))
            .filter(
                Condition::any()
                    .add(unified_event::Column::OccurredAt.gte(since))
                    .add(unified_event::Column::ReceivedAt.gte(since)),
            )
            .count(&self.db)
            .await
            .map_err(StoreError::db("look for a webhook event"))?;
        Ok(n > 0)
    }

    /// Whether a webhook already brought the deletion of this record (a deletion is final,
    /// so any time will do).
    pub async fn webhook_saw_deletion(
        &self,
        account_id: &str,
        resource: &str,
        remote_id: &str,
    ) -> Result<bool, StoreError> {
        use crate::store::entities::unified_event;
        use sea_orm::PaginatorTrait;
        let n = unified_event::Entity::find()
            .filter(unified_event::Column::AccountId.eq(account_id))
            .filter(unified_event::Column::Resource.eq(resource))
            .filter(unified_event::Column::RemoteId.eq(remote_id))
            .filter(unified_event::Column::Source.eq("WEBHOOK"))
            .filter(unified_event::Column::Kind.ends_with(".deleted"))
            .count(&self.db)
            .await
            .map_err(StoreError::db("look for a webhook deletion"))?;
        Ok(n > 0)
    }
}
