//! Unified events: the `events` query (a Relay connection, newest last), the `events`
//! subscription (over graphql-transport-ws), and a linked account's webhook deliveries
//! and subscriptions. Both the query and the subscription see only the caller's
//! environment.

use std::sync::Arc;

use async_graphql::dynamic::{
    Enum, Field, FieldFuture, FieldValue, InputValue, Object, SubscriptionField,
    SubscriptionFieldFuture, TypeRef,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::context::{caller, services};
use super::errors::{coded, from_code};
use super::platform::{getter, time};
use crate::access::{Caller, visible_account};
use crate::error::ErrorCode;
use crate::store::{EventQuery, LinkedAccount, UnifiedEvent, WebhookDelivery, WebhookSubscription};

const MAX_PAGE: u64 = 500;
const DEFAULT_PAGE: u64 = 50;

/// A page of events and whether more follow.
struct EventPage {
    events: Vec<Arc<UnifiedEvent>>,
    has_next_page: bool,
}

fn cursor(seq: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("ev:{seq}"))
}

fn decode_cursor(text: &str) -> Option<i64> {
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix("ev:")?
        .parse()
        .ok()
}

fn json_value(text: &Option<String>) -> Option<FieldValue<'static>> {
    let value: serde_json::Value = serde_json::from_str(text.as_deref()?).ok()?;
    async_graphql::Value::from_json(value)
        .ok()
        .map(FieldValue::value)
}

