//! Account health: the latest probe of each linked account, its schedule and claim, and
//! the history of probe results. Probe outcomes are written in bulk (one statement for a
//! whole batch of accounts), so a tick costs a fixed number of queries.

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use crate::store::entities::{account_health, probe_result};
use crate::store::{Store, StoreError};

/// Where a linked account stands, as its probes found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountHealth {
    pub account_id: String,
    /// `HEALTHY`, `DEGRADED`, `FAILING` or `UNKNOWN` (never probed).
    pub state: String,
    pub last_probe_at: Option<DateTime<Utc>>,
    pub last_ok_at: Option<DateTime<Utc>>,
    /// `DNS`, `TCP_CONNECT`, `TLS`, `TIMEOUT`, `HTTP_STATUS` or `AUTH`.
    pub failure_class: Option<String>,
    pub failure_message: Option<String>,
    pub failure_status: Option<i32>,
    pub consecutive_failures: i32,
    pub next_probe_at: DateTime<Utc>,
}

impl From<account_health::Model> for AccountHealth {
    fn from(m: account_health::Model) -> Self {
        AccountHealth {
            account_id: m.account_id,
            state: m.state,
            last_probe_at: m.last_probe_at,
            last_ok_at: m.last_ok_at,
            failure_class: m.failure_class,
            failure_message: m.failure_message,
            failure_status: m.failure_status,
            consecutive_failures: m.consecutive_failures,
            next_probe_at: m.next_probe_at,
        }
    }
}

/// One probe, for the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    pub account_id: String,
    pub at: DateTime<Utc>,
    pub ok: bool,
    pub class: Option<String>,
    pub http_status: Option<i32>,
    pub latency_ms: i32,
}

impl Store {
    /// Schedules a first probe for each account that has none yet.
    pub async fn enroll_probes(
        &self,
        accounts: &[(String, DateTime<Utc>)],
    ) -> Result<(), StoreError> {
        if accounts.is_empty() {
            return Ok(());
        }
        let rows = accounts.iter().map(|(id, at)| account_health::ActiveModel {
            account_id: Set(id.clone()),
            state: Set("UNKNOWN".into()),
            last_probe_at: Set(None),
            last_ok_at: Set(None),
            failure_class: Set(None),
            failure_message: Set(None),
            failure_status: Set(None),
            consecutive_failures: Set(0),
            next_probe_at: Set(crate::store::stored_time(*at)),
            claim: Set(None),
            claimed_until: Set(None),
        });
        account_health::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::column(account_health::Column::AccountId)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await
            .map_err(StoreError::db("schedule probes"))?;
        Ok(())
    }

