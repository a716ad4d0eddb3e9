//! Mapping one page of HubSpot records to the unified model, as the engine does per request.
//!
//! `providers/hubspot.json` is loaded through the real loader (`tessera::config::load_dir`, with
//! the SDL from `schema/` and the gateway's default JSONata engine and limits), then a page of
//! 100 contacts in HubSpot's list shape (the sandbox's sample records, cycled, each given its
//! own id) is mapped:
//!
//! - `composed`: one evaluation per record of the resource's composed object constructor
//!   (`resource.mapping.composed`), which is what `Engine::list` does;
//! - `per_field`: one evaluation per record and per field (`resource.mapping.fields`), the
//!   results assembled into the same nested object: what composing saves;
//! - the same `composed` mapping for a page of 100 companies (Q2 maps those too).
//!
//! For scale, the `page100` group times the other per-page work on the request path that is
//! not mapping: decoding the page's JSON text and deep-cloning its `results` array.
//!
//! Run with `cargo bench --bench mapping` (about a minute); times are per page of 100.

#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Map, Value, json};
use tessera::config::{MappedField, ResourceModel};
use tessera::mapping::Vars;

const PAGE: usize = 100;

fn repo(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The HubSpot provider, compiled by the loader the gateway uses. `load_dir` reads a whole
/// directory, so the file is copied alone into a temporary one.
fn hubspot() -> tessera::config::Providers {
    let model = tessera::schema::load_dir(&repo("schema")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo("providers/hubspot.json"),
        dir.path().join("hubspot.json"),
    )
    .unwrap();
    let engine = tessera::mapping::default_engine();
    tessera::config::load_dir(dir.path(), &model, engine.as_ref())
        .unwrap_or_else(|p| panic!("providers/hubspot.json does not load:\n{p}"))
}

/// 100 records in HubSpot's list shape: the sandbox samples, cycled, with distinct ids.
fn page(resource: &str) -> Vec<Value> {
    let samples = tessera_sandbox::sample_records("hubspot", resource).unwrap();
    assert!(!samples.is_empty());
    (0..PAGE)
        .map(|i| {
            let mut record = samples[i % samples.len()].clone();
            record["id"] = json!((100_000 + i).to_string());
            record
        })
        .collect()
}

/// What the engine does with each record's composed mapping.
fn map_composed(res: &ResourceModel, records: &[Value]) -> Vec<Map<String, Value>> {
    records
        .iter()
        .map(
            |raw| match res.mapping.composed.evaluate(Some(raw), &Vars::none()) {
                Ok(Some(Value::Object(map))) => map,
                Ok(None) => Map::new(),
                other => panic!("the composed mapping gave {other:?}"),
            },
        )
        .collect()
}

/// Inserts `value` at the dotted `path` (`customFields.customerTier`).
fn insert_at(out: &mut Map<String, Value>, path: &str, value: Value) {
    match path.split_once('.') {
        None => {
            out.insert(path.to_string(), value);
        }
        Some((head, rest)) => {
            let child = out
                .entry(head.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(child) = child {
                insert_at(child, rest, value);
            }
        }
    }
}

/// The same result, one evaluation per field.
fn map_per_field(fields: &[MappedField], records: &[Value]) -> Vec<Map<String, Value>> {
    records
        .iter()
        .map(|raw| {
            let mut out = Map::new();
            for f in fields {
                if let Some(v) = f.expr.evaluate(Some(raw), &Vars::none()).unwrap() {
                    insert_at(&mut out, &f.path, v);
                }
            }
            out
        })
        .collect()
}

fn mapping(c: &mut Criterion) {
    let providers = hubspot();
    let provider = providers.get("hubspot").unwrap();
    let contacts = &provider.resources["contacts"];
    let companies = &provider.resources["companies"];
    let contact_page = page("contacts");
    let company_page = page("companies");

    // Both ways give the same records (up to empty nested objects), or the comparison is moot.
    let composed = map_composed(contacts, &contact_page);
    let per_field = map_per_field(&contacts.mapping.fields, &contact_page);
    for (a, b) in composed.iter().zip(&per_field) {
        for (k, v) in b {
            assert_eq!(a.get(k), Some(v), "field {k}");
        }
    }

    let mut group = c.benchmark_group("hubspot_page100");
    group.throughput(Throughput::Elements(PAGE as u64));
    group.bench_function("contacts_composed", |b| {
        b.iter(|| map_composed(contacts, black_box(&contact_page)))
    });
    group.bench_function(
        format!("contacts_per_field_x{}", contacts.mapping.fields.len()),
        |b| b.iter(|| map_per_field(&contacts.mapping.fields, black_box(&contact_page))),
    );
    group.bench_function("companies_composed", |b| {
        b.iter(|| map_composed(companies, black_box(&company_page)))
    });
    group.finish();

    // The rest of a page's handling, for scale.
    let body = serde_json::to_vec(&json!({
        "results": contact_page,
        "paging": { "next": { "after": "100", "link": "http://127.0.0.1/next" } },
    }))
    .unwrap();
    let decoded: Value = serde_json::from_slice(&body).unwrap();
    let mut group = c.benchmark_group("page100");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("decode_json_body", |b| {
        b.iter(|| serde_json::from_slice::<Value>(black_box(&body)).unwrap())
    });
    group.bench_function("clone_results", |b| {
        b.iter(|| black_box(&decoded)["results"].clone())
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
}

criterion_group! {
    name = benches;
    config = config();
    targets = mapping
}
criterion_main!(benches);
