//! Alerts and the evidence the watcher reads to open and resolve them: listing
//! observations, tallies of the request log and of webhook deliveries, the watcher's own
//! state between ticks, and cluster-wide job leases (one replica at a time runs the
//! watcher). Every read here is one statement whatever the number of accounts, so a tick
//! costs a fixed number of queries.

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};

use crate::store::entities::{
    account_health, alert, job_lease, listing_observation, upstream_call, watch_state,
    webhook_delivery, webhook_subscription,
};
use crate::store::{AccountHealth, Store, StoreError, UnifiedEvent};

/// One alert: a kind of trouble on one linked account, open until the evidence is good
/// again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub id: String,
    pub environment_id: String,
    pub account_id: String,
    pub provider: String,
    /// `TOKEN_REVOKED`, `RATE_LIMITED`, ... (CONTRACT.md).
    pub kind: String,
    /// `OPEN` or `RESOLVED`.
    pub state: String,
    pub opened_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub probable_cause: String,
    pub first_response: String,
    /// JSON text: what was seen (counts, statuses, redacted shapes), never a secret or a
    /// record value.
    pub evidence: String,
    pub updated_at: DateTime<Utc>,
}

impl From<alert::Model> for Alert {
    fn from(m: alert::Model) -> Self {
        Alert {
            id: m.id,
            environment_id: m.environment_id,
            account_id: m.account_id,
            provider: m.provider,
            kind: m.kind,
            state: m.state,
            opened_at: m.opened_at,
            resolved_at: m.resolved_at,
            probable_cause: m.probable_cause,
            first_response: m.first_response,
            evidence: m.evidence,
            updated_at: m.updated_at,
        }
    }
}

fn alert_row(a: Alert) -> alert::ActiveModel {
    alert::ActiveModel {
        id: Set(a.id),
        environment_id: Set(a.environment_id),
        account_id: Set(a.account_id),
        provider: Set(a.provider),
        kind: Set(a.kind),
        state: Set(a.state),
        opened_at: Set(crate::store::stored_time(a.opened_at)),
        resolved_at: Set(a.resolved_at.map(crate::store::stored_time)),
        probable_cause: Set(a.probable_cause),
        first_response: Set(a.first_response),
        evidence: Set(a.evidence),
        updated_at: Set(crate::store::stored_time(a.updated_at)),
    }
}

/// What one listing of a resource returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingObservation {
    pub id: i64,
    pub account_id: String,
    pub resource: String,
    /// `ok`, `not_found` (the vendor answered 404 to the listing) or `failed`.
    pub outcome: String,
    /// Records returned, when it worked.
    pub records: Option<i32>,
    /// The listing read to the vendor's last page (its count is the whole count).
    pub complete: bool,
    /// From the first page and without a filter: comparable with the account's other
    /// listings of the resource.
    pub counted: bool,
    /// The response's shape (JSON of `health::shape::PageShape`), for a sample of pages.
    pub shape: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<listing_observation::Model> for ListingObservation {
    fn from(m: listing_observation::Model) -> Self {
        ListingObservation {
            id: i64::from(m.id),
            account_id: m.account_id,
            resource: m.resource,
            outcome: m.outcome,
            records: m.records,
            complete: m.complete,
            counted: m.counted,
            shape: m.shape,
            created_at: m.created_at,
        }
    }
}

/// Upstream call attempts of one account with one outcome, since a point of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallTally {
    pub account_id: String,
    pub status: Option<i32>,
    pub error_class: Option<String>,
    pub calls: i64,
    /// The lowest `ratelimit-remaining` and highest `ratelimit-limit` the vendor reported.
    pub min_remaining: Option<i64>,
    pub max_limit: Option<i64>,
}

/// Webhook deliveries of one account with one outcome, in a span of time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryTally {
    pub account_id: String,
    pub outcome: String,
    pub deliveries: i64,
    pub events: i64,
    pub last_received_at: DateTime<Utc>,
}

