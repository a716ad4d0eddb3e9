//! The customer's webhook endpoints and their deliveries: one row per (endpoint, event),
//! written in the same transaction as the event (so an event is offered to every endpoint
//! exactly once), then claimed, attempted and retried by the outbound deliverer.

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use crate::store::entities::{endpoint_delivery, webhook_endpoint};
use crate::store::{Store, StoreError, UnifiedEvent};

/// An endpoint of an environment. The secret arrives sealed.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    pub id: String,
    pub environment_id: String,
    pub url: String,
    /// Event types delivered (`contact.updated`); empty means every type.
    pub types: Vec<String>,
    pub secret: Vec<u8>,
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for WebhookEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookEndpoint")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("types", &self.types)
            .finish_non_exhaustive()
    }
}

impl WebhookEndpoint {
    pub fn wants(&self, kind: &str) -> bool {
        self.types.is_empty() || self.types.iter().any(|t| t == kind)
    }
}

impl From<webhook_endpoint::Model> for WebhookEndpoint {
    fn from(m: webhook_endpoint::Model) -> Self {
        WebhookEndpoint {
            id: m.id,
            environment_id: m.environment_id,
            url: m.url,
            types: serde_json::from_str(&m.types).unwrap_or_default(),
            secret: m.secret,
            created_at: m.created_at,
        }
    }
}

/// One event offered to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointDelivery {
    pub id: String,
    pub endpoint_id: String,
    pub event_id: String,
    /// Attempts made so far.
    pub attempt: i32,
    /// `PENDING`, `DELIVERED` or `DEAD` (dead-lettered: retried for the whole window).
    pub status: String,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    /// When the retry window started (the event's offer, or the last redelivery).
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

impl From<endpoint_delivery::Model> for EndpointDelivery {
    fn from(m: endpoint_delivery::Model) -> Self {
        EndpointDelivery {
            id: m.id,
            endpoint_id: m.endpoint_id,
            event_id: m.event_id,
            attempt: m.attempt,
            status: m.status,
            next_attempt_at: m.next_attempt_at,
            last_status: m.last_status,
            last_error: m.last_error,
            created_at: m.created_at,
            delivered_at: m.delivered_at,
        }
    }
}

fn pending(
    endpoint_id: &str,
    event_id: &str,
    now: DateTime<Utc>,
) -> endpoint_delivery::ActiveModel {
    endpoint_delivery::ActiveModel {
        id: Set(crate::store::new_id()),
        endpoint_id: Set(endpoint_id.to_owned()),
        event_id: Set(event_id.to_owned()),
        attempt: Set(0),
        status: Set("PENDING".into()),
        next_attempt_at: Set(Some(now)),
        last_status: Set(None),
        last_error: Set(None),
        claim: Set(None),
        claimed_until: Set(None),
        created_at: Set(now),
        delivered_at: Set(None),
    }
}

/// Offers `events` to their environments' endpoints, inside the caller's transaction.
/// Returns how many deliveries it queued.
pub(super) async fn fan_out<C: ConnectionTrait>(
    db: &C,
    events: &[UnifiedEvent],
) -> Result<usize, StoreError> {
    let op = "queue webhook deliveries";
    let mut envs: Vec<&str> = events.iter().map(|e| e.environment_id.as_str()).collect();
    envs.sort_unstable();
    envs.dedup();
    if envs.is_empty() {
        return Ok(0);
    }
    let endpoints: Vec<WebhookEndpoint> = webhook_endpoint::Entity::find()
        .filter(webhook_endpoint::Column::EnvironmentId.is_in(envs))
        .filter(webhook_endpoint::Column::DeletedAt.is_null())
        .all(db)
        .await
        .map_err(StoreError::db(op))?
        .into_iter()
        .map(Into::into)
        .collect();
    let now = crate::store::now();
    let rows: Vec<endpoint_delivery::ActiveModel> = events
        .iter()
        .flat_map(|e| {
            endpoints
                .iter()
                .filter(move |p| p.environment_id == e.environment_id && p.wants(&e.kind))
                .map(move |p| pending(&p.id, &e.id, now))
        })
        .collect();
    let n = rows.len();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<_> = rows.by_ref().take(500).collect();
        endpoint_delivery::Entity::insert_many(chunk)
            .exec_without_returning(db)
            .await
            .map_err(StoreError::db(op))?;
    }
    Ok(n)
}