pub fn types() -> (Vec<Object>, Vec<Enum>) {
    let source = Enum::new("EventSource")
        .description("How Tessera learned of a change.")
        .item(
            async_graphql::dynamic::EnumItem::new("WEBHOOK")
                .description("The vendor's webhook delivered it."),
        )
        .item(
            async_graphql::dynamic::EnumItem::new("POLL")
                .description("Reconciliation found it: the vendor's webhook did not deliver it."),
        );
    let outcome = Enum::new("WebhookDeliveryOutcome")
        .description("What became of one vendor delivery.")
        .items([
            "ACCEPTED",
            "BAD_SIGNATURE",
            "REPLAYED",
            "UNKNOWN_ACCOUNT",
            "MALFORMED",
        ]);
    let state = Enum::new("WebhookSubscriptionState")
        .description("Where a vendor subscription stands: ACTIVE (delivering), RENEWING (a renewal is in flight), LAPSED (expired before it was renewed), FAILED (renewal keeps failing), DELETED (removed at the vendor).")
        .items(["ACTIVE", "RENEWING", "LAPSED", "FAILED", "DELETED"]);
    let event = Object::new("UnifiedEvent")
        .description("A change to a record of a linked account, in the unified model.")
        .field(getter::<Arc<UnifiedEvent>>("id", "The event's id.", TypeRef::named_nn(TypeRef::ID), |e| Some(FieldValue::value(e.id.clone()))))
        .field(getter::<Arc<UnifiedEvent>>("type", "`<resource singular>.<created|updated|deleted>`, e.g. `contact.updated`.", TypeRef::named_nn(TypeRef::STRING), |e| Some(FieldValue::value(e.kind.clone()))))
        .field(getter::<Arc<UnifiedEvent>>("accountId", "The linked account.", TypeRef::named_nn(TypeRef::ID), |e| Some(FieldValue::value(e.account_id.clone()))))
        .field(getter::<Arc<UnifiedEvent>>("resource", "The unified resource, e.g. `contacts`.", TypeRef::named_nn(TypeRef::STRING), |e| Some(FieldValue::value(e.resource.clone()))))
        .field(getter::<Arc<UnifiedEvent>>("remoteId", "The vendor's id of the record.", TypeRef::named_nn(TypeRef::ID), |e| Some(FieldValue::value(e.remote_id.clone()))))
        .field(getter::<Arc<UnifiedEvent>>("recordId", "The record's global id (as `node(id:)` takes it).", TypeRef::named(TypeRef::ID), |e| Some(FieldValue::value(e.record_id.clone()))))
        .field(getter::<Arc<UnifiedEvent>>("occurredAt", "When the vendor says it happened.", TypeRef::named_nn("DateTime"), |e| time(&Some(e.occurred_at))))
        .field(getter::<Arc<UnifiedEvent>>("receivedAt", "When Tessera received it.", TypeRef::named_nn("DateTime"), |e| time(&Some(e.received_at))))
        .field(getter::<Arc<UnifiedEvent>>("source", "WEBHOOK, or POLL when reconciliation found it.", TypeRef::named_nn("EventSource"), |e| Some(FieldValue::value(async_graphql::Value::Enum(async_graphql::Name::new(&e.source))))))
        .field(getter::<Arc<UnifiedEvent>>("record", "The record, mapped as a query maps it (the account's overrides included), when the vendor sent it or Tessera read it; null for deletions and records that could not be read.", TypeRef::named("JSON"), |e| json_value(&e.record)));
    let edge = Object::new("UnifiedEventEdge")
        .description("One event of a connection, with its cursor.")
        .field(getter::<Arc<UnifiedEvent>>(
            "cursor",
            "Pass as `after` to read the events that follow.",
            TypeRef::named_nn(TypeRef::STRING),
            |e| Some(FieldValue::value(cursor(e.seq))),
        ))
        .field(getter::<Arc<UnifiedEvent>>(
            "node",
            "The event.",
            TypeRef::named_nn("UnifiedEvent"),
            |e| Some(FieldValue::owned_any(e.clone())),
        ));
    let page_info = Object::new("UnifiedEventPageInfo")
        .description("Where a page of events stands.")
        .field(getter::<EventPage>(
            "hasNextPage",
            "Whether newer events follow the last one returned.",
            TypeRef::named_nn(TypeRef::BOOLEAN),
            |p| Some(FieldValue::value(p.has_next_page)),
        ))
        .field(getter::<EventPage>(
            "endCursor",
            "The newest event's cursor: pass it as `after` to read only what comes next.",
            TypeRef::named(TypeRef::STRING),
            |p| p.events.last().map(|e| FieldValue::value(cursor(e.seq))),
        ));
    let connection = Object::new("UnifiedEventConnection")
        .description("Events, oldest first (newest last).")
        .field(getter::<EventPage>(
            "edges",
            "The events.",
            TypeRef::named_nn_list_nn("UnifiedEventEdge"),
            |p| {
                Some(FieldValue::list(
                    p.events.iter().map(|e| FieldValue::owned_any(e.clone())),
                ))
            },
        ))
        .field(getter::<EventPage>(
            "nodes",
            "The events, without cursors.",
            TypeRef::named_nn_list_nn("UnifiedEvent"),
            |p| {
                Some(FieldValue::list(
                    p.events.iter().map(|e| FieldValue::owned_any(e.clone())),
                ))
            },
        ))
        .field(
            Field::new(
                "pageInfo",
                TypeRef::named_nn("UnifiedEventPageInfo"),
                |ctx| {
                    FieldFuture::new(async move {
                        let p = ctx.parent_value.try_downcast_ref::<EventPage>()?;
                        Ok(Some(FieldValue::borrowed_any(p)))
                    })
                },
            )
            .description("Where this page stands."),
        );
    let delivery = Object::new("WebhookDelivery")
        .description(
            "One delivery a vendor made to Tessera, refused ones included (never its body).",
        )
        .field(getter::<WebhookDelivery>(
            "receivedAt",
            "When it arrived.",
            TypeRef::named_nn("DateTime"),
            |d| time(&Some(d.received_at)),
        ))
        .field(getter::<WebhookDelivery>(
            "outcome",
            "What became of it.",
            TypeRef::named_nn("WebhookDeliveryOutcome"),
            |d| {
                Some(FieldValue::value(async_graphql::Value::Enum(
                    async_graphql::Name::new(&d.outcome),
                )))
            },
        ))
        .field(getter::<WebhookDelivery>(
            "reason",
            "Why it was refused, or what was skipped.",
            TypeRef::named(TypeRef::STRING),
            |d| d.reason.clone().map(FieldValue::value),
        ))
        .field(getter::<WebhookDelivery>(
            "eventCount",
            "New events it brought for this account.",
            TypeRef::named_nn(TypeRef::INT),
            |d| Some(FieldValue::value(d.event_count)),
        ));
    let subscription = Object::new("WebhookSubscription")
        .description("A subscription Tessera holds at the vendor for this account.")
        .field(getter::<WebhookSubscription>("id", "Tessera's id of the subscription.", TypeRef::named_nn(TypeRef::ID), |s| Some(FieldValue::value(s.id.clone()))))
        .field(getter::<WebhookSubscription>("remoteId", "The vendor's id of the subscription.", TypeRef::named(TypeRef::ID), |s| s.remote_id.clone().map(FieldValue::value)))
        .field(getter::<WebhookSubscription>("state", "Where it stands.", TypeRef::named_nn("WebhookSubscriptionState"), |s| Some(FieldValue::value(async_graphql::Value::Enum(async_graphql::Name::new(&s.state))))))
        .field(getter::<WebhookSubscription>("expiresAt", "When the vendor stops delivering unless it is renewed; null for subscriptions that do not expire.", TypeRef::named("DateTime"), |s| time(&s.expires_at)))
        .field(getter::<WebhookSubscription>("lastRenewedAt", "When it was last renewed.", TypeRef::named("DateTime"), |s| time(&s.last_renewed_at)))
        .field(getter::<WebhookSubscription>("lastDeliveryAt", "When the vendor last delivered through it.", TypeRef::named("DateTime"), |s| time(&s.last_delivery_at)))
        .field(getter::<WebhookSubscription>("lastError", "Why the last renewal failed.", TypeRef::named(TypeRef::STRING), |s| s.last_error.clone().map(FieldValue::value)));
    (
        vec![event, edge, page_info, connection, delivery, subscription],
        vec![source, outcome, state],
    )
}