/// A vendor subscription that no longer delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LapsedSubscription {
    pub account_id: String,
    pub state: String,
    pub last_error: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl Store {
    /// Appends listing observations (their `id` is ignored).
    pub async fn insert_listing_observations(
        &self,
        rows: Vec<ListingObservation>,
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let rows = rows.into_iter().map(|o| listing_observation::ActiveModel {
            id: sea_orm::ActiveValue::NotSet,
            account_id: Set(o.account_id),
            resource: Set(o.resource),
            outcome: Set(o.outcome),
            records: Set(o.records),
            complete: Set(o.complete),
            counted: Set(o.counted),
            shape: Set(o.shape),
            created_at: Set(crate::store::stored_time(o.created_at)),
        });
        listing_observation::Entity::insert_many(rows)
            .exec_without_returning(&self.db)
            .await
            .map_err(StoreError::db("write listing observations"))?;
        Ok(())
    }

    /// Listing observations after `after` (by id), oldest first, at most `limit`.
    pub async fn listing_observations_after(
        &self,
        after: i64,
        limit: u64,
    ) -> Result<Vec<ListingObservation>, StoreError> {
        let rows = listing_observation::Entity::find()
            .filter(listing_observation::Column::Id.gt(after))
            .order_by_asc(listing_observation::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(StoreError::db("read listing observations"))?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Deletes listing observations older than `before`.
    pub async fn sweep_listing_observations(
        &self,
        before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        Ok(listing_observation::Entity::delete_many()
            .filter(listing_observation::Column::CreatedAt.lt(before))
            .exec(&self.db)
            .await
            .map_err(StoreError::db("sweep listing observations"))?
            .rows_affected)
    }

    /// The request log after id `after`, counted per (account, status, failure class), and
    /// the id it was read up to (`after` when nothing is new).
    pub async fn tally_upstream_calls(
        &self,
        after: i64,
    ) -> Result<(Vec<CallTally>, i64), StoreError> {
        let op = "tally the request log";
        let upto: Option<i32> = upstream_call::Entity::find()
            .select_only()
            .column_as(upstream_call::Column::Id.max(), "upto")
            .into_tuple()
            .one(&self.db)
            .await
            .map_err(StoreError::db(op))?
            .flatten();
        let Some(upto) = upto.map(i64::from).filter(|u| *u > after) else {
            return Ok((Vec::new(), after));
        };
        type Row = (
            String,
            Option<i32>,
            Option<String>,
            i64,
            Option<i64>,
            Option<i64>,
        );
        let rows: Vec<Row> = upstream_call::Entity::find()
            .select_only()
            .column(upstream_call::Column::AccountId)
            .column(upstream_call::Column::Status)
            .column(upstream_call::Column::ErrorClass)
            .column_as(upstream_call::Column::Id.count(), "calls")
            .column_as(upstream_call::Column::RateRemaining.min(), "min_remaining")
            .column_as(upstream_call::Column::RateLimit.max(), "max_limit")
            .filter(upstream_call::Column::Id.gt(after))
            .filter(upstream_call::Column::Id.lte(upto))
            .group_by(upstream_call::Column::AccountId)
            .group_by(upstream_call::Column::Status)
            .group_by(upstream_call::Column::ErrorClass)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(StoreError::db(op))?;
        Ok((
            rows.into_iter()
                .map(
                    |(account_id, status, error_class, calls, min_remaining, max_limit)| {
                        CallTally {
                            account_id,
                            status,
                            error_class,
                            calls,
                            min_remaining,
                            max_limit,
                        }
                    },
                )
                .collect(),
            upto,
        ))
    }

    /// Webhook deliveries received in `(since, until]`, counted per (account, outcome).
    /// Deliveries no account could be found for are left out.
    pub async fn tally_webhook_deliveries(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<DeliveryTally>, StoreError> {
        type Row = (
            Option<String>,
            String,
            i64,
            Option<i64>,
            Option<DateTime<Utc>>,
        );
        let rows: Vec<Row> = webhook_delivery::Entity::find()
            .select_only()
            .column(webhook_delivery::Column::AccountId)
            .column(webhook_delivery::Column::Outcome)
            .column_as(webhook_delivery::Column::Id.count(), "deliveries")
            .column_as(webhook_delivery::Column::EventCount.sum(), "events")
            .column_as(webhook_delivery::Column::ReceivedAt.max(), "last")
            .filter(webhook_delivery::Column::AccountId.is_not_null())
            .filter(webhook_delivery::Column::ReceivedAt.gt(since))
            .filter(webhook_delivery::Column::ReceivedAt.lte(until))
            .group_by(webhook_delivery::Column::AccountId)
            .group_by(webhook_delivery::Column::Outcome)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(StoreError::db("tally webhook deliveries"))?;
        Ok(rows
            .into_iter()
            .filter_map(|(account, outcome, deliveries, events, last)| {
                Some(DeliveryTally {
                    account_id: account?,
                    outcome,
                    deliveries,
                    events: events.unwrap_or(0),
                    last_received_at: last?,
                })
            })
            .collect())
    }

    /// Subscriptions that lapsed or failed to be renewed.
    pub async fn lapsed_subscriptions(&self) -> Result<Vec<LapsedSubscription>, StoreError> {
        let rows = webhook_subscription::Entity::find()
            .filter(webhook_subscription::Column::State.is_in(["LAPSED", "FAILED"]))
            .all(&self.db)
            .await
            .map_err(StoreError::db("read lapsed subscriptions"))?;
        Ok(rows
            .into_iter()
            .map(|m| LapsedSubscription {
                account_id: m.account_id,
                state: m.state,
                last_error: m.last_error,
                expires_at: m.expires_at,
            })
            .collect())
    }

    /// The health of accounts whose latest probe failed.
    pub async fn failing_probes(&self) -> Result<Vec<AccountHealth>, StoreError> {
        let rows = account_health::Entity::find()
            .filter(account_health::Column::State.is_in(["DEGRADED", "FAILING"]))
            .all(&self.db)
            .await
            .map_err(StoreError::db("read failing probes"))?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// The watcher's saved state: (key, JSON text) pairs.
    pub async fn load_watch_states(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = watch_state::Entity::find()
            .all(&self.db)
            .await
            .map_err(StoreError::db("read the watcher's state"))?;
        Ok(rows.into_iter().map(|m| (m.key, m.state)).collect())
    }

    /// Writes changed watcher states and deletes those of `gone` keys, in one transaction.
    pub async fn save_watch_states(
        &self,
        changed: Vec<(String, String)>,
        gone: Vec<String>,
    ) -> Result<(), StoreError> {
        let op = "save the watcher's state";
        let txn = self.db.begin().await.map_err(StoreError::db(op))?;
        let now = crate::store::now();
        // Many accounts change in a busy tick; a statement has a bound on its parameters.
        for chunk in changed.chunks(500) {
            let rows = chunk.iter().map(|(k, s)| watch_state::ActiveModel {
                key: Set(k.clone()),
                state: Set(s.clone()),
                updated_at: Set(now),
            });
            watch_state::Entity::insert_many(rows)
                .on_conflict(
                    OnConflict::column(watch_state::Column::Key)
                        .update_columns([
                            watch_state::Column::State,
                            watch_state::Column::UpdatedAt,
                        ])
                        .to_owned(),
                )
                .exec_without_returning(&txn)
                .await
                .map_err(StoreError::db(op))?;
        }
        for chunk in gone.chunks(500) {
            watch_state::Entity::delete_many()
                .filter(watch_state::Column::Key.is_in(chunk.iter().cloned()))
                .exec(&txn)
                .await
                .map_err(StoreError::db(op))?;
        }
        txn.commit().await.map_err(StoreError::db(op))
    }

    /// Takes (or keeps) the cluster-wide lease `name` for `holder` until `ttl` from now.
    /// `true` when `holder` has it: no other holder's lease was still running.
    pub async fn take_job_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let op = "take a job lease";
        let now = crate::store::now();
        let taken = job_lease::Entity::update_many()
            .col_expr(job_lease::Column::Holder, Expr::value(holder.to_owned()))
            .col_expr(job_lease::Column::Until, Expr::value(now + ttl))
            .filter(job_lease::Column::Name.eq(name))
            .filter(
                Condition::any()
                    .add(job_lease::Column::Holder.eq(holder))
                    .add(job_lease::Column::Until.lt(now)),
            )
            .exec(&self.db)
            .await
            .map_err(StoreError::db(op))?;
        if taken.rows_affected == 1 {
            return Ok(true);
        }
        // No row yet (the first replica ever), or another holder's lease still runs: of
        // two replicas inserting at once, one row wins.
        let inserted = job_lease::Entity::insert(job_lease::ActiveModel {
            name: Set(name.to_owned()),
            holder: Set(holder.to_owned()),
            until: Set(now + ttl),
        })
        .on_conflict(
            OnConflict::column(job_lease::Column::Name)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await
        .map_err(StoreError::db(op))?;
        Ok(inserted == 1)
    }

    /// Every open alert.
    pub async fn open_alerts(&self) -> Result<Vec<Alert>, StoreError> {
        let rows = alert::Entity::find()
            .filter(alert::Column::State.eq("OPEN"))
            .all(&self.db)
            .await
            .map_err(StoreError::db("read open alerts"))?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Writes opened and updated (resolved, or with fresher evidence) alerts and the events
    /// that announce them, in one transaction: the events are offered to the environments'
    /// endpoints with them, so an alert is announced once whatever dies when.
    pub async fn record_alerts(
        &self,
        alerts: Vec<Alert>,
        events: Vec<UnifiedEvent>,
    ) -> Result<(), StoreError> {
        if alerts.is_empty() && events.is_empty() {
            return Ok(());
        }
        let op = "record alerts";
        let txn = self.db.begin().await.map_err(StoreError::db(op))?;
        for chunk in alerts.chunks(200) {
            alert::Entity::insert_many(chunk.iter().cloned().map(alert_row))
                .on_conflict(
                    OnConflict::column(alert::Column::Id)
                        .update_columns([
                            alert::Column::State,
                            alert::Column::ResolvedAt,
                            alert::Column::Evidence,
                            alert::Column::ProbableCause,
                            alert::Column::FirstResponse,
                            alert::Column::UpdatedAt,
                        ])
                        .to_owned(),
                )
                .exec_without_returning(&txn)
                .await
                .map_err(StoreError::db(op))?;
        }
        super::endpoints::fan_out(&txn, &events).await?;
        super::webhooks::insert_unified_events(&txn, events).await?;
        txn.commit().await.map_err(StoreError::db(op))?;
        Ok(())
    }

    /// Alerts newest first, narrowed by environment (a tenant sees its own), state and
    /// account.
    pub async fn list_alerts(
        &self,
        environment_id: Option<&str>,
        state: Option<&str>,
        account_id: Option<&str>,
        first: u64,
    ) -> Result<Vec<Alert>, StoreError> {
        let mut q = alert::Entity::find();
        if let Some(e) = environment_id {
            q = q.filter(alert::Column::EnvironmentId.eq(e));
        }
        if let Some(s) = state {
            q = q.filter(alert::Column::State.eq(s));
        }
        if let Some(a) = account_id {
            q = q.filter(alert::Column::AccountId.eq(a));
        }
        let rows = q
            .order_by_desc(alert::Column::OpenedAt)
            .order_by_desc(alert::Column::Id)
            .limit(first)
            .all(&self.db)
            .await
            .map_err(StoreError::db("list alerts"))?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Deletes resolved alerts older than `before`.
    pub async fn sweep_alerts(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(alert::Entity::delete_many()
            .filter(alert::Column::State.eq("RESOLVED"))
            .filter(alert::Column::ResolvedAt.lt(before))
            .exec(&self.db)
            .await
            .map_err(StoreError::db("sweep alerts"))?
            .rows_affected)
    }
}

/// Unified events of one account from one source, since a point of the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTally {
    pub account_id: String,
    /// `WEBHOOK`, `POLL` (a change reconciliation found that no webhook had announced) or
    /// `MONITOR` (alerts).
    pub source: String,
    pub events: i64,
}

impl Store {
    /// Unified events after `after` (by seq), counted per (account, source), and the seq it
    /// was read up to.
    pub async fn tally_unified_events(
        &self,
        after: i64,
    ) -> Result<(Vec<EventTally>, i64), StoreError> {
        use crate::store::entities::unified_event;
        let op = "tally unified events";
        let upto: Option<i32> = unified_event::Entity::find()
            .select_only()
            .column_as(unified_event::Column::Seq.max(), "upto")
            .into_tuple()
            .one(&self.db)
            .await
            .map_err(StoreError::db(op))?
            .flatten();
        let Some(upto) = upto.map(i64::from).filter(|u| *u > after) else {
            return Ok((Vec::new(), after));
        };
        let rows: Vec<(String, String, i64)> = unified_event::Entity::find()
            .select_only()
            .column(unified_event::Column::AccountId)
            .column(unified_event::Column::Source)
            .column_as(unified_event::Column::Seq.count(), "events")
            .filter(unified_event::Column::Seq.gt(after))
            .filter(unified_event::Column::Seq.lte(upto))
            .group_by(unified_event::Column::AccountId)
            .group_by(unified_event::Column::Source)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(StoreError::db(op))?;
        Ok((
            rows.into_iter()
                .map(|(account_id, source, events)| EventTally {
                    account_id,
                    source,
                    events,
                })
                .collect(),
            upto,
        ))
    }
}

impl Store {
    /// One saved watcher state (an account's), as JSON text.
    pub async fn get_watch_state(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(watch_state::Entity::find_by_id(key.to_owned())
            .one(&self.db)
            .await
            .map_err(StoreError::db("read the watcher's state"))?
            .map(|m| m.state))
    }
}
