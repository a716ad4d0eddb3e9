//! `previewOverride(input:, accountId:, first:)`: an override tried on the account's own
//! latest records before anyone stores it. The candidate is validated as `setOverride`
//! would (the provider samples or the input's own), then the account's records are listed
//! with the candidate in force (its request patches included) and mapped both ways; the
//! answer is, per record, each field whose value changes, before and after. Nothing is
//! stored and no cache is touched.

use std::sync::Arc;

use async_graphql::dynamic::{Field, FieldFuture, FieldValue, InputValue, Object, TypeRef};
use serde_json::{Map, Value};

use super::context::{caller, services};
use super::errors::from_code;
use super::overrides::{
    authorize, bad, samples_from_input, spec_from_input, validate_off_the_workers,
};
use super::platform::getter;
use crate::access::{handle_for, visible_account};
use crate::engine::AccountHandle;
use crate::overrides::Level;

/// Records a preview maps by default, and at most.
const DEFAULT_RECORDS: usize = 5;
const MAX_RECORDS: usize = 20;

pub struct Preview {
    account_id: String,
    resource: String,
    /// Why the candidate would be refused by `setOverride` (then no record is mapped).
    errors: Vec<String>,
    records: Vec<RecordPreview>,
}

#[derive(Clone)]
struct RecordPreview {
    remote_id: String,
    changes: Vec<FieldChange>,
    warnings: Vec<String>,
    error: Option<String>,
}

#[derive(Clone)]
struct FieldChange {
    field: String,
    before: Option<Value>,
    after: Option<Value>,
}

/// The fields of a mapped record, `customFields` one by one.
fn flatten(mapped: &Map<String, Value>) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (key, value) in mapped {
        match (key.as_str(), value) {
            ("customFields", Value::Object(custom)) => {
                for (name, v) in custom {
                    out.push((format!("customFields.{name}"), v.clone()));
                }
            }
            _ => out.push((key.clone(), value.clone())),
        }
    }
    out
}

fn changes(before: &Map<String, Value>, after: &Map<String, Value>) -> Vec<FieldChange> {
    let before = flatten(before);
    let after = flatten(after);
    let find = |list: &[(String, Value)], key: &str| {
        list.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    };
    let mut keys: Vec<&String> = before.iter().chain(after.iter()).map(|(k, _)| k).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|key| {
            let (b, a) = (find(&before, key), find(&after, key));
            (b != a).then(|| FieldChange {
                field: key.clone(),
                before: b,
                after: a,
            })
        })
        .collect()
}

pub fn types() -> Vec<Object> {
    let change = Object::new("OverrideFieldChange")
        .description("One field of one record whose value the override changes (`customFields.<name>` for custom fields). A null side: the field is absent there.")
        .field(getter::<FieldChange>("field", "The output field.", TypeRef::named_nn(TypeRef::STRING), |c| Some(FieldValue::value(c.field.clone()))))
        .field(getter::<FieldChange>("before", "Its value with the overrides in force now.", TypeRef::named("JSON"), |c| c.before.clone().map(|v| FieldValue::value(async_graphql::Value::from_json(v).unwrap_or_default()))))
        .field(getter::<FieldChange>("after", "Its value with the override.", TypeRef::named("JSON"), |c| c.after.clone().map(|v| FieldValue::value(async_graphql::Value::from_json(v).unwrap_or_default()))));
    let record = Object::new("OverrideRecordPreview")
        .description("One of the account's records, mapped now and with the override.")
        .field(getter::<RecordPreview>("remoteId", "The record's id at the vendor.", TypeRef::named_nn(TypeRef::ID), |r| Some(FieldValue::value(r.remote_id.clone()))))
        .field(getter::<RecordPreview>("changes", "The fields whose value changes; empty: the override changes nothing here.", TypeRef::named_nn_list_nn("OverrideFieldChange"), |r| Some(FieldValue::list(r.changes.iter().cloned().map(FieldValue::owned_any)))))
        .field(getter::<RecordPreview>("warnings", "Values the override's mapping had to drop (a custom field that does not fit its type).", TypeRef::named_nn_list_nn(TypeRef::STRING), |r| Some(FieldValue::list(r.warnings.iter().map(|w| FieldValue::value(w.clone()))))))
        .field(getter::<RecordPreview>("error", "Why the override's mapping fails on this record; null when it maps.", TypeRef::named(TypeRef::STRING), |r| r.error.clone().map(FieldValue::value)));
    let preview = Object::new("OverridePreview")
        .description("An override tried on an account's latest records; nothing was stored.")
        .field(getter::<Preview>(
            "accountId",
            "The account whose records were read.",
            TypeRef::named_nn(TypeRef::ID),
            |p| Some(FieldValue::value(p.account_id.clone())),
        ))
        .field(getter::<Preview>(
            "resource",
            "The resource the override maps.",
            TypeRef::named_nn(TypeRef::STRING),
            |p| Some(FieldValue::value(p.resource.clone())),
        ))
        .field(getter::<Preview>(
            "valid",
            "Whether `setOverride` would take it (validation on the samples passed).",
            TypeRef::named_nn(TypeRef::BOOLEAN),
            |p| Some(FieldValue::value(p.errors.is_empty())),
        ))
        .field(getter::<Preview>(
            "errors",
            "Why `setOverride` would refuse it; no record is mapped then.",
            TypeRef::named_nn_list_nn(TypeRef::STRING),
            |p| {
                Some(FieldValue::list(
                    p.errors.iter().map(|e| FieldValue::value(e.clone())),
                ))
            },
        ))
        .field(getter::<Preview>(
            "records",
            "The account's latest records, each with what changes.",
            TypeRef::named_nn_list_nn("OverrideRecordPreview"),
            |p| {
                Some(FieldValue::list(
                    p.records.iter().cloned().map(FieldValue::owned_any),
                ))
            },
        ));
    vec![change, record, preview]
}