/// `LinkedAccount.webhookDeliveries` and `LinkedAccount.webhookSubscriptions`.
pub fn account_fields() -> Vec<Field> {
    vec![
        Field::new("webhookDeliveries", TypeRef::named_nn_list_nn("WebhookDelivery"), |ctx| {
            FieldFuture::new(async move {
                let services = services(&ctx)?;
                let a = ctx.parent_value.try_downcast_ref::<LinkedAccount>()?;
                let last = match ctx.args.get("last") {
                    Some(v) if !v.is_null() => v.u64()?.clamp(1, 500),
                    _ => 20,
                };
                let rows = services.store.list_webhook_deliveries(&a.id, last).await.map_err(|e| from_code(&e))?;
                Ok(Some(FieldValue::list(rows.into_iter().map(FieldValue::owned_any))))
            })
        })
        .argument(InputValue::new("last", TypeRef::named(TypeRef::INT)).description("How many, newest first (default 20, at most 500)."))
        .description("The vendor's latest deliveries for this account, refused ones included, newest first."),
        Field::new("webhookSubscriptions", TypeRef::named_nn_list_nn("WebhookSubscription"), |ctx| {
            FieldFuture::new(async move {
                let services = services(&ctx)?;
                let a = ctx.parent_value.try_downcast_ref::<LinkedAccount>()?;
                let rows = services.store.list_webhook_subscriptions(&a.id).await.map_err(|e| from_code(&e))?;
                Ok(Some(FieldValue::list(rows.into_iter().map(FieldValue::owned_any))))
            })
        })
        .description("The subscriptions Tessera holds at the vendor for this account (vendors with per-account webhooks)."),
    ]
}

/// The account filter of `events`, checked against the caller.
async fn scope(
    ctx: &async_graphql::dynamic::ResolverContext<'_>,
) -> Result<(Caller, Option<String>, Vec<String>), async_graphql::Error> {
    let services = services(ctx)?;
    let caller = caller(ctx)?;
    let account = match ctx.args.get("accountId") {
        Some(v) if !v.is_null() => {
            let id = v.string()?.to_string();
            visible_account(&services, &caller, &id)
                .await
                .map_err(|e| from_code(&e))?;
            Some(id)
        }
        _ => None,
    };
    let types = match ctx.args.get("types") {
        Some(v) if !v.is_null() => v
            .list()?
            .iter()
            .map(|t| t.string().map(str::to_owned))
            .collect::<Result<Vec<_>, _>>()?,
        _ => Vec::new(),
    };
    Ok((caller, account, types))
}

