//! Alerts and diagnosis: the `alerts` query (what the watcher opened and resolved, newest
//! first) and `diagnose(accountId:)` (the on-call playbook, run now). A tenant sees its
//! own environment's accounts only.

use async_graphql::dynamic::{Enum, Field, FieldFuture, FieldValue, InputValue, Object, TypeRef};

use super::context::{caller, services};
use super::errors::{coded, from_code};
use super::platform::{getter, time};
use crate::access::visible_account;
use crate::error::ErrorCode;
use crate::health::alerts::AlertKind;
use crate::health::diagnose::{Diagnosis, Step, diagnose};
use crate::store::Alert;

const DEFAULT_FIRST: u64 = 50;
const MAX_FIRST: u64 = 500;

fn json(text: &str) -> Option<FieldValue<'static>> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    async_graphql::Value::from_json(value)
        .ok()
        .map(FieldValue::value)
}

fn enum_value(name: &str) -> Option<FieldValue<'static>> {
    Some(FieldValue::value(async_graphql::Value::Enum(
        async_graphql::Name::new(name),
    )))
}

pub fn types() -> (Vec<Object>, Vec<Enum>) {
    let alert = Object::new("Alert")
        .description("Trouble the watcher found on a linked account: opened by the evidence, resolved when the evidence is good again; one open alert per account and kind. Also delivered to the environment's webhook endpoints as `alert.opened` and `alert.resolved` events.")
        .field(getter::<Alert>("id", "The alert's id.", TypeRef::named_nn(TypeRef::ID), |a| Some(FieldValue::value(a.id.clone()))))
        .field(getter::<Alert>("kind", "What kind of trouble.", TypeRef::named_nn("AlertKind"), |a| enum_value(&a.kind)))
        .field(getter::<Alert>("state", "OPEN or RESOLVED.", TypeRef::named_nn("AlertState"), |a| enum_value(&a.state)))
        .field(getter::<Alert>("accountId", "The linked account.", TypeRef::named_nn(TypeRef::ID), |a| Some(FieldValue::value(a.account_id.clone()))))
        .field(getter::<Alert>("provider", "The account's provider.", TypeRef::named_nn(TypeRef::STRING), |a| Some(FieldValue::value(a.provider.clone()))))
        .field(getter::<Alert>("openedAt", "When it was opened.", TypeRef::named_nn("DateTime"), |a| time(&Some(a.opened_at))))
        .field(getter::<Alert>("resolvedAt", "When it was resolved; null while open.", TypeRef::named("DateTime"), |a| time(&a.resolved_at)))
        .field(getter::<Alert>("probableCause", "The probable cause, in the words of the diagnostic checklist.", TypeRef::named_nn(TypeRef::STRING), |a| Some(FieldValue::value(a.probable_cause.clone()))))
        .field(getter::<Alert>("firstResponse", "What to do first.", TypeRef::named_nn(TypeRef::STRING), |a| Some(FieldValue::value(a.first_response.clone()))))
        .field(getter::<Alert>("evidence", "What was seen (counts, statuses, redacted payload shapes; never a secret or a record value). For a resolved alert, the last evidence while it was open, or why it was closed.", TypeRef::named_nn("JSON"), |a| json(&a.evidence)));
    let diagnosis = Object::new("Diagnosis")
        .description("The on-call playbook run now for one account: its steps, the probable cause, the first response, and whether to escalate to engineering.")
        .field(getter::<Diagnosis>("kind", "An alert kind, or HEALTHY.", TypeRef::named_nn(TypeRef::STRING), |d| Some(FieldValue::value(d.kind.clone()))))
        .field(getter::<Diagnosis>("probableCause", "The probable cause.", TypeRef::named_nn(TypeRef::STRING), |d| Some(FieldValue::value(d.probable_cause.clone()))))
        .field(getter::<Diagnosis>("firstResponse", "What to do first.", TypeRef::named_nn(TypeRef::STRING), |d| Some(FieldValue::value(d.first_response.clone()))))
        .field(getter::<Diagnosis>("escalate", "Whether to call engineering (the playbook's escalation rules; the reasons are in `evidence.escalationReasons`).", TypeRef::named_nn(TypeRef::BOOLEAN), |d| Some(FieldValue::value(d.escalate))))
        .field(getter::<Diagnosis>("steps", "The playbook's steps in order: upstream, credentials, rateLimits, payload, connectivity.", TypeRef::named_nn_list_nn("DiagnosisStep"), |d| Some(FieldValue::list(d.steps.iter().cloned().map(FieldValue::owned_any)))))
        .field(getter::<Diagnosis>("evidence", "What the steps saw: the live probe, open alerts, throttling, quota, recent calls, payloads side by side (redacted).", TypeRef::named_nn("JSON"), |d| async_graphql::Value::from_json(d.evidence.clone()).ok().map(FieldValue::value)));
    let step = Object::new("DiagnosisStep")
        .description("One step of the playbook.")
        .field(getter::<Step>(
            "name",
            "The step.",
            TypeRef::named_nn(TypeRef::STRING),
            |s| Some(FieldValue::value(s.name)),
        ))
        .field(getter::<Step>(
            "finding",
            "What it found, in words.",
            TypeRef::named_nn(TypeRef::STRING),
            |s| Some(FieldValue::value(s.finding.clone())),
        ))
        .field(getter::<Step>(
            "ok",
            "Whether this step found nothing wrong.",
            TypeRef::named_nn(TypeRef::BOOLEAN),
            |s| Some(FieldValue::value(s.ok)),
        ));
    let kinds = Enum::new("AlertKind")
        .description("What an alert is about.")
        .items(AlertKind::ALL.map(AlertKind::name));
    let states = Enum::new("AlertState")
        .description("OPEN while the evidence shows the trouble, RESOLVED once it is good again.")
        .items(["OPEN", "RESOLVED"]);
    (vec![alert, diagnosis, step], vec![kinds, states])
}