pub fn mutation_fields() -> Vec<Field> {
    vec![Field::new("previewOverride", TypeRef::named_nn("OverridePreview"), |ctx| {
        FieldFuture::new(async move {
            let services = services(&ctx)?;
            let caller = caller(&ctx)?;
            let account_id = ctx.args.try_get("accountId")?.string()?.to_string();
            let first = match ctx.args.get("first") {
                Some(v) if !v.is_null() => usize::try_from(v.i64()?)
                    .ok()
                    .filter(|n| (1..=MAX_RECORDS).contains(n))
                    .ok_or_else(|| bad(format!("`first` must be between 1 and {MAX_RECORDS}")))?,
                _ => DEFAULT_RECORDS,
            };
            let input = ctx.args.try_get("input")?.as_value().clone().into_json().map_err(|e| bad(e.to_string()))?;
            let Value::Object(input) = input else {
                return Err(bad("`input` must be an object"));
            };
            let text = |k: &str| input.get(k).and_then(Value::as_str).map(str::to_string);
            let level = text("level").and_then(|l| Level::parse(&l)).ok_or_else(|| bad("`level` must be PLATFORM, ENVIRONMENT or ACCOUNT"))?;
            let account = visible_account(&services, &caller, &account_id).await.map_err(|e| from_code(&e))?;
            let scope = authorize(&services, &caller, level, text("provider").unwrap_or_default(), text("resource").unwrap_or_default(), text("environmentId"), text("accountId")).await?;
            if !scope.applies_to(&account.provider, &account.environment_id, &account.id) {
                return Err(bad(format!("this override does not apply to linked account `{}` (a `{}` account): preview it on an account it would change", account.id, account.provider)));
            }
            let spec = spec_from_input(&input)?;
            let samples = samples_from_input(&input)?;
            let mut preview = Preview { account_id: account.id.clone(), resource: scope.resource.clone(), errors: Vec::new(), records: Vec::new() };
            if let Err(e) = validate_off_the_workers(&services, &scope, &spec, samples).await {
                preview.errors.push(e.message);
                return Ok(Some(FieldValue::owned_any(preview)));
            }
            // Compiling the candidate runs the tenant's expressions' compiler: on the pool.
            let (registry, s, c, env, acc) = (Arc::clone(&services.overrides), scope.clone(), spec.clone(), account.environment_id.clone(), account.id.clone());
            let compiled = services.engine.off_the_workers(move || registry.effective_with(&s, &c, &env, &acc)).await.map_err(|e| from_code(&e))?;
            let candidate = match compiled {
                Ok(model) => model,
                Err(e) => {
                    preview.errors.push(e.to_string());
                    return Ok(Some(FieldValue::owned_any(preview)));
                }
            };
            // The request's own spend: its call ceiling and mapping budget hold across aliases.
            let now = handle_for(&services, &caller, &account.id, super::resources::request_spend(&ctx)).await.map_err(|e| from_code(&e))?;
            let with = AccountHandle { provider: candidate, ..(*now).clone() };
            let page = services.engine.list_unobserved(&with, &scope.resource, first).await.map_err(|e| from_code(&e))?;
            for edge in page.edges {
                let record = edge.record;
                let before = services.engine.record_from_raw(&now, &scope.resource, record.raw.clone()).await.map_err(|e| from_code(&e))?;
                let empty = Map::new();
                let (after, error) = match &record.mapped {
                    Ok(m) => (m, None),
                    Err(e) => (&empty, Some(e.to_string())),
                };
                let before = before.mapped.unwrap_or_default();
                preview.records.push(RecordPreview { remote_id: record.remote_id, changes: changes(&before, after), warnings: record.warnings, error });
            }
            Ok(Some(FieldValue::owned_any(preview)))
        })
    })
    .argument(InputValue::new("input", TypeRef::named_nn("OverrideInput")).description("The override as `setOverride` would take it."))
    .argument(InputValue::new("accountId", TypeRef::named_nn(TypeRef::ID)).description("The linked account whose latest records it is tried on; the override must apply to it."))
    .argument(InputValue::new("first", TypeRef::named(TypeRef::INT)).description("How many of its records (default 5, at most 20)."))
    .description("Tries an override on an account's latest records without storing it: validation as `setOverride` does it, then per record the fields whose value changes, before and after. Reads the vendor; stores nothing.")]
}
