//! Sample upstream records, data the provider owns: `providers/samples/<provider>/<resource>.json`
//! holds a JSON array of raw vendor records, as the vendor's list endpoint returns one
//! record. `tessera check` evaluates every mapping on them, and an override is tried on them
//! before it is stored (a caller may pass its own `sample` records instead). They are loaded
//! with the provider files and checked as strictly: a file for a provider or resource that is
//! not declared, or anything but an array of objects, is a [`Problem`] naming the file and
//! where in it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use super::ProviderModel;
use crate::problem::Problem;

/// The folder under the providers directory that holds the samples.
pub const SAMPLES_DIR: &str = "samples";

/// Every provider's sample records, by (provider, resource).
#[derive(Debug, Default, Clone)]
pub struct Samples {
    by_resource: HashMap<(String, String), Arc<[Value]>>,
}

impl Samples {
    pub fn get(&self, provider: &str, resource: &str) -> Option<&[Value]> {
        self.by_resource
            .get(&(provider.to_owned(), resource.to_owned()))
            .map(|r| &r[..])
    }
}

/// Reads `<providers_dir>/samples`; no such folder means no samples (a deployment may ship
/// provider files alone).
pub fn load_samples(
    providers_dir: &Path,
    providers: &[ProviderModel],
) -> Result<Samples, Vec<Problem>> {
    let root = providers_dir.join(SAMPLES_DIR);
    let Ok(dirs) = std::fs::read_dir(&root) else {
        return Ok(Samples::default());
    };
    let mut problems = Vec::new();
    let mut samples = Samples::default();
    let mut dirs: Vec<_> = dirs.filter_map(|e| e.ok().map(|e| e.path())).collect();
    dirs.sort();
    for dir in dirs {
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let Some(provider) = providers.iter().find(|p| p.name == name) else {
            problems.push(Problem::new(
                &dir,
                "",
                format!("no provider file declares a provider named `{name}`"),
            ));
            continue;
        };
        let files = match std::fs::read_dir(&dir) {
            Ok(files) => files,
            Err(err) => {
                problems.push(Problem::new(&dir, "", format!("cannot read: {err}")));
                continue;
            }
        };
        let mut files: Vec<_> = files.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for file in files {
            match load_file(&file, provider) {
                Ok((resource, records)) => {
                    samples
                        .by_resource
                        .insert((provider.name.clone(), resource), records.into());
                }
                Err(p) => problems.push(p),
            }
        }
    }
    if problems.is_empty() {
        Ok(samples)
    } else {
        Err(problems)
    }
}

fn load_file(file: &Path, provider: &ProviderModel) -> Result<(String, Vec<Value>), Problem> {
    let resource = file
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".json"))
        .ok_or_else(|| Problem::new(file, "", "a sample file is named `<resource>.json`"))?;
    if !provider.resources.contains_key(resource) {
        return Err(Problem::new(
            file,
            "",
            format!(
                "provider `{}` declares no resource `{resource}` (it has: {})",
                provider.name,
                provider
                    .resources
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let text = std::fs::read_to_string(file)
        .map_err(|err| Problem::new(file, "", format!("cannot read: {err}")))?;
    let value: Value = serde_json::from_str(&text).map_err(|err| {
        Problem::new(
            file,
            format!("{}:{}", err.line(), err.column()),
            format!("invalid JSON: {err}"),
        )
    })?;
    let Value::Array(records) = value else {
        return Err(Problem::new(
            file,
            "",
            "must be a JSON array of upstream records",
        ));
    };
    if records.is_empty() {
        return Err(Problem::new(file, "", "holds no record"));
    }
    if let Some(i) = records.iter().position(|r| !r.is_object()) {
        return Err(Problem::new(
            file,
            format!("/{i}"),
            "a sample record must be a JSON object (one raw vendor record)",
        ));
    }
    Ok((resource.to_owned(), records))
}
