//! What a linked account's vendor has been doing: the request log (every upstream call
//! attempt, newest first) and the last known rate-limit budget per vendor window.

use async_graphql::dynamic::{Field, FieldFuture, FieldValue, InputValue, Object, TypeRef};

use super::context::services;
use super::errors::from_code;
use super::platform::{getter, time};
use crate::engine::WindowBudget;
use crate::store::{AccountHealth, LinkedAccount, ProbeResult, UpstreamCall};

pub fn types() -> Vec<Object> {
    let mut out = health_types();
    out.extend(call_types());
    out
}

fn call_types() -> Vec<Object> {
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

/// The health objects: `AccountHealth`, its failure and the probe history.
fn health_types() -> Vec<Object> {
    let health = Object::new("AccountHealth")
        .description("What the latest health probe found: HEALTHY (the last probe worked), DEGRADED (one failure, or a spent quota), FAILING (credentials refused, or failures in a row), UNKNOWN (not probed yet).")
        .field(getter::<AccountHealth>("state", "Where the account stands.", TypeRef::named_nn("AccountHealthState"), |h| Some(FieldValue::value(async_graphql::Value::Enum(async_graphql::Name::new(&h.state))))))
        .field(getter::<AccountHealth>("lastProbeAt", "When it was last probed.", TypeRef::named("DateTime"), |h| time(&h.last_probe_at)))
        .field(getter::<AccountHealth>("lastOkAt", "When a probe last worked.", TypeRef::named("DateTime"), |h| time(&h.last_ok_at)))
        .field(getter::<AccountHealth>("failure", "Why the latest probe failed; null when it worked.", TypeRef::named("ProbeFailure"), |h| h.failure_class.as_ref().map(|_| FieldValue::owned_any(h.clone()))))
        .field(
            Field::new("probes", TypeRef::named_nn_list_nn("ProbeResult"), |ctx| {
                FieldFuture::new(async move {
                    let services = services(&ctx)?;
                    let h = ctx.parent_value.try_downcast_ref::<AccountHealth>()?;
                    let last = match ctx.args.get("last") {
                        Some(v) if !v.is_null() => v.u64()?.clamp(1, 500),
                        _ => 20,
                    };
                    let rows = services.store.list_probe_results(&h.account_id, last).await.map_err(|e| from_code(&e))?;
                    Ok(Some(FieldValue::list(rows.into_iter().map(FieldValue::owned_any))))
                })
            })
            .argument(InputValue::new("last", TypeRef::named(TypeRef::INT)).description("How many, newest first (default 20, at most 500)."))
            .description("The history of probes, newest first."),
        );
    let failure = Object::new("ProbeFailure")
        .description("A failed probe, classified from the error's type.")
        .field(getter::<AccountHealth>(
            "class",
            "DNS, TCP_CONNECT, TLS, TIMEOUT, HTTP_STATUS or AUTH.",
            TypeRef::named_nn(TypeRef::STRING),
            |h| h.failure_class.clone().map(FieldValue::value),
        ))
        .field(getter::<AccountHealth>(
            "message",
            "What failed, in words.",
            TypeRef::named_nn(TypeRef::STRING),
            |h| {
                Some(FieldValue::value(
                    h.failure_message.clone().unwrap_or_default(),
                ))
            },
        ))
        .field(getter::<AccountHealth>(
            "httpStatus",
            "The vendor's status, when it answered.",
            TypeRef::named(TypeRef::INT),
            |h| h.failure_status.map(FieldValue::value),
        ));
    let result = Object::new("ProbeResult")
        .description("One probe.")
        .field(getter::<ProbeResult>(
            "at",
            "When.",
            TypeRef::named_nn("DateTime"),
            |r| time(&Some(r.at)),
        ))
        .field(getter::<ProbeResult>(
            "ok",
            "Whether it worked.",
            TypeRef::named_nn(TypeRef::BOOLEAN),
            |r| Some(FieldValue::value(r.ok)),
        ))
        .field(getter::<ProbeResult>(
            "class",
            "The failure class, when it failed.",
            TypeRef::named(TypeRef::STRING),
            |r| r.class.clone().map(FieldValue::value),
        ))
        .field(getter::<ProbeResult>(
            "httpStatus",
            "The vendor's status, when it answered and failed.",
            TypeRef::named(TypeRef::INT),
            |r| r.http_status.map(FieldValue::value),
        ))
        .field(getter::<ProbeResult>(
            "latencyMs",
            "How long it took.",
            TypeRef::named_nn(TypeRef::INT),
            |r| Some(FieldValue::value(r.latency_ms)),
        ));
    vec![health, failure, result]
}

pub fn health_enums() -> Vec<async_graphql::dynamic::Enum> {
    vec![
        async_graphql::dynamic::Enum::new("AccountHealthState")
            .description("HEALTHY, DEGRADED, FAILING or UNKNOWN.")
            .items(["HEALTHY", "DEGRADED", "FAILING", "UNKNOWN"]),
    ]
}

pub fn account_fields() -> Vec<Field> {
    vec![
        Field::new("health", TypeRef::named_nn("AccountHealth"), |ctx| {
            FieldFuture::new(async move {
                let services = services(&ctx)?;
                let a = ctx.parent_value.try_downcast_ref::<LinkedAccount>()?;
                let health = services.store.get_account_health(&a.id).await.map_err(|e| from_code(&e))?;
                let health = health.unwrap_or_else(|| AccountHealth {
                    account_id: a.id.clone(),
                    state: "UNKNOWN".into(),
                    last_probe_at: None,
                    last_ok_at: None,
                    failure_class: None,
                    failure_message: None,
                    failure_status: None,
                    consecutive_failures: 0,
                    next_probe_at: chrono::Utc::now(),
                });
                Ok(Some(FieldValue::owned_any(health)))
            })
        })
        .description("What the latest health probe of this account found (probed every `TESSERA_PROBE_INTERVAL_SECS`)."),
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
