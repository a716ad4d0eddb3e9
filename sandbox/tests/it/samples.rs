//! `providers/samples/<provider>/<resource>.json` are the records the product validates
//! mappings and overrides on. They are data the provider owns, but they must stay what the
//! simulated vendor really returns, so this test holds the two together: a sandbox change
//! that alters a sample record fails here until the files are written again with
//! `TESSERA_WRITE_SAMPLES=1 cargo test -p tessera-sandbox samples`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;
use tessera_sandbox::sample_records;

const PROVIDERS: &[&str] = &[
    "hubspot",
    "pipedrive",
    "msgraph",
    "google",
    "salesforce",
    "zoho",
    "attio",
    "close",
    "copper",
];
const RESOURCES: &[&str] = &[
    "contacts",
    "companies",
    "deals",
    "leads",
    "notes",
    "tasks",
    "users",
    "pipelines",
];

fn samples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../providers/samples")
}

#[test]
fn provider_samples_are_what_the_sandbox_vendors_return() {
    let write = std::env::var_os("TESSERA_WRITE_SAMPLES").is_some();
    let mut expected = BTreeSet::new();
    let mut stale = Vec::new();
    for provider in PROVIDERS {
        for resource in RESOURCES {
            let Some(records) = sample_records(provider, resource) else {
                continue;
            };
            assert!(
                !records.is_empty(),
                "{provider}/{resource}: no sample records"
            );
            let path = samples_dir()
                .join(provider)
                .join(format!("{resource}.json"));
            expected.insert(path.clone());
            if write {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                let mut text = serde_json::to_string_pretty(&records).unwrap();
                text.push('\n');
                std::fs::write(&path, text).unwrap();
                continue;
            }
            let on_disk: Option<Value> = std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok());
            if on_disk != Some(Value::Array(records)) {
                stale.push(path.display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "these sample files differ from the sandbox's records (rewrite them with \
         TESSERA_WRITE_SAMPLES=1 cargo test -p tessera-sandbox samples):\n{}",
        stale.join("\n")
    );
    // A file the sandbox no longer answers for would validate overrides on records no
    // vendor returns.
    let mut orphans = Vec::new();
    for dir in std::fs::read_dir(samples_dir()).unwrap() {
        for file in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            if !expected.contains(&path) {
                orphans.push(path.display().to_string());
            }
        }
    }
    assert!(
        orphans.is_empty(),
        "sample files no sandbox vendor returns:\n{}",
        orphans.join("\n")
    );
}
