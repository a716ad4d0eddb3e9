//! Webhooks in the database: the delivery log, the inbox of accepted vendor events and its
//! claims, the unified events they become, the keys that route app-level deliveries, and
//! per-account vendor subscriptions.
//!
//! The inbox is the outbox pattern turned inward: a delivery's events are written in the
//! same transaction as its log entry, before the vendor hears 2xx, and processed after. A
//! processor claims rows with a token and a deadline; completing them writes the unified
//! events and marks the rows done in one transaction that succeeds only while the claim is
//! still its own, so an event is processed exactly once even when a replica dies mid-way.

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait, TryInsertResult,
};

use crate::store::entities::{
    unified_event, webhook_account_key, webhook_delivery, webhook_inbox, webhook_subscription,
};
use crate::store::{Store, StoreError};

/// One entry of the delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    pub id: String,
    pub provider: String,
    pub account_id: Option<String>,
    pub received_at: DateTime<Utc>,
    /// `ACCEPTED`, `BAD_SIGNATURE`, `REPLAYED`, `UNKNOWN_ACCOUNT` or `MALFORMED`.
    pub outcome: String,
    pub reason: Option<String>,
    pub event_count: i32,
}

/// An event to put in an account's inbox.
#[derive(Debug, Clone)]
pub struct InboxEvent {
    /// The vendor's event id, or a hash of the event: unique per account.
    pub dedup_key: String,
    /// The event as JSON text.
    pub event: String,
    /// `WEBHOOK` or `POLL`.
    pub source: String,
}

/// A claimed inbox row.
#[derive(Debug, Clone)]
pub struct InboxItem {
    pub id: String,
    /// The claim this row is held under; completing it needs the same claim.
    pub claim: String,
    pub account_id: String,
    pub event: String,
    pub source: String,
    pub received_at: DateTime<Utc>,
    pub attempts: i32,
}

/// A unified event, as stored and as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct UnifiedEvent {
    /// Order of arrival across the whole database (the Relay cursor and the feed's tail).
    pub seq: i64,
    pub id: String,
    pub environment_id: String,
    pub account_id: String,
    /// `contact.updated`.
    pub kind: String,
    pub resource: String,
    pub remote_id: String,
    pub record_id: String,
    pub occurred_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub source: String,
    /// The mapped record as JSON text.
    pub record: Option<String>,
}

impl From<unified_event::Model> for UnifiedEvent {
    fn from(m: unified_event::Model) -> Self {
        UnifiedEvent {
            seq: i64::from(m.seq),
            id: m.id,
            environment_id: m.environment_id,
            account_id: m.account_id,
            kind: m.kind,
            resource: m.resource,
            remote_id: m.remote_id,
            record_id: m.record_id,
            occurred_at: m.occurred_at,
            received_at: m.received_at,
            source: m.source,
            record: m.record,
        }
    }
}

/// Which events to list.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub environment_id: Option<String>,
    pub account_id: Option<String>,
    pub types: Vec<String>,
    pub after_seq: Option<i64>,
    pub limit: u64,
    /// Leaves out the alert announcements (source `MONITOR`), which go to webhook
    /// endpoints only.
    pub records_only: bool,
}

/// A vendor subscription of one linked account. The secret arrives sealed.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSubscription {
    pub id: String,
    pub account_id: String,
    pub remote_id: Option<String>,
    /// `ACTIVE`, `RENEWING`, `LAPSED`, `FAILED` or `DELETED`.
    pub state: String,
    pub secret: Option<Vec<u8>>,
    pub expires_at: Option<DateTime<Utc>>,
    /// When the renewal job next takes it (none: nothing to do until something happens).
    pub renew_at: Option<DateTime<Utc>>,
    pub last_renewed_at: Option<DateTime<Utc>>,
    pub last_delivery_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub failures: i32,
    pub last_error: Option<String>,
}