pub fn query_fields() -> Vec<Field> {
    vec![
        Field::new("alerts", TypeRef::named_nn_list_nn("Alert"), |ctx| {
            FieldFuture::new(async move {
                let services = services(&ctx)?;
                let caller = caller(&ctx)?;
                let account = match ctx.args.get("accountId") {
                    Some(v) if !v.is_null() => {
                        let id = v.string()?.to_owned();
                        visible_account(&services, &caller, &id).await.map_err(|e| from_code(&e))?;
                        Some(id)
                    }
                    _ => None,
                };
                let state = match ctx.args.get("state") {
                    Some(v) if !v.is_null() => Some(v.enum_name()?.to_owned()),
                    _ => None,
                };
                let first = match ctx.args.get("first") {
                    Some(v) if !v.is_null() => {
                        let n = v.i64()?;
                        if !(1..=MAX_FIRST as i64).contains(&n) {
                            return Err(coded(ErrorCode::BadUserInput, format!("`first` must be between 1 and {MAX_FIRST}")));
                        }
                        n as u64
                    }
                    _ => DEFAULT_FIRST,
                };
                let rows = services
                    .store
                    .list_alerts(caller.environment(), state.as_deref(), account.as_deref(), first)
                    .await
                    .map_err(|e| from_code(&e))?;
                Ok(Some(FieldValue::list(rows.into_iter().map(FieldValue::owned_any))))
            })
        })
        .argument(InputValue::new("state", TypeRef::named("AlertState")).description("Only alerts in this state."))
        .argument(InputValue::new("accountId", TypeRef::named(TypeRef::ID)).description("Only this linked account's alerts."))
        .argument(InputValue::new("first", TypeRef::named(TypeRef::INT)).description("How many, newest first (default 50, at most 500)."))
        .description("Alerts of the caller's environment, newest first."),
        Field::new("diagnose", TypeRef::named_nn("Diagnosis"), |ctx| {
            FieldFuture::new(async move {
                let services = services(&ctx)?;
                let caller = caller(&ctx)?;
                let id = ctx.args.try_get("accountId")?.string()?.to_owned();
                let account = visible_account(&services, &caller, &id).await.map_err(|e| from_code(&e))?;
                let d = diagnose(&services, &account).await.map_err(|e| from_code(&e))?;
                Ok(Some(FieldValue::owned_any(d)))
            })
        })
        .argument(InputValue::new("accountId", TypeRef::named_nn(TypeRef::ID)).description("The linked account to diagnose."))
        .description("Runs the on-call playbook for one account now (one live call to the vendor) and says what is wrong, what to do first, and whether to escalate."),
    ]
}