impl Store {
    pub async fn insert_webhook_endpoint(&self, e: WebhookEndpoint) -> Result<(), StoreError> {
        webhook_endpoint::Entity::insert(webhook_endpoint::ActiveModel {
            id: Set(e.id),
            environment_id: Set(e.environment_id),
            url: Set(e.url),
            types: Set(serde_json::to_string(&e.types).unwrap_or_else(|_| "[]".into())),
            secret: Set(e.secret),
            created_at: Set(crate::store::stored_time(e.created_at)),
            deleted_at: Set(None),
        })
        .exec_without_returning(&self.db)
        .await
        .map_err(StoreError::insert(
            "create a webhook endpoint",
            "this endpoint",
            "environment",
        ))?;
        Ok(())
    }

    /// An environment's endpoints, oldest first.
    pub async fn list_webhook_endpoints(
        &self,
        environment_id: &str,
    ) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let rows = webhook_endpoint::Entity::find()
            .filter(webhook_endpoint::Column::EnvironmentId.eq(environment_id))
            .filter(webhook_endpoint::Column::DeletedAt.is_null())
            .order_by_asc(webhook_endpoint::Column::CreatedAt)
            .all(&self.db)
            .await
            .map_err(StoreError::db("list webhook endpoints"))?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    pub async fn get_webhook_endpoint(
        &self,
        id: &str,
    ) -> Result<Option<WebhookEndpoint>, StoreError> {
        let row = webhook_endpoint::Entity::find_by_id(id.to_owned())
            .filter(webhook_endpoint::Column::DeletedAt.is_null())
            .one(&self.db)
            .await
            .map_err(StoreError::db("read a webhook endpoint"))?;
        Ok(row.map(Into::into))
    }

    /// Deletes an endpoint of the environment and its queued deliveries; `false` when there
    /// was none.
    pub async fn delete_webhook_endpoint(
        &self,
        environment_id: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let deleted = webhook_endpoint::Entity::delete_many()
            .filter(webhook_endpoint::Column::Id.eq(id))
            .filter(webhook_endpoint::Column::EnvironmentId.eq(environment_id))
            .exec(&self.db)
            .await
            .map_err(StoreError::db("delete a webhook endpoint"))?;
        Ok(deleted.rows_affected > 0)
    }

