//! What a linked account's vendor has been doing: the request log (every upstream call
//! attempt, newest first) and the last known rate-limit budget per vendor window.

use async_graphql::dynamic::{Field, FieldFuture, FieldValue, InputValue, Object, TypeRef};

use super::context::services;
use super::errors::from_code;
use super::platform::{getter, time};
use crate::engine::WindowBudget;
use crate::store::{LinkedAccount, UpstreamCall};

pub fn types() -> Vec<Object> {
    let call = Object::new("UpstreamCall")
        .description("One attempt of one call to the vendor (retries are separate entries).")
        .field(getter::<UpstreamCall>("method", "HTTP method.", TypeRef::named_nn(TypeRef::STRING), |c| Some(FieldValue::value(c.method.clone()))))
        .field(getter::<UpstreamCall>("path", "The URL path (never the query string, which can carry credentials).", TypeRef::named_nn(TypeRef::STRING), |c| Some(FieldValue::value(c.path.clone()))))
        .field(getter::<UpstreamCall>("status", "The vendor's HTTP status; null when it did not answer.", TypeRef::named(TypeRef::INT), |c| c.status.map(FieldValue::value)))
        .field(getter::<UpstreamCall>("latencyMs", "Milliseconds until the answer (or the failure).", TypeRef::named_nn(TypeRef::INT), |c| Some(FieldValue::value(c.latency_ms))))
        .field(getter::<UpstreamCall>("errorClass", "Null on success; else e.g. `rate_limited`, `unavailable`, `timeout`, `connect`, `dns`, `tls`.", TypeRef::named(TypeRef::STRING), |c| c.error_class.clone().map(FieldValue::value)))
        .field(getter::<UpstreamCall>("retry", "0 for a first attempt, n for the n-th retry.", TypeRef::named_nn(TypeRef::INT), |c| Some(FieldValue::value(c.retry))))
        .field(getter::<UpstreamCall>("rateLimitLimit", "The normalised `ratelimit-limit` of the answer.", TypeRef::named(TypeRef::FLOAT), |c| c.rate_limit.map(|v| FieldValue::value(v as f64))))
        .field(getter::<UpstreamCall>("rateLimitRemaining", "The normalised `ratelimit-remaining`.", TypeRef::named(TypeRef::FLOAT), |c| c.rate_remaining.map(|v| FieldValue::value(v as f64))))
        .field(getter::<UpstreamCall>("rateLimitReset", "The normalised `ratelimit-reset` (seconds).", TypeRef::named(TypeRef::FLOAT), |c| c.rate_reset.map(|v| FieldValue::value(v as f64))))
        .field(getter::<UpstreamCall>("at", "When the attempt was made.", TypeRef::named_nn("DateTime"), |c| time(&Some(c.created_at))));
    let window = Object::new("RateLimitWindow")
        .description("The last known state of one of the vendor's rate-limit windows for this account (on this replica).")
        .field(getter::<WindowBudget>("window", "The provider file's name of the window (`burst`, `daily`, `throttle` after a bare 429).", TypeRef::named_nn(TypeRef::STRING), |w| Some(FieldValue::value(w.window.clone()))))
        .field(getter::<WindowBudget>("limit", "The window's budget.", TypeRef::named(TypeRef::FLOAT), |w| w.limit.map(|v| FieldValue::value(v as f64))))
        .field(getter::<WindowBudget>("remaining", "Requests left when last seen.", TypeRef::named(TypeRef::FLOAT), |w| w.remaining.map(|v| FieldValue::value(v as f64))))
        .field(getter::<WindowBudget>("reset", "Seconds until the window resets, from now.", TypeRef::named(TypeRef::FLOAT), |w| w.reset_in().map(|v| FieldValue::value(v as f64))))
        .field(getter::<WindowBudget>("observedAt", "When these figures were read.", TypeRef::named_nn("DateTime"), |w| time(&Some(w.observed))));
    vec![call, window]
}

pub fn account_fields() -> Vec<Field> {
    vec![
        Field::new("requestLog", TypeRef::named_nn_list_nn("UpstreamCall"), |ctx| {
            FieldFuture::new(async move {
                let services = services(&ctx)?;
                let a = ctx.parent_value.try_downcast_ref::<LinkedAccount>()?;
                let last = match ctx.args.get("last") {
                    Some(v) if !v.is_null() => v.u64()?.clamp(1, 1000),
                    _ => 50,
                };
                let status = match ctx.args.get("status") {
                    Some(v) if !v.is_null() => Some(i32::try_from(v.i64()?).unwrap_or(-1)),
                    _ => None,
                };
                let calls = services.store.list_upstream_calls(&a.id, status, last).await.map_err(|e| from_code(&e))?;
                Ok(Some(FieldValue::list(calls.into_iter().map(FieldValue::owned_any))))
            })
        })
        .argument(InputValue::new("last", TypeRef::named(TypeRef::INT)).description("How many, newest first (default 50, at most 1000)."))
        .argument(InputValue::new("status", TypeRef::named(TypeRef::INT)).description("Only attempts the vendor answered with this HTTP status."))
        .description("Every call to the vendor for this account (kept 7 days), newest first."),
        Field::new("rateLimit", TypeRef::named_nn_list_nn("RateLimitWindow"), |ctx| {
            FieldFuture::new(async move {
                let services = services(&ctx)?;
                let a = ctx.parent_value.try_downcast_ref::<LinkedAccount>()?;
                Ok(Some(FieldValue::list(services.engine.budget_of(&a.id).into_iter().map(FieldValue::owned_any))))
            })
        })
        .description("The vendor's rate-limit windows for this account as last seen; a used-up window makes requests fail fast with RATE_LIMITED until it resets."),
    ]
}