pub fn query_fields() -> Vec<Field> {
    vec![Field::new("events", TypeRef::named_nn("UnifiedEventConnection"), |ctx| {
        FieldFuture::new(async move {
            let services = services(&ctx)?;
            let (caller, account_id, types) = scope(&ctx).await?;
            let first = match ctx.args.get("first") {
                Some(v) if !v.is_null() => {
                    let n = v.i64()?;
                    if !(0..=MAX_PAGE as i64).contains(&n) {
                        return Err(coded(ErrorCode::BadUserInput, format!("`first` must be between 0 and {MAX_PAGE}")));
                    }
                    n as u64
                }
                _ => DEFAULT_PAGE,
            };
            let after = match ctx.args.get("after") {
                Some(v) if !v.is_null() => Some(decode_cursor(v.string()?).ok_or_else(|| coded(ErrorCode::BadUserInput, "`after` is not an events cursor"))?),
                _ => None,
            };
            let query = EventQuery {
                environment_id: caller.environment().map(str::to_owned),
                account_id,
                types,
                after_seq: after,
                limit: first + 1,
                records_only: true,
            };
            // With `after`: the events that follow it, oldest first. Without: the newest
            // `first`, so a client starts at "now" and polls with `after: endCursor`.
            let (mut rows, has_next_page) = match after {
                Some(_) => {
                    let mut rows = services.store.list_unified_events(&query).await.map_err(|e| from_code(&e))?;
                    let more = rows.len() as u64 > first;
                    rows.truncate(first as usize);
                    (rows, more)
                }
                None => {
                    let q = EventQuery { limit: first, ..query };
                    (services.store.latest_unified_events(&q).await.map_err(|e| from_code(&e))?, false)
                }
            };
            rows.truncate(first as usize);
            Ok(Some(FieldValue::owned_any(EventPage {
                events: rows.into_iter().map(Arc::new).collect(),
                has_next_page,
            })))
        })
    })
    .argument(InputValue::new("accountId", TypeRef::named(TypeRef::ID)).description("Only this linked account's events."))
    .argument(InputValue::new("types", TypeRef::named_nn_list(TypeRef::STRING)).description("Only these types, e.g. `[\"contact.updated\"]`."))
    .argument(InputValue::new("first", TypeRef::named(TypeRef::INT)).description("How many (default 50, at most 500)."))
    .argument(InputValue::new("after", TypeRef::named(TypeRef::STRING)).description("Only events after this cursor; without it, the newest events."))
    .description("Changes to linked accounts' records, from vendor webhooks and reconciliation, newest last. Kept for `TESSERA_EVENT_RETENTION_DAYS` (default 7).")]
}

/// `subscription { events(accountId:, types:) }`: every new event of the caller's
/// environment as it is stored, on whichever replica it arrived.
pub fn subscription_fields() -> Vec<SubscriptionField> {
    vec![SubscriptionField::new("events", TypeRef::named_nn("UnifiedEvent"), |ctx| {
        SubscriptionFieldFuture::new(async move {
            let services = services(&ctx)?;
            let (caller, account_id, types) = scope(&ctx).await?;
            let receiver = services.events.feed.subscribe();
            let environment = caller.environment().map(str::to_owned);
            let wanted = move |e: &UnifiedEvent| {
                e.source != "MONITOR"
                    && environment.as_deref().is_none_or(|env| env == e.environment_id)
                    && account_id.as_deref().is_none_or(|a| a == e.account_id)
                    && (types.is_empty() || types.contains(&e.kind))
            };
            Ok(futures_util::stream::unfold((receiver, wanted), |(mut rx, wanted)| async move {
                loop {
                    match rx.recv().await {
                        Ok(e) if wanted(&e) => {
                            return Some((Ok::<_, async_graphql::Error>(FieldValue::owned_any(e)), (rx, wanted)));
                        }
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                            tracing::warn!(skipped = n, "an events subscriber fell behind; it missed events (read them with `events(after:)`)");
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }))
        })
    })
    .argument(InputValue::new("accountId", TypeRef::named(TypeRef::ID)).description("Only this linked account's events."))
    .argument(InputValue::new("types", TypeRef::named_nn_list(TypeRef::STRING)).description("Only these types, e.g. `[\"contact.updated\"]`."))
    .description("New events of the caller's environment, as they arrive.")]
}