    /// Claims up to `limit` deliveries whose next attempt is due, for `lease`.
    pub async fn claim_due_deliveries(
        &self,
        limit: u64,
        lease: Duration,
    ) -> Result<Vec<(EndpointDelivery, String)>, StoreError> {
        let op = "claim webhook deliveries";
        let now = crate::store::now();
        let free = || {
            Condition::all()
                .add(endpoint_delivery::Column::Status.eq("PENDING"))
                .add(endpoint_delivery::Column::NextAttemptAt.lte(now))
                .add(
                    Condition::any()
                        .add(endpoint_delivery::Column::ClaimedUntil.is_null())
                        .add(endpoint_delivery::Column::ClaimedUntil.lt(now)),
                )
        };
        let Some(token) = crate::store::claim_rows::<endpoint_delivery::Entity>(
            &self.db,
            crate::store::ClaimColumns {
                id: endpoint_delivery::Column::Id,
                order: endpoint_delivery::Column::NextAttemptAt,
                claim: endpoint_delivery::Column::Claim,
                until: endpoint_delivery::Column::ClaimedUntil,
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
        let rows = endpoint_delivery::Entity::find()
            .filter(endpoint_delivery::Column::Claim.eq(token.clone()))
            .all(&self.db)
            .await
            .map_err(StoreError::db(op))?;
        Ok(rows
            .into_iter()
            .map(|m| (m.into(), token.clone()))
            .collect())
    }

    /// Writes an attempt's outcome and frees the claim; `false` when the claim was lost.
    pub async fn save_endpoint_delivery(
        &self,
        d: &EndpointDelivery,
        claim: &str,
    ) -> Result<bool, StoreError> {
        let updated = endpoint_delivery::Entity::update_many()
            .col_expr(endpoint_delivery::Column::Attempt, Expr::value(d.attempt))
            .col_expr(
                endpoint_delivery::Column::Status,
                Expr::value(d.status.clone()),
            )
            .col_expr(
                endpoint_delivery::Column::NextAttemptAt,
                Expr::value(d.next_attempt_at.map(crate::store::stored_time)),
            )
            .col_expr(
                endpoint_delivery::Column::LastStatus,
                Expr::value(d.last_status),
            )
            .col_expr(
                endpoint_delivery::Column::LastError,
                Expr::value(d.last_error.clone()),
            )
            .col_expr(
                endpoint_delivery::Column::DeliveredAt,
                Expr::value(d.delivered_at.map(crate::store::stored_time)),
            )
            .col_expr(
                endpoint_delivery::Column::Claim,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                endpoint_delivery::Column::ClaimedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(endpoint_delivery::Column::Id.eq(d.id.as_str()))
            .filter(endpoint_delivery::Column::Claim.eq(claim))
            .exec(&self.db)
            .await
            .map_err(StoreError::db("save a webhook delivery"))?;
        Ok(updated.rows_affected == 1)
    }

    /// An endpoint's newest `last` deliveries, newest first.
    pub async fn list_endpoint_deliveries(
        &self,
        endpoint_id: &str,
        last: u64,
    ) -> Result<Vec<EndpointDelivery>, StoreError> {
        let rows = endpoint_delivery::Entity::find()
            .filter(endpoint_delivery::Column::EndpointId.eq(endpoint_id))
            .order_by_desc(endpoint_delivery::Column::CreatedAt)
            .limit(last)
            .all(&self.db)
            .await
            .map_err(StoreError::db("list webhook deliveries"))?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Offers the event to the endpoint again, with a new retry window (a dead letter
    /// replayed, or an event older than the endpoint).
    pub async fn redeliver(
        &self,
        endpoint_id: &str,
        event_id: &str,
    ) -> Result<EndpointDelivery, StoreError> {
        let op = "redeliver a webhook";
        let now = crate::store::now();
        let reset = endpoint_delivery::Entity::update_many()
            .col_expr(endpoint_delivery::Column::Status, Expr::value("PENDING"))
            .col_expr(endpoint_delivery::Column::Attempt, Expr::value(0))
            .col_expr(endpoint_delivery::Column::NextAttemptAt, Expr::value(now))
            .col_expr(endpoint_delivery::Column::CreatedAt, Expr::value(now))
            .col_expr(
                endpoint_delivery::Column::DeliveredAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(endpoint_delivery::Column::EndpointId.eq(endpoint_id))
            .filter(endpoint_delivery::Column::EventId.eq(event_id))
            .exec(&self.db)
            .await
            .map_err(StoreError::db(op))?;
        if reset.rows_affected == 0 {
            endpoint_delivery::Entity::insert(pending(endpoint_id, event_id, now))
                .exec_without_returning(&self.db)
                .await
                .map_err(StoreError::db(op))?;
        }
        let row = endpoint_delivery::Entity::find()
            .filter(endpoint_delivery::Column::EndpointId.eq(endpoint_id))
            .filter(endpoint_delivery::Column::EventId.eq(event_id))
            .one(&self.db)
            .await
            .map_err(StoreError::db(op))?
            .ok_or_else(|| StoreError::NotFound {
                what: "that delivery".into(),
            })?;
        Ok(row.into())
    }
}