    /// Claims up to `limit` accounts whose probe is due, for `lease`.
    pub async fn claim_due_probes(
        &self,
        limit: u64,
        lease: Duration,
    ) -> Result<Vec<AccountHealth>, StoreError> {
        let op = "claim probes";
        let now = crate::store::now();
        let free = || {
            Condition::all()
                .add(account_health::Column::NextProbeAt.lte(now))
                .add(
                    Condition::any()
                        .add(account_health::Column::ClaimedUntil.is_null())
                        .add(account_health::Column::ClaimedUntil.lt(now)),
                )
        };
        let Some(token) = crate::store::claim_rows::<account_health::Entity>(
            &self.db,
            crate::store::ClaimColumns {
                id: account_health::Column::AccountId,
                order: account_health::Column::NextProbeAt,
                claim: account_health::Column::Claim,
                until: account_health::Column::ClaimedUntil,
            },
            free,
            limit,
            now + lease,
            op,
        )
        .await?
        else {
            return Ok(Vec::new());
        };
        let rows = account_health::Entity::find()
            .filter(account_health::Column::Claim.eq(token))
            .all(&self.db)
            .await
            .map_err(StoreError::db(op))?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Writes a batch of probe outcomes and their history in two statements, freeing the
    /// claims.
    pub async fn save_probes(
        &self,
        health: Vec<AccountHealth>,
        results: Vec<ProbeResult>,
    ) -> Result<(), StoreError> {
        let op = "save probe results";
        if !health.is_empty() {
            let rows = health.into_iter().map(|h| account_health::ActiveModel {
                account_id: Set(h.account_id),
                state: Set(h.state),
                last_probe_at: Set(h.last_probe_at.map(crate::store::stored_time)),
                last_ok_at: Set(h.last_ok_at.map(crate::store::stored_time)),
                failure_class: Set(h.failure_class),
                failure_message: Set(h.failure_message),
                failure_status: Set(h.failure_status),
                consecutive_failures: Set(h.consecutive_failures),
                next_probe_at: Set(crate::store::stored_time(h.next_probe_at)),
                claim: Set(None),
                claimed_until: Set(None),
            });
            account_health::Entity::insert_many(rows)
                .on_conflict(
                    OnConflict::column(account_health::Column::AccountId)
                        .update_columns([
                            account_health::Column::State,
                            account_health::Column::LastProbeAt,
                            account_health::Column::LastOkAt,
                            account_health::Column::FailureClass,
                            account_health::Column::FailureMessage,
                            account_health::Column::FailureStatus,
                            account_health::Column::ConsecutiveFailures,
                            account_health::Column::NextProbeAt,
                            account_health::Column::Claim,
                            account_health::Column::ClaimedUntil,
                        ])
                        .to_owned(),
                )
                .exec_without_returning(&self.db)
                .await
                .map_err(StoreError::db(op))?;
        }
        if !results.is_empty() {
            let rows = results.into_iter().map(|r| probe_result::ActiveModel {
                id: sea_orm::ActiveValue::NotSet,
                account_id: Set(r.account_id),
                at: Set(crate::store::stored_time(r.at)),
                ok: Set(r.ok),
                class: Set(r.class),
                http_status: Set(r.http_status),
                latency_ms: Set(r.latency_ms),
            });
            probe_result::Entity::insert_many(rows)
                .exec_without_returning(&self.db)
                .await
                .map_err(StoreError::db(op))?;
        }
        Ok(())
    }

    /// The account's latest health, if it was ever scheduled.
    pub async fn get_account_health(
        &self,
        account_id: &str,
    ) -> Result<Option<AccountHealth>, StoreError> {
        let row = account_health::Entity::find_by_id(account_id.to_owned())
            .one(&self.db)
            .await
            .map_err(StoreError::db("read account health"))?;
        Ok(row.map(Into::into))
    }

    /// The account's newest `last` probe results, newest first.
    pub async fn list_probe_results(
        &self,
        account_id: &str,
        last: u64,
    ) -> Result<Vec<ProbeResult>, StoreError> {
        let rows = probe_result::Entity::find()
            .filter(probe_result::Column::AccountId.eq(account_id))
            .order_by_desc(probe_result::Column::Id)
            .limit(last)
            .all(&self.db)
            .await
            .map_err(StoreError::db("list probe results"))?;
        Ok(rows
            .into_iter()
            .map(|m| ProbeResult {
                account_id: m.account_id,
                at: m.at,
                ok: m.ok,
                class: m.class,
                http_status: m.http_status,
                latency_ms: m.latency_ms,
            })
            .collect())
    }

    /// Makes the account's probe due now.
    pub async fn probe_now(&self, account_id: &str) -> Result<(), StoreError> {
        account_health::Entity::update_many()
            .col_expr(
                account_health::Column::NextProbeAt,
                Expr::value(crate::store::now()),
            )
            .filter(account_health::Column::AccountId.eq(account_id))
            .exec(&self.db)
            .await
            .map_err(StoreError::db("schedule a probe"))?;
        Ok(())
    }

    /// Deletes probe history older than `before`.
    pub async fn sweep_probe_results(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = probe_result::Entity::delete_many()
            .filter(probe_result::Column::At.lt(before))
            .exec(&self.db)
            .await
            .map_err(StoreError::db("sweep probe results"))?;
        Ok(done.rows_affected)
    }
}