impl std::fmt::Debug for WebhookSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSubscription")
            .field("id", &self.id)
            .field("account_id", &self.account_id)
            .field("remote_id", &self.remote_id)
            .field("state", &self.state)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl From<webhook_subscription::Model> for WebhookSubscription {
    fn from(m: webhook_subscription::Model) -> Self {
        WebhookSubscription {
            id: m.id,
            account_id: m.account_id,
            remote_id: m.remote_id,
            state: m.state,
            secret: m.secret,
            expires_at: m.expires_at,
            renew_at: m.renew_at,
            last_renewed_at: m.last_renewed_at,
            last_delivery_at: m.last_delivery_at,
            created_at: m.created_at,
            failures: m.failures,
            last_error: m.last_error,
        }
    }
}

/// The events of `q`'s environment, account and types (its position and limit aside).
fn events_matching(q: &EventQuery) -> sea_orm::Select<unified_event::Entity> {
    let mut find = unified_event::Entity::find();
    if let Some(env) = &q.environment_id {
        find = find.filter(unified_event::Column::EnvironmentId.eq(env.as_str()));
    }
    if let Some(account) = &q.account_id {
        find = find.filter(unified_event::Column::AccountId.eq(account.as_str()));
    }
    if !q.types.is_empty() {
        find = find.filter(unified_event::Column::Kind.is_in(q.types.iter().cloned()));
    }
    if q.records_only {
        find = find.filter(unified_event::Column::Source.ne("MONITOR"));
    }
    find
}

/// Puts events in an account's inbox, inside the caller's transaction; rows whose key is
/// already there are skipped. Returns how many were new.
/// One webhook delivery's events, per account, waiting to be stored.
pub(super) struct Accepting {
    provider: String,
    accounts: Vec<(String, Vec<InboxEvent>)>,
}

async fn insert_inbox<C: sea_orm::ConnectionTrait>(
    db: &C,
    account_id: &str,
    events: Vec<InboxEvent>,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let op = "store webhook events";
    // One statement per account: rows whose key is already there are skipped, and
    // the count of rows written is the count of new events.
    let rows: Vec<webhook_inbox::ActiveModel> = events
        .into_iter()
        .map(|e| webhook_inbox::ActiveModel {
            id: Set(crate::store::new_ordered_id()),
            account_id: Set(account_id.to_owned()),
            dedup_key: Set(e.dedup_key),
            event: Set(e.event),
            source: Set(e.source),
            received_at: Set(now),
            state: Set("pending".into()),
            attempts: Set(0),
            claim: Set(None),
            claimed_until: Set(None),
            last_error: Set(None),
        })
        .collect();
    // In chunks: a statement's bound parameters are limited (SQLite: 32,766).
    let mut fresh = 0usize;
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<_> = rows.by_ref().take(500).collect();
        fresh += match webhook_inbox::Entity::insert_many(chunk)
            .on_conflict_do_nothing_on([
                webhook_inbox::Column::AccountId,
                webhook_inbox::Column::DedupKey,
            ])
            .exec_without_returning(db)
            .await
            .map_err(StoreError::db(op))?
        {
            TryInsertResult::Inserted(n) => usize::try_from(n).unwrap_or(usize::MAX),
            TryInsertResult::Empty | TryInsertResult::Conflicted => 0,
        };
    }
    Ok(fresh)
}

impl Store {
    /// Logs a delivery that stored nothing (refused, or for no known account).
    pub async fn log_webhook_delivery(
        &self,
        provider: &str,
        account_id: Option<&str>,
        outcome: &str,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        webhook_delivery::Entity::insert(webhook_delivery::ActiveModel {
            id: Set(crate::store::new_ordered_id()),
            provider: Set(provider.to_owned()),
            account_id: Set(account_id.map(str::to_owned)),
            received_at: Set(crate::store::now()),
            outcome: Set(outcome.to_owned()),
            reason: Set(reason.map(str::to_owned)),
            event_count: Set(0),
        })
        .exec_without_returning(&self.db)
        .await
        .map_err(StoreError::db("log a webhook delivery"))?;
        Ok(())
    }

    /// Stores one delivery's events in the accounts' inboxes (new ones only: an event key
    /// already there is a repeat) and logs the delivery per account; returns how many
    /// events were new per account. Concurrent deliveries share a transaction (group
    /// commit); this returns once the one holding this delivery committed.
    pub async fn accept_webhook_events(
        &self,
        provider: &str,
        accounts: Vec<(String, Vec<InboxEvent>)>,
    ) -> Result<Vec<usize>, StoreError> {
        let delivery = Accepting {
            provider: provider.to_owned(),
            accounts,
        };
        self.intake.clone().accept(self, delivery).await
    }

    /// A store on the same pool without a group-commit writer of its own (the writer's).
    pub(super) fn without_writer(&self) -> Store {
        Store {
            db: self.db.clone(),
            intake: Default::default(),
            recent: self.recent.clone(),
        }
    }

    /// Writes deliveries in one transaction; per delivery, the counts of new events per
    /// account.
    pub(super) async fn accept_together(
        &self,
        deliveries: &[Accepting],
    ) -> Result<Vec<Vec<usize>>, StoreError> {
        let op = "store a webhook delivery";
        let now = crate::store::now();
        let txn = self.db.begin().await.map_err(StoreError::db(op))?;
        let mut out = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            let mut counts = Vec::with_capacity(delivery.accounts.len());
            for (account_id, events) in &delivery.accounts {
                let total = events.len();
                let fresh = insert_inbox(&txn, account_id, events.clone(), now).await?;
                let (outcome, reason) = if total > 0 && fresh == 0 {
                    (
                        "REPLAYED",
                        Some(format!("all {total} events were delivered before")),
                    )
                } else if fresh < total {
                    (
                        "ACCEPTED",
                        Some(format!(
                            "{} of {total} events were delivered before",
                            total - fresh
                        )),
                    )
                } else {
                    ("ACCEPTED", None)
                };
                webhook_delivery::Entity::insert(webhook_delivery::ActiveModel {
                    id: Set(crate::store::new_ordered_id()),
                    provider: Set(delivery.provider.clone()),
                    account_id: Set(Some(account_id.clone())),
                    received_at: Set(now),
                    outcome: Set(outcome.into()),
                    reason: Set(reason),
                    event_count: Set(i32::try_from(fresh).unwrap_or(i32::MAX)),
                })
                .exec_without_returning(&txn)
                .await
                .map_err(StoreError::db(op))?;
                counts.push(fresh);
            }
            out.push(counts);
        }
        txn.commit().await.map_err(StoreError::db(op))?;
        Ok(out)
    }

    /// Puts changes found by reconciliation in the account's inbox (no delivery log: no
    /// vendor delivered them). Returns how many were new.
    pub async fn enqueue_polled_events(
        &self,
        account_id: &str,
        events: Vec<InboxEvent>,
    ) -> Result<usize, StoreError> {
        let txn = self
            .db
            .begin()
            .await
            .map_err(StoreError::db("store polled events"))?;
        let fresh = insert_inbox(&txn, account_id, events, crate::store::now()).await?;
        txn.commit()
            .await
            .map_err(StoreError::db("store polled events"))?;
        Ok(fresh)
    }

    /// The newest `last` log entries of an account, newest first.
    pub async fn list_webhook_deliveries(
        &self,
        account_id: &str,
        last: u64,
    ) -> Result<Vec<WebhookDelivery>, StoreError> {
        let rows = webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::AccountId.eq(account_id))
            .order_by_desc(webhook_delivery::Column::ReceivedAt)
            .limit(last)
            .all(&self.db)
            .await
            .map_err(StoreError::db("list webhook deliveries"))?;
        Ok(rows
            .into_iter()
            .map(|m| WebhookDelivery {
                id: m.id,
                provider: m.provider,
                account_id: m.account_id,
                received_at: m.received_at,
                outcome: m.outcome,
                reason: m.reason,
                event_count: m.event_count,
            })
            .collect())
    }

    /// Claims up to `limit` pending inbox rows for `lease`, oldest first. Rows another
    /// processor holds (its deadline not passed) or that wait for a retry are skipped.
    pub async fn claim_inbox(
        &self,
        limit: u64,
        lease: Duration,
    ) -> Result<Vec<InboxItem>, StoreError> {
        let op = "claim webhook events";
        let now = crate::store::now();
        let free = || {
            Condition::all()
                .add(webhook_inbox::Column::State.eq("pending"))
                .add(
                    Condition::any()
                        .add(webhook_inbox::Column::ClaimedUntil.is_null())
                        .add(webhook_inbox::Column::ClaimedUntil.lt(now)),
                )
        };
        let Some(token) = crate::store::claim_rows::<webhook_inbox::Entity>(
            &self.db,
            crate::store::ClaimColumns {
                id: webhook_inbox::Column::Id,
                order: webhook_inbox::Column::ReceivedAt,
                claim: webhook_inbox::Column::Claim,
                until: webhook_inbox::Column::ClaimedUntil,
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
        let rows = webhook_inbox::Entity::find()
            .filter(webhook_inbox::Column::Claim.eq(token))
            .filter(webhook_inbox::Column::State.eq("pending"))
            .order_by_asc(webhook_inbox::Column::ReceivedAt)
            .all(&self.db)
            .await
            .map_err(StoreError::db(op))?;
        Ok(rows
            .into_iter()
            .map(|m| InboxItem {
                claim: m.claim.unwrap_or_default(),
                id: m.id,
                account_id: m.account_id,
                event: m.event,
                source: m.source,
                received_at: m.received_at,
                attempts: m.attempts,
            })
            .collect())
    }

    /// Marks claimed rows done and writes the unified events they made, in one transaction.
    /// Rows whose claim is no longer `claim` (the lease ran out and another processor took
    /// them) roll the whole batch back: `Ok(false)`, and the other processor's result stands.
    pub async fn complete_inbox(
        &self,
        claim: &str,
        done: &[String],
        events: Vec<UnifiedEvent>,
    ) -> Result<bool, StoreError> {
        let op = "complete webhook events";
        let txn = self.db.begin().await.map_err(StoreError::db(op))?;
        if !done.is_empty() {
            let updated = webhook_inbox::Entity::update_many()
                .col_expr(webhook_inbox::Column::State, Expr::value("done"))
                .col_expr(
                    webhook_inbox::Column::Claim,
                    Expr::value(Option::<String>::None),
                )
                .filter(webhook_inbox::Column::Id.is_in(done.iter().cloned()))
                .filter(webhook_inbox::Column::State.eq("pending"))
                .filter(webhook_inbox::Column::Claim.eq(claim))
                .exec(&txn)
                .await
                .map_err(StoreError::db(op))?;
            if updated.rows_affected != done.len() as u64 {
                txn.rollback().await.map_err(StoreError::db(op))?;
                return Ok(false);
            }
        }
        // Offered to the environment's endpoints in the same transaction: an event is
        // delivered to each endpoint once, whatever dies when.
        super::endpoints::fan_out(&txn, &events).await?;
        insert_unified_events(&txn, events).await?;
        txn.commit().await.map_err(StoreError::db(op))?;
        Ok(true)
    }

    /// Puts claimed rows back for a later try (after `not_before`), with their error, in
    /// one statement; rows no longer under `claim` are left to whoever holds them.
    pub async fn retry_inbox(
        &self,
        ids: &[String],
        claim: &str,
        error: &str,
        not_before: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        webhook_inbox::Entity::update_many()
            .col_expr(
                webhook_inbox::Column::Claim,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                webhook_inbox::Column::ClaimedUntil,
                Expr::value(crate::store::stored_time(not_before)),
            )
            .col_expr(
                webhook_inbox::Column::Attempts,
                Expr::col(webhook_inbox::Column::Attempts).add(1),
            )
            .col_expr(
                webhook_inbox::Column::LastError,
                Expr::value(error.to_owned()),
            )
            .filter(webhook_inbox::Column::Id.is_in(ids.iter().cloned()))
            .filter(webhook_inbox::Column::Claim.eq(claim))
            .filter(webhook_inbox::Column::State.eq("pending"))
            .exec(&self.db)
            .await
            .map_err(StoreError::db("retry webhook events"))?;
        Ok(())
    }

    /// How many inbox rows wait to be processed.
    pub async fn pending_inbox(&self) -> Result<u64, StoreError> {
        use sea_orm::PaginatorTrait;
        webhook_inbox::Entity::find()
            .filter(webhook_inbox::Column::State.eq("pending"))
            .count(&self.db)
            .await
            .map_err(StoreError::db("count pending webhook events"))
    }

    /// Events in arrival order, oldest first.
    pub async fn list_unified_events(
        &self,
        q: &EventQuery,
    ) -> Result<Vec<UnifiedEvent>, StoreError> {
        let mut find = events_matching(q);
        if let Some(after) = q.after_seq {
            find = find.filter(unified_event::Column::Seq.gt(after));
        }
        let rows = find
            .order_by_asc(unified_event::Column::Seq)
            .limit(q.limit)
            .all(&self.db)
            .await
            .map_err(StoreError::db("list events"))?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// The newest `limit` events of the query, returned oldest first (Relay's `last`).
    pub async fn latest_unified_events(
        &self,
        q: &EventQuery,
    ) -> Result<Vec<UnifiedEvent>, StoreError> {
        let mut rows: Vec<UnifiedEvent> = events_matching(q)
            .order_by_desc(unified_event::Column::Seq)
            .limit(q.limit)
            .all(&self.db)
            .await
            .map_err(StoreError::db("list events"))?
            .into_iter()
            .map(Into::into)
            .collect();
        rows.reverse();
        Ok(rows)
    }

    /// One event by id.
    pub async fn get_unified_event(&self, id: &str) -> Result<Option<UnifiedEvent>, StoreError> {
        let row = unified_event::Entity::find()
            .filter(unified_event::Column::Id.eq(id))
            .one(&self.db)
            .await
            .map_err(StoreError::db("read an event"))?;
        Ok(row.map(Into::into))
    }

    /// The highest event sequence number (0 with no events).
    pub async fn last_event_seq(&self) -> Result<i64, StoreError> {
        let seq: Option<i32> = unified_event::Entity::find()
            .select_only()
            .column(unified_event::Column::Seq)
            .order_by_desc(unified_event::Column::Seq)
            .limit(1)
            .into_tuple()
            .one(&self.db)
            .await
            .map_err(StoreError::db("read the last event"))?;
        Ok(seq.map(i64::from).unwrap_or(0))
    }

    /// The keys app-level deliveries are routed to `account_id` by (learned from the
    /// vendor, or taken from its settings).
    pub async fn webhook_keys_of_account(
        &self,
        account_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        webhook_account_key::Entity::find()
            .select_only()
            .column(webhook_account_key::Column::Key)
            .filter(webhook_account_key::Column::AccountId.eq(account_id))
            .into_tuple::<String>()
            .all(&self.db)
            .await
            .map_err(StoreError::db("read an account's webhook keys"))
    }

    /// Routes app-level deliveries carrying `key` to `account_id`.
    pub async fn put_webhook_account_key(
        &self,
        provider: &str,
        key: &str,
        account_id: &str,
    ) -> Result<(), StoreError> {
        webhook_account_key::Entity::insert(webhook_account_key::ActiveModel {
            provider: Set(provider.to_owned()),
            key: Set(key.to_owned()),
            account_id: Set(account_id.to_owned()),
        })
        .on_conflict_do_nothing()
        .exec_without_returning(&self.db)
        .await
        .map_err(StoreError::db("store a webhook account key"))?;
        self.recent
            .webhook_keys
            .forget(&(provider.to_owned(), key.to_owned()));
        Ok(())
    }

    /// As [`Self::accounts_for_webhook_key`], possibly up to a second old (the intake's
    /// read on every delivery; a key learned through this store is seen at once).
    pub async fn recent_accounts_for_webhook_key(
        &self,
        provider: &str,
        key: &str,
    ) -> Result<Vec<String>, StoreError> {
        self.recent
            .webhook_keys
            .read_through(
                (provider.to_owned(), key.to_owned()),
                self.accounts_for_webhook_key(provider, key),
            )
            .await
    }

    /// The accounts an app-level delivery carrying `key` belongs to.
    pub async fn accounts_for_webhook_key(
        &self,
        provider: &str,
        key: &str,
    ) -> Result<Vec<String>, StoreError> {
        webhook_account_key::Entity::find()
            .select_only()
            .column(webhook_account_key::Column::AccountId)
            .filter(webhook_account_key::Column::Provider.eq(provider))
            .filter(webhook_account_key::Column::Key.eq(key))
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(StoreError::db("find accounts by webhook key"))
    }

    /// Records a vendor subscription of an account (created by Tessera at the vendor).
    pub async fn insert_webhook_subscription(
        &self,
        s: WebhookSubscription,
    ) -> Result<(), StoreError> {
        webhook_subscription::Entity::insert(webhook_subscription::ActiveModel {
            id: Set(s.id),
            account_id: Set(s.account_id),
            remote_id: Set(s.remote_id),
            state: Set(s.state),
            secret: Set(s.secret),
            expires_at: Set(s.expires_at.map(crate::store::stored_time)),
            renew_at: Set(s.renew_at.map(crate::store::stored_time)),
            last_renewed_at: Set(s.last_renewed_at.map(crate::store::stored_time)),
            last_delivery_at: Set(s.last_delivery_at.map(crate::store::stored_time)),
            created_at: Set(crate::store::stored_time(s.created_at)),
            failures: Set(s.failures),
            last_error: Set(s.last_error),
            claim: Set(None),
            claimed_until: Set(None),
        })
        .exec_without_returning(&self.db)
        .await
        .map_err(StoreError::db("store a webhook subscription"))?;
        Ok(())
    }

    /// An account's subscriptions, oldest first.
    pub async fn list_webhook_subscriptions(
        &self,
        account_id: &str,
    ) -> Result<Vec<WebhookSubscription>, StoreError> {
        let rows = webhook_subscription::Entity::find()
            .filter(webhook_subscription::Column::AccountId.eq(account_id))
            .order_by_asc(webhook_subscription::Column::CreatedAt)
            .all(&self.db)
            .await
            .map_err(StoreError::db("list webhook subscriptions"))?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// The subscriptions bearing a vendor id (one, unless two accounts share it).
    pub async fn find_webhook_subscriptions(
        &self,
        remote_id: &str,
    ) -> Result<Vec<WebhookSubscription>, StoreError> {
        let rows = webhook_subscription::Entity::find()
            .filter(webhook_subscription::Column::RemoteId.eq(remote_id))
            .all(&self.db)
            .await
            .map_err(StoreError::db("find a webhook subscription"))?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Claims up to `limit` subscriptions whose renewal is due, for `lease`. Each comes with
    /// the claim that [`Store::save_webhook_subscription`] needs.
    pub async fn claim_due_subscriptions(
        &self,
        limit: u64,
        lease: Duration,
    ) -> Result<Vec<(WebhookSubscription, String)>, StoreError> {
        let op = "claim webhook subscriptions";
        let now = crate::store::now();
        let free = || {
            Condition::all()
                .add(webhook_subscription::Column::RenewAt.lte(now))
                .add(webhook_subscription::Column::State.ne("DELETED"))
                .add(
                    Condition::any()
                        .add(webhook_subscription::Column::ClaimedUntil.is_null())
                        .add(webhook_subscription::Column::ClaimedUntil.lt(now)),
                )
        };
        let Some(token) = crate::store::claim_rows::<webhook_subscription::Entity>(
            &self.db,
            crate::store::ClaimColumns {
                id: webhook_subscription::Column::Id,
                order: webhook_subscription::Column::RenewAt,
                claim: webhook_subscription::Column::Claim,
                until: webhook_subscription::Column::ClaimedUntil,
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
        let rows = webhook_subscription::Entity::find()
            .filter(webhook_subscription::Column::Claim.eq(token.clone()))
            .all(&self.db)
            .await
            .map_err(StoreError::db(op))?;
        Ok(rows
            .into_iter()
            .map(|m| (WebhookSubscription::from(m), token.clone()))
            .collect())
    }

    /// Writes a claimed subscription back and frees its claim; `false` when the claim was
    /// lost (another replica took the subscription over) and nothing was written.
    pub async fn save_webhook_subscription(
        &self,
        s: &WebhookSubscription,
        claim: &str,
    ) -> Result<bool, StoreError> {
        let updated = webhook_subscription::Entity::update_many()
            .col_expr(
                webhook_subscription::Column::RemoteId,
                Expr::value(s.remote_id.clone()),
            )
            .col_expr(
                webhook_subscription::Column::State,
                Expr::value(s.state.clone()),
            )
            .col_expr(
                webhook_subscription::Column::Secret,
                Expr::value(s.secret.clone()),
            )
            .col_expr(
                webhook_subscription::Column::ExpiresAt,
                Expr::value(s.expires_at.map(crate::store::stored_time)),
            )
            .col_expr(
                webhook_subscription::Column::RenewAt,
                Expr::value(s.renew_at.map(crate::store::stored_time)),
            )
            .col_expr(
                webhook_subscription::Column::LastRenewedAt,
                Expr::value(s.last_renewed_at.map(crate::store::stored_time)),
            )
            .col_expr(
                webhook_subscription::Column::Failures,
                Expr::value(s.failures),
            )
            .col_expr(
                webhook_subscription::Column::LastError,
                Expr::value(s.last_error.clone()),
            )
            .col_expr(
                webhook_subscription::Column::Claim,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                webhook_subscription::Column::ClaimedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(webhook_subscription::Column::Id.eq(s.id.as_str()))
            .filter(webhook_subscription::Column::Claim.eq(claim))
            .exec(&self.db)
            .await
            .map_err(StoreError::db("save a webhook subscription"))?;
        Ok(updated.rows_affected == 1)
    }

    /// Makes a subscription due for renewal now (the vendor asked for it, or lost it).
    pub async fn renew_webhook_subscription_now(&self, id: &str) -> Result<(), StoreError> {
        webhook_subscription::Entity::update_many()
            .col_expr(
                webhook_subscription::Column::RenewAt,
                Expr::value(crate::store::now()),
            )
            .filter(webhook_subscription::Column::Id.eq(id))
            .filter(webhook_subscription::Column::State.ne("DELETED"))
            .exec(&self.db)
            .await
            .map_err(StoreError::db("schedule a webhook subscription renewal"))?;
        Ok(())
    }

    /// Notes that a subscription delivered just now.
    pub async fn touch_webhook_subscriptions(&self, ids: &[String]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        webhook_subscription::Entity::update_many()
            .col_expr(
                webhook_subscription::Column::LastDeliveryAt,
                Expr::value(crate::store::now()),
            )
            .filter(webhook_subscription::Column::Id.is_in(ids.iter().cloned()))
            .exec(&self.db)
            .await
            .map_err(StoreError::db("note a webhook delivery"))?;
        Ok(())
    }

    /// Deletes processed inbox rows, log entries and events received before `before`.
    pub async fn sweep_webhooks(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let op = "sweep webhook data";
        let a = webhook_inbox::Entity::delete_many()
            .filter(webhook_inbox::Column::State.eq("done"))
            .filter(webhook_inbox::Column::ReceivedAt.lt(before))
            .exec(&self.db)
            .await
            .map_err(StoreError::db(op))?;
        let b = webhook_delivery::Entity::delete_many()
            .filter(webhook_delivery::Column::ReceivedAt.lt(before))
            .exec(&self.db)
            .await
            .map_err(StoreError::db(op))?;
        let c = unified_event::Entity::delete_many()
            .filter(unified_event::Column::ReceivedAt.lt(before))
            .exec(&self.db)
            .await
            .map_err(StoreError::db(op))?;
        Ok(a.rows_affected + b.rows_affected + c.rows_affected)
    }
}

/// Notifications that another replica wrote events (PostgreSQL `LISTEN`).
pub struct EventListener(sea_orm::sqlx::postgres::PgListener);

/// The channel replicas announce new events on.
const EVENTS_CHANNEL: &str = "tessera_events";

impl EventListener {
    /// Waits for the next notification.
    pub async fn recv(&mut self) -> Result<(), StoreError> {
        self.0
            .recv()
            .await
            .map(|_| ())
            .map_err(|e| StoreError::Database {
                operation: "listen for events",
                detail: e.to_string(),
            })
    }
}

impl Store {
    /// A listener for other replicas' events; `None` on SQLite, which has no notifications.
    pub async fn listen_events(&self) -> Result<Option<EventListener>, StoreError> {
        if self.backend() != crate::store::Backend::Postgres {
            return Ok(None);
        }
        let fail = |e: sea_orm::sqlx::Error| StoreError::Database {
            operation: "listen for events",
            detail: e.to_string(),
        };
        let mut listener = sea_orm::sqlx::postgres::PgListener::connect_with(
            self.db.get_postgres_connection_pool(),
        )
        .await
        .map_err(fail)?;
        listener.listen(EVENTS_CHANNEL).await.map_err(fail)?;
        Ok(Some(EventListener(listener)))
    }

    /// Wakes the other replicas' event feeds (PostgreSQL only).
    pub async fn notify_events(&self) -> Result<(), StoreError> {
        if self.backend() != crate::store::Backend::Postgres {
            return Ok(());
        }
        use sea_orm::ConnectionTrait;
        self.db
            .execute_unprepared(&format!("NOTIFY {EVENTS_CHANNEL}"))
            .await
            .map_err(StoreError::db("notify other replicas of events"))?;
        Ok(())
    }
}

/// Appends unified events inside the caller's transaction.
pub(super) async fn insert_unified_events<C: sea_orm::ConnectionTrait>(
    db: &C,
    events: Vec<UnifiedEvent>,
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    unified_event::Entity::insert_many(events.into_iter().map(|e| unified_event::ActiveModel {
        seq: sea_orm::ActiveValue::NotSet,
        id: Set(e.id),
        environment_id: Set(e.environment_id),
        account_id: Set(e.account_id),
        kind: Set(e.kind),
        resource: Set(e.resource),
        remote_id: Set(e.remote_id),
        record_id: Set(e.record_id),
        occurred_at: Set(crate::store::stored_time(e.occurred_at)),
        received_at: Set(crate::store::stored_time(e.received_at)),
        source: Set(e.source),
        record: Set(e.record),
    }))
    .exec_without_returning(db)
    .await
    .map_err(StoreError::db("write unified events"))?;
    Ok(())
}
